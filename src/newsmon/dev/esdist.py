"""The local Elasticsearch node's cache root and its distribution: fetched and unpacked once.

Elastic publishes its test distribution on Maven Central
(``org.elasticsearch.distribution.integ-test-zip:elasticsearch:<version>:zip``). It is fetched
once (``mvn dependency:get`` when Maven is installed, else a direct HTTPS download from
``$NEWSMON_MAVEN_URL`` or Maven Central, checked against the published SHA-1) and unpacked once
into the cache root, outside any checkout. newsmon.dev.esnode runs the node from it.

Cache layout (root = ``$NEWSMON_CACHE_DIR``, else ``/var/cache/newsmon`` as root, else
``~/.cache/newsmon``)::

    <root>/downloads/elasticsearch-<ver>.zip   only when downloaded without Maven
    <root>/elasticsearch-<ver>/                the unpacked distribution, reused
    <root>/node/config/                        ES_PATH_CONF (copied from the distribution once)
    <root>/node/data/<ver>/                    path.data
    <root>/node/logs/                          path.logs, http.ports, launcher.log
    <root>/node/tmp/                           ES_TMPDIR
    <root>/node/elasticsearch.pid              written by Elasticsearch itself (``-p``)
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

__all__ = ["CLUSTER_NAME", "DEFAULT_VERSION", "NodeError", "Progress"]

logger = logging.getLogger(__name__)

DEFAULT_VERSION = "9.5.4"
CLUSTER_NAME = "newsmon"
MAVEN_CENTRAL = "https://repo.maven.apache.org/maven2"
MAVEN_GROUP = "org.elasticsearch.distribution.integ-test-zip"
MAVEN_ARTIFACT = "elasticsearch"

_VERSION_RE = re.compile(r"^\d+\.\d+\.\d+(?:-[A-Za-z0-9.]+)?$")

Progress = Callable[[str], None]


class NodeError(RuntimeError):
    """The local Elasticsearch node could not be fetched, started, reached or stopped."""


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


def _say(progress: Progress, message: str) -> None:
    logger.info("%s", message)
    progress(message)


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
