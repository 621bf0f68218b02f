"""Remote numbers, appointments and no-shows per centre today, for the province view.

Kept apart from the maintained tables of :mod:`region.store` (whose write path is tuned
elsewhere): one query over today's stored events, which carry what a centre publishes —
``ticket.issued`` has ``booking`` (``"remote"``, ``"appointment"`` or null for a walk-in) and a
lapsed booking's ``ticket.no_show`` has ``reason = "lapsed"`` (docs/bookings.md). The events
table is partitioned by time and indexed on (centre, at), so this reads one day's rows of two
kinds. Nothing of the citizen is in these events: no phone, no token. The province's shared
snapshot reads it every ``region.dashboard.BOOKINGS_AGE`` seconds, not with every refresh.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import psycopg.rows

BOOKINGS_SQL = """
SELECT centre,
       count(*) FILTER (WHERE kind = 'ticket.issued') AS issued,
       count(*) FILTER (WHERE kind = 'ticket.issued' AND data->>'booking' = 'remote') AS remote,
       count(*) FILTER (WHERE kind = 'ticket.issued' AND data->>'booking' = 'appointment') AS appointment,
       count(*) FILTER (WHERE kind = 'ticket.no_show') AS no_show,
       count(*) FILTER (WHERE kind = 'ticket.no_show' AND data->>'reason' = 'lapsed') AS lapsed
FROM events
WHERE at >= %(start)s AND at < %(end)s AND kind IN ('ticket.issued', 'ticket.no_show') {one}
GROUP BY centre
"""
# The mean wait of each kind of ticket called today: a booked ticket's from its check-in (a remote
# number's ticket.issued is when it was taken at home), a walk-in's from its issue; first calls only.
WAITS_SQL = """
WITH issued AS (
    SELECT centre, ticket_id, coalesce(data->>'booking', 'walk_in') AS kind, at FROM events
    WHERE at >= %(start)s AND at < %(end)s AND kind = 'ticket.issued' AND ticket_id IS NOT NULL {one}
), checked AS (
    SELECT centre, ticket_id, min(at) AS at FROM events
    WHERE at >= %(start)s AND at < %(end)s AND kind = 'booking.checked_in' AND ticket_id IS NOT NULL {one}
    GROUP BY centre, ticket_id
), called AS (
    SELECT centre, ticket_id, min(at) AS at FROM events
    WHERE at >= %(start)s AND at < %(end)s AND kind = 'ticket.called' AND ticket_id IS NOT NULL {one}
    GROUP BY centre, ticket_id
)
SELECT i.centre, i.kind, avg(extract(epoch FROM c.at - greatest(i.at, coalesce(k.at, i.at)))) / 60
FROM issued i JOIN called c USING (centre, ticket_id) LEFT JOIN checked k USING (centre, ticket_id)
GROUP BY i.centre, i.kind
"""
KINDS = ("walk_in", "remote", "appointment")
FIELDS = ("remote", "appointment", "no_show", "lapsed")


def booking_figures(conn: psycopg.Connection[Any], now: datetime, zone: ZoneInfo,
                    centre: str | None = None) -> dict[str, dict[str, Any]]:
    """Per centre, today (the region's local day): tickets issued, remote numbers, appointments
    checked in, no-shows (all) and lapsed bookings among them, the remote share (%), and the mean
    wait in minutes of each kind called (``wait_walk_in_minutes``, ``wait_remote_minutes``,
    ``wait_appointment_minutes``; a booked ticket's counted from its check-in)."""
    start = datetime.combine(now.astimezone(zone).date(), time(0), zone)
    params: dict[str, Any] = {"start": start, "end": start + timedelta(days=1)}
    one = ""
    if centre is not None:
        one, params["centre"] = "AND centre = %(centre)s", centre
    out: dict[str, dict[str, Any]] = {}
    with conn.cursor(row_factory=psycopg.rows.tuple_row) as cur:
        for centre_id, issued, remote, appointment, no_show, lapsed in cur.execute(BOOKINGS_SQL.format(one=one), params):
            out[centre_id] = {"remote": remote, "appointment": appointment, "no_show": no_show, "lapsed": lapsed,
                              "remote_share": round(remote / issued * 100, 1) if issued else None,
                              **{f"wait_{kind}_minutes": None for kind in KINDS}}
        for centre_id, kind, minutes in cur.execute(WAITS_SQL.format(one=one), params):
            if centre_id in out and kind in KINDS and minutes is not None:
                out[centre_id][f"wait_{kind}_minutes"] = round(float(minutes), 1)
    return out


def add_booking_figures(result: dict[str, Any], conn: psycopg.Connection[Any], now: datetime, zone: ZoneInfo,
                        centre: str | None = None) -> dict[str, Any]:
    """Put :func:`booking_figures` into each centre row of :func:`region.report.figures`' result."""
    return put_booking_figures(result, booking_figures(conn, now, zone, centre))


NONE_TODAY: dict[str, Any] = {**{k: 0 for k in FIELDS}, "remote_share": None, **{f"wait_{kind}_minutes": None for kind in KINDS}}
"""A centre's booking figures when it has none today (shared: never change it)."""


def booking_columns(found: dict[str, dict[str, Any]], centre: str) -> dict[str, Any]:
    """One centre's figures read by :func:`booking_figures` (:data:`NONE_TODAY` when it has none)."""
    return found.get(centre) or NONE_TODAY


def put_booking_figures(result: dict[str, Any], found: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Put figures read by :func:`booking_figures` (perhaps a while ago) into each centre row."""
    for row in result["centres"]:
        row.update(booking_columns(found, row["centre"]))
    return result
