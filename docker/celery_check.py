"""The compose stack's Airflow configuration, run without Docker: CeleryExecutor, two workers.

Run by docker/celery-check.sh (`make celery-check`) with the interpreter of a venv holding
newsmon[airflow], the celery and fab providers and psycopg2. It starts, on loopback ports:
a throwaway Postgres cluster, Redis, an SMTP sink, the demo news site; then Airflow with
docker-compose.yml's ``x-airflow-common`` environment (service host names replaced by those
loopback addresses, secrets from a generated .env): db migrate, the admin user, api-server,
scheduler, dag-processor, triggerer and two Celery workers. It triggers news_ingest and checks
that the run succeeds, that its mapped batches ran on both workers and that every served page
is in Elasticsearch (the shared local node) at most once. Everything it started is stopped and
its temp directory and indices removed at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
DEV_VENV = REPO / ".venv"
SERVICE_HOSTS = ("postgres", "redis", "elasticsearch", "mailpit", "airflow-apiserver")
WORKERS = ("worker1", "worker2")
T0 = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {message}", flush=True)


class CheckFailed(Exception):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- docker-compose.yml's Airflow environment ---------------------------------------------------

_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_]\w*)")


def interpolate(value: str, env: dict[str, str], where: str) -> str:
    """Compose's interpolation: ${X}, ${X:-default}, ${X-default}, ${X:?error}, ${X?error}, $$."""

    def repl(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        op, arg = m.group(2), m.group(3) or ""
        present = name in env
        value = env.get(name, "")
        empty = not value
        if op in (":-", "-"):
            return arg if (not present or (op == ":-" and empty)) else value
        if op in (":?", "?") and (not present or (op == ":?" and empty)):
            raise CheckFailed(f"{where}: {name}: {arg}")
        return value

    return _VAR.sub(repl, value)


def make_dotenv(path: Path) -> dict[str, str]:
    """A .env with every key of .env.example: secrets generated, optional values left empty."""
    from cryptography.fernet import Fernet

    values: dict[str, str] = {}
    optional = False
    for line in (REPO / ".env.example").read_text().splitlines():
        if "--- optional" in line:
            optional = True
        m = re.match(r"([A-Z][A-Z0-9_]*)=(.*)$", line)
        if not m:
            continue
        key = m.group(1)
        if optional:
            values[key] = m.group(2)
        elif key == "AIRFLOW_FERNET_KEY":
            values[key] = Fernet.generate_key().decode()
        elif key == "AIRFLOW_ADMIN_USERNAME":
            values[key] = "admin"
        else:
            values[key] = secrets.token_hex(24)
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    path.chmod(0o600)
    return values


def compose_environment(
    dotenv: dict[str, str],
) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """The interpolated environments of x-airflow-common, airflow-worker and airflow-init."""
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())

    def env_of(mapping: dict[str, Any], where: str) -> dict[str, str]:
        return {k: interpolate(str(v), dotenv, f"{where} {k}") for k, v in mapping.items()}

    common = env_of(compose["x-airflow-common"]["environment"], "x-airflow-common")
    services = compose["services"]
    worker = env_of(services["airflow-worker"].get("environment", {}), "airflow-worker")
    init = env_of(services["airflow-init"].get("environment", {}), "airflow-init")
    return common, worker, init


def relocate(
    env: dict[str, str], hosts: dict[str, str], es_url: str
) -> tuple[dict[str, str], list[str]]:
    """Service host names to loopback addresses; /opt/newsmon to the checkout; ES without TLS."""
    out: dict[str, str] = {}
    notes: list[str] = []
    for key, value in env.items():
        if key in ("NEWSMON_ES_USERNAME", "NEWSMON_ES_PASSWORD", "NEWSMON_ES_CA_CERTS"):
            notes.append(f"dropped {key} (the local node has security off)")
            continue
        if key == "NEWSMON_ES_URL":
            out[key] = es_url
            continue
        if key.startswith("AIRFLOW_CONN_") and value.lstrip().startswith("{"):
            conn = json.loads(value)
            if conn.get("host") in hosts:
                host, port = hosts[conn["host"]].rsplit(":", 1)
                conn["host"], conn["port"] = host, int(port)
            out[key] = json.dumps(conn)
            continue
        for name, address in hosts.items():
            # host[:port] after // or @, followed by / or the end: the URL forms the file uses
            value = re.sub(rf"(?<=[/@]){re.escape(name)}(?::\d+)?(?=/|$)", address, value)
        out[key] = value.replace("/opt/newsmon/", f"{REPO}/")
    for key, value in out.items():
        for name in SERVICE_HOSTS:
            if re.search(rf"[/@]{re.escape(name)}(?=[:/]|$)", value):
                raise CheckFailed(f"{key} still names the service {name!r}: {value}")
    return out, notes


# --- processes ----------------------------------------------------------------------------------


@dataclass
class Procs:
    logs: Path
    running: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(
        self, name: str, argv: list[str], env: dict[str, str], **kw: Any
    ) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **kw
        )
        log.close()
        self.running.append((name, proc))
        return proc

    def check_alive(self) -> None:
        for name, proc in self.running:
            if proc.poll() is not None:
                tail = (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]
                raise CheckFailed(f"{name} exited with {proc.returncode}:\n{tail}")

    def stop_all(self) -> None:
        """SIGTERM to each process group we started (newest first), SIGKILL after 20 s."""
        for _name, proc in reversed(self.running):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for _name, proc in reversed(self.running):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # stragglers of the group (task processes)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
        self.running.clear()

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")


def wait_for(what: str, probe: Any, procs: Procs, timeout: float = 120, every: float = 1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        procs.check_alive()
        try:
            result = probe()
        except CheckFailed:
            raise
        except Exception:  # not up yet
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise CheckFailed(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def http_status(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
        return int(response.status)


def http_json(url: str, data: dict[str, Any] | None = None, token: str | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers=headers)  # noqa: S310 - loopback
    # the first token request makes the API server load its auth manager: seconds, and many
    # more on a busy machine; a wait, not a bound
    with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
        return json.load(response)


def run(cmd: list[str], env: dict[str, str], what: str, timeout: float = 300) -> str:
    started = time.monotonic()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise CheckFailed(
            f"{what} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
        )
    say(f"{what}: ok ({time.monotonic() - started:.1f}s)")
    return done.stdout


# --- the check ----------------------------------------------------------------------------------


def postgres_bin() -> Path:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    found = shutil.which("initdb")
    if not found:
        raise CheckFailed("no PostgreSQL binaries (initdb, postgres) found")
    return Path(found).parent


def start_postgres(work: Path, procs: Procs, port: int, password: str) -> None:
    pg = work / "postgres"
    pg.mkdir()
    (pg / "pwfile").write_text(password + "\n")
    user: dict[str, Any] = {}
    if os.geteuid() == 0:  # initdb refuses root: the cluster belongs to nobody
        user = {"user": "nobody", "group": "nogroup"}
        shutil.chown(pg, "nobody", "nogroup")
        shutil.chown(pg / "pwfile", "nobody", "nogroup")
    bindir = postgres_bin()
    env = {"PATH": os.environ["PATH"], "LC_ALL": "C.UTF-8"}
    done = subprocess.run(
        [
            str(bindir / "initdb"),
            "-D",
            str(pg / "data"),
            "-U",
            "airflow",
            "--pwfile",
            str(pg / "pwfile"),
            "--auth-host=scram-sha-256",
            "--auth-local=trust",
            "-E",
            "UTF8",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=pg,
        **user,
    )
    if done.returncode != 0:
        raise CheckFailed(f"initdb failed:\n{done.stdout}{done.stderr}")
    procs.start(
        "postgres",
        [
            str(bindir / "postgres"),
            "-D",
            str(pg / "data"),
            "-p",
            str(port),
            "-k",
            str(pg),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
        ],
        env,
        cwd=pg,
        **user,
    )
    import psycopg2

    def connect() -> bool:
        conn = psycopg2.connect(
            host="127.0.0.1", port=port, user="airflow", password=password, dbname="postgres"
        )
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE airflow")
        conn.close()
        return True

    wait_for("Postgres", connect, procs, timeout=60, every=0.5)
    say(f"postgres {bindir.parent.name} on 127.0.0.1:{port}, database airflow, password auth")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", default=str(REPO.parent / "shared" / "data" / "news-pages"))
    parser.add_argument("--feeds", type=int, default=6, help="demo feeds (default 6)")
    parser.add_argument("--batch-size", type=int, default=1, help="NEWSMON_FEED_BATCH_SIZE")
    parser.add_argument("--prefix", default="celerycheck-", help="index prefix")
    parser.add_argument("--timeout", type=float, default=600, help="for the DAG run, seconds")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    args = parser.parse_args()
    args.pages = str(Path(args.pages).resolve())

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = Path(tempfile.mkdtemp(prefix="newsmon-celerycheck-"))
    work.chmod(0o711)  # the Postgres cluster's user must reach its directory
    (work / "logs").mkdir()
    procs = Procs(work / "logs")
    es_client = None
    ok = False
    try:
        venv_bin = Path(sys.executable).parent
        dotenv = make_dotenv(work / ".env")
        common, worker_env, init_env = compose_environment(dotenv)
        say(
            f"docker-compose.yml: x-airflow-common has {len(common)} settings; "
            f"secrets in {work}/.env"
        )

        ports = {name: free_port() for name in ("postgres", "redis", "api", "smtp", "health")}
        start_postgres(work, procs, ports["postgres"], dotenv["POSTGRES_PASSWORD"])
        procs.start(
            "redis",
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(ports["redis"]),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(work),
            ],
            {"PATH": os.environ["PATH"]},
        )
        redis_cli = ["redis-cli", "-h", "127.0.0.1", "-p", str(ports["redis"]), "ping"]
        wait_for(
            "Redis", lambda: b"PONG" in subprocess.run(redis_cli, capture_output=True).stdout, procs
        )
        redis_version = subprocess.run(
            ["redis-server", "--version"], capture_output=True, text=True, check=False
        ).stdout.split()[2]
        say(f"redis {redis_version} on 127.0.0.1:{ports['redis']}")

        es_url = subprocess.run(
            [str(DEV_VENV / "bin" / "newsmon"), "es", "up"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        say(f"elasticsearch: the shared local node {es_url}")

        smtp_python = DEV_VENV / "bin" / "python"
        procs.start(
            "smtp",
            [str(smtp_python), "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{ports['smtp']}"],
            {"PATH": os.environ["PATH"], "PYTHONUNBUFFERED": "1"},
        )
        feeds_file = work / "feeds.yaml"
        procs.start(
            "demo-site",
            [
                str(venv_bin / "newsmon"),
                "demo-site",
                "--pages",
                args.pages,
                "--feeds",
                str(args.feeds),
                "--write-feeds",
                str(feeds_file),
            ],
            {"PATH": os.environ["PATH"]},
        )
        wait_for("the demo site", lambda: feeds_file.exists() and feeds_file.stat().st_size, procs)
        served = wait_for(
            "the demo site's log",
            lambda: re.search(r"serving (\d+) pages", procs.log("demo-site")),
            procs,
        )
        pages_served = int(served.group(1))
        say(f"demo site: {pages_served} pages in {args.feeds} feeds")

        hosts = {
            "postgres": f"127.0.0.1:{ports['postgres']}",
            "redis": f"127.0.0.1:{ports['redis']}",
            "mailpit": f"127.0.0.1:{ports['smtp']}",
            "airflow-apiserver": f"127.0.0.1:{ports['api']}",
            "elasticsearch": es_url.split("//", 1)[1],
        }
        airflow_env, notes = relocate(common, hosts, es_url)
        for note in notes:
            say(note)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "NEWSMON_"))}
        base["PATH"] = f"{venv_bin}:{os.environ['PATH']}"
        env = {
            **base,
            **airflow_env,
            # the image's own ENV (Dockerfile), for the checkout's files
            "AIRFLOW_HOME": str(work / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            # one machine instead of one container each: ports that would collide
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(ports["health"]),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            # this check's data: the demo site, its own indices, small batches
            "NEWSMON_FEEDS": str(feeds_file),
            "NEWSMON_FETCH_ALLOW": "127.0.0.1/32",
            "NEWSMON_INDEX_PREFIX": args.prefix,
            "NEWSMON_FEED_BATCH_SIZE": str(args.batch_size),
        }
        for key in sorted(airflow_env):
            if key.startswith("AIRFLOW__"):
                shown = re.sub(r"://([^:@/]*):[^@]*@", r"://\1:***@", airflow_env[key])
                if any(s in key for s in ("KEY", "SECRET")):
                    shown = "***"
                say(f"  {key}={shown}")

        from newsmon.config import Settings
        from newsmon.store import connect

        es_client = connect(Settings(es_url=es_url))
        drop_indices(es_client, args.prefix)

        t = time.monotonic()
        run(["airflow", "db", "migrate"], env, "airflow db migrate")
        # what the image's entrypoint does for airflow-init (_AIRFLOW_WWW_USER_CREATE)
        admin, password = (
            init_env["_AIRFLOW_WWW_USER_USERNAME"],
            init_env["_AIRFLOW_WWW_USER_PASSWORD"],
        )
        run(
            [
                "airflow",
                "users",
                "create",
                "--username",
                admin,
                "--password",
                password,
                "--firstname",
                "Airflow",
                "--lastname",
                "Admin",
                "--email",
                "admin@example.org",
                "--role",
                "Admin",
            ],
            env,
            f"airflow users create {admin} (FAB)",
        )
        say(f"airflow-init part done in {time.monotonic() - t:.1f}s")

        t = time.monotonic()
        procs.start("api-server", ["airflow", "api-server", "--port", str(ports["api"])], env)
        for name in ("scheduler", "dag-processor", "triggerer"):
            procs.start(name, ["airflow", name], env)
        for name in WORKERS:
            wenv = {**env, **relocate(worker_env, hosts, es_url)[0]}
            wenv["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(free_port())
            procs.start(name, ["airflow", "celery", "worker", "-H", f"{name}@%h"], wenv)

        api = f"http://127.0.0.1:{ports['api']}"
        version = wait_for("the api-server", lambda: http_json(f"{api}/api/v2/version"), procs)
        say(f"api-server {api}: Airflow {version['version']}")
        token = http_json(f"{api}/auth/token", {"username": admin, "password": password})[
            "access_token"
        ]
        say(f"api-server: token for {admin} from the FAB auth manager")
        wait_for(
            "the scheduler's health check",
            lambda: http_status(f"http://127.0.0.1:{ports['health']}/health") == 200,
            procs,
        )
        fqdn = socket.gethostname()
        for name in WORKERS:
            ping = [
                "celery",
                "--app",
                "airflow.providers.celery.executors.celery_executor.app",
                "inspect",
                "ping",
                "-d",
                f"{name}@{fqdn}",
            ]
            wait_for(
                f"{name} (celery inspect ping)",
                lambda ping=ping: (
                    subprocess.run(ping, env=env, capture_output=True, timeout=30).returncode == 0
                ),
                procs,
                timeout=180,
                every=2,
            )
            say(f"{name}@{fqdn}: answers celery inspect ping")
        dag = wait_for(
            "news_ingest to be parsed",
            lambda: http_json(f"{api}/api/v2/dags/news_ingest", token=token),
            procs,
            timeout=180,
            every=2,
        )
        say(
            f"airflow up in {time.monotonic() - t:.1f}s; "
            f"news_ingest parsed, paused={dag['is_paused']}"
        )

        # DAGS_ARE_PAUSED_AT_CREATION is false and catchup off: as on a first `docker compose up`,
        # the scheduler has already created a scheduled run of news_ingest for the last interval.
        run(["airflow", "dags", "unpause", "news_ingest"], env, "airflow dags unpause news_ingest")
        run_id = f"celerycheck__{int(time.time())}"
        t = time.monotonic()
        run(
            ["airflow", "dags", "trigger", "news_ingest", "--run-id", run_id],
            env,
            f"airflow dags trigger news_ingest --run-id {run_id}",
        )

        def ingest_runs() -> list[dict[str, Any]] | None:
            bad = http_json(
                f"{api}/api/v2/dags/news_ingest/dagRuns/~/taskInstances"
                "?state=up_for_retry&state=failed",
                token=token,
            )["task_instances"]
            if bad:
                ti = bad[0]
                logs = (
                    work / "airflow" / "logs" / "dag_id=news_ingest" / f"run_id={ti['dag_run_id']}"
                )
                raise CheckFailed(
                    f"{len(bad)} task instances failed or up for retry, e.g. "
                    f"{ti['task_id']}[{ti['map_index']}] of {ti['dag_run_id']}:\n"
                    + _task_errors(logs / f"task_id={ti['task_id']}")
                )
            runs = http_json(f"{api}/api/v2/dags/news_ingest/dagRuns?limit=20", token=token)
            states = [r["state"] for r in runs["dag_runs"]]
            if all(state in ("success", "failed") for state in states):
                return sorted(runs["dag_runs"], key=lambda r: r["run_after"])
            return None

        runs = wait_for("the news_ingest runs", ingest_runs, procs, timeout=args.timeout, every=2)
        say(f"news_ingest: {len(runs)} runs finished {time.monotonic() - t:.1f}s after the trigger")
        if run_id not in [r["dag_run_id"] for r in runs]:
            raise CheckFailed(f"the triggered run {run_id} is not among {runs}")

        ran_on: dict[str, str] = {}  # task instance id -> the worker whose log shows it
        for name in WORKERS:
            pattern = r"Executing workload in Celery: .*?ti=\w+\(id=UUID\('([0-9a-f-]+)'\)"
            for m in re.finditer(pattern, procs.log(name)):
                ran_on[m.group(1)] = name
        total_indexed = 0
        spread = False
        for dag_run in runs:
            rid = dag_run["dag_run_id"]
            seconds = _seconds(dag_run.get("start_date"), dag_run.get("end_date"))
            say(f"run {rid} ({dag_run['run_type']}): {dag_run['state']} in {seconds:.1f}s")
            tis = http_json(
                f"{api}/api/v2/dags/news_ingest/dagRuns/{rid}/taskInstances?limit=100", token=token
            )["task_instances"]
            for ti in sorted(tis, key=lambda ti: (ti["task_id"], ti["map_index"])):
                say(
                    f"  {ti['task_id']}[{ti['map_index']}]: {ti['state']}, try {ti['try_number']}, "
                    f"{ti.get('duration') or 0:.1f}s, on {ran_on.get(ti['id'], '?')}"
                )
            if dag_run["state"] != "success":
                raise CheckFailed(f"news_ingest run {rid} ended {dag_run['state']}")
            batches = [ti for ti in tis if ti["task_id"] == "ingest_batch"]
            per_worker = Counter(ran_on.get(ti["id"], "?") for ti in batches)
            every_task = Counter(ran_on.get(ti["id"], "?") for ti in tis)
            say(
                f"  ingest_batch: {len(batches)} mapped tasks, per worker "
                f"{dict(sorted(per_worker.items()))}; "
                f"all tasks {dict(sorted(every_task.items()))}"
            )
            if "?" in every_task:
                raise CheckFailed(f"run {rid}: task instances in neither worker's log")
            spread = spread or all(per_worker[name] for name in WORKERS)
            summary = http_json(
                f"{api}/api/v2/dags/news_ingest/dagRuns/{rid}/taskInstances/summarize"
                "/xcomEntries/return_value",
                token=token,
            )["value"]
            if isinstance(summary, str):
                summary = json.loads(summary)
            say(f"  summarize: articles {summary['articles']}, feeds {summary['feeds']}")
            total_indexed += summary["articles"].get("indexed", 0)
            failed = {
                k: n
                for k, n in summary["articles"].items()
                if k.startswith("extraction_") and k != "extraction_empty" and n
            }
            if failed:  # the extraction worker processes must work inside a Celery task
                raise CheckFailed(f"run {rid}: extraction failed in the task: {failed}")
        if not spread:
            raise CheckFailed("no run had its mapped batches on both workers")

        alias = f"{args.prefix}articles"
        es_client.indices.refresh(index=alias)
        count = es_client.count(index=alias)["count"]
        hits = es_client.search(index=alias, size=10000, source=["url"])["hits"]["hits"]
        urls = Counter(hit["_source"]["url"] for hit in hits)
        twice = [u for u, n in urls.items() if n > 1]
        full = es_client.count(index=alias, query={"term": {"extraction": "full"}})["count"]
        say(f"elasticsearch {alias}: {full} documents with the full extracted text")
        say(
            f"elasticsearch {alias}: {count} documents, {len(urls)} distinct URLs; "
            f"{pages_served} pages served; runs report {total_indexed} indexed"
        )
        if twice:
            raise CheckFailed(f"{len(twice)} URLs indexed more than once, e.g. {twice[:3]}")
        if count != total_indexed or count == 0 or count > pages_served:
            raise CheckFailed(f"{count} documents, but the runs report {total_indexed} indexed")

        # news_alerts is scheduled on the Asset news_ingest's summarize updates
        def alerts_done() -> list[dict[str, Any]] | None:
            found = http_json(f"{api}/api/v2/dags/news_alerts/dagRuns?limit=20", token=token)
            states = [r["state"] for r in found["dag_runs"]]
            if states and all(state in ("success", "failed") for state in states):
                return list(found["dag_runs"])
            return None

        alerts = wait_for("news_alerts (asset-triggered)", alerts_done, procs, timeout=180, every=2)
        for dag_run in alerts:
            say(
                f"news_alerts run {dag_run['dag_run_id']} ({dag_run['run_type']}): "
                f"{dag_run['state']}"
            )
        if any(r["state"] != "success" for r in alerts):
            raise CheckFailed("a news_alerts run failed")
        say(f"SMTP sink: {procs.log('smtp').count('---------- MESSAGE FOLLOWS')} messages")
        ok = True
        return 0
    except CheckFailed as exc:
        say(f"FAILED: {exc}")
        return 1
    finally:
        say("stopping everything this check started")
        procs.stop_all()
        if es_client is not None:
            dropped = drop_indices(es_client, args.prefix)
            say(f"deleted {dropped} indices and templates {args.prefix}*")
        if args.keep or not ok:  # the processes' logs and the task logs
            keep = Path(tempfile.gettempdir()) / "newsmon-celerycheck-logs"
            shutil.rmtree(keep, ignore_errors=True)
            shutil.copytree(work / "logs", keep)
            if (work / "airflow" / "logs").is_dir():
                shutil.copytree(work / "airflow" / "logs", keep / "tasks")
            say(f"logs kept in {keep}")
        shutil.rmtree(work, ignore_errors=True)
        say("ok" if ok else "failed")


def _task_errors(directory: Path) -> str:
    """The errors of the task logs (JSON lines) under ``directory``."""
    out = []
    for path in sorted(directory.rglob("*.log"))[:1]:
        for line in path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if record.get("level") == "error":
                    for error in record.get("error_detail") or []:
                        out.append(f"{path.name}: {error['exc_type']}: {error['exc_value']}")
    return "\n".join(out)


def _seconds(start: str | None, end: str | None) -> float:
    from datetime import datetime

    if not start or not end:
        return 0.0
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def drop_indices(es: Any, prefix: str) -> int:
    names = list(es.indices.get(index=f"{prefix}*", expand_wildcards="all"))
    for name in names:
        es.indices.delete(index=name)
    templates = es.options(ignore_status=404).indices.get_index_template(name=f"{prefix}*")
    for template in templates.get("index_templates", []):
        es.indices.delete_index_template(name=template["name"])
        names.append(template["name"])
    return len(names)


if __name__ == "__main__":
    sys.exit(main())
