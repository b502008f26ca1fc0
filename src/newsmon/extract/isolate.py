"""Page extraction in worker processes with a time and a memory limit per page.

lxml and trafilatura parse whatever a site serves; a pathological page can make them hang,
crash the interpreter (a segfault in C) or allocate without bound. newsmon runs unattended, so
pages are extracted in long-lived worker processes (docs/isolation.md):

* each worker limits its own address space (``RLIMIT_AS``) when it starts;
* the parent waits at most ``timeout`` seconds for a page, then kills the worker (``SIGKILL``);
* a worker that dies (a signal, an exit, a ``MemoryError``) is replaced by a fresh one;
* a worker is retired after ``pages_per_worker`` pages, which bounds slow leaks.

The page gets an :class:`Extraction` with its :class:`ExtractionOutcome` instead of an exception,
and the other pages go on. :class:`ExtractionPool` is thread-safe: the pipeline's download
threads call :meth:`ExtractionPool.extract` concurrently; each call holds one worker while it
runs. Workers are forked from multiprocessing's ``forkserver`` (a single-threaded process that
has imported newsmon.extract.page and warmed its caches once, see newsmon.extract.preload, so a
new worker costs a fork, not an interpreter start) and die with their parent: they stop when their
pipe closes, and on Linux the kernel kills them when the fork server, which exits with newsmon, goes
away (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import resource
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any, Protocol

from ..config import ExtractSettings
from .page import ExtractedPage, extract_page

__all__ = [
    "ExtractFunction",
    "Extraction",
    "ExtractionOutcome",
    "ExtractionPool",
    "Extractor",
    "InProcessExtractor",
    "ReplyWait",
    "open_extractor",
    "wait_for_reply",
]

log = logging.getLogger(__name__)

# What a worker runs for each page: ``extract_page`` unless a test injects another function.
# It must be importable by name (a module-level function) to reach the worker process.
ExtractFunction = Callable[..., ExtractedPage | None]

# How the pool waits for a worker's reply to a page: True once there is one (or the pipe
# closed), False when ``timeout`` seconds passed first; ``pid`` is the worker's. Tests inject one
# that knows when a page hangs, so no outcome depends on how fast a loaded machine is.
ReplyWait = Callable[[Connection, float, int | None], bool]


def wait_for_reply(conn: Connection, timeout: float, pid: int | None) -> bool:
    """The real wait: the pipe polled for at most ``timeout`` seconds."""
    return conn.poll(timeout)


_MEMORY_EXIT = 70  # a worker's exit code after a MemoryError
_STOP_GRACE = 2.0  # seconds a worker gets to exit after its pipe closes, then SIGKILL
_PR_SET_PDEATHSIG = 1
_MAX_RECORDS = 50  # log records of one page sent back to the parent
_FORMATTER = logging.Formatter()


class ExtractionOutcome(StrEnum):
    """How the extraction of one page ended."""

    OK = "ok"  # article text extracted
    EMPTY = "empty"  # the page was read, no article text in it
    TIMEOUT = "timeout"  # no result within the time limit: the worker was killed
    CRASHED = "crashed"  # the worker died (a signal or an exit code)
    MEMORY = "memory"  # the worker ran out of its memory limit
    ERROR = "error"  # the extraction raised an exception


FAILED = frozenset(
    {
        ExtractionOutcome.TIMEOUT,
        ExtractionOutcome.CRASHED,
        ExtractionOutcome.MEMORY,
        ExtractionOutcome.ERROR,
    }
)


@dataclass(frozen=True)
class Extraction:
    """The result of extracting one page."""

    outcome: ExtractionOutcome
    page: ExtractedPage | None = None
    reason: str | None = None  # what went wrong, for failures: "SIGSEGV", "no result after 30s"

    @property
    def failed(self) -> bool:
        """The extraction did not finish (as opposed to finding no text)."""
        return self.outcome in FAILED


class Extractor(Protocol):
    """Extracts pages; what the pipeline and ``newsmon extract`` use."""

    def extract(
        self, body: bytes | str, url: str | None, content_type: str | None = None
    ) -> Extraction: ...

    def close(self) -> None: ...


def _result(page: ExtractedPage | None) -> Extraction:
    return Extraction(ExtractionOutcome.OK if page is not None else ExtractionOutcome.EMPTY, page)


class InProcessExtractor:
    """Extraction in the calling thread, without limits (``NEWSMON_EXTRACT_ISOLATION=0``): for
    debugging, and where processes cannot be started."""

    def __init__(self, target: ExtractFunction = extract_page) -> None:
        self.target = target

    def extract(
        self, body: bytes | str, url: str | None, content_type: str | None = None
    ) -> Extraction:
        try:
            return _result(self.target(body, url, content_type=content_type))
        except MemoryError:
            return Extraction(ExtractionOutcome.MEMORY, reason="MemoryError")
        except Exception as exc:
            log.warning("extraction failed: %s", url, exc_info=True)
            return Extraction(ExtractionOutcome.ERROR, reason=f"{type(exc).__name__}: {exc}")

    def close(self) -> None:
        pass

    def __enter__(self) -> InProcessExtractor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# --- the worker process ---------------------------------------------------------------------


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent exits (the parent may be killed
    without a chance to clean up); elsewhere the closed pipe stops the worker."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        log.debug("prctl(PR_SET_PDEATHSIG) unavailable")


def _release_fork_server() -> None:
    """Close the fork server's "alive" pipe, which every process it forks inherits: the server
    exits when the last holder does, so with it held here a hung worker would keep the server
    (its parent) alive after newsmon died, and PR_SET_PDEATHSIG would never fire. Closed, the
    server exits with newsmon and the kernel kills the workers, hung or not."""
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    fd = getattr(server, "_forkserver_alive_fd", None)
    if isinstance(fd, int):
        with contextlib.suppress(OSError):
            os.close(fd)
        server._forkserver_alive_fd = None  # type: ignore[union-attr]


class _PageLog(logging.Handler):
    """A worker's log handler: keeps the records of the page in hand for the parent, which logs
    them with its own configuration, and notices a ``MemoryError`` that a library caught and
    only logged (trafilatura's HTML parser does) instead of passing it on."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[dict[str, Any]] = []
        self.memory_error = False

    def emit(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else None
        args = record.args if isinstance(record.args, tuple) else ()
        if isinstance(exc, MemoryError) or any(isinstance(a, MemoryError) for a in args):
            self.memory_error = True
        if len(self.records) >= _MAX_RECORDS:
            return
        try:
            exc_text = _FORMATTER.formatException(record.exc_info) if record.exc_info else None
            self.records.append(
                {
                    "name": record.name,
                    "levelno": record.levelno,
                    "levelname": record.levelname,
                    "msg": record.getMessage(),
                    "exc_text": exc_text,
                    "pathname": record.pathname,
                    "lineno": record.lineno,
                    "funcName": record.funcName,
                }
            )
        except Exception:
            self.handleError(record)

    def take(self) -> list[dict[str, Any]]:
        records, self.records, self.memory_error = self.records, [], False
        return records


def _extract_one(
    target: ExtractFunction,
    body: bytes,
    url: str | None,
    content_type: str | None,
    page_log: _PageLog,
) -> tuple[str, Any]:
    try:
        page = target(body, url, content_type=content_type)
    except MemoryError:
        raise
    except Exception as exc:
        return "error", f"{type(exc).__name__}: {exc}"
    return ("memory", None) if page_log.memory_error else ("page", page)


def _worker_main(
    conn: Connection, target: ExtractFunction, memory_bytes: int, log_level: int
) -> None:
    """Extract pages received on ``conn`` until it closes."""
    _die_with_parent()
    _release_fork_server()
    if os.getppid() == 1:  # orphaned before prctl took effect
        os._exit(0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    page_log = _PageLog()
    root = logging.getLogger()
    root.handlers[:] = [page_log]
    root.setLevel(log_level)
    if memory_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    while True:
        try:
            url, content_type = conn.recv()
            body = conn.recv_bytes()
        except (EOFError, OSError):
            return
        except MemoryError:  # the page does not even fit to be received: out of memory too
            os._exit(_MEMORY_EXIT)
        try:
            reply = _extract_one(target, body, url, content_type, page_log)
            del body
            if reply[0] != "memory":
                conn.send((*reply, page_log.take()))
                continue
        except MemoryError:
            pass
        # Out of memory: the page's allocations are gone with the unwound frames, so the report
        # fits; then make way for a fresh worker (what C code left behind is unknown).
        try:
            conn.send(("memory", None, page_log.take()))
        finally:
            os._exit(_MEMORY_EXIT)


# --- the pool ---------------------------------------------------------------------------------


def _context() -> Any:
    """multiprocessing's forkserver (spawn where there is none); never plain fork: the
    pipeline's threads may hold locks a forked child would inherit locked."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["newsmon.extract.preload"])
        return ctx
    return multiprocessing.get_context("spawn")


def _allow_workers_in_daemon() -> None:
    """Let a process that multiprocessing takes for a daemon start the workers.

    A task of Airflow's CeleryExecutor runs in a process forked from a Celery pool process:
    a daemon, and billiard's process object, which billiard installs as multiprocessing's
    current process. Under it ``Process.start`` refuses children ("daemonic processes are not
    allowed to have children") and the fork server cannot pickle billiard's authentication key.
    The daemon flag guards against orphans; these workers cannot be orphaned (they stop when
    their pipe closes and die with the fork server): the flag is lifted, the key made
    multiprocessing's own.
    """
    from multiprocessing import process

    config = getattr(multiprocessing.current_process(), "_config", None)
    if not isinstance(config, dict):
        return
    if config.get("daemon"):
        log.debug("running in a daemonic process: allowing extraction workers")
        config["daemon"] = False
    key_type = getattr(process, "AuthenticationString", bytes)
    key = config.get("authkey")
    if isinstance(key, bytes) and type(key) is not key_type:
        config["authkey"] = key_type(key)


_START_LOCK = threading.Lock()


@contextlib.contextmanager
def _main_script_hidden() -> Iterator[None]:
    """Workers run functions importable by name, never the parent's ``__main__``; but a process
    started by forkserver or spawn re-runs the parent's main script when it has one. Under
    Airflow's Celery worker that is the ``airflow`` command, which sets Airflow up again in the
    worker (and fails there). Its path is hidden while a worker starts."""
    main = sys.modules.get("__main__")
    with _START_LOCK:
        path = getattr(main, "__file__", None)
        if path is not None:
            del main.__file__  # type: ignore[union-attr]
        try:
            yield
        finally:
            if path is not None:
                main.__file__ = path  # type: ignore[union-attr]


class _Worker:
    def __init__(self, ctx: Any, target: ExtractFunction, memory_bytes: int) -> None:
        self.conn, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(
            target=_worker_main,
            args=(child, target, memory_bytes, logging.getLogger().getEffectiveLevel()),
            name="newsmon-extract",
            daemon=True,
        )
        self.pages = 0
        with _main_script_hidden():
            self.process.start()
        self.pid: int | None = self.process.pid
        child.close()

    def stop(self, grace: float = _STOP_GRACE) -> None:
        """Close the pipe (the worker exits), SIGKILL it if it does not, and reap it."""
        self.conn.close()
        self.process.join(grace)
        if self.process.exitcode is None:
            self.process.kill()
            self.process.join()
        self.process.close()

    def kill(self) -> None:
        self.conn.close()
        self.process.kill()
        self.process.join()
        self.process.close()

    def death(self) -> Extraction:
        """The outcome of a page whose worker closed its pipe without a result."""
        self.conn.close()
        self.process.join(_STOP_GRACE)
        code = self.process.exitcode
        if code is None:  # closed its pipe but lives on: stuck
            self.process.kill()
            self.process.join()
            code = self.process.exitcode
        self.process.close()
        if code == _MEMORY_EXIT:
            return Extraction(ExtractionOutcome.MEMORY, reason="MemoryError")
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return Extraction(ExtractionOutcome.CRASHED, reason=name)
        return Extraction(ExtractionOutcome.CRASHED, reason=f"exit code {code}")


def _log_records(records: list[dict[str, Any]]) -> None:
    """Log what a worker logged, as if it had been logged here."""
    for fields in records:
        logger = logging.getLogger(fields["name"])
        if logger.isEnabledFor(fields["levelno"]):
            logger.handle(logging.makeLogRecord(fields))


class ExtractionPool:
    """Long-lived extraction worker processes, each with a memory limit, a per-page timeout
    and a page budget. Use as a context manager (or call :meth:`close`). ``wait`` decides when
    a page has taken too long (:func:`wait_for_reply`: after ``settings.timeout`` seconds)."""

    def __init__(
        self,
        settings: ExtractSettings | None = None,
        target: ExtractFunction = extract_page,
        *,
        wait: ReplyWait = wait_for_reply,
    ) -> None:
        self.settings = settings or ExtractSettings()
        self.target = target
        self._wait = wait
        self._ctx = _context()
        _allow_workers_in_daemon()
        self._memory_bytes = self.settings.memory_mb * 1024 * 1024
        self._slots = threading.BoundedSemaphore(self.settings.workers)
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._closed = False

    def extract(
        self, body: bytes | str, url: str | None, content_type: str | None = None
    ) -> Extraction:
        """Extract one page in a worker; waits for a free worker first. Never raises for what
        the page does to the worker."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        if isinstance(body, str) and content_type is None:
            content_type = "text/html; charset=utf-8"
        with self._slots:
            worker = self._take()
            result, alive = self._run(worker, data, url, content_type)
            self._give_back(worker, alive)
        if result.failed:
            log.warning("extraction %s (%s): %s", result.outcome.value, result.reason, url)
        return result

    def _take(self) -> _Worker:
        dead: list[_Worker] = []
        try:
            return self._take_alive(dead)
        finally:
            for worker in dead:
                worker.stop()

    def _take_alive(self, dead: list[_Worker]) -> _Worker:
        with self._lock:
            if self._closed:
                raise RuntimeError("the extraction pool is closed")
            while self._idle:
                worker = self._idle.pop()
                if worker.process.is_alive():
                    self._busy.add(worker)
                    return worker
                dead.append(worker)  # killed from outside while idle: not this page's fault
        worker = _Worker(self._ctx, self.target, self._memory_bytes)
        with self._lock:
            self._busy.add(worker)
            if self._closed:  # closed while it started
                self._busy.discard(worker)
                worker.stop()
                raise RuntimeError("the extraction pool is closed")
        return worker

    def _run(
        self, worker: _Worker, body: bytes, url: str | None, content_type: str | None
    ) -> tuple[Extraction, bool]:
        started = time.monotonic()
        try:
            worker.conn.send((url, content_type))
            worker.conn.send_bytes(body)
            left = self.settings.timeout - (time.monotonic() - started)
            if not self._wait(worker.conn, max(left, 0.0), worker.pid):
                worker.kill()
                reason = f"no result after {self.settings.timeout:g}s"
                return Extraction(ExtractionOutcome.TIMEOUT, reason=reason), False
            kind, value, records = worker.conn.recv()
        except (EOFError, OSError):
            return worker.death(), False
        _log_records(records)
        worker.pages += 1
        if kind == "page":
            return _result(value), True
        if kind == "memory":
            worker.stop()
            return Extraction(ExtractionOutcome.MEMORY, reason="MemoryError"), False
        return Extraction(ExtractionOutcome.ERROR, reason=str(value)), True

    def _give_back(self, worker: _Worker, alive: bool) -> None:
        retire = not alive or worker.pages >= self.settings.pages_per_worker
        with self._lock:
            self._busy.discard(worker)
            if not retire and not self._closed:
                self._idle.append(worker)
                return
        if alive:
            worker.stop()

    def worker_pids(self) -> list[int]:
        """The process ids of the workers running now."""
        with self._lock:
            workers = [*self._idle, *self._busy]
        return [pid for pid in (w.pid for w in workers) if pid is not None]

    def close(self) -> None:
        """Stop every worker. Idempotent. A page still in progress ends as ``crashed``
        (SIGKILL); its thread reaps the worker."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            busy = [w.pid for w in self._busy]
        for worker in idle:
            worker.stop()
        for pid in busy:
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def __enter__(self) -> ExtractionPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_extractor(
    settings: ExtractSettings, target: ExtractFunction = extract_page
) -> ExtractionPool | InProcessExtractor:
    """The extractor ``settings`` ask for: a process pool, or in-process when isolation is off."""
    if settings.isolation:
        return ExtractionPool(settings, target)
    return InProcessExtractor(target)
