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


POLL_EVERY = 0.5
"""Seconds: a :class:`PolledSignal` asks PostgreSQL at most this often, however many viewers ask it."""


class PolledSignal:
    """A :class:`ChangeSignal` for a dashboard in its own process (region.dashboard_process): the
    version moves when the newest ``centres.changed_xid`` does, which every transaction that
    changes the overview sets (region.store). Read lazily, at most every ``POLL_EVERY`` seconds."""

    def __init__(self, dsn: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.dsn = dsn
        self.clock = clock
        self._lock = threading.Lock()
        self._conn: Any = None
        self._seen: str | None = None
        self._version = 0
        self._at = -POLL_EVERY

    def _newest(self) -> str | None:
        import psycopg

        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.dsn, autocommit=True)
        row = self._conn.execute("SELECT max(changed_xid)::text FROM centres").fetchone()
        return row[0] if row else None

    @property
    def version(self) -> int:
        with self._lock:
            now = self.clock()
            if now - self._at >= POLL_EVERY:
                self._at = now
                try:
                    newest = self._newest()
                except Exception:  # noqa: BLE001 - PostgreSQL away: no news; the next poll reconnects
                    if self._conn is not None:
                        self._conn.close()
                    return self._version
                if newest != self._seen:
                    self._seen = newest
                    self._version += 1
            return self._version
