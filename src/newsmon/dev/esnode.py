"""A local, real, single-node Elasticsearch for ``make run``, the tests and CI (no Docker).

Elastic publishes its test distribution on Maven Central
(``org.elasticsearch.distribution.integ-test-zip:elasticsearch:<version>:zip``). This module
fetches it once (``mvn dependency:get`` when Maven is installed, else a direct HTTPS download),
unpacks it once into a cache directory outside any checkout, and runs it as a detached,
daemonized node on 127.0.0.1 with a random HTTP port (read from ``logs/http.ports``).

Cache layout (root = ``$NEWSMON_CACHE_DIR``, else ``/var/cache/newsmon`` as root, else
``~/.cache/newsmon``)::

    <root>/downloads/elasticsearch-<ver>.zip   only when downloaded without Maven
    <root>/elasticsearch-<ver>/                the unpacked distribution, reused
    <root>/node/config/                        ES_PATH_CONF (copied from the distribution once)
    <root>/node/data/<ver>/                    path.data
    <root>/node/logs/                          path.logs, http.ports, launcher.log
    <root>/node/tmp/                           ES_TMPDIR
    <root>/node/elasticsearch.pid              written by Elasticsearch itself (``-p``)

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
import hashlib
import logging
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

__all__ = ["DEFAULT_VERSION", "NodeError", "NodeStatus", "down", "status", "up"]

logger = logging.getLogger(__name__)

DEFAULT_VERSION = "9.5.4"
DEFAULT_JAVA_HOME = "/usr/lib/jvm/temurin-25-jdk-amd64"
MIN_JAVA = 21
ES_USER = "newsmon-es"
CLUSTER_NAME = "newsmon"
HEAP = "512m"
MAVEN_CENTRAL = "https://repo.maven.apache.org/maven2"
MAVEN_GROUP = "org.elasticsearch.distribution.integ-test-zip"
MAVEN_ARTIFACT = "elasticsearch"

_VERSION_RE = re.compile(r"^\d+\.\d+\.\d+(?:-[A-Za-z0-9.]+)?$")
_SERVER_MAIN = "org.elasticsearch.bootstrap.Elasticsearch"
_LOG_TAIL_LINES = 25

Progress = Callable[[str], None]


def _no_progress(message: str) -> None:
    """Default progress callback: say nothing (the module logs anyway)."""


class NodeError(RuntimeError):
    """The local Elasticsearch node could not be fetched, started, reached or stopped."""


@dataclass(frozen=True)
class NodeStatus:
    """What :func:`status` found."""

    running: bool
    url: str | None  # "http://127.0.0.1:PORT" when running
    pid: int | None
    version: str
    home: Path  # the node dir
    health: str | None  # "green" / "yellow" / "red" when reachable


# --- paths ---------------------------------------------------------------------------------------


def _resolve_version(version: str | None) -> str:
    resolved = version or os.environ.get("NEWSMON_ES_VERSION") or DEFAULT_VERSION
    if not _VERSION_RE.match(resolved):
        raise NodeError(f"invalid Elasticsearch version {resolved!r} (expected e.g. 9.5.4)")
    return resolved


def _is_root() -> bool:
    return os.geteuid() == 0


def _cache_root() -> Path:
    env = os.environ.get("NEWSMON_CACHE_DIR")
    if env:
        return Path(env).expanduser().absolute()
    if _is_root():
        return Path("/var/cache/newsmon")
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base.absolute() / "newsmon"


@dataclass(frozen=True)
class _Layout:
    root: Path

    @property
    def node(self) -> Path:
        return self.root / "node"

    @property
    def config(self) -> Path:
        return self.node / "config"

    @property
    def data_parent(self) -> Path:
        return self.node / "data"

    @property
    def logs(self) -> Path:
        return self.node / "logs"

    @property
    def tmp(self) -> Path:
        return self.node / "tmp"

    @property
    def pidfile(self) -> Path:
        return self.node / "elasticsearch.pid"

    @property
    def http_ports(self) -> Path:
        return self.logs / "http.ports"

    @property
    def transport_ports(self) -> Path:
        return self.logs / "transport.ports"

    @property
    def launcher_log(self) -> Path:
        return self.logs / "launcher.log"

    @property
    def server_log(self) -> Path:
        return self.logs / f"{CLUSTER_NAME}.log"

    @property
    def lockfile(self) -> Path:
        return self.root / ".lock"

    @property
    def downloads(self) -> Path:
        return self.root / "downloads"

    def data(self, version: str) -> Path:
        return self.data_parent / version

    def dist(self, version: str) -> Path:
        return self.root / f"elasticsearch-{version}"


def _layout() -> _Layout:
    return _Layout(_cache_root())


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


# --- fetch and unpack ----------------------------------------------------------------------------


def _maven_path(version: str) -> str:
    group = MAVEN_GROUP.replace(".", "/")
    return f"{group}/{MAVEN_ARTIFACT}/{version}/{MAVEN_ARTIFACT}-{version}.zip"


def _maven_local_candidates(version: str) -> list[Path]:
    """Maven's default local repository: under $HOME, or the passwd home (Java's user.home)."""
    homes = [Path.home()]
    with contextlib.suppress(KeyError):
        homes.append(Path(pwd.getpwuid(os.getuid()).pw_dir))
    paths = [home / ".m2" / "repository" / _maven_path(version) for home in homes]
    return list(dict.fromkeys(paths))


def _usable_zip(path: Path) -> bool:
    try:
        return path.is_file() and zipfile.is_zipfile(path)
    except OSError:
        return False


def _fetch_with_maven(version: str, progress: Progress) -> Path | None:
    mvn = shutil.which("mvn")
    if mvn is None:
        return None
    artifact = f"{MAVEN_GROUP}:{MAVEN_ARTIFACT}:{version}:zip"
    _say(progress, f"downloading Elasticsearch {version} from Maven Central with mvn…")
    try:
        result = subprocess.run(
            [mvn, "-q", "-B", "dependency:get", f"-Dartifact={artifact}", "-Dtransitive=false"],
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
            cwd=tempfile.gettempdir(),  # away from any pom.xml
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        logger.warning("mvn dependency:get failed: %s; trying a direct download", exc)
        return None
    if result.returncode != 0:
        logger.warning(
            "mvn dependency:get %s failed (exit %d): %s; trying a direct download",
            artifact,
            result.returncode,
            (result.stdout + result.stderr).strip()[-2000:],
        )
        return None
    for candidate in _maven_local_candidates(version):
        if _usable_zip(candidate):
            return candidate
    logger.warning(
        "mvn succeeded but no usable zip in %s; trying a direct download",
        ", ".join(map(str, _maven_local_candidates(version))),
    )
    return None


def _download(version: str, layout: _Layout, progress: Progress) -> Path:
    base = (os.environ.get("NEWSMON_MAVEN_URL") or MAVEN_CENTRAL).rstrip("/")
    url = f"{base}/{_maven_path(version)}"
    target = layout.downloads / f"elasticsearch-{version}.zip"
    layout.downloads.mkdir(parents=True, exist_ok=True)
    _say(progress, f"downloading Elasticsearch {version} from {url}…")

    expected: str | None = None
    try:
        sha = requests.get(url + ".sha1", timeout=30)
        if sha.ok:
            expected = sha.text.split()[0].strip().lower()
    except requests.RequestException as exc:
        logger.warning("could not fetch %s.sha1: %s", url, exc)
    if expected is None:
        logger.warning("no SHA-1 for %s; the download is not verified", url)

    fd, part_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".part", dir=layout.downloads)
    part = Path(part_name)
    try:
        digest = hashlib.sha1()  # noqa: S324 - Maven Central's published checksum
        with os.fdopen(fd, "wb") as out, requests.get(url, stream=True, timeout=60) as resp:
            if resp.status_code == 404:
                raise NodeError(
                    f"Elasticsearch {version} is not published at {url} "
                    f"(set NEWSMON_ES_VERSION to a published version, e.g. {DEFAULT_VERSION})"
                )
            resp.raise_for_status()
            total = int(resp.headers.get("Content-Length") or 0)
            done, next_report = 0, 0.2
            for chunk in resp.iter_content(chunk_size=1 << 20):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if total and done / total >= next_report:
                    _say(progress, f"  {done / total:.0%} of {total / 1e6:.0f} MB")
                    next_report += 0.2
        if expected is not None and digest.hexdigest() != expected:
            raise NodeError(
                f"checksum mismatch for {url}: got {digest.hexdigest()}, expected {expected}"
            )
        if not zipfile.is_zipfile(part):
            raise NodeError(f"{url} did not return a zip file")
        os.replace(part, target)
    except requests.RequestException as exc:
        raise NodeError(f"downloading {url} failed: {exc}") from exc
    finally:
        part.unlink(missing_ok=True)
    return target


def _find_or_fetch_zip(version: str, layout: _Layout, progress: Progress) -> Path:
    for candidate in (
        layout.downloads / f"elasticsearch-{version}.zip",
        *_maven_local_candidates(version),
    ):
        if _usable_zip(candidate):
            logger.info("using cached %s", candidate)
            return candidate
    return _fetch_with_maven(version, progress) or _download(version, layout, progress)


def _unpack(archive: Path, version: str, layout: _Layout, progress: Progress) -> None:
    """Unpack into a temporary directory next to the target, then rename it into place."""
    dist = layout.dist(version)
    _say(progress, f"unpacking {archive.name} into {dist}…")
    staging = Path(tempfile.mkdtemp(prefix=f".unpack-{version}-", dir=layout.root))
    try:
        with zipfile.ZipFile(archive) as zf:
            top = f"elasticsearch-{version}/"
            for info in zf.infolist():
                if not info.filename.startswith(top):
                    raise NodeError(f"{archive}: unexpected entry {info.filename!r}")
                extracted = Path(zf.extract(info, staging))
                mode = (info.external_attr >> 16) & 0o777
                # readable (and, where the zip says so, executable) by the node's user
                executable = info.is_dir() or mode & 0o111
                os.chmod(extracted, 0o755 if executable else 0o644)
        unpacked = staging / f"elasticsearch-{version}"
        os.chmod(unpacked, 0o755)  # noqa: S103 - the node's user reads it
        if not (unpacked / "bin" / "elasticsearch").is_file():
            raise NodeError(f"{archive} has no bin/elasticsearch: not an Elasticsearch zip")
        os.rename(unpacked, dist)
    except (OSError, zipfile.BadZipFile) as exc:
        raise NodeError(f"unpacking {archive} failed: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _ensure_distribution(version: str, layout: _Layout, progress: Progress) -> Path:
    dist = layout.dist(version)
    if (dist / "bin" / "elasticsearch").is_file():
        return dist
    archive = _find_or_fetch_zip(version, layout, progress)
    _unpack(archive, version, layout, progress)
    return dist


def _clean_leftovers(layout: _Layout) -> None:
    """Remove what an interrupted run left behind (we hold the lock, so nobody uses them)."""
    for pattern, where in ((".unpack-*", layout.root), ("*.part", layout.downloads)):
        if not where.is_dir():
            continue
        for leftover in where.glob(pattern):
            logger.info("removing leftover %s", leftover)
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)


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
