"""Extraction functions that misbehave on purpose, run by newsmon.extract.isolate's workers.

They live in a module of their own (not a test module) so a worker imports them cheaply by name.
"""

from __future__ import annotations

import ctypes
import os
import re
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from newsmon.extract.page import ExtractedPage, extract_page

HANG = b"<!-- hang -->"
SEGFAULT = b"<!-- segfault -->"
MEMORY = b"<!-- memory -->"
RAISE = b"<!-- raise -->"
EXIT = b"<!-- exit -->"
EXIT_CODE = 3
_SAYS_HUNG = re.compile(rb"<!-- hang (\S+) -->")
NEVER = 600.0  # seconds: only a broken pool waits this long (the test then fails)


def hang_marker(flags: Path) -> bytes:
    """A page that hangs after saying so: the worker writes a file named by its pid into
    ``flags`` first (what :class:`UntilHung` waits for)."""
    return b"<!-- hang " + str(flags).encode() + b" -->"


def _say_hung(flags: bytes) -> None:
    folder = Path(os.fsdecode(flags))
    (folder / f"{os.getpid()}.tmp").write_text("hung")
    (folder / f"{os.getpid()}.tmp").rename(folder / str(os.getpid()))


class UntilHung:
    """An :class:`~newsmon.extract.isolate.ExtractionPool`'s ``wait`` for tests: a reply,
    however long a loaded machine takes for it, and a timeout as soon as the worker's page says
    it hangs (:func:`hang_marker`, :class:`FaultyPages` with ``flags``) — never a clock."""

    def __init__(self, flags: Path) -> None:
        self.flags = flags

    @property
    def marker(self) -> bytes:
        return hang_marker(self.flags)

    def __call__(self, conn: Connection, timeout: float, pid: int | None) -> bool:
        waited = 0.0
        while not conn.poll(0.02):
            flag = self.flags / str(pid)
            if flag.exists():
                flag.unlink()  # a later worker may get the same pid
                return False
            waited += 0.02
            if waited > NEVER:
                return False
        return True


def _hang() -> None:
    while True:
        time.sleep(60)


def _segfault() -> None:
    ctypes.string_at(0)  # reads address 0: SIGSEGV


def _exhaust_memory() -> None:
    blocks = []
    while True:  # until the worker's address-space limit stops it
        blocks.append(bytearray(32 * 1024 * 1024))


def pid_page(pid: int) -> ExtractedPage:
    return ExtractedPage(
        title="worker",
        text=f"pid {pid}",
        authors=(),
        published_at=None,
        language=None,
        site_name=None,
        description=None,
        image=None,
        page_canonical_url=None,
    )


def by_marker(body: bytes, url: str | None, content_type: str | None = None) -> ExtractedPage:
    """Misbehave as the marker in ``body`` says; else a page naming the worker's pid."""
    says = _SAYS_HUNG.search(body)
    if says:
        _say_hung(says.group(1))
    if HANG in body or says:
        _hang()
    if SEGFAULT in body:
        _segfault()
    if MEMORY in body:
        _exhaust_memory()
    if RAISE in body:
        raise ValueError(f"cannot handle {url}")
    if EXIT in body:
        os._exit(EXIT_CODE)
    return pid_page(os.getpid())


def worker_pid(extraction_text: str) -> int:
    """The pid a :func:`by_marker` page names."""
    return int(extraction_text.removeprefix("pid "))


@dataclass(frozen=True)
class FaultyPages:
    """newsmon's extraction, except that it hangs on pages whose URL ends with one of ``hang``
    (saying so in ``flags``, see :class:`UntilHung`) and crashes (SIGSEGV) on those ending with
    one of ``crash``."""

    hang: tuple[str, ...] = ()
    crash: tuple[str, ...] = ()
    flags: str | None = None

    def __call__(
        self, body: bytes, url: str | None, content_type: str | None = None
    ) -> ExtractedPage | None:
        if url and url.endswith(self.hang):
            if self.flags:
                _say_hung(os.fsencode(self.flags))
            _hang()
        if url and url.endswith(self.crash):
            _segfault()
        return extract_page(body, url, content_type=content_type)
