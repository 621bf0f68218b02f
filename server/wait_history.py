"""What a centre's previous days say about the day ahead: a profile the wait estimator is given.

Why a module of its own: the estimator (server/estimates.py) is pure and sees one day of events, yet
a real centre knows things today's events cannot say before they happen: that its officers are
slower after lunch every day, how many tickets (and priority tickets) of each group arrive in each
half hour. :class:`History` is a plain value built from previous days' tickets
(:meth:`History.from_records`); the server builds it from its SQLite tickets table at start and at
each day's opening (server/service.py), the benchmark from simulated earlier days, and both hand it
to the engine (:meth:`server.engine.QueueEngine.use_history`). The estimator reads nothing else, so
an engine given the same history and the same events gives the same answers (replay stays equal).

Times are local times of day in slots of :data:`SLOT_MINUTES`; a ticket counts in the slot of its
issue (arrivals) or of its first call (call-to-release time).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import accumulate
from typing import Iterable, Mapping
from zoneinfo import ZoneInfo

SLOT_MINUTES = 30
SLOTS = 24 * 60 // SLOT_MINUTES
MAX_HANDLE_MINUTES = 240.0  # a ticket "served" for longer was left open (a forgotten finish), not a service


@dataclass(frozen=True)
class TicketRecord:
    """One ticket of an earlier day, as far as the profile looks at one (no personal data)."""

    day: date
    group: str
    priority: bool
    issued_at: datetime
    first_called_at: datetime | None = None
    finished_at: datetime | None = None  # the release (served or absent)


@dataclass(frozen=True)
class History:
    """Per group and half hour of the day, averaged over ``days`` previous days: tickets issued,
    priority tickets issued, and the call-to-release minutes of the tickets first called then."""

    days: int
    arrivals: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    priority: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    handle_sum: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    handle_count: Mapping[str, tuple[int, ...]] = field(default_factory=dict)

    @classmethod
    def from_records(cls, records: Iterable[TicketRecord], zone: ZoneInfo) -> "History":
        """The profile of the days the records come from (each day counted once, however few tickets)."""
        days: set[date] = set()
        arrivals: dict[str, list[float]] = {}
        priority: dict[str, list[float]] = {}
        handle_sum: dict[str, list[float]] = {}
        handle_count: dict[str, list[int]] = {}
        for record in records:
            days.add(record.day)
            slot = slot_of(record.issued_at, zone)
            arrivals.setdefault(record.group, [0.0] * SLOTS)[slot] += 1
            if record.priority:
                priority.setdefault(record.group, [0.0] * SLOTS)[slot] += 1
            if record.first_called_at is not None and record.finished_at is not None:
                minutes = (record.finished_at - record.first_called_at).total_seconds() / 60.0
                if 0.0 <= minutes <= MAX_HANDLE_MINUTES:
                    called = slot_of(record.first_called_at, zone)
                    handle_sum.setdefault(record.group, [0.0] * SLOTS)[called] += minutes
                    handle_count.setdefault(record.group, [0] * SLOTS)[called] += 1
        n = max(1, len(days))
        return cls(len(days),
                   {g: tuple(v / n for v in row) for g, row in arrivals.items()},
                   {g: tuple(v / n for v in row) for g, row in priority.items()},
                   {g: tuple(row) for g, row in handle_sum.items()},
                   {g: tuple(row) for g, row in handle_count.items()})

    def handle_minutes(self, group: str, first_minute: float, last_minute: float, least: int = 20) -> float | None:
        """Mean call-to-release minutes of ``group``'s tickets first called between these minutes
        of the day (local), or None with fewer than ``least`` of them."""
        total, count = self.handle_totals(group, first_minute, last_minute)
        return total / count if count >= least and count else None

    def handle_totals(self, group: str, first_minute: float, last_minute: float) -> tuple[float, int]:
        """The call-to-release minutes summed, and how many tickets, of ``group``'s tickets first
        called between these minutes of the day (local)."""
        sums, counts = self.handle_sum.get(group), self.handle_count.get(group)
        if not sums or not counts:
            return 0.0, 0
        first, last = max(0, int(first_minute // SLOT_MINUTES)), min(SLOTS, int(-(-last_minute // SLOT_MINUTES)))
        return sum(sums[first:last]), sum(counts[first:last])

    def cumulative(self, group: str) -> tuple[float, ...] | None:
        """Expected tickets of ``group`` issued from midnight until each slot boundary (SLOTS + 1 values)."""
        row = self.arrivals.get(group)
        return None if row is None else tuple(accumulate(row, initial=0.0))


def minute_of_day(at: datetime, zone: ZoneInfo) -> float:
    """Minutes since local midnight (seconds as a fraction): where ``at`` falls on a profile."""
    local = at.astimezone(zone)
    return local.hour * 60 + local.minute + local.second / 60.0


def slot_of(at: datetime, zone: ZoneInfo) -> int:
    return min(SLOTS - 1, int(minute_of_day(at, zone) // SLOT_MINUTES))


def expected_between(cumulative: tuple[float, ...], first_minute: float, last_minute: float) -> float:
    """Expected tickets between two minutes of the day on a cumulative profile (:meth:`History.cumulative`),
    spread evenly inside each slot."""
    return _at(cumulative, last_minute) - _at(cumulative, first_minute)


def _at(cumulative: tuple[float, ...], minute: float) -> float:
    if minute <= 0:
        return 0.0
    if minute >= SLOTS * SLOT_MINUTES:
        return cumulative[-1]
    slot = int(minute // SLOT_MINUTES)
    inside = (minute - slot * SLOT_MINUTES) / SLOT_MINUTES
    return cumulative[slot] + inside * (cumulative[slot + 1] - cumulative[slot])


__all__ = ["History", "TicketRecord", "SLOTS", "SLOT_MINUTES", "expected_between", "minute_of_day", "slot_of"]
