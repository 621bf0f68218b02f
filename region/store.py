"""The region's PostgreSQL: every event once, partitioned by month, with hourly rollups.

Exactly once: ``event_ids`` holds every event id ever stored (PRIMARY KEY). Each event is written
by one statement that inserts its id ``ON CONFLICT DO NOTHING`` and, only from the row that insert
returned, the event itself and its hourly rollup increment; a duplicate (a QoS 1 redelivery, the
same event by MQTT and by HTTP catch-up, a replay after kill -9) therefore changes nothing. A batch
is one transaction; the MQTT messages of a batch are acknowledged only after it commits.

``events`` is range-partitioned by event time, one partition a month (UTC), created ahead as needed
(:meth:`Store.ensure_partitions`). ``hourly`` keeps per centre, procedure group and hour what the
dashboard adds up (issued, first calls and their waits, served, no-shows, ratings), so a year of
history is read without touching the events.

Maintain, don't recompute (issue 19): the same statement that stores a new event also updates what
the dashboard shows, so the dashboard reads a few thousand rows whatever the size of the day or of
the history:

- ``daily``: per centre, group and *local* day (the region's time zone) the same sums as ``hourly``
  plus a one-minute histogram of first-call waits (``wait_hist[b + 1]`` counts waits in
  [b, b + 1) minutes), from which the day's 90th percentile is read;
- ``recent``: per centre and 5-minute bucket, tickets issued, first calls and ratings: the growth
  warning's window and the last hour's satisfaction;
- ``booking_days``: per centre and local day, tickets issued, remote numbers, appointments,
  no-shows, lapsed bookings, and per kind (walk-in, remote, appointment) the first calls and the
  sum of their waits (a booked ticket's from its check-in), read by region.bookings; the waits
  follow from ``ticket_waits``, each ticket's issue, first check-in and first call, merged in any
  arrival order; a batch adds the difference between a ticket's wait before and after its events;
- ``tickets_now``: per ticket its latest event (by event time, so late catch-up events sort
  right) and when it was issued; ``now_groups``: per centre and group how many wait now and since
  when, recomputed from ``tickets_now`` for the centres a transaction touched, in that transaction.

Every transaction that changes what the overview shows of a centre (its ``centres`` row, its
``daily_centre`` row, its ``now_groups``) also sets ``centres.changed_xid`` to its own transaction
id, so the dashboard re-reads only the centres changed since its last snapshot (region.overview).

Everything follows only from the row the ledger insert returned, so the maintained tables are
exactly as idempotent as the events. Writes take one advisory lock (the writer and the catch-up
thread may otherwise recompute the same centre's ``now_groups`` from different snapshots).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable

from zoneinfo import ZoneInfo

import psycopg

from region.deltas import BOOKING_COUNTS, WAIT_KINDS, Deltas, columns
from region.validate import Availability, RegionEvent

log = logging.getLogger("luot.region.store")

SUM_COLUMNS = """issued integer NOT NULL DEFAULT 0,
    called integer NOT NULL DEFAULT 0,
    wait_sum double precision NOT NULL DEFAULT 0,
    wait_max double precision NOT NULL DEFAULT 0,
    served integer NOT NULL DEFAULT 0,
    no_show integer NOT NULL DEFAULT 0,
    cancelled integer NOT NULL DEFAULT 0,
    ratings integer NOT NULL DEFAULT 0,
    rating_sum integer NOT NULL DEFAULT 0,"""
"""The additive figures of a rollup row, the same in ``hourly``, ``daily`` and ``daily_centre``."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS centres (
    centre text PRIMARY KEY,
    name text NOT NULL,
    ward text NOT NULL DEFAULT '',
    high_water_seq bigint NOT NULL DEFAULT 0,
    last_event_at timestamptz,
    last_heard_at timestamptz,
    server_online boolean,
    server_at timestamptz,
    bridge_online boolean,
    bridge_at timestamptz,
    catch_up_at timestamptz,
    catch_up_error text,
    devices_offline integer NOT NULL DEFAULT 0,
    devices_known integer NOT NULL DEFAULT 0,
    changed_xid xid8 NOT NULL DEFAULT pg_current_xact_id()
);
CREATE TABLE IF NOT EXISTS groups (
    centre text NOT NULL,
    code text NOT NULL,
    name text NOT NULL,
    wait_alert_minutes integer NOT NULL DEFAULT 30,
    PRIMARY KEY (centre, code)
);
CREATE TABLE IF NOT EXISTS devices (
    centre text NOT NULL,
    device text NOT NULL,
    online boolean NOT NULL,
    at timestamptz NOT NULL,
    PRIMARY KEY (centre, device)
);
CREATE TABLE IF NOT EXISTS event_ids (
    id text PRIMARY KEY,
    centre text NOT NULL,
    at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id text NOT NULL,
    centre text NOT NULL,
    kind text NOT NULL,
    at timestamptz NOT NULL,
    grp text,
    ticket_id text,
    seq bigint,
    via text NOT NULL,
    data jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (id, at)
) PARTITION BY RANGE (at);
CREATE INDEX IF NOT EXISTS events_centre_at ON events (centre, at);
CREATE TABLE IF NOT EXISTS hourly (
    centre text NOT NULL,
    grp text NOT NULL,
    hour timestamptz NOT NULL,
    @SUMS@
    PRIMARY KEY (centre, grp, hour)
);
CREATE INDEX IF NOT EXISTS hourly_hour ON hourly (hour);
CREATE TABLE IF NOT EXISTS daily (
    centre text NOT NULL,
    grp text NOT NULL,
    day date NOT NULL,
    @SUMS@
    wait_hist integer[] NOT NULL DEFAULT '{}',
    wait_p90 double precision,
    PRIMARY KEY (day, centre, grp)
);
CREATE TABLE IF NOT EXISTS daily_centre (
    centre text NOT NULL,
    day date NOT NULL,
    @SUMS@
    wait_hist integer[] NOT NULL DEFAULT '{}',
    wait_p90 double precision,
    PRIMARY KEY (day, centre)
);
CREATE TABLE IF NOT EXISTS recent (
    centre text NOT NULL,
    bucket timestamptz NOT NULL,
    issued integer NOT NULL DEFAULT 0,
    called integer NOT NULL DEFAULT 0,
    ratings integer NOT NULL DEFAULT 0,
    rating_sum integer NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket, centre)
);
CREATE TABLE IF NOT EXISTS tickets_now (
    centre text NOT NULL,
    ticket_id text NOT NULL,
    grp text,
    issued_at timestamptz,
    last_at timestamptz NOT NULL,
    last_kind text NOT NULL,
    PRIMARY KEY (centre, ticket_id)
);
CREATE INDEX IF NOT EXISTS tickets_now_waiting ON tickets_now (centre, grp, issued_at)
    WHERE last_kind IN ('ticket.issued', 'ticket.transferred');
CREATE INDEX IF NOT EXISTS tickets_now_last ON tickets_now (last_at);
CREATE TABLE IF NOT EXISTS now_groups (
    centre text NOT NULL,
    grp text NOT NULL,
    day date NOT NULL,
    waiting integer NOT NULL,
    oldest timestamptz,
    PRIMARY KEY (centre, grp)
);
-- issue 18: each centre's dossiers as Decision 766 counts them: received on ``day`` (NULL until the
-- dossier.attached event arrives: events come in any order), promised for ``appointment``, returned
-- on ``returned_on``, and whether its ticket was rated below 'bình thường'
CREATE TABLE IF NOT EXISTS dossiers (
    centre text NOT NULL,
    code text NOT NULL,
    day date,
    appointment date,
    returned_on date,
    dissatisfied boolean NOT NULL DEFAULT false,
    PRIMARY KEY (centre, code)
);
CREATE INDEX IF NOT EXISTS dossiers_day ON dossiers (day, centre);
-- schema 7: the ticket a dossier was handed in with, and the tickets rated below 'bình thường': a
-- dossier attached after its ticket was rated is dissatisfied too (the rating's event has no dossier)
ALTER TABLE dossiers ADD COLUMN IF NOT EXISTS ticket_id text;
CREATE INDEX IF NOT EXISTS dossiers_ticket ON dossiers (centre, ticket_id);
CREATE TABLE IF NOT EXISTS low_rated (
    centre text NOT NULL,
    ticket_id text NOT NULL,
    PRIMARY KEY (centre, ticket_id)
);
-- issue 19: each centre's day of remote numbers, appointments, no-shows and lapsed bookings, and the
-- first-call waits of each kind (a booked ticket's from its check-in), in integer microseconds so
-- that what one batch adds and another takes back is exact (region.bookings reads it)
CREATE TABLE IF NOT EXISTS booking_days (
    centre text NOT NULL,
    day date NOT NULL,
    issued integer NOT NULL DEFAULT 0,
    remote integer NOT NULL DEFAULT 0,
    appointment integer NOT NULL DEFAULT 0,
    no_show integer NOT NULL DEFAULT 0,
    lapsed integer NOT NULL DEFAULT 0,
    walk_in_called integer NOT NULL DEFAULT 0,
    walk_in_wait_us bigint NOT NULL DEFAULT 0,
    remote_called integer NOT NULL DEFAULT 0,
    remote_wait_us bigint NOT NULL DEFAULT 0,
    appointment_called integer NOT NULL DEFAULT 0,
    appointment_wait_us bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (day, centre)
);
-- per ticket what its first wait is read from: kind and time of its (earliest) ticket.issued, its
-- first booking.checked_in and first ticket.called, whatever order they arrive in
CREATE TABLE IF NOT EXISTS ticket_waits (
    centre text NOT NULL,
    ticket_id text NOT NULL,
    kind text,
    issued_at timestamptz,
    checked_at timestamptz,
    called_at timestamptz,
    last_at timestamptz NOT NULL,
    PRIMARY KEY (centre, ticket_id)
);
CREATE INDEX IF NOT EXISTS ticket_waits_last ON ticket_waits (last_at);
-- a ticket's first wait in microseconds, counted on the local day it was issued when it was first
-- called that day: from its issue, or from its check-in that day if later (NULL: no wait yet)
CREATE OR REPLACE FUNCTION luot_first_wait_us(issued_at timestamptz, checked_at timestamptz,
                                              called_at timestamptz, zone text) RETURNS bigint
LANGUAGE sql STABLE AS $fn$
    SELECT CASE WHEN (called_at AT TIME ZONE zone)::date = (issued_at AT TIME ZONE zone)::date
        THEN ((extract(epoch FROM called_at) - extract(epoch FROM greatest(issued_at, CASE
              WHEN (checked_at AT TIME ZONE zone)::date = (issued_at AT TIME ZONE zone)::date THEN checked_at END)))
              * 1000000)::bigint
    END
$fn$;
CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL);
-- h with one more wait in minute bucket b (h[b + 1]); NULL b: h unchanged. Dense, lower bound 1.
CREATE OR REPLACE FUNCTION luot_hist_add(h integer[], b integer) RETURNS integer[]
LANGUAGE sql IMMUTABLE AS $fn$
    SELECT CASE
        WHEN b IS NULL THEN h
        WHEN coalesce(array_length(h, 1), 0) >= b + 1 THEN h[1:b] || (h[b + 1] + 1) || h[b + 2:]
        ELSE h || array_fill(0, ARRAY[b - coalesce(array_length(h, 1), 0)]) || 1
    END
$fn$;
-- two histograms added bucket by bucket (a batch's new waits into a day's histogram)
CREATE OR REPLACE FUNCTION luot_hist_sum(a integer[], b integer[]) RETURNS integer[]
LANGUAGE sql IMMUTABLE AS $fn$
    SELECT CASE
        WHEN coalesce(cardinality(b), 0) = 0 THEN a
        WHEN coalesce(cardinality(a), 0) = 0 THEN b
        ELSE (SELECT array_agg(coalesce(a[i], 0) + coalesce(b[i], 0) ORDER BY i)
              FROM generate_series(1, greatest(cardinality(a), cardinality(b))) AS i)
    END
$fn$;
-- the q-quantile in minutes of a histogram of one-minute buckets (server.summaries.percentile_from_histogram)
CREATE OR REPLACE FUNCTION luot_hist_quantile(h integer[], q double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE AS $fn$
    SELECT (i - 1) + (rank - (cum - n)) / n
    FROM (SELECT i, n, sum(n) OVER (ORDER BY i) AS cum, q * sum(n) OVER () AS rank
          FROM unnest(h) WITH ORDINALITY AS u(n, i)) s
    WHERE n > 0 AND cum >= rank ORDER BY i LIMIT 1
$fn$;
CREATE TABLE IF NOT EXISTS rejected (
    at timestamptz NOT NULL DEFAULT now(),
    source text NOT NULL,
    reason text NOT NULL
);
"""
SCHEMA = SCHEMA.replace("@SUMS@", SUM_COLUMNS)

# A batch is written set-wise: the id ledger says which events are new (one statement), the new
# events go in by COPY, and what they add to each maintained row is summed in Python first, so each
# rollup row a batch touches is written once (one statement per table, its rows as arrays) instead
# of once per event. The 90th percentile of a touched histogram is recomputed in the same upsert.
# The arrays go in binary (%b): as text, psycopg quotes every element with a regular expression,
# which was about 30 % of the writer's CPU (bench/bench_region.py part C: writer_cpu_s).
NEW_IDS = """
INSERT INTO event_ids (id, centre, at) SELECT * FROM unnest(%b::text[], %b::text[], %b::timestamptz[])
ON CONFLICT (id) DO NOTHING RETURNING id
"""
COPY_EVENTS = "COPY events (id, centre, kind, at, grp, ticket_id, seq, via, data) FROM STDIN"

SUMS = ("issued", "called", "wait_sum", "wait_max", "served", "no_show", "cancelled", "ratings", "rating_sum")
_ADD_SUMS = """issued = {t}.issued + EXCLUDED.issued, called = {t}.called + EXCLUDED.called,
        wait_sum = {t}.wait_sum + EXCLUDED.wait_sum, wait_max = greatest({t}.wait_max, EXCLUDED.wait_max),
        served = {t}.served + EXCLUDED.served, no_show = {t}.no_show + EXCLUDED.no_show,
        cancelled = {t}.cancelled + EXCLUDED.cancelled, ratings = {t}.ratings + EXCLUDED.ratings,
        rating_sum = {t}.rating_sum + EXCLUDED.rating_sum"""
_SUM_ARRAYS = ("%b::int[], %b::int[], %b::float8[], %b::float8[], %b::int[], %b::int[], %b::int[], "
               "%b::int[], %b::int[]")
_ADD_HIST = """wait_hist = luot_hist_sum(d.wait_hist, EXCLUDED.wait_hist),
        wait_p90 = CASE WHEN cardinality(EXCLUDED.wait_hist) > 0
                        THEN luot_hist_quantile(luot_hist_sum(d.wait_hist, EXCLUDED.wait_hist), 0.9) ELSE d.wait_p90 END"""

UPSERT_HOURLY = f"""
INSERT INTO hourly AS h (centre, grp, hour, {", ".join(SUMS)})
SELECT * FROM unnest(%b::text[], %b::text[], %b::timestamptz[], {_SUM_ARRAYS})
ON CONFLICT (centre, grp, hour) DO UPDATE SET {_ADD_SUMS.format(t="h")}
"""
UPSERT_DAILY = f"""
INSERT INTO daily AS d (centre, grp, day, {", ".join(SUMS)}, wait_hist, wait_p90)
SELECT centre, grp, day, {", ".join(SUMS)}, hist::int[], luot_hist_quantile(hist::int[], 0.9)
FROM unnest(%b::text[], %b::text[], %b::date[], {_SUM_ARRAYS}, %b::text[]) AS u(centre, grp, day, {", ".join(SUMS)}, hist)
ON CONFLICT (day, centre, grp) DO UPDATE SET {_ADD_SUMS.format(t="d")},
        {_ADD_HIST}
"""
UPSERT_DAILY_CENTRE = f"""
INSERT INTO daily_centre AS d (centre, day, {", ".join(SUMS)}, wait_hist, wait_p90)
SELECT centre, day, {", ".join(SUMS)}, hist::int[], luot_hist_quantile(hist::int[], 0.9)
FROM unnest(%b::text[], %b::date[], {_SUM_ARRAYS}, %b::text[]) AS u(centre, day, {", ".join(SUMS)}, hist)
ON CONFLICT (day, centre) DO UPDATE SET {_ADD_SUMS.format(t="d")},
        {_ADD_HIST}
"""
UPSERT_RECENT = """
INSERT INTO recent AS r (centre, bucket, issued, called, ratings, rating_sum)
SELECT * FROM unnest(%b::text[], %b::timestamptz[], %b::int[], %b::int[], %b::int[], %b::int[])
ON CONFLICT (bucket, centre) DO UPDATE SET
    issued = r.issued + EXCLUDED.issued, called = r.called + EXCLUDED.called,
    ratings = r.ratings + EXCLUDED.ratings, rating_sum = r.rating_sum + EXCLUDED.rating_sum
"""
# the ticket's latest event by event time; at equal times a later kind beats 'ticket.issued'
# (TicketNow.merge is the same rule, applied first to the batch's own events of one ticket)
UPSERT_TICKETS = """
INSERT INTO tickets_now AS t (centre, ticket_id, grp, issued_at, last_at, last_kind)
SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::timestamptz[], %b::timestamptz[], %b::text[])
ON CONFLICT (centre, ticket_id) DO UPDATE SET
    issued_at = least(t.issued_at, EXCLUDED.issued_at),
    grp = CASE WHEN EXCLUDED.last_at > t.last_at OR (EXCLUDED.last_at = t.last_at AND t.last_kind = 'ticket.issued')
               THEN coalesce(EXCLUDED.grp, t.grp) ELSE coalesce(t.grp, EXCLUDED.grp) END,
    last_kind = CASE WHEN EXCLUDED.last_at > t.last_at OR (EXCLUDED.last_at = t.last_at AND t.last_kind = 'ticket.issued')
                     THEN EXCLUDED.last_kind ELSE t.last_kind END,
    last_at = greatest(t.last_at, EXCLUDED.last_at)
"""
# What a batch adds to ``booking_days``, in one statement: its counts per centre and day, and for
# each ticket it touched the first wait of the merged ``ticket_waits`` row less the wait of the row
# as it was (both read in the statement's one snapshot), so a check-in or an issue arriving after
# the call moves the wait it changes, and a repeat (or a recall) moves nothing. ``old`` is
# materialized so that the wait is computed for the batch's tickets only (inlined, the filter on it
# was pushed into a scan of the whole table).
_WAIT_SUMS = ", ".join(f"{k}_called, {k}_wait_us" for k in WAIT_KINDS)
UPSERT_BOOKINGS = f"""
WITH b AS (
    SELECT * FROM unnest(%(w_centre)b::text[], %(w_ticket)b::text[], %(w_kind)b::text[], %(w_issued)b::timestamptz[],
                         %(w_checked)b::timestamptz[], %(w_called)b::timestamptz[], %(w_last)b::timestamptz[])
        AS b(centre, ticket_id, kind, issued_at, checked_at, called_at, last_at)
), old AS MATERIALIZED (
    SELECT w.centre, w.kind, w.issued_at, w.checked_at, w.called_at FROM ticket_waits w JOIN b USING (centre, ticket_id)
), new AS (
    INSERT INTO ticket_waits AS w (centre, ticket_id, kind, issued_at, checked_at, called_at, last_at)
    SELECT * FROM b
    ON CONFLICT (centre, ticket_id) DO UPDATE SET
        kind = CASE WHEN w.issued_at IS NULL OR EXCLUDED.issued_at < w.issued_at THEN EXCLUDED.kind ELSE w.kind END,
        issued_at = least(w.issued_at, EXCLUDED.issued_at), checked_at = least(w.checked_at, EXCLUDED.checked_at),
        called_at = least(w.called_at, EXCLUDED.called_at), last_at = greatest(w.last_at, EXCLUDED.last_at)
    RETURNING w.centre, w.kind, w.issued_at, w.checked_at, w.called_at
), moved AS (
    SELECT centre, kind, issued_at, luot_first_wait_us(issued_at, checked_at, called_at, %(zone)s) AS us, 1 AS n FROM new
    UNION ALL
    SELECT centre, kind, issued_at, luot_first_wait_us(issued_at, checked_at, called_at, %(zone)s), -1 FROM old
), added AS (
    SELECT centre, day, issued, remote, appointment, no_show, lapsed, {", ".join(["0"] * 2 * len(WAIT_KINDS))}
    FROM unnest(%(c_centre)b::text[], %(c_day)b::date[], %(c_issued)b::int[], %(c_remote)b::int[],
                %(c_appointment)b::int[], %(c_no_show)b::int[], %(c_lapsed)b::int[])
        AS c(centre, day, issued, remote, appointment, no_show, lapsed)
    UNION ALL
    SELECT centre, (issued_at AT TIME ZONE %(zone)s)::date, 0, 0, 0, 0, 0,
        {", ".join(f"coalesce(sum(n) FILTER (WHERE kind = '{k}'), 0), coalesce(sum(n * us) FILTER (WHERE kind = '{k}'), 0)"
                   for k in WAIT_KINDS)}
    FROM moved WHERE us IS NOT NULL GROUP BY 1, 2
), summed AS (
    SELECT centre, day, sum(issued) AS issued, sum(remote) AS remote, sum(appointment) AS appointment,
           sum(no_show) AS no_show, sum(lapsed) AS lapsed,
           {", ".join(f"sum({k}_called) AS {k}_called, sum({k}_wait_us) AS {k}_wait_us" for k in WAIT_KINDS)}
    FROM added AS a(centre, day, issued, remote, appointment, no_show, lapsed, {_WAIT_SUMS})
    GROUP BY centre, day
)
INSERT INTO booking_days AS d (centre, day, issued, remote, appointment, no_show, lapsed, {_WAIT_SUMS})
SELECT * FROM summed
WHERE (issued, remote, appointment, no_show, lapsed, {_WAIT_SUMS}) <> ({", ".join(["0"] * (5 + 2 * len(WAIT_KINDS)))})
ON CONFLICT (day, centre) DO UPDATE SET
    {", ".join(f"{c} = d.{c} + EXCLUDED.{c}" for c in (*BOOKING_COUNTS, *_WAIT_SUMS.split(", ")))}
"""
LAST_EVENTS = """
UPDATE centres c SET last_event_at = greatest(c.last_event_at, u.at), last_heard_at = now(),
    changed_xid = pg_current_xact_id()
FROM unnest(%b::text[], %b::timestamptz[]) AS u(centre, at) WHERE c.centre = u.centre
"""


UPSERT_DOSSIER = """
INSERT INTO dossiers AS x (centre, code, day, appointment, returned_on, ticket_id, dissatisfied)
VALUES (%(centre)s, %(dossier)s, %(dossier_day)s::date, %(appointment)s::date, %(returned_on)s::date, %(ticket_id)s,
        %(dissatisfied)s OR EXISTS (SELECT 1 FROM low_rated l WHERE l.centre = %(centre)s AND l.ticket_id = %(ticket_id)s))
ON CONFLICT (centre, code) DO UPDATE SET
    day = coalesce(x.day, EXCLUDED.day), appointment = coalesce(EXCLUDED.appointment, x.appointment),
    returned_on = least(x.returned_on, EXCLUDED.returned_on), ticket_id = coalesce(x.ticket_id, EXCLUDED.ticket_id),
    dissatisfied = x.dissatisfied OR EXCLUDED.dissatisfied
"""
"""What one event says of a dossier, merged into its row in any arrival order (new events and the
schema-4 and -7 migrations, which replay the stored ones). Run after :data:`MARK_LOW_RATED` for
the same events: a dossier whose ticket was rated low is dissatisfied whichever came first."""

MARK_LOW_RATED = """
WITH kept AS (INSERT INTO low_rated (centre, ticket_id) VALUES (%(centre)s, %(ticket_id)s) ON CONFLICT DO NOTHING)
UPDATE dossiers SET dissatisfied = true WHERE centre = %(centre)s AND ticket_id = %(ticket_id)s AND NOT dissatisfied
"""
"""A ticket rated below 'bình thường': kept, and the dossiers already attached to it marked."""

WAITING_KINDS = ("ticket.issued", "ticket.transferred")
HIST_MAX_MINUTE = 599
"""Waits of ten hours or more share the last histogram bucket (a centre is open about nine)."""

# The "now" of the centres a transaction touched, from their tickets: who waits, since when. The
# day is the region's local day; a centre's rows of groups nobody waits in any more go to zero.
# Rows whose figures did not change are not written (no new row version for every batch).
NOW_GROUPS = """
WITH fresh AS (
    SELECT centre, coalesce(grp, '') AS grp, count(*) AS waiting, min(issued_at) AS oldest
    FROM tickets_now
    WHERE centre = ANY(%(centres)s) AND last_kind IN ('ticket.issued', 'ticket.transferred')
      AND issued_at >= %(day_start)s
    GROUP BY centre, coalesce(grp, '')
), cleared AS (
    UPDATE now_groups n SET waiting = 0, oldest = NULL, day = %(day)s
    WHERE n.centre = ANY(%(centres)s) AND n.waiting <> 0
      AND NOT EXISTS (SELECT 1 FROM fresh f WHERE f.centre = n.centre AND f.grp = n.grp)
)
INSERT INTO now_groups AS n (centre, grp, day, waiting, oldest)
SELECT centre, grp, %(day)s, waiting, oldest FROM fresh
ON CONFLICT (centre, grp) DO UPDATE SET day = EXCLUDED.day, waiting = EXCLUDED.waiting, oldest = EXCLUDED.oldest
WHERE (n.day, n.waiting, n.oldest) IS DISTINCT FROM (EXCLUDED.day, EXCLUDED.waiting, EXCLUDED.oldest)
"""

WRITE_LOCK = 80210003
"""Advisory lock taken by every transaction that writes events (see the module docstring)."""


def rollup_of(event: RegionEvent) -> dict[str, Any]:
    """What one event adds to its hour's rollup row (all zero: no rollup)."""
    data = event.data
    first_call = event.kind == "ticket.called" and (data.get("first_call") or data.get("call") == 1)
    wait = 0.0
    if first_call:
        try:
            wait = max(0.0, float(data.get("wait_seconds") or 0.0))
        except (TypeError, ValueError):
            wait = 0.0
    rating = 0
    if event.kind == "feedback.recorded":
        try:
            rating = int(data.get("rating") or 0)
        except (TypeError, ValueError):
            rating = 0
        rating = rating if 1 <= rating <= 4 else 0
    row = {
        "issued": int(event.kind == "ticket.issued"), "called": int(bool(first_call)), "wait": wait,
        "served": int(event.kind == "ticket.finished"), "no_show": int(event.kind == "ticket.no_show"),
        "cancelled": int(event.kind in ("ticket.cancelled", "ticket.expired")),
        "ratings": int(rating > 0), "rating": rating,
        "bucket": min(int(wait // 60), HIST_MAX_MINUTE) if first_call else None,
    }
    row["rolls"] = bool(data.get("group")) and any(row[k] for k in ("issued", "called", "served", "no_show", "cancelled", "ratings"))
    return row


def dossier_of(event: RegionEvent, zone: ZoneInfo) -> dict[str, Any]:
    """What one event says of a dossier for the ``dossiers`` table (``dossier`` None: nothing).
    A dossier.attached gives the day it was received and the appointment; a dossier.status
    'returned' the day it was returned; a feedback.recorded below 'bình thường' (``low``,
    :func:`low_rating`) on a ticket with a dossier marks it dissatisfied. A rating given before its
    ticket's dossier was attached names no dossier: ``low`` and ``ticket_id`` let the store mark
    the dossier when it comes (:data:`MARK_LOW_RATED`, table ``low_rated``)."""
    data, day = event.data, event.at.astimezone(zone).date()
    ticket = data.get("ticket_id")
    out: dict[str, Any] = {"dossier": None, "dossier_day": None, "appointment": None, "returned_on": None,
                           "dissatisfied": False, "ticket_id": ticket if isinstance(ticket, str) and ticket else None}
    code = data.get("code") if event.kind.startswith("dossier.") else data.get("dossier")
    if event.kind == "feedback.recorded":
        out["low"] = low_rating(data)
    if not isinstance(code, str) or not code or len(code) > 40:
        return out
    if event.kind == "dossier.attached":
        appointment = data.get("appointment")
        try:
            appointment = date.fromisoformat(appointment) if isinstance(appointment, str) else None
        except ValueError:
            appointment = None
        out.update(dossier=code, dossier_day=day, appointment=appointment)
    elif event.kind == "dossier.status" and data.get("status") == "returned":
        out.update(dossier=code, returned_on=day)
    elif out.get("low"):
        out.update(dossier=code, dissatisfied=True)
    return out


def low_rating(data: dict[str, Any]) -> bool:
    """A feedback.recorded below 'bình thường': five levels 1-2, or the four faces' 1."""
    level = data.get("level")
    if not isinstance(level, int):
        rating = data.get("rating")
        level = rating + 1 if isinstance(rating, int) else None  # the four faces keep their words
    return isinstance(level, int) and 1 <= level < 3


def month_start(moment: datetime) -> date:
    utc = moment.astimezone(timezone.utc)
    return date(utc.year, utc.month, 1)


def next_month(first: date) -> date:
    return date(first.year + (first.month == 12), first.month % 12 + 1, 1)


def local_day(moment: datetime, zone: ZoneInfo) -> tuple[date, datetime]:
    """The local date of ``moment`` in ``zone`` and that day's start as an aware time."""
    day = moment.astimezone(zone).date()
    return day, datetime.combine(day, datetime.min.time(), zone)


SCHEMA_VERSION = 7
"""1: the first region schema (``district``, hourly rollups only). 2: the 2025 two-level map
(province -> ward/commune: ``ward`` replaces ``district``) and the maintained tables. 3: a
centre's day in one row (``daily_centre`` keeps the sums of ``daily`` too), so the overview reads a
row per centre, not per centre and group. 4: the ``dossiers`` table behind each centre's Decision 766
index (filled from the stored events). 5: ``centres.changed_xid``, the transaction that last changed
what the overview shows of a centre (its row, its day, who waits there), so the dashboard re-reads
only the centres changed since its last snapshot (region.overview). 6: ``booking_days`` and
``ticket_waits``, the remote numbers, appointments, lapsed bookings and each kind's first-call waits
per centre and day (region.bookings), maintained like the rest instead of read from the day's events
(filled from the stored events of the last :data:`BOOKING_FILL_DAYS` days and today). 7: a
dossier's ``ticket_id`` and the ``low_rated`` tickets, so a dossier attached after its ticket was
rated below 'bình thường' counts as dissatisfied (refilled from the stored events)."""


BOOKING_FILL_DAYS = 2
"""Local days before today whose ``booking_days`` the schema-6 migration fills from the stored
events (as far back as ``ticket_waits`` is kept). Only today's row is read (region.bookings), and a
province's whole history would hold up the intake's start for an hour or more: the rebuild reads
about 160,000 events a second here, and a province of 3,321 centres stores some 3.8 million a day."""


@dataclass
class Store:
    """One PostgreSQL connection (not shared between threads: each thread opens its own)."""

    conn: psycopg.Connection[Any]
    _months: set[date] | None = None
    zone: ZoneInfo = ZoneInfo("Asia/Ho_Chi_Minh")

    @classmethod
    def connect(cls, dsn: str, zone: ZoneInfo | None = None) -> "Store":
        conn = psycopg.connect(dsn, autocommit=True)
        conn.execute("SET TIME ZONE 'UTC'")
        return cls(conn, set(), zone or ZoneInfo("Asia/Ho_Chi_Minh"))

    def close(self) -> None:
        self.conn.close()

    def create_schema(self, now: datetime | None = None) -> None:
        now = now or datetime.now(timezone.utc)
        with self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(80210001)")  # two processes starting at once
            self.conn.execute(SCHEMA)
            self._migrate(now)
        first = month_start(now - timedelta(days=31))
        self.ensure_partitions([first, next_month(first), next_month(next_month(first)),
                                next_month(next_month(next_month(first)))])

    def _migrate(self, now: datetime) -> None:
        """Bring an older database up to :data:`SCHEMA_VERSION` (inside create_schema's transaction)."""
        row = self.conn.execute("SELECT max(version) FROM schema_version").fetchone()
        version = row[0] if row and row[0] is not None else None
        if version is None:  # never versioned: a schema-1 database still has its district column
            old = self.conn.execute("SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = "
                                    "current_schema() AND table_name = 'centres' AND column_name = 'district')").fetchone()
            version = 1 if old and old[0] else SCHEMA_VERSION
        if version < 5:  # first: the migrations below write it
            self.conn.execute("ALTER TABLE centres ADD COLUMN IF NOT EXISTS changed_xid xid8 NOT NULL "
                              "DEFAULT pg_current_xact_id()")
        if version < 2:
            self._migrate_to_2(now)
        elif version < 3:
            self._migrate_to_3()
        if version < 7:
            self._fill_dossiers()
        if 2 <= version < 6:  # (the schema-2 migration rebuilt them with the rest)
            first, start = local_day(now - timedelta(days=BOOKING_FILL_DAYS), self.zone)
            self._rebuild_bookings(first, start, now - timedelta(days=2))
            self.conn.execute("UPDATE centres SET changed_xid = pg_current_xact_id()")  # a dashboard re-reads them
            log.info("region database migrated to schema 6 (booking figures maintained)")
        self.conn.execute("DELETE FROM schema_version")
        self.conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (SCHEMA_VERSION,))

    def _migrate_to_2(self, now: datetime) -> None:
        """Drop the districts (the 2025 map has none: a centre's ``ward`` comes from centres.toml at
        the next start) and fill the maintained tables from the stored events and rollups."""
        self.conn.execute("ALTER TABLE centres ADD COLUMN IF NOT EXISTS ward text NOT NULL DEFAULT ''")
        self.conn.execute("ALTER TABLE centres DROP COLUMN IF EXISTS district")
        for column in ("devices_offline", "devices_known"):
            self.conn.execute(f"ALTER TABLE centres ADD COLUMN IF NOT EXISTS {column} integer NOT NULL DEFAULT 0")
        self.rebuild_maintained(now)
        log.info("region database migrated to schema 2 (wards, maintained dashboard tables)")

    def _fill_dossiers(self) -> None:
        """Schemas 4 and 7: the ``dossiers`` table (and ``low_rated``) from the dossier and rating
        events already stored; merged into what is there (every merge is monotone: nothing is undone)."""
        cursor = self.conn.execute(
            "SELECT id, centre, kind, at, data FROM events WHERE kind IN ('dossier.attached', 'dossier.status', 'feedback.recorded')")
        found = self._write_dossiers([RegionEvent(centre, id_, kind, at, data, None, "migration")
                                      for id_, centre, kind, at, data in cursor.fetchall()])
        log.info("region database migrated to schema 7 (%d dossier facts)", found)

    def _migrate_to_3(self) -> None:
        """The sums of each centre's day beside its histogram, from ``daily``."""
        for column in SUM_COLUMNS.rstrip(",").split(","):
            self.conn.execute(f"ALTER TABLE daily_centre ADD COLUMN IF NOT EXISTS {column.strip()}")
        self._centre_days_from_daily(date.min)
        log.info("region database migrated to schema 3 (a row per centre and day)")

    def _centre_days_from_daily(self, first: date) -> None:
        """``daily_centre``'s sums from ``daily`` for the days from ``first`` (rows made as needed)."""
        sums = ", ".join(SUMS)
        self.conn.execute(
            f"INSERT INTO daily_centre AS d (centre, day, {sums}) "
            "SELECT centre, day, sum(issued), sum(called), sum(wait_sum), max(wait_max), sum(served), sum(no_show), "
            "sum(cancelled), sum(ratings), sum(rating_sum) FROM daily WHERE day >= %s GROUP BY centre, day "
            "ON CONFLICT (day, centre) DO UPDATE SET "
            + ", ".join(f"{c} = EXCLUDED.{c}" for c in SUMS), (first,))

    def rebuild_maintained(self, now: datetime, since: date | None = None) -> None:
        """Inside a transaction: recompute the maintained tables from the rollups and the events
        (``daily`` from local day ``since`` on, or all of it; the rest from the last two days).
        The schema-2 migration uses it; so does the benchmark, after generating events in SQL."""
        zone = str(self.zone)
        first = date.min if since is None else since
        start = datetime(1970, 1, 1, tzinfo=timezone.utc) if since is None else local_day(
            datetime.combine(since, datetime.min.time(), self.zone), self.zone)[1]
        self.conn.execute("DELETE FROM daily WHERE day >= %s", (first,))
        self.conn.execute("DELETE FROM daily_centre WHERE day >= %s", (first,))
        self.conn.execute("TRUNCATE recent, tickets_now, now_groups")
        # sums per local day from the hourly rollups (whole-hour zones: an hour lies in one local day)
        self.conn.execute(
            "INSERT INTO daily (centre, grp, day, issued, called, wait_sum, wait_max, served, no_show, cancelled, ratings, rating_sum) "
            "SELECT centre, grp, (hour AT TIME ZONE %s)::date, sum(issued), sum(called), sum(wait_sum), max(wait_max), "
            "sum(served), sum(no_show), sum(cancelled), sum(ratings), sum(rating_sum) FROM hourly WHERE hour >= %s "
            "GROUP BY 1, 2, 3", (zone, start))
        # the wait histograms from the first calls still stored as events
        hists: dict[tuple[str, str, date], list[int]] = {}
        for centre, grp, day, bucket, n in self.conn.execute(
                "SELECT centre, grp, (at AT TIME ZONE %s)::date, "
                "least(floor(greatest((data->>'wait_seconds')::float, 0) / 60)::int, %s), count(*) "
                "FROM events WHERE kind = 'ticket.called' AND grp IS NOT NULL AND at >= %s "
                "AND (data->>'first_call' = 'true' OR data->>'call' = '1') GROUP BY 1, 2, 3, 4", (zone, HIST_MAX_MINUTE, start)):
            hist = hists.setdefault((centre, grp, day), [])
            hist.extend([0] * (bucket + 1 - len(hist)))
            hist[bucket] += n
        per_centre: dict[tuple[str, date], list[int]] = {}
        for (centre, _, day), hist in hists.items():
            total = per_centre.setdefault((centre, day), [])
            total.extend([0] * (len(hist) - len(total)))
            for bucket, n in enumerate(hist):
                total[bucket] += n
        with self.conn.cursor() as cur:
            cur.executemany("UPDATE daily SET wait_hist = %s, wait_p90 = luot_hist_quantile(%s, 0.9) "
                            "WHERE centre = %s AND grp = %s AND day = %s",
                            [(h, h, c, g, d) for (c, g, d), h in hists.items()])
            cur.executemany("INSERT INTO daily_centre (centre, day, wait_hist, wait_p90) "
                            "VALUES (%s, %s, %s, luot_hist_quantile(%s, 0.9))",
                            [(c, d, h, h) for (c, d), h in per_centre.items()])
        self._centre_days_from_daily(first)
        since = now - timedelta(days=2)
        self.conn.execute(
            "INSERT INTO recent (centre, bucket, issued, called, ratings, rating_sum) "
            "SELECT centre, date_bin('5 minutes', at, TIMESTAMPTZ '2000-01-01 00:00+00'), "
            "count(*) FILTER (WHERE kind = 'ticket.issued'), "
            "count(*) FILTER (WHERE kind = 'ticket.called' AND (data->>'first_call' = 'true' OR data->>'call' = '1')), "
            "count(*) FILTER (WHERE kind = 'feedback.recorded' AND (data->>'rating')::int BETWEEN 1 AND 4), "
            "coalesce(sum((data->>'rating')::int) FILTER (WHERE kind = 'feedback.recorded' AND (data->>'rating')::int BETWEEN 1 AND 4), 0) "
            "FROM events WHERE at >= %s AND grp IS NOT NULL GROUP BY 1, 2", (since,))
        self.conn.execute(
            "INSERT INTO tickets_now (centre, ticket_id, grp, issued_at, last_at, last_kind) "
            "SELECT DISTINCT ON (centre, ticket_id) centre, ticket_id, grp, "
            "min(at) FILTER (WHERE kind = 'ticket.issued') OVER (PARTITION BY centre, ticket_id), at, kind "
            "FROM events WHERE at >= %s AND ticket_id IS NOT NULL AND kind LIKE 'ticket.%%' "
            "ORDER BY centre, ticket_id, at DESC, (kind = 'ticket.issued')", (since,))
        self.conn.execute(
            "UPDATE centres c SET changed_xid = pg_current_xact_id(), "
            "devices_known = (SELECT count(*) FROM devices d WHERE d.centre = c.centre), "
            "devices_offline = (SELECT count(*) FROM devices d WHERE d.centre = c.centre AND NOT d.online)")
        centres = [r[0] for r in self.conn.execute("SELECT centre FROM centres")]
        self._refresh_now(centres, now)
        self._rebuild_bookings(first, start, since)

    def _rebuild_bookings(self, first: date, start: datetime, keep: datetime) -> None:
        """Inside a transaction: ``booking_days`` from local day ``first`` on, from the events since
        ``start`` (its first instant), and ``ticket_waits`` of the tickets heard of since ``keep``
        (older ones would be pruned). Each ticket's row is what the write path's merge gives."""
        zone = str(self.zone)
        self.conn.execute("DELETE FROM booking_days WHERE day >= %s", (first,))
        self.conn.execute("DELETE FROM ticket_waits")
        self.conn.execute(
            f"INSERT INTO booking_days (centre, day, {', '.join(BOOKING_COUNTS)}) "
            "SELECT centre, (at AT TIME ZONE %s)::date, count(*) FILTER (WHERE kind = 'ticket.issued'), "
            "count(*) FILTER (WHERE kind = 'ticket.issued' AND data->>'booking' = 'remote'), "
            "count(*) FILTER (WHERE kind = 'ticket.issued' AND data->>'booking' = 'appointment'), "
            "count(*) FILTER (WHERE kind = 'ticket.no_show'), "
            "count(*) FILTER (WHERE kind = 'ticket.no_show' AND data->>'reason' = 'lapsed') "
            "FROM events WHERE at >= %s AND kind IN ('ticket.issued', 'ticket.no_show') GROUP BY 1, 2", (zone, start))
        waits = ", ".join(f"count(*) FILTER (WHERE kind = '{k}'), coalesce(sum(us) FILTER (WHERE kind = '{k}'), 0)"
                          for k in WAIT_KINDS)
        columns_ = ", ".join(f"{k}_called, {k}_wait_us" for k in WAIT_KINDS)
        self.conn.execute(
            "WITH t AS MATERIALIZED ("
            "  SELECT centre, ticket_id, "
            "  (array_agg(coalesce(data->>'booking', 'walk_in') ORDER BY at) FILTER (WHERE kind = 'ticket.issued'))[1] AS kind, "
            "  min(at) FILTER (WHERE kind = 'ticket.issued') AS issued_at, "
            "  min(at) FILTER (WHERE kind = 'booking.checked_in') AS checked_at, "
            "  min(at) FILTER (WHERE kind = 'ticket.called') AS called_at, max(at) AS last_at "
            "  FROM events WHERE at >= %(from)s AND ticket_id IS NOT NULL "
            "  AND kind IN ('ticket.issued', 'booking.checked_in', 'ticket.called') GROUP BY centre, ticket_id"
            "), kept AS ("
            "  INSERT INTO ticket_waits (centre, ticket_id, kind, issued_at, checked_at, called_at, last_at) "
            "  SELECT * FROM t WHERE last_at >= %(keep)s"
            ") "
            f"INSERT INTO booking_days AS d (centre, day, {columns_}) "
            f"SELECT centre, day, {waits} FROM ("
            "  SELECT centre, kind, (issued_at AT TIME ZONE %(zone)s)::date AS day, "
            "  luot_first_wait_us(issued_at, checked_at, called_at, %(zone)s) AS us FROM t"
            ") w WHERE us IS NOT NULL AND day >= %(first)s GROUP BY centre, day "
            "ON CONFLICT (day, centre) DO UPDATE SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c in columns_.split(", ")),
            {"from": min(start, keep), "keep": keep, "zone": zone, "first": first})

    def ensure_partitions(self, months: Iterable[date]) -> None:
        """Create the monthly partitions of ``events`` that are missing (ahead of need)."""
        assert self._months is not None
        for first in sorted(set(months) - self._months):
            name = f"events_y{first.year:04d}m{first.month:02d}"
            with self.conn.transaction():
                self.conn.execute("SELECT pg_advisory_xact_lock(80210002)")
                self.conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF events "
                    f"FOR VALUES FROM ('{first.isoformat()}') TO ('{next_month(first).isoformat()}')")
            self._months.add(first)

    def register_centres(self, centres: Iterable[tuple[str, str, str]]) -> None:
        """(centre id, name, ward/commune) of every centre in centres.toml."""
        with self.conn.transaction():
            for centre, name, ward in centres:
                self.conn.execute(
                    "INSERT INTO centres (centre, name, ward) VALUES (%s, %s, %s) "
                    "ON CONFLICT (centre) DO UPDATE SET name = EXCLUDED.name, ward = EXCLUDED.ward, "
                    "changed_xid = pg_current_xact_id()",
                    (centre, name, ward))

    def _refresh_now(self, centres: Iterable[str], now: datetime | None = None) -> None:
        """Inside a transaction: recompute ``now_groups`` of these centres from ``tickets_now``."""
        day, day_start = local_day(now or datetime.now(timezone.utc), self.zone)
        self.conn.execute(NOW_GROUPS, {"centres": sorted(set(centres)), "day": day, "day_start": day_start})

    def prune(self, now: datetime | None = None) -> None:
        """Forget tickets and 5-minute buckets no dashboard reads any more (older than two days)."""
        since = (now or datetime.now(timezone.utc)) - timedelta(days=2)
        with self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            self.conn.execute("DELETE FROM tickets_now WHERE last_at < %s", (since,))
            self.conn.execute("DELETE FROM ticket_waits WHERE last_at < %s", (since,))
            self.conn.execute("DELETE FROM recent WHERE bucket < %s", (since,))

    # ------------------------------------------------------------------ writing
    def _write_events(self, events: list[RegionEvent]) -> int:
        """Inside a transaction: store the events; return how many were new.

        Set-wise (see :mod:`region.deltas`): the ledger insert returns the new ids, and only those
        events are copied in and summed into the maintained rows, so a repeat changes nothing."""
        self.ensure_partitions({month_start(e.at) for e in events})
        unique: dict[str, RegionEvent] = {}
        for event in events:
            unique.setdefault(event.id, event)
        batch = list(unique.values())
        with self.conn.cursor() as cur:
            cur.execute(NEW_IDS, ([e.id for e in batch], [e.centre for e in batch], [e.at for e in batch]))
            new_ids = {row[0] for row in cur.fetchall()}
        fresh = [e for e in batch if e.id in new_ids]
        deltas = Deltas()
        zone = self.zone

        def local_date(at: datetime) -> date:
            return at.astimezone(zone).date()

        for event in events:
            deltas.seen(event.centre, event.at)
        if fresh:
            with self.conn.cursor() as cur, cur.copy(COPY_EVENTS) as copy:
                for event in fresh:
                    data = event.data
                    ticket_id = data.get("ticket_id")
                    ticket_id = ticket_id if isinstance(ticket_id, str) else None
                    grp = data.get("group")
                    copy.write_row((event.id, event.centre, event.kind, event.at, grp, ticket_id, event.seq, event.via,
                                    json.dumps(data, ensure_ascii=False)))
                    deltas.add(event.centre, event.kind, event.at, grp, ticket_id, rollup_of(event), local_date)
                    deltas.add_booking(event.centre, event.kind, event.at, ticket_id, data, local_date)
            self._write_deltas(deltas)
            self._write_dossiers(fresh)
        if deltas.latest:
            centres_, ats = zip(*deltas.latest.items())
            self.conn.execute(LAST_EVENTS, (list(centres_), list(ats)))
        return len(fresh)

    def _write_dossiers(self, fresh: list[RegionEvent]) -> int:
        """The dossier facts of the batch's new events (a few per hundred events: one statement
        each), the low ratings first; returns how many facts there were."""
        found = [(e, dossier_of(e, self.zone)) for e in fresh if e.kind.startswith("dossier.") or e.kind == "feedback.recorded"]
        low = [{"centre": e.centre, "ticket_id": f["ticket_id"]} for e, f in found if f.get("low") and f["ticket_id"]]
        facts = [{"centre": e.centre, **f} for e, f in found if f["dossier"] is not None]
        with self.conn.cursor() as cur:
            if low:
                cur.executemany(MARK_LOW_RATED, low)
            if facts:
                cur.executemany(UPSERT_DOSSIER, facts)
        return len(low) + len(facts)

    def _write_deltas(self, deltas: Deltas) -> None:
        """One statement per maintained table for the whole batch (each touched row once)."""
        with self.conn.cursor() as cur:
            if deltas.hourly:
                cur.execute(UPSERT_HOURLY, columns(deltas.hourly, with_hist=False))
            if deltas.daily:
                cur.execute(UPSERT_DAILY, columns(deltas.daily, with_hist=True))
            if deltas.centre_day:
                cur.execute(UPSERT_DAILY_CENTRE, columns(deltas.centre_day, with_hist=True))
            if deltas.recent:
                keys = list(deltas.recent)
                sums = [deltas.recent[k] for k in keys]
                cur.execute(UPSERT_RECENT, ([k[0] for k in keys], [k[1] for k in keys],
                                            *([s[i] for s in sums] for i in range(4))))
            if deltas.tickets:
                keys = list(deltas.tickets)
                rows = [deltas.tickets[k] for k in keys]
                cur.execute(UPSERT_TICKETS, ([k[0] for k in keys], [k[1] for k in keys], [r.grp for r in rows],
                                             [r.issued_at for r in rows], [r.last_at for r in rows],
                                             [r.last_kind for r in rows]))
            if deltas.booking_days or deltas.waits:
                cur.execute(UPSERT_BOOKINGS, self._booking_params(deltas))
        if deltas.ticket_centres:
            self._refresh_now(deltas.ticket_centres)

    def _booking_params(self, deltas: Deltas) -> dict[str, Any]:
        """UPSERT_BOOKINGS' arrays: the batch's counts per centre and day, its tickets' wait times."""
        days = list(deltas.booking_days)
        counts = [deltas.booking_days[k] for k in days]
        tickets = list(deltas.waits)
        waits = [deltas.waits[k] for k in tickets]
        params: dict[str, Any] = {"zone": str(self.zone), "c_centre": [k[0] for k in days], "c_day": [k[1] for k in days],
                                  **{f"c_{name}": [c[i] for c in counts] for i, name in enumerate(BOOKING_COUNTS)},
                                  "w_centre": [k[0] for k in tickets], "w_ticket": [k[1] for k in tickets]}
        for name in ("kind", "issued_at", "checked_at", "called_at", "last_at"):
            params["w_" + name.removesuffix("_at")] = [getattr(w, name) for w in waits]
        return params

    def store_batch(self, events: list[RegionEvent], availability: list[tuple[Availability, datetime]],
                    rejected: list[tuple[str, str]]) -> int:
        """One transaction: events, availability changes and rejection notes. Returns new events."""
        new = 0
        with self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            if events:
                new = self._write_events(events)
            for item, at in availability:
                self._write_availability(item, at)
            for source, reason in rejected:
                self.conn.execute("INSERT INTO rejected (source, reason) VALUES (%s, %s)", (source, reason[:300]))
        return new

    def store_logged(self, centre: str, events: list[RegionEvent], high_water: int) -> int:
        """Catch-up: the events read from a centre's log and its new high-water seq, atomically."""
        with self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            new = self._write_events(events) if events else 0
            self.conn.execute(
                "UPDATE centres SET high_water_seq = greatest(high_water_seq, %s), catch_up_at = now(), "
                "changed_xid = pg_current_xact_id(), "
                "catch_up_error = NULL WHERE centre = %s", (high_water, centre))
        return new

    def catch_up_failed(self, centre: str, reason: str) -> None:
        self.conn.execute("UPDATE centres SET catch_up_error = %s, changed_xid = pg_current_xact_id() "
                          "WHERE centre = %s", (reason[:300], centre))

    def high_water(self, centre: str) -> int:
        row = self.conn.execute("SELECT high_water_seq FROM centres WHERE centre = %s", (centre,)).fetchone()
        return int(row[0]) if row else 0

    def _write_availability(self, item: Availability, at: datetime) -> None:
        if item.what == "device":
            self.conn.execute(
                "INSERT INTO devices (centre, device, online, at) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (centre, device) DO UPDATE SET online = EXCLUDED.online, at = EXCLUDED.at",
                (item.centre, item.device, item.online, at))
            self.conn.execute(  # the dashboard reads the counts, never the devices of every centre
                "UPDATE centres SET changed_xid = pg_current_xact_id(), "
                "devices_known = (SELECT count(*) FROM devices WHERE centre = %(c)s), "
                "devices_offline = (SELECT count(*) FROM devices WHERE centre = %(c)s AND NOT online) WHERE centre = %(c)s",
                {"c": item.centre})
        else:
            column = "server" if item.what == "server" else "bridge"
            self.conn.execute(
                f"UPDATE centres SET {column}_online = %s, {column}_at = %s, last_heard_at = %s, "
                "changed_xid = pg_current_xact_id() WHERE centre = %s",
                (item.online, at, at, item.centre))

    def set_groups(self, centre: str, groups: list[dict[str, Any]]) -> None:
        with self.conn.transaction():
            for group in groups:
                self.conn.execute(
                    "INSERT INTO groups (centre, code, name, wait_alert_minutes) VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT (centre, code) DO UPDATE SET name = EXCLUDED.name, "
                    "wait_alert_minutes = EXCLUDED.wait_alert_minutes",
                    (centre, str(group["code"])[:40], str(group.get("name") or group["code"])[:200],
                     int(group.get("wait_alert_minutes") or 30)))
