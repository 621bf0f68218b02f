"""What a batch of new events adds to each maintained row, summed in Python before it is written.

Why: the intake used to run one statement per event that upserted five maintained rows (issue 19),
so a batch of 500 events wrote the same hot rows (a centre's group today, its 5-minute bucket, its
hour) hundreds of times, each a new row version, plus a 90th-percentile recomputation per row.
Summed first, a batch writes each touched row once (:mod:`region.store` sends one statement per
table with the rows as arrays), whatever the number of events behind it.

Pure: no database, no clock. :func:`region.store.rollup_of` says what one event adds; here the
additions are grouped by the row they land in. The booking figures (``booking_days``) are kept the
same way: counts per centre and local day, and per ticket the times its first wait is read from
(:class:`TicketWait`), folded per ticket here and merged into ``ticket_waits`` by one statement.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Callable

SUM_KEYS = ("issued", "called", "wait", "wait", "served", "no_show", "cancelled", "ratings", "rating")
"""rollup_of's keys in the order of region.store.SUMS (wait twice: its sum and its maximum)."""
RECENT_SECONDS = 300
"""Width of a ``recent`` bucket; buckets start on multiples of it since the epoch, as
``date_bin('5 minutes', at, '2000-01-01')`` does (2000-01-01 is a multiple of 300 s)."""


def hist_text(hist: list[int]) -> str:
    """A histogram as a PostgreSQL array literal ('{}' when empty), cast to integer[] row by row."""
    return "{" + ",".join(map(str, hist)) + "}"


@dataclass
class Sums:
    """The additive figures of one rollup row, and its wait histogram's new counts."""

    values: list[float] = field(default_factory=lambda: [0, 0, 0.0, 0.0, 0, 0, 0, 0, 0])
    hist: list[int] = field(default_factory=list)

    def add(self, roll: dict[str, Any]) -> None:
        v = self.values
        v[0] += roll["issued"]
        v[1] += roll["called"]
        v[2] += roll["wait"]
        v[3] = max(v[3], roll["wait"])
        v[4] += roll["served"]
        v[5] += roll["no_show"]
        v[6] += roll["cancelled"]
        v[7] += roll["ratings"]
        v[8] += roll["rating"]
        bucket = roll["bucket"]
        if bucket is not None:
            if len(self.hist) <= bucket:
                self.hist.extend([0] * (bucket + 1 - len(self.hist)))
            self.hist[bucket] += 1


@dataclass
class TicketNow:
    """A ticket's latest event (``tickets_now``): the same rule as the SQL upsert, so folding a
    batch's events of one ticket here and then upserting gives what one upsert per event gave."""

    grp: str | None
    issued_at: datetime | None
    last_at: datetime
    last_kind: str

    def merge(self, new: "TicketNow") -> None:
        wins = new.last_at > self.last_at or (new.last_at == self.last_at and self.last_kind == "ticket.issued")
        self.grp = (new.grp if new.grp is not None else self.grp) if wins else (self.grp if self.grp is not None else new.grp)
        if wins:
            self.last_kind = new.last_kind
        if new.issued_at is not None and (self.issued_at is None or new.issued_at < self.issued_at):
            self.issued_at = new.issued_at
        self.last_at = max(self.last_at, new.last_at)


BOOKING_COUNTS = ("issued", "remote", "appointment", "no_show", "lapsed")
"""What a centre's day adds up in ``booking_days`` besides the waits, in this order."""
WAIT_KINDS = ("walk_in", "remote", "appointment")
"""The kinds of ticket whose first-call waits ``booking_days`` keeps (a ticket.issued's ``booking``,
null for a walk-in)."""
WAIT_EVENTS = ("ticket.issued", "booking.checked_in", "ticket.called")


def ticket_kind(data: dict[str, Any]) -> str:
    """walk_in, remote, appointment (or another word, counted nowhere) from a ticket.issued's data:
    what ``coalesce(data->>'booking', 'walk_in')`` gives in SQL, for the values a centre sends."""
    booking = data.get("booking")
    return "walk_in" if booking is None else booking if isinstance(booking, str) else "other"


@dataclass
class TicketWait:
    """What a ticket's first wait is read from (``ticket_waits``): its kind and issue (the earliest
    ticket.issued), its first check-in and its first call, and its latest such event. Every field
    only ever moves one way (earliest, latest), so events merged in any order and any grouping give
    the same row: the SQL upsert applies the same rule to what a batch folded here."""

    kind: str | None
    issued_at: datetime | None
    checked_at: datetime | None
    called_at: datetime | None
    last_at: datetime

    def merge(self, new: "TicketWait") -> None:
        if new.issued_at is not None and (self.issued_at is None or new.issued_at < self.issued_at):
            self.kind, self.issued_at = new.kind, new.issued_at
        self.checked_at = _earliest(self.checked_at, new.checked_at)
        self.called_at = _earliest(self.called_at, new.called_at)
        self.last_at = max(self.last_at, new.last_at)


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


@dataclass
class Deltas:
    """Everything a batch of new events adds, keyed by the maintained row it lands in."""

    hourly: dict[tuple[str, str, datetime], Sums] = field(default_factory=dict)
    daily: dict[tuple[str, str, date], Sums] = field(default_factory=dict)
    centre_day: dict[tuple[str, date], Sums] = field(default_factory=dict)
    recent: dict[tuple[str, datetime], list[int]] = field(default_factory=dict)
    tickets: dict[tuple[str, str], TicketNow] = field(default_factory=dict)
    latest: dict[str, datetime] = field(default_factory=dict)
    ticket_centres: set[str] = field(default_factory=set)
    booking_days: dict[tuple[str, date], list[int]] = field(default_factory=dict)
    waits: dict[tuple[str, str], TicketWait] = field(default_factory=dict)

    def add(self, centre: str, kind: str, at: datetime, grp: str | None, ticket_id: str | None,
            roll: dict[str, Any], local_date: Callable[[datetime], date]) -> None:
        """One new event: ``roll`` is :func:`region.store.rollup_of` of it."""
        if kind.startswith("ticket."):
            self.ticket_centres.add(centre)
            if ticket_id is not None:
                now = TicketNow(grp, at if kind == "ticket.issued" else None, at, kind)
                known = self.tickets.get((centre, ticket_id))
                if known is None:
                    self.tickets[(centre, ticket_id)] = now
                else:
                    known.merge(now)
        if not roll["rolls"]:
            return
        assert grp is not None  # rolls only with a group
        utc = at.astimezone(timezone.utc)
        day = local_date(at)
        self.hourly.setdefault((centre, grp, utc.replace(minute=0, second=0, microsecond=0)), Sums()).add(roll)
        self.daily.setdefault((centre, grp, day), Sums()).add(roll)
        self.centre_day.setdefault((centre, day), Sums()).add(roll)
        if roll["issued"] + roll["called"] + roll["ratings"]:
            start = int(utc.timestamp()) // RECENT_SECONDS * RECENT_SECONDS
            bucket = self.recent.setdefault((centre, datetime.fromtimestamp(start, timezone.utc)), [0, 0, 0, 0])
            bucket[0] += roll["issued"]
            bucket[1] += roll["called"]
            bucket[2] += roll["ratings"]
            bucket[3] += roll["rating"]

    def add_booking(self, centre: str, kind: str, at: datetime, ticket_id: str | None, data: dict[str, Any],
                    local_date: Callable[[datetime], date]) -> None:
        """One new event's part of ``booking_days`` (region.bookings): a ticket.issued counts, and
        counts as remote or appointment by its ``booking``; a ticket.no_show counts, and as lapsed
        with ``reason = "lapsed"``; the issue, check-in and calls of a ticket give its wait."""
        if kind == "ticket.issued" or kind == "ticket.no_show":
            row = self.booking_days.setdefault((centre, local_date(at)), [0, 0, 0, 0, 0])
            if kind == "ticket.issued":
                row[0] += 1
                row[1] += data.get("booking") == "remote"
                row[2] += data.get("booking") == "appointment"
            else:
                row[3] += 1
                row[4] += data.get("reason") == "lapsed"
        if ticket_id is None or kind not in WAIT_EVENTS:
            return
        issued = kind == "ticket.issued"
        now = TicketWait(ticket_kind(data) if issued else None, at if issued else None,
                         at if kind == "booking.checked_in" else None, at if kind == "ticket.called" else None, at)
        known = self.waits.get((centre, ticket_id))
        if known is None:
            self.waits[(centre, ticket_id)] = now
        else:
            known.merge(now)

    def seen(self, centre: str, at: datetime) -> None:
        """Any event of the batch, new or repeated: the centre was heard."""
        known = self.latest.get(centre)
        if known is None or at > known:
            self.latest[centre] = at


def columns(rows: dict[tuple[Any, ...], Sums], with_hist: bool) -> list[list[Any]]:
    """The rows as one list per column (keys first, then the sums, then the histogram as text),
    for ``unnest`` of one array per column."""
    keys = list(rows)
    out: list[list[Any]] = [list(col) for col in zip(*keys)] if keys else []
    sums = [rows[k].values for k in keys]
    out += [[s[i] for s in sums] for i in range(len(SUM_KEYS))]
    if with_hist:
        out.append([hist_text(rows[k].hist) for k in keys])
    return out
