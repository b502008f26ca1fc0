"""A local, real, single-node Elasticsearch for ``make run``, the tests and CI (no Docker).

Elastic publishes its test distribution on Maven Central
(``org.elasticsearch.distribution.integ-test-zip:elasticsearch:<version>:zip``).
newsmon.dev.esdist fetches it once (``mvn dependency:get`` when Maven is installed, else a
direct HTTPS download) and unpacks it once into a cache directory outside any checkout; this
module runs it as a detached, daemonized node on 127.0.0.1 with a random HTTP port (read from
``logs/http.ports``), stops it and reports its status.

The cache root (``$NEWSMON_CACHE_DIR``, else ``/var/cache/newsmon`` as root, else
``~/.cache/newsmon``) holds the distribution and the node's config, data and logs (layout:
newsmon.dev.esdist).

Elasticsearch refuses to run as root, so a root caller runs the node as the unprivileged
system user ``newsmon-es`` (created on first use).

Environment: ``NEWSMON_ES_VERSION`` (default :data:`DEFAULT_VERSION`), ``NEWSMON_ES_JAVA_HOME``
(a JDK 21+, default ``/usr/lib/jvm/temurin-25-jdk-amd64``), ``NEWSMON_CACHE_DIR``,
``NEWSMON_MAVEN_URL`` (a Maven Central mirror for the direct download).

This distribution has no ``GET /`` / ``HEAD /`` (the Python client's ``ping()``/``info()`` fail):
health is read from ``GET /_cluster/health``.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

from .esdist import (
    CLUSTER_NAME,
    DEFAULT_VERSION,
    NodeError,
    Progress,
    _clean_leftovers,
    _ensure_distribution,
    _is_root,
    _Layout,
    _layout,
    _resolve_version,
)
from .esdist import _cache_root as _cache_root  # re-exported: tests read the node's cache root

__all__ = ["DEFAULT_VERSION", "NodeError", "NodeStatus", "down", "status", "up"]

logger = logging.getLogger(__name__)

DEFAULT_JAVA_HOME = "/usr/lib/jvm/temurin-25-jdk-amd64"
MIN_JAVA = 21
ES_USER = "newsmon-es"
HEAP = "512m"

_SERVER_MAIN = "org.elasticsearch.bootstrap.Elasticsearch"
_LOG_TAIL_LINES = 25


def _no_progress(message: str) -> None:
    """Default progress callback: say nothing (the module logs anyway)."""


@dataclass(frozen=True)
class NodeStatus:
    """What :func:`status` found."""

    running: bool
    url: str | None  # "http://127.0.0.1:PORT" when running
    pid: int | None
    version: str
    home: Path  # the node dir
    health: str | None  # "green" / "yellow" / "red" when reachable


# --- progress, diagnostics -----------------------------------------------------------------------


def _say(progress: Progress, message: str) -> None:
    logger.info("%s", message)
    progress(message)


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    kept = text.splitlines()[-lines:]
    return "\n".join(line if len(line) <= 400 else line[:400] + "…" for line in kept)


_ERROR_LINE = re.compile(
    r"\]\[(?:ERROR|FATAL)\s*\]|^ERROR:|^Exception|^[\w.$]+(?:Exception|Error):"
)


def _first_error(path: Path) -> str | None:
    """The first error line in a log (the launcher's console output names the cause)."""
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if _ERROR_LINE.search(line):
                    line = line.strip()
                    return line if len(line) <= 600 else line[:600] + "…"
    except OSError:
        pass
    return None


def _diagnostics(layout: _Layout) -> str:
    parts = [f"logs: {layout.server_log} and {layout.launcher_log}"]
    error = _first_error(layout.launcher_log)
    if error:
        parts.insert(0, f"cause: {error}")
    for path in (layout.launcher_log, layout.server_log):
        tail = _tail(path)
        if tail:
            parts.append(f"--- last lines of {path} ---\n{tail}")
    return "\n".join(parts)


# --- the unprivileged user -----------------------------------------------------------------------


@dataclass(frozen=True)
class _RunAs:
    uid: int
    gid: int
    name: str
    home: str


def _run_as() -> _RunAs | None:
    """The user to run the node as when we are root (created if needed), else None."""
    if not _is_root():
        return None
    try:
        entry = pwd.getpwnam(ES_USER)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        logger.info("creating system user %s", ES_USER)
        result = subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", ES_USER],
            capture_output=True,
            text=True,
            check=False,
        )
        # 9: the user appeared meanwhile (another process created it)
        if result.returncode not in (0, 9):
            raise NodeError(
                f"Elasticsearch refuses to run as root and creating the user {ES_USER!r} "
                f"failed ({useradd} exit {result.returncode}): {result.stderr.strip()}"
            ) from None
        try:
            entry = pwd.getpwnam(ES_USER)
        except KeyError:
            raise NodeError(f"user {ES_USER!r} still missing after useradd") from None
    return _RunAs(entry.pw_uid, entry.pw_gid, entry.pw_name, entry.pw_dir)


def _check_traversable(path: Path, run_as: _RunAs) -> None:
    """Fail clearly if ``run_as`` cannot reach ``path`` (e.g. it is under /root, mode 700)."""
    for directory in (path, *path.parents):
        try:
            st = directory.stat()
        except FileNotFoundError:
            continue
        if st.st_uid == run_as.uid:
            ok = bool(st.st_mode & stat.S_IXUSR)
        elif st.st_gid == run_as.gid:
            ok = bool(st.st_mode & stat.S_IXGRP)
        else:
            ok = bool(st.st_mode & stat.S_IXOTH)
        if not ok:
            raise NodeError(
                f"the node runs as user {run_as.name!r}, which cannot enter {directory} "
                f"(mode {stat.S_IMODE(st.st_mode):o}); point NEWSMON_CACHE_DIR at a directory "
                f"outside it (default /var/cache/newsmon)"
            )


def _chown_tree(path: Path, run_as: _RunAs | None, *, recursive: bool) -> None:
    if run_as is None:
        return
    os.chown(path, run_as.uid, run_as.gid, follow_symlinks=False)
    if not recursive:
        return
    for dirpath, dirnames, filenames in os.walk(path):
        for name in (*dirnames, *filenames):
            os.chown(os.path.join(dirpath, name), run_as.uid, run_as.gid, follow_symlinks=False)


def _owned_by(path: Path, run_as: _RunAs | None) -> bool:
    return run_as is None or path.stat().st_uid == run_as.uid


# --- Java ----------------------------------------------------------------------------------------


def _java_home() -> Path:
    home = Path(os.environ.get("NEWSMON_ES_JAVA_HOME") or DEFAULT_JAVA_HOME)
    java = home / "bin" / "java"
    if not os.access(java, os.X_OK):
        raise NodeError(
            f"no Java at {java}: Elasticsearch 9 needs a JDK {MIN_JAVA}+ "
            f"(install one, e.g. `apt-get install temurin-25-jdk` from Adoptium's apt repository, "
            f"or set NEWSMON_ES_JAVA_HOME to a JDK {MIN_JAVA}+ directory)"
        )
    release = home / "release"
    with contextlib.suppress(OSError):
        match = re.search(r'^JAVA_VERSION="(\d+)', release.read_text(), re.MULTILINE)
        if match and int(match.group(1)) < MIN_JAVA:
            raise NodeError(
                f"{home} is Java {match.group(1)}; Elasticsearch 9 needs Java {MIN_JAVA}+ "
                f"(set NEWSMON_ES_JAVA_HOME to a newer JDK)"
            )
    return home


# --- node configuration --------------------------------------------------------------------------


def _settings(version: str, layout: _Layout) -> str:
    settings = {
        "cluster.name": CLUSTER_NAME,
        "node.name": CLUSTER_NAME,
        "discovery.type": "single-node",
        "network.host": "127.0.0.1",
        "http.port": "0",
        "transport.port": "0",
        "node.portsfile": "true",
        "path.data": str(layout.data(version)),
        "path.logs": str(layout.logs),
        "cluster.routing.allocation.disk.watermark.low": "1b",
        "cluster.routing.allocation.disk.watermark.high": "1b",
        "cluster.routing.allocation.disk.watermark.flood_stage": "1b",
        "xpack.security.enabled": "false",
        "xpack.ml.enabled": "false",
        # a development node: many small indices (a test run makes a set per test) on one node
        "cluster.max_shards_per_node": "5000",
    }
    header = "# Written by newsmon.esnode on every start; edits are overwritten.\n"
    return header + "".join(f'{key}: "{value}"\n' for key, value in settings.items())


def _prepare_node(version: str, dist: Path, layout: _Layout, run_as: _RunAs | None) -> None:
    layout.node.mkdir(parents=True, exist_ok=True)
    fresh_node = not _owned_by(layout.node, run_as)
    _chown_tree(layout.node, run_as, recursive=False)

    marker = layout.config / ".newsmon-from"
    if not marker.is_file() or marker.read_text().strip() != version:
        staging = layout.node / "config.new"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(dist / "config", staging)
        (staging / ".newsmon-from").write_text(version + "\n")
        shutil.rmtree(layout.config, ignore_errors=True)
        os.rename(staging, layout.config)
    (layout.config / "jvm.options.d").mkdir(exist_ok=True)
    (layout.config / "jvm.options.d" / "newsmon-heap.options").write_text(
        f"-Xms{HEAP}\n-Xmx{HEAP}\n"
    )
    (layout.config / "elasticsearch.yml").write_text(_settings(version, layout))
    _chown_tree(layout.config, run_as, recursive=True)

    for directory in (layout.data_parent, layout.data(version), layout.logs, layout.tmp):
        directory.mkdir(parents=True, exist_ok=True)
        _chown_tree(directory, run_as, recursive=fresh_node or not _owned_by(directory, run_as))

    for stale in (layout.http_ports, layout.transport_ports, layout.pidfile):
        stale.unlink(missing_ok=True)


# --- processes -----------------------------------------------------------------------------------


def _cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def _alive(pid: int) -> bool:
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat_line.rpartition(")")[2].split()[:1]
    return state != ["Z"] and state != ["X"]


def _node_version(pid: int, layout: _Layout) -> str | None:
    """The version if ``pid`` is an Elasticsearch server from this cache root, else None."""
    args = _cmdline(pid)
    if not args or _SERVER_MAIN not in " ".join(args):
        return None
    prefix = f"-Des.path.home={layout.root}/elasticsearch-"
    for arg in args:
        if arg.startswith(prefix):
            return arg[len(prefix) :]
    return None


def _find_node(layout: _Layout) -> tuple[int, str] | None:
    """(pid, version) of this cache root's running node: the pidfile, else a /proc scan."""
    with contextlib.suppress(OSError, ValueError):
        pid = int(layout.pidfile.read_text().strip())
        version = _node_version(pid, layout)
        if version is not None and _alive(pid):
            return pid, version
        logger.info("stale pidfile %s (pid %d is not our node)", layout.pidfile, pid)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            pid = int(entry.name)
            version = _node_version(pid, layout)
            if version is not None and _alive(pid):
                return pid, version
    return None


def _read_url(layout: _Layout) -> str | None:
    try:
        first = layout.http_ports.read_text().split()[0]
    except (OSError, IndexError):
        return None
    host, _, port = first.rpartition(":")
    return f"http://{host}:{port}" if host and port.isdigit() else None


def _health(url: str, wait: float) -> str | None:
    """Cluster health status, waiting up to ``wait`` seconds for yellow; None if unreachable."""
    params = {"wait_for_status": "yellow", "timeout": f"{max(1, int(wait))}s"} if wait > 0 else {}
    try:
        resp = requests.get(f"{url}/_cluster/health", params=params, timeout=max(wait, 0) + 5)
        if resp.status_code not in (200, 408):  # 408: wait_for_status timed out
            logger.warning("GET %s/_cluster/health: HTTP %d", url, resp.status_code)
            return None
        body = resp.json()
    except (requests.RequestException, ValueError) as exc:
        logger.debug("GET %s/_cluster/health failed: %s", url, exc)
        return None
    health = body.get("status") if isinstance(body, dict) else None
    return health if isinstance(health, str) else None


def _wait_healthy(url: str, deadline: float, layout: _Layout) -> str:
    while True:
        remaining = deadline - time.monotonic()
        health = _health(url, min(max(remaining, 0), 30))
        if health in ("green", "yellow"):
            return health
        if time.monotonic() >= deadline:
            raise NodeError(
                f"Elasticsearch at {url} is not healthy (cluster health {health or 'unreachable'})"
                f"\n{_diagnostics(layout)}"
            )
        time.sleep(0.5)


@contextlib.contextmanager
def _locked(layout: _Layout, progress: Progress) -> Iterator[None]:
    """Serialise up()/down() across processes (tests, ``make run``, CI) on this cache root."""
    created = not layout.root.exists()
    layout.root.mkdir(parents=True, exist_ok=True)
    if created:
        os.chmod(layout.root, 0o755)  # noqa: S103 - the node's user must enter it
    with open(layout.lockfile, "a+b") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _say(progress, f"waiting for another newsmon process using {layout.root}…")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _warn_if_in_checkout(root: Path) -> None:
    for directory in (root, *root.parents):
        if (directory / ".git").exists():
            logger.warning("cache dir %s is inside the git checkout %s", root, directory)
            return


def _kill(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _wait_dead(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def _start(version: str, layout: _Layout, timeout: float, progress: Progress) -> str:
    run_as = _run_as()
    if run_as is not None:
        _check_traversable(layout.root, run_as)
    java_home = _java_home()
    dist = _ensure_distribution(version, layout, progress)
    _prepare_node(version, dist, layout, run_as)

    env = {k: v for k, v in os.environ.items() if not k.startswith("ES_")}
    env.update(
        ES_JAVA_HOME=str(java_home),
        ES_PATH_CONF=str(layout.config),
        ES_TMPDIR=str(layout.tmp),
    )
    if run_as is not None:
        env.update(HOME=str(layout.node), USER=run_as.name, LOGNAME=run_as.name)

    cmd = [str(dist / "bin" / "elasticsearch"), "-d", "-p", str(layout.pidfile)]
    who = f" as user {run_as.name}" if run_as is not None else ""
    _say(progress, f"starting Elasticsearch {version}{who} (logs in {layout.logs})…")
    started = time.monotonic()
    deadline = started + timeout
    with open(layout.launcher_log, "wb") as launcher_log:
        # -d: the launcher returns once the node has started; the node itself is detached.
        launcher = subprocess.Popen(
            cmd,
            cwd=layout.logs,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=launcher_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=run_as.uid if run_as else None,
            group=run_as.gid if run_as else None,
            extra_groups=[] if run_as else None,
        )
    try:
        rc = launcher.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(launcher.pid, signal.SIGKILL)
        launcher.wait()
        found = _find_node(layout)
        if found is not None:
            _kill(found[0], signal.SIGKILL)
        raise NodeError(
            f"Elasticsearch {version} did not start within {timeout:.0f}s (killed it)"
            f"\n{_diagnostics(layout)}"
        ) from None
    if rc != 0:
        raise NodeError(
            f"Elasticsearch {version} failed to start (launcher exit {rc})\n{_diagnostics(layout)}"
        )

    url = None
    while url is None:
        url = _read_url(layout)
        if url is None:
            if time.monotonic() >= deadline or _find_node(layout) is None:
                raise NodeError(
                    f"Elasticsearch {version} started but wrote no {layout.http_ports}"
                    f"\n{_diagnostics(layout)}"
                )
            time.sleep(0.2)
    health = _wait_healthy(url, deadline, layout)
    _say(progress, f"ready at {url} in {time.monotonic() - started:.1f}s (health {health})")
    return url


# --- public API ----------------------------------------------------------------------------------


def up(
    *,
    version: str | None = None,
    timeout: float = 180.0,
    progress: Progress = _no_progress,
) -> str:
    """Return the URL of the running, healthy node; fetch, unpack and start it if needed.

    ``timeout`` bounds the start and the wait for health (yellow or green), not the one-time
    download. Raises :class:`NodeError` with the relevant log lines when something fails.
    """
    resolved = _resolve_version(version)
    layout = _layout()
    _warn_if_in_checkout(layout.root)
    with _locked(layout, progress):
        _clean_leftovers(layout)
        found = _find_node(layout)
        if found is not None:
            pid, running = found
            if running != resolved:
                raise NodeError(
                    f"Elasticsearch {running} is already running (pid {pid}) from {layout.root}, "
                    f"but {resolved} was requested: stop it first (newsmon.esnode.down())"
                )
            url = _read_url(layout)
            if url is None:
                raise NodeError(
                    f"Elasticsearch {running} is running (pid {pid}) but {layout.http_ports} is "
                    f"missing: stop it (newsmon.esnode.down()) and start again"
                )
            _wait_healthy(url, time.monotonic() + timeout, layout)
            logger.debug("Elasticsearch %s already running at %s (pid %d)", running, url, pid)
            return url
        if layout.pidfile.exists():
            logger.info("removing stale pidfile %s", layout.pidfile)
            layout.pidfile.unlink(missing_ok=True)
        return _start(resolved, layout, timeout, progress)


def down(*, timeout: float = 60.0, progress: Progress = _no_progress) -> bool:
    """Stop the node (SIGTERM, then SIGKILL after ``timeout``); True if it was running."""
    layout = _layout()
    if not layout.root.is_dir():
        return False
    with _locked(layout, progress):
        found = _find_node(layout)
        if found is None:
            for stale in (layout.pidfile, layout.http_ports, layout.transport_ports):
                stale.unlink(missing_ok=True)
            return False
        pid, version = found
        _say(progress, f"stopping Elasticsearch {version} (pid {pid})…")
        started = time.monotonic()
        _kill(pid, signal.SIGTERM)
        if not _wait_dead(pid, timeout):
            _say(progress, f"Elasticsearch did not stop within {timeout:.0f}s; killing it")
            _kill(pid, signal.SIGKILL)
            if not _wait_dead(pid, 10):
                raise NodeError(f"could not kill Elasticsearch (pid {pid})")
        for stale in (layout.pidfile, layout.http_ports, layout.transport_ports):
            stale.unlink(missing_ok=True)
        _say(progress, f"stopped in {time.monotonic() - started:.1f}s")
        return True


def status() -> NodeStatus:
    """Whether the node runs, where, and its cluster health (quick, no waiting, no lock)."""
    layout = _layout()
    found = _find_node(layout) if layout.root.is_dir() else None
    if found is None:
        return NodeStatus(
            running=False,
            url=None,
            pid=None,
            version=_resolve_version(None),
            home=layout.node,
            health=None,
        )
    pid, version = found
    url = _read_url(layout)
    return NodeStatus(
        running=True,
        url=url,
        pid=pid,
        version=version,
        home=layout.node,
        health=_health(url, 0) if url else None,
    )
