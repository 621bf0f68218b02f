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
- ``tickets_now``: per ticket its latest event (by event time, so late catch-up events sort
  right) and when it was issued; ``now_groups``: per centre and group how many wait now and since
  when, recomputed from ``tickets_now`` for the centres a transaction touched, in that transaction.

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

from region.validate import Availability, RegionEvent

log = logging.getLogger("luot.region.store")

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
    devices_known integer NOT NULL DEFAULT 0
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
    issued integer NOT NULL DEFAULT 0,
    called integer NOT NULL DEFAULT 0,
    wait_sum double precision NOT NULL DEFAULT 0,
    wait_max double precision NOT NULL DEFAULT 0,
    served integer NOT NULL DEFAULT 0,
    no_show integer NOT NULL DEFAULT 0,
    cancelled integer NOT NULL DEFAULT 0,
    ratings integer NOT NULL DEFAULT 0,
    rating_sum integer NOT NULL DEFAULT 0,
    PRIMARY KEY (centre, grp, hour)
);
CREATE INDEX IF NOT EXISTS hourly_hour ON hourly (hour);
CREATE TABLE IF NOT EXISTS daily (
    centre text NOT NULL,
    grp text NOT NULL,
    day date NOT NULL,
    issued integer NOT NULL DEFAULT 0,
    called integer NOT NULL DEFAULT 0,
    wait_sum double precision NOT NULL DEFAULT 0,
    wait_max double precision NOT NULL DEFAULT 0,
    served integer NOT NULL DEFAULT 0,
    no_show integer NOT NULL DEFAULT 0,
    cancelled integer NOT NULL DEFAULT 0,
    ratings integer NOT NULL DEFAULT 0,
    rating_sum integer NOT NULL DEFAULT 0,
    wait_hist integer[] NOT NULL DEFAULT '{}',
    wait_p90 double precision,
    PRIMARY KEY (day, centre, grp)
);
CREATE TABLE IF NOT EXISTS daily_centre (
    centre text NOT NULL,
    day date NOT NULL,
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

# One statement per event: the id ledger decides; the event row and the rollup follow only from a
# row the ledger insert returned, so a duplicate writes nothing anywhere.
INSERT_EVENT = """
WITH new AS (
    INSERT INTO event_ids (id, centre, at) VALUES (%(id)s, %(centre)s, %(at)s)
    ON CONFLICT (id) DO NOTHING RETURNING id
), stored AS (
    INSERT INTO events (id, centre, kind, at, grp, ticket_id, seq, via, data)
    SELECT %(id)s, %(centre)s, %(kind)s, %(at)s, %(grp)s, %(ticket_id)s, %(seq)s, %(via)s, %(data)s FROM new
    RETURNING id
), by_day AS (
    INSERT INTO daily AS d (centre, grp, day, issued, called, wait_sum, wait_max, served, no_show, cancelled,
                            ratings, rating_sum, wait_hist, wait_p90)
    SELECT %(centre)s, %(grp)s, %(day)s, %(issued)s, %(called)s, %(wait)s, %(wait)s, %(served)s, %(no_show)s,
           %(cancelled)s, %(ratings)s, %(rating)s, luot_hist_add('{}', %(bucket)s::integer), %(bucket)s::integer + 0.9
    FROM stored WHERE %(rolls)s
    ON CONFLICT (day, centre, grp) DO UPDATE SET
        issued = d.issued + EXCLUDED.issued, called = d.called + EXCLUDED.called,
        wait_sum = d.wait_sum + EXCLUDED.wait_sum, wait_max = greatest(d.wait_max, EXCLUDED.wait_max),
        served = d.served + EXCLUDED.served, no_show = d.no_show + EXCLUDED.no_show,
        cancelled = d.cancelled + EXCLUDED.cancelled, ratings = d.ratings + EXCLUDED.ratings,
        rating_sum = d.rating_sum + EXCLUDED.rating_sum, wait_hist = luot_hist_add(d.wait_hist, %(bucket)s::integer)
), centre_day AS (
    INSERT INTO daily_centre AS d (centre, day, wait_hist, wait_p90)
    SELECT %(centre)s, %(day)s, luot_hist_add('{}', %(bucket)s::integer), %(bucket)s::integer + 0.9
    FROM stored WHERE %(rolls)s AND %(bucket)s::integer IS NOT NULL
    ON CONFLICT (day, centre) DO UPDATE SET wait_hist = luot_hist_add(d.wait_hist, %(bucket)s::integer)
), lately AS (
    INSERT INTO recent AS r (centre, bucket, issued, called, ratings, rating_sum)
    SELECT %(centre)s, date_bin('5 minutes', %(at)s::timestamptz, TIMESTAMPTZ '2000-01-01 00:00+00'),
           %(issued)s, %(called)s, %(ratings)s, %(rating)s
    FROM stored WHERE %(rolls)s AND (%(issued)s + %(called)s + %(ratings)s) > 0
    ON CONFLICT (bucket, centre) DO UPDATE SET
        issued = r.issued + EXCLUDED.issued, called = r.called + EXCLUDED.called,
        ratings = r.ratings + EXCLUDED.ratings, rating_sum = r.rating_sum + EXCLUDED.rating_sum
), dossier AS (
    INSERT INTO dossiers AS x (centre, code, day, appointment, returned_on, dissatisfied)
    SELECT %(centre)s, %(dossier)s, %(dossier_day)s::date, %(appointment)s::date, %(returned_on)s::date, %(dissatisfied)s
    FROM stored WHERE %(dossier)s::text IS NOT NULL
    ON CONFLICT (centre, code) DO UPDATE SET
        day = coalesce(x.day, EXCLUDED.day), appointment = coalesce(EXCLUDED.appointment, x.appointment),
        returned_on = least(x.returned_on, EXCLUDED.returned_on), dissatisfied = x.dissatisfied OR EXCLUDED.dissatisfied
), ticket AS (
    -- the ticket's latest event by event time; at equal times a later kind beats 'ticket.issued'
    INSERT INTO tickets_now AS t (centre, ticket_id, grp, issued_at, last_at, last_kind)
    SELECT %(centre)s, %(ticket_id)s, %(grp)s, CASE WHEN %(kind)s = 'ticket.issued' THEN %(at)s::timestamptz END,
           %(at)s, %(kind)s
    FROM stored WHERE %(ticket_id)s::text IS NOT NULL AND %(kind)s LIKE 'ticket.%%'
    ON CONFLICT (centre, ticket_id) DO UPDATE SET
        issued_at = least(t.issued_at, EXCLUDED.issued_at),
        grp = CASE WHEN EXCLUDED.last_at > t.last_at OR (EXCLUDED.last_at = t.last_at AND t.last_kind = 'ticket.issued')
                   THEN coalesce(EXCLUDED.grp, t.grp) ELSE coalesce(t.grp, EXCLUDED.grp) END,
        last_kind = CASE WHEN EXCLUDED.last_at > t.last_at OR (EXCLUDED.last_at = t.last_at AND t.last_kind = 'ticket.issued')
                         THEN EXCLUDED.last_kind ELSE t.last_kind END,
        last_at = greatest(t.last_at, EXCLUDED.last_at)
)
INSERT INTO hourly AS h (centre, grp, hour, issued, called, wait_sum, wait_max, served, no_show, cancelled, ratings, rating_sum)
SELECT %(centre)s, %(grp)s, date_trunc('hour', %(at)s::timestamptz), %(issued)s, %(called)s, %(wait)s, %(wait)s,
       %(served)s, %(no_show)s, %(cancelled)s, %(ratings)s, %(rating)s
FROM stored WHERE %(rolls)s
ON CONFLICT (centre, grp, hour) DO UPDATE SET
    issued = h.issued + EXCLUDED.issued, called = h.called + EXCLUDED.called,
    wait_sum = h.wait_sum + EXCLUDED.wait_sum, wait_max = greatest(h.wait_max, EXCLUDED.wait_max),
    served = h.served + EXCLUDED.served, no_show = h.no_show + EXCLUDED.no_show,
    cancelled = h.cancelled + EXCLUDED.cancelled, ratings = h.ratings + EXCLUDED.ratings,
    rating_sum = h.rating_sum + EXCLUDED.rating_sum
"""


FILL_DOSSIER = INSERT_EVENT[INSERT_EVENT.index("INSERT INTO dossiers"):INSERT_EVENT.index("), ticket AS")].replace(
    "FROM stored WHERE %(dossier)s::text IS NOT NULL", "")
"""The dossiers upsert of :data:`INSERT_EVENT` on its own (the schema-3 migration replays stored events)."""

WAITING_KINDS = ("ticket.issued", "ticket.transferred")
HIST_MAX_MINUTE = 599
"""Waits of ten hours or more share the last histogram bucket (a centre is open about nine)."""

# The 90th percentiles of the histograms a batch added waits to: once per row and batch, not per event.
P90_GROUPS = """
UPDATE daily d SET wait_p90 = luot_hist_quantile(d.wait_hist, 0.9)
FROM unnest(%s::text[], %s::text[], %s::date[]) AS t(centre, grp, day)
WHERE d.day = t.day AND d.centre = t.centre AND d.grp = t.grp
"""
P90_CENTRES = """
UPDATE daily_centre d SET wait_p90 = luot_hist_quantile(d.wait_hist, 0.9)
FROM unnest(%s::text[], %s::date[]) AS t(centre, day)
WHERE d.day = t.day AND d.centre = t.centre
"""

# The "now" of the centres a transaction touched, from their tickets: who waits, since when. The
# day is the region's local day; a centre's rows of groups nobody waits in any more go to zero.
NOW_GROUPS = """
WITH fresh AS (
    SELECT centre, coalesce(grp, '') AS grp, count(*) AS waiting, min(issued_at) AS oldest
    FROM tickets_now
    WHERE centre = ANY(%(centres)s) AND last_kind IN ('ticket.issued', 'ticket.transferred')
      AND issued_at >= %(day_start)s
    GROUP BY centre, coalesce(grp, '')
), cleared AS (
    UPDATE now_groups n SET waiting = 0, oldest = NULL, day = %(day)s
    WHERE n.centre = ANY(%(centres)s) AND NOT EXISTS (SELECT 1 FROM fresh f WHERE f.centre = n.centre AND f.grp = n.grp)
)
INSERT INTO now_groups AS n (centre, grp, day, waiting, oldest)
SELECT centre, grp, %(day)s, waiting, oldest FROM fresh
ON CONFLICT (centre, grp) DO UPDATE SET day = EXCLUDED.day, waiting = EXCLUDED.waiting, oldest = EXCLUDED.oldest
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
    'returned' the day it was returned; a feedback.recorded below 'bình thường' (five levels 1-2,
    or the four faces' 1) on a ticket with a dossier marks it dissatisfied. (A dossier attached
    after its ticket was rated carries no rating here: the centre's own report links those.)"""
    data, day = event.data, event.at.astimezone(zone).date()
    out: dict[str, Any] = {"dossier": None, "dossier_day": None, "appointment": None, "returned_on": None, "dissatisfied": False}
    code = data.get("code") if event.kind.startswith("dossier.") else data.get("dossier")
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
    elif event.kind == "feedback.recorded":
        level = data.get("level")
        if not isinstance(level, int):
            rating = data.get("rating")
            level = rating + 1 if isinstance(rating, int) else None  # the four faces keep their words
        if isinstance(level, int) and 1 <= level < 3:
            out.update(dossier=code, dissatisfied=True)
    return out


def month_start(moment: datetime) -> date:
    utc = moment.astimezone(timezone.utc)
    return date(utc.year, utc.month, 1)


def next_month(first: date) -> date:
    return date(first.year + (first.month == 12), first.month % 12 + 1, 1)


def local_day(moment: datetime, zone: ZoneInfo) -> tuple[date, datetime]:
    """The local date of ``moment`` in ``zone`` and that day's start as an aware time."""
    day = moment.astimezone(zone).date()
    return day, datetime.combine(day, datetime.min.time(), zone)


SCHEMA_VERSION = 3
"""1: the first region schema (``district``, hourly rollups only). 2: the 2025 two-level map
(province -> ward/commune: ``ward`` replaces ``district``) and the maintained tables. 3: the
``dossiers`` table behind each centre's Decision 766 index (filled from the stored events)."""


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
        if version < 2:
            self._migrate_to_2(now)
        if version < 3:
            self._fill_dossiers()
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
        """Schema 3: the ``dossiers`` table from the dossier and rating events already stored."""
        cursor = self.conn.execute(
            "SELECT id, centre, kind, at, data FROM events WHERE kind IN ('dossier.attached', 'dossier.status', 'feedback.recorded')")
        params = []
        for id_, centre, kind, at, data in cursor.fetchall():
            found = dossier_of(RegionEvent(centre, id_, kind, at, data, None, "migration"), self.zone)
            if found["dossier"] is not None:
                params.append({"centre": centre, **found})
        with self.conn.cursor() as cur:
            cur.executemany(FILL_DOSSIER, params)
        log.info("region database migrated to schema 3 (%d dossier facts)", len(params))

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
            "UPDATE centres c SET devices_known = (SELECT count(*) FROM devices d WHERE d.centre = c.centre), "
            "devices_offline = (SELECT count(*) FROM devices d WHERE d.centre = c.centre AND NOT d.online)")
        centres = [r[0] for r in self.conn.execute("SELECT centre FROM centres")]
        self._refresh_now(centres, now)

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
                    "ON CONFLICT (centre) DO UPDATE SET name = EXCLUDED.name, ward = EXCLUDED.ward",
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
            self.conn.execute("DELETE FROM recent WHERE bucket < %s", (since,))

    # ------------------------------------------------------------------ writing
    def _write_events(self, events: list[RegionEvent]) -> int:
        """Inside a transaction: store the events; return how many were new."""
        self.ensure_partitions({month_start(e.at) for e in events})
        params = []
        for event in events:
            ticket_id = event.data.get("ticket_id")
            params.append({
                "id": event.id, "centre": event.centre, "kind": event.kind, "at": event.at,
                "day": event.at.astimezone(self.zone).date(),
                "grp": event.data.get("group"), "ticket_id": ticket_id if isinstance(ticket_id, str) else None,
                "seq": event.seq, "via": event.via, "data": json.dumps(event.data, ensure_ascii=False), **rollup_of(event),
                **dossier_of(event, self.zone),
            })
        before = self._count_ids(events)
        with self.conn.cursor() as cur:
            cur.executemany(INSERT_EVENT, params)
        waits = {(p["centre"], p["grp"], p["day"]) for p in params if p["bucket"] is not None and p["rolls"]}
        if waits:
            centres_, groups_, days_ = zip(*sorted(waits))
            self.conn.execute(P90_GROUPS, (list(centres_), list(groups_), list(days_)))
            by_centre = sorted({(c, d) for c, _, d in waits})
            self.conn.execute(P90_CENTRES, ([c for c, _ in by_centre], [d for _, d in by_centre]))
        self._refresh_now({e.centre for e in events if e.kind.startswith("ticket.")})
        latest: dict[str, datetime] = {}
        for event in events:
            latest[event.centre] = max(latest.get(event.centre, event.at), event.at)
        for centre, at in latest.items():
            self.conn.execute(
                "UPDATE centres SET last_event_at = greatest(last_event_at, %s), last_heard_at = now() WHERE centre = %s",
                (at, centre))
        return self._count_ids(events) - before

    def _count_ids(self, events: list[RegionEvent]) -> int:
        row = self.conn.execute("SELECT count(*) FROM event_ids WHERE id = ANY(%s)", ([e.id for e in events],)).fetchone()
        return int(row[0]) if row else 0

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
                "catch_up_error = NULL WHERE centre = %s", (high_water, centre))
        return new

    def catch_up_failed(self, centre: str, reason: str) -> None:
        self.conn.execute("UPDATE centres SET catch_up_error = %s WHERE centre = %s", (reason[:300], centre))

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
                "UPDATE centres SET devices_known = (SELECT count(*) FROM devices WHERE centre = %(c)s), "
                "devices_offline = (SELECT count(*) FROM devices WHERE centre = %(c)s AND NOT online) WHERE centre = %(c)s",
                {"c": item.centre})
        else:
            column = "server" if item.what == "server" else "bridge"
            self.conn.execute(
                f"UPDATE centres SET {column}_online = %s, {column}_at = %s, last_heard_at = %s WHERE centre = %s",
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
