"""Change notification and the one dashboard snapshot every viewer shares.

Why a version number and not a ``threading.Event``: with one event, the first viewer's stream
cleared it and every other viewer waited for the 20 s heartbeat (issue 19). Here the intake only
counts commits (:meth:`ChangeSignal.set`); each viewer remembers the version it last told its page
about, so every viewer sees every change, and no viewer can hide one from another.

Why one snapshot: each open page used to re-run the province query after every commit. Now the
figures are computed at most every ``max_age`` seconds (and at least every ``idle_age`` seconds,
because waits grow while nothing happens), by whichever request comes first; the others get the
same result. The slow part (30 days, group names) is refreshed every ``slow_age`` seconds.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")


class ChangeSignal:
    """Set by the intake after each commit that stored something; read by any number of viewers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version = 0

    def set(self) -> None:
        with self._lock:
            self._version += 1

    @property
    def version(self) -> int:
        return self._version


class Cached(Generic[T]):
    """A value computed by ``compute`` and kept ``max_age`` seconds (longer, up to ``idle_age``,
    while ``signal`` has not moved). One computation at a time: concurrent callers wait for it and
    share its result instead of each running the query."""

    def __init__(self, compute: Callable[[], T], max_age: float, idle_age: float | None = None,
                 signal: ChangeSignal | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.compute = compute
        self.max_age = max_age
        self.idle_age = max_age if idle_age is None or signal is None else idle_age
        self.signal = signal
        self.clock = clock
        self._lock = threading.Lock()
        self._value: T | None = None
        self._at = 0.0
        self._version = -1
        self.computations = 0

    def _fresh(self, now: float) -> bool:
        if self._value is None:
            return False
        age = now - self._at
        if age < self.max_age:
            return True
        unchanged = self.signal is not None and self.signal.version == self._version
        return unchanged and age < self.idle_age

    def get(self) -> T:
        with self._lock:
            if not self._fresh(self.clock()):
                version = self.signal.version if self.signal is not None else 0
                self._value = self.compute()
                self._at, self._version = self.clock(), version
                self.computations += 1
            assert self._value is not None
            return self._value

    def forget(self) -> None:
        with self._lock:
            self._value = None


def version_of(signal: Any) -> int:
    """The signal's version (0 without a signal: nothing ever changes)."""
    return int(signal.version) if signal is not None else 0
