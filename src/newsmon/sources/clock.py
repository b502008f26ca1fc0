"""The fetcher's clock: monotonic time and a watchdog timer, replaceable in tests.

A deadline is a statement about this clock, so a test can check it exactly: with a clock that
only moves when the test moves it, "the fetch ends at the deadline" becomes "the fetch ended when
the clock passed the deadline", on any machine however busy (docs/testing.md).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["SYSTEM_CLOCK", "Clock", "SystemClock", "Timer"]


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""
        ...

    def call_later(self, delay: float, action: Callable[[], None]) -> Timer:
        """Run ``action`` (in another thread) once ``delay`` seconds of this clock have passed."""
        ...


class SystemClock:
    """``time.monotonic`` and a daemon ``threading.Timer``."""

    def monotonic(self) -> float:
        return time.monotonic()

    def call_later(self, delay: float, action: Callable[[], None]) -> Timer:
        timer = threading.Timer(delay, action)
        timer.daemon = True
        timer.start()
        return timer


SYSTEM_CLOCK = SystemClock()
