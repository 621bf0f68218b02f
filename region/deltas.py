"""What a batch of new events adds to each maintained row, summed in Python before it is written.

Why: the intake used to run one statement per event that upserted five maintained rows (issue 19),
so a batch of 500 events wrote the same hot rows (a centre's group today, its 5-minute bucket, its
hour) hundreds of times, each a new row version, plus a 90th-percentile recomputation per row.
Summed first, a batch writes each touched row once (:mod:`region.store` sends one statement per
table with the rows as arrays), whatever the number of events behind it.

Pure: no database, no clock. :func:`region.store.rollup_of` says what one event adds; here the
additions are grouped by the row they land in.
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
