"""docker/es-certs.sh and docker/setup.sh against a real Elasticsearch node with security and TLS.

Run by `make docker-check` (docker/check.sh), not by `make test`: it starts a node of its own
(Elastic's test distribution, as `newsmon es up` does, in a directory of its own) configured as
docker-compose.yml configures the `elasticsearch` service: security on, TLS on HTTP and transport
with the certificates es-certs.sh makes, the `elastic` password from the bootstrap keystore.
The test distribution cannot store native users (see the fixture), so setup.sh is checked up to
its first security API call, and the role it defines is checked through a file-realm user.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from newsmon.dev import esnode

ROOT = Path(__file__).resolve().parents[1]
# Passwords of the throwaway test node, with quotes, a backslash, spaces, $, %, & and braces so
# that setup.sh's quoting is tested.
ELASTIC_PASSWORD = 'el"astic\\ pass$word'  # noqa: S105
KIBANA_PASSWORD = "kib'ana {pass}"  # noqa: S105
NEWSMON_PASSWORD = "news%mon&pass"  # noqa: S105
PREFIX = "dockercheck-"


@dataclass(frozen=True)
class SecuredNode:
    url: str
    ca: Path
    home: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def node() -> Iterator[SecuredNode]:
    layout = esnode._layout()
    dist = layout.dist(esnode.DEFAULT_VERSION)
    if not (dist / "bin" / "elasticsearch").exists():
        esnode.up()  # downloads and unpacks the distribution if needed
    run_as = esnode._run_as()
    java = {"ES_JAVA_HOME": str(esnode._java_home())}
    home = Path(tempfile.mkdtemp(prefix="newsmon-secured-", dir="/tmp"))
    home.chmod(0o755)
    config, certs = home / "config", home / "config" / "certs"
    shutil.copytree(dist / "config", config)
    env = {**os.environ, **java, "ES_HOME": str(dist), "CERTS_DIR": str(certs)}
    subprocess.run(["bash", str(ROOT / "docker" / "es-certs.sh")], env=env, check=True)
    # a second run keeps what exists
    again = subprocess.run(
        ["bash", str(ROOT / "docker" / "es-certs.sh")], env=env, check=True, capture_output=True
    )
    assert b"nothing to do" in again.stdout

    tool_env = {**os.environ, **java, "ES_PATH_CONF": str(config)}
    keystore = [str(dist / "bin" / "elasticsearch-keystore")]
    if not (config / "elasticsearch.keystore").exists():
        subprocess.run([*keystore, "create"], env=tool_env, check=True, capture_output=True)
    subprocess.run(
        [*keystore, "add", "-x", "-f", "bootstrap.password"],
        input=ELASTIC_PASSWORD.encode(),
        env=tool_env,
        check=True,
        capture_output=True,
    )
    # The native realm needs the .security index, whose mapping uses analysis-common, which the
    # test distribution lacks (the Elasticsearch image has it): here `newsmon` is a file-realm
    # user with the role setup.sh defines, to check that the role is enough for newsmon.
    role = subprocess.run(
        ["bash", str(ROOT / "docker" / "setup.sh"), "--print-role"],
        env={**os.environ, "NEWSMON_INDEX_PREFIX": PREFIX},
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    with open(config / "roles.yml", "a", encoding="utf-8") as roles:
        roles.write(f"\nnewsmon_writer: {role}\n")
    subprocess.run(
        [
            str(dist / "bin" / "elasticsearch-users"),
            "useradd",
            "newsmon",
            "-p",
            NEWSMON_PASSWORD,
            "-r",
            "newsmon_writer",
        ],
        env=tool_env,
        check=True,
        capture_output=True,
    )
    settings = {
        "cluster.name": "newsmon-secured",
        "node.name": "elasticsearch",
        "discovery.type": "single-node",
        "network.host": "127.0.0.1",
        "http.port": "0",
        "transport.port": "0",
        "node.portsfile": "true",
        "path.data": str(home / "data"),
        "path.logs": str(home / "logs"),
        "cluster.routing.allocation.disk.watermark.low": "1b",
        "cluster.routing.allocation.disk.watermark.high": "1b",
        "cluster.routing.allocation.disk.watermark.flood_stage": "1b",
        "xpack.ml.enabled": "false",
        "xpack.security.enabled": "true",
        "xpack.security.http.ssl.enabled": "true",
        "xpack.security.http.ssl.key": "certs/elasticsearch/elasticsearch.key",
        "xpack.security.http.ssl.certificate": "certs/elasticsearch/elasticsearch.crt",
        "xpack.security.http.ssl.certificate_authorities": "certs/ca/ca.crt",
        "xpack.security.transport.ssl.enabled": "true",
        "xpack.security.transport.ssl.key": "certs/elasticsearch/elasticsearch.key",
        "xpack.security.transport.ssl.certificate": "certs/elasticsearch/elasticsearch.crt",
        "xpack.security.transport.ssl.certificate_authorities": "certs/ca/ca.crt",
        "xpack.security.transport.ssl.verification_mode": "certificate",
    }
    (config / "elasticsearch.yml").write_text(
        "".join(f'{key}: "{value}"\n' for key, value in settings.items())
    )
    (config / "jvm.options.d").mkdir(exist_ok=True)
    (config / "jvm.options.d" / "heap.options").write_text("-Xms512m\n-Xmx512m\n")
    for directory in ("data", "logs", "tmp"):
        (home / directory).mkdir()
    if run_as is not None:
        subprocess.run(["chown", "-R", f"{run_as.uid}:{run_as.gid}", str(home)], check=True)

    node_env = {k: v for k, v in os.environ.items() if not k.startswith("ES_")}
    node_env.update(java, ES_PATH_CONF=str(config), ES_TMPDIR=str(home / "tmp"))
    pidfile = home / "node.pid"
    subprocess.run(
        [str(dist / "bin" / "elasticsearch"), "-d", "-p", str(pidfile)],
        cwd=home,
        env=node_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=180,
        check=True,
        user=run_as.uid if run_as else None,
        group=run_as.gid if run_as else None,
        extra_groups=[] if run_as else None,
    )
    try:
        ports = home / "logs" / "http.ports"
        deadline = time.monotonic() + 120
        while not ports.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        port = ports.read_text().split()[0].rsplit(":", 1)[1]
        yield SecuredNode(f"https://localhost:{port}", certs / "ca" / "ca.crt", home)
    finally:
        if pidfile.exists():
            pid = int(pidfile.read_text())
            os.kill(pid, signal.SIGTERM)
            for _ in range(120):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.5)
        shutil.rmtree(home, ignore_errors=True)


def run_setup(node: SecuredNode, **overrides: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "HOME": str(node.home),
        "ELASTIC_PASSWORD": ELASTIC_PASSWORD,
        "KIBANA_PASSWORD": KIBANA_PASSWORD,
        "KIBANA_URL": f"http://127.0.0.1:{_free_port()}",
        "NEWSMON_KIBANA_WAIT": "1",
        "NEWSMON_CONFIG_DIR": str(ROOT / "config"),
        "NEWSMON_ES_URL": node.url,
        "NEWSMON_ES_USERNAME": "newsmon",
        "NEWSMON_ES_PASSWORD": NEWSMON_PASSWORD,
        "NEWSMON_ES_CA_CERTS": str(node.ca),
        "NEWSMON_INDEX_PREFIX": PREFIX,
        "SETUP_WAIT_SECONDS": "120",
        **overrides,
    }
    return subprocess.run(
        ["bash", str(ROOT / "docker" / "setup.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_setup_reaches_the_security_api_over_tls(node: SecuredNode) -> None:
    result = run_setup(node)
    log = result.stderr
    # TLS with the CA es-certs.sh made, and the elastic password (quotes, backslash, space,
    # dollar) through curl's config quoting
    assert f"Elasticsearch at {node.url} is ready" in log, log
    assert "setting the password of kibana_system" in log, log
    assert result.returncode == 1, log
    # The request arrived well-formed and authenticated; only the test distribution's missing
    # analysis-common module (the .security index mapping) stops the native realm here.
    assert "POST /_security/user/kibana_system/_password answered HTTP 400" in log, log
    assert "Unknown filter type [pattern_capture]" in log, log


def test_the_role_lets_newsmon_create_its_indices_and_nothing_else(node: SecuredNode) -> None:
    env = {
        **os.environ,
        "NEWSMON_CONFIG_DIR": str(ROOT / "config"),
        "NEWSMON_ES_URL": node.url,
        "NEWSMON_ES_USERNAME": "newsmon",
        "NEWSMON_ES_PASSWORD": NEWSMON_PASSWORD,
        "NEWSMON_ES_CA_CERTS": str(node.ca),
        "NEWSMON_INDEX_PREFIX": PREFIX,
    }
    newsmon = str(Path(sys.executable).parent / "newsmon")
    for _ in (1, 2):  # as setup.sh runs it, on a fresh cluster and again
        done = subprocess.run([newsmon, "es", "init"], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr

    def call(method: str, path: str) -> requests.Response:
        return requests.request(
            method,
            node.url + path,
            auth=("newsmon", NEWSMON_PASSWORD),
            verify=str(node.ca),
            timeout=30,
        )

    assert call("GET", f"/{PREFIX}articles/_mapping").status_code == 200
    assert call("GET", f"/_index_template/{PREFIX}articles").status_code == 200
    assert call("PUT", "/other-index").status_code == 403
    assert call("GET", "/_security/user").status_code == 403


def test_setup_names_the_problem_when_elasticsearch_refuses(node: SecuredNode) -> None:
    result = run_setup(node, ELASTIC_PASSWORD="wrong", SETUP_WAIT_SECONDS="1")  # noqa: S106
    assert result.returncode == 1
    assert "did not become ready within 1s" in result.stderr
    assert "answered HTTP 401" in result.stderr


def test_setup_refuses_a_missing_secret(node: SecuredNode) -> None:
    result = run_setup(node, KIBANA_PASSWORD="")
    assert result.returncode == 2
    assert "KIBANA_PASSWORD is not set (see .env.example)" in result.stderr
