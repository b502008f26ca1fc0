"""Extraction functions that misbehave on purpose, run by newsmon.extract.isolate's workers.

They live in a module of their own (not a test module) so a worker imports them cheaply by name.
"""

from __future__ import annotations

import ctypes
import os
import time
from dataclasses import dataclass

from newsmon.extract.page import ExtractedPage, extract_page

HANG = b"<!-- hang -->"
SEGFAULT = b"<!-- segfault -->"
MEMORY = b"<!-- memory -->"
RAISE = b"<!-- raise -->"
EXIT = b"<!-- exit -->"
EXIT_CODE = 3


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
    if HANG in body:
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
    and crashes (SIGSEGV) on those ending with one of ``crash``."""

    hang: tuple[str, ...] = ()
    crash: tuple[str, ...] = ()

    def __call__(
        self, body: bytes, url: str | None, content_type: str | None = None
    ) -> ExtractedPage | None:
        if url and url.endswith(self.hang):
            _hang()
        if url and url.endswith(self.crash):
            _segfault()
        return extract_page(body, url, content_type=content_type)
