"""Remote numbers, appointments and no-shows per centre today, for the province view.

Read from ``booking_days``, which :mod:`region.store` maintains in each event's transaction
(issue 19: the dashboard never reads the day's events): one row per centre and local day, from
what a centre publishes — ``ticket.issued`` has ``booking`` (``"remote"``, ``"appointment"`` or
null for a walk-in), a lapsed booking's ``ticket.no_show`` has ``reason = "lapsed"`` and
``booking.checked_in`` says when a booked citizen arrived (docs/bookings.md). So the shared
snapshot reads it with every refresh (:class:`TodayBookings`: the rows of the centres changed
since the last). Nothing of the citizen is in these rows: no phone, no token. (The queries over
the day's events this replaces are kept in the tests, as the reference the maintained rows are
compared with: tests/helpers/region.py.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import psycopg.rows

from region.deltas import WAIT_KINDS

KINDS = WAIT_KINDS
FIELDS = ("remote", "appointment", "no_show", "lapsed")

READ_SQL = """
SELECT b.centre, b.issued, b.remote, b.appointment, b.no_show, b.lapsed, {waits}
FROM booking_days b {join} WHERE b.day = %(day)s AND (b.issued > 0 OR b.no_show > 0) {where}
""".replace("{waits}", ", ".join(f"b.{k}_called, b.{k}_wait_us" for k in KINDS))
"""Today's rows (centres with no ticket issued and no no-show today have none to show)."""
CHANGED = ("JOIN centres c ON c.centre = b.centre",
           "AND NOT pg_visible_in_snapshot(c.changed_xid, %(since)s::pg_snapshot)")
"""Only the centres a transaction changed since that snapshot: every transaction that writes a
centre's events, hence its ``booking_days`` row, sets ``centres.changed_xid`` (region.store)."""


def _figures(issued: int, remote: int, appointment: int, no_show: int, lapsed: int, *waits: int) -> dict[str, Any]:
    """One row's figures; a mean wait from integer microseconds in one division (correctly
    rounded, so it is the float of the exact mean, as the events query's numeric average gave)."""
    out: dict[str, Any] = {"remote": remote, "appointment": appointment, "no_show": no_show, "lapsed": lapsed,
                           "remote_share": round(remote / issued * 100, 1) if issued else None}
    for i, kind in enumerate(KINDS):
        called = waits[2 * i]
        out[f"wait_{kind}_minutes"] = round(waits[2 * i + 1] / (called * 60_000_000), 1) if called else None
    return out


def booking_figures(conn: psycopg.Connection[Any], now: datetime, zone: ZoneInfo,
                    centre: str | None = None) -> dict[str, dict[str, Any]]:
    """Per centre, today (the region's local day): tickets issued, remote numbers, appointments
    checked in, no-shows (all) and lapsed bookings among them, the remote share (%), and the mean
    wait in minutes of each kind called (``wait_walk_in_minutes``, ``wait_remote_minutes``,
    ``wait_appointment_minutes``; a booked ticket's counted from its check-in). Centres with no
    ticket issued and no no-show today are left out (:func:`put_booking_figures` gives them zeros)."""
    params: dict[str, Any] = {"day": now.astimezone(zone).date(), "centre": centre}
    where = "" if centre is None else "AND b.centre = %(centre)s"
    with conn.cursor(row_factory=psycopg.rows.tuple_row) as cur:
        return {row[0]: _figures(*row[1:]) for row in cur.execute(READ_SQL.format(join="", where=where), params)}


@dataclass
class TodayBookings:
    """:func:`booking_figures` of every centre for the shared snapshot, re-read only for the centres
    changed since the previous call (as region.overview re-reads the overview's rows): at 3,321
    centres, reading and converting every row each refresh cost about 20 ms. Everything is read
    again on the first call, after :meth:`forget` and when the local day changes. Not thread-safe:
    one owner (the dashboard's snapshot, under its lock)."""

    zone: ZoneInfo
    read: int = 0  # rows read by the last call
    _day: date | None = None
    _since: str | None = None
    _found: dict[str, dict[str, Any]] = field(default_factory=dict)

    def forget(self) -> None:
        self._since = None

    @property
    def current(self) -> dict[str, dict[str, Any]]:
        """The figures of the last read (by centre; shared, never change them)."""
        return self._found

    def figures(self, conn: psycopg.Connection[Any], now: datetime) -> dict[str, dict[str, Any]]:
        """``conn``: not in a transaction (one REPEATABLE READ transaction is opened here, so the
        snapshot kept for the next call is the one the rows were read in)."""
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with conn.transaction():
            snapshot = str(conn.execute("SELECT pg_current_snapshot()::text").fetchone()[0])
            return self.read_in(conn, now, snapshot)

    def read_in(self, conn: psycopg.Connection[Any], now: datetime, snapshot: str) -> dict[str, dict[str, Any]]:
        """The figures, read inside the caller's REPEATABLE READ transaction whose snapshot is
        ``snapshot`` (``pg_current_snapshot()`` there). The dashboard reads them in the overview's
        own transaction (region.overview ``Overview.refresh(also=...)``): the rows and their
        booking columns then come from one moment, and the next call's "changed since" is that
        same snapshot, so no write is missed or read twice between the two."""
        day = now.astimezone(self.zone).date()
        full = self._since is None or day != self._day
        join, where = ("", "") if full else CHANGED
        with conn.cursor(row_factory=psycopg.rows.tuple_row) as cur:
            rows = cur.execute(READ_SQL.format(join=join, where=where), {"day": day, "since": self._since}).fetchall()
        if full:
            self._found = {}
        for row in rows:
            self._found[row[0]] = _figures(*row[1:])
        self._day, self._since, self.read = day, snapshot, len(rows)
        return self._found


def add_booking_figures(result: dict[str, Any], conn: psycopg.Connection[Any], now: datetime, zone: ZoneInfo,
                        centre: str | None = None) -> dict[str, Any]:
    """Put :func:`booking_figures` into each centre row of :func:`region.report.figures`' result."""
    return put_booking_figures(result, booking_figures(conn, now, zone, centre))


def booking_columns(found: dict[str, dict[str, Any]], centre: str) -> dict[str, Any]:
    """One centre's figures read by :func:`booking_figures` or :class:`TodayBookings` (:data:`NONE_TODAY`
    when it has none; shared, never change it)."""
    return found.get(centre) or NONE_TODAY


def put_booking_figures(result: dict[str, Any], found: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Put figures read by :func:`booking_figures` (or :class:`TodayBookings`) into each centre row."""
    for row in result["centres"]:
        row.update(booking_columns(found, row["centre"]))
    return result


NONE_TODAY: dict[str, Any] = {**{k: 0 for k in FIELDS}, "remote_share": None, **{f"wait_{kind}_minutes": None for kind in KINDS}}
"""The figures of a centre with no ticket issued and no no-show today."""
