"""A clock that moves only when a test moves it (``newsmon.sources.clock.Clock``).

Deadline tests state what the code guarantees on its own clock — "the fetch ended when the clock
passed the deadline, after N bytes" — instead of wall-clock margins that a busy machine breaks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Timer:
    due: float
    action: Callable[[], None]
    cancelled: bool = False
    fired: bool = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """Starts at 0.0; :meth:`advance` moves it and runs, in the caller's thread, every timer it
    passes. ``delays`` lists the delay of every timer armed, ``fired`` is set once one has run."""

    def __init__(self) -> None:
        self.now = 0.0
        self.delays: list[float] = []
        self.fired = threading.Event()
        self._timers: list[_Timer] = []
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self.now

    def call_later(self, delay: float, action: Callable[[], None]) -> _Timer:
        with self._lock:
            timer = _Timer(self.now + delay, action)
            self.delays.append(delay)
            self._timers.append(timer)
            return timer

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds
            due = [t for t in self._timers if t.due <= self.now and not (t.cancelled or t.fired)]
            for timer in due:
                timer.fired = True
        for timer in due:
            timer.action()
            self.fired.set()
