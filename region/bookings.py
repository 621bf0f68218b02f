"""Remote numbers, appointments and no-shows per centre today, for the province view.

Read from ``booking_days``, which :mod:`region.store` maintains in each event's transaction
(issue 19: the dashboard never reads the day's events): one row per centre and local day, from
what a centre publishes — ``ticket.issued`` has ``booking`` (``"remote"``, ``"appointment"`` or
null for a walk-in), a lapsed booking's ``ticket.no_show`` has ``reason = "lapsed"`` and
``booking.checked_in`` says when a booked citizen arrived (docs/bookings.md). So the shared
snapshot reads it with every refresh, a row per centre. Nothing of the citizen is in these rows:
no phone, no token. (The queries over the day's events this replaces are kept in the tests, as the
reference the maintained rows are compared with: tests/helpers/region.py.)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import psycopg.rows

from region.deltas import WAIT_KINDS

KINDS = WAIT_KINDS
FIELDS = ("remote", "appointment", "no_show", "lapsed")

# The mean wait in minutes as the events query gave it: numeric, exact, then one float.
BOOKINGS_SQL = """
SELECT centre, issued, remote, appointment, no_show, lapsed, {waits}
FROM booking_days WHERE day = %(day)s AND (issued > 0 OR no_show > 0) {one}
""".replace("{waits}", ", ".join(f"{k}_wait_us::numeric / nullif({k}_called, 0) / 60000000" for k in KINDS))


def booking_figures(conn: psycopg.Connection[Any], now: datetime, zone: ZoneInfo,
                    centre: str | None = None) -> dict[str, dict[str, Any]]:
    """Per centre, today (the region's local day): tickets issued, remote numbers, appointments
    checked in, no-shows (all) and lapsed bookings among them, the remote share (%), and the mean
    wait in minutes of each kind called (``wait_walk_in_minutes``, ``wait_remote_minutes``,
    ``wait_appointment_minutes``; a booked ticket's counted from its check-in). Centres with no
    ticket issued and no no-show today are left out (:func:`put_booking_figures` gives them zeros)."""
    params: dict[str, Any] = {"day": now.astimezone(zone).date()}
    one = ""
    if centre is not None:
        one, params["centre"] = "AND centre = %(centre)s", centre
    out: dict[str, dict[str, Any]] = {}
    with conn.cursor(row_factory=psycopg.rows.tuple_row) as cur:
        for centre_id, issued, remote, appointment, no_show, lapsed, *waits in cur.execute(
                BOOKINGS_SQL.format(one=one), params):
            out[centre_id] = {"remote": remote, "appointment": appointment, "no_show": no_show, "lapsed": lapsed,
                              "remote_share": round(remote / issued * 100, 1) if issued else None,
                              **{f"wait_{kind}_minutes": None if minutes is None else round(float(minutes), 1)
                                 for kind, minutes in zip(KINDS, waits)}}
    return out


def add_booking_figures(result: dict[str, Any], conn: psycopg.Connection[Any], now: datetime, zone: ZoneInfo,
                        centre: str | None = None) -> dict[str, Any]:
    """Put :func:`booking_figures` into each centre row of :func:`region.report.figures`' result."""
    return put_booking_figures(result, booking_figures(conn, now, zone, centre))


def put_booking_figures(result: dict[str, Any], found: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Put figures read by :func:`booking_figures` into each centre row."""
    for row in result["centres"]:
        row.update(found.get(row["centre"]) or {**{k: 0 for k in FIELDS}, "remote_share": None,
                                                 **{f"wait_{kind}_minutes": None for kind in KINDS}})
    return result
