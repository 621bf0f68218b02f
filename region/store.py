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
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable

import psycopg

from region.validate import Availability, RegionEvent

log = logging.getLogger("luot.region.store")

SCHEMA = """
CREATE TABLE IF NOT EXISTS centres (
    centre text PRIMARY KEY,
    name text NOT NULL,
    district text NOT NULL DEFAULT '',
    high_water_seq bigint NOT NULL DEFAULT 0,
    last_event_at timestamptz,
    last_heard_at timestamptz,
    server_online boolean,
    server_at timestamptz,
    bridge_online boolean,
    bridge_at timestamptz,
    catch_up_at timestamptz,
    catch_up_error text
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
    }
    row["rolls"] = bool(data.get("group")) and any(row[k] for k in ("issued", "called", "served", "no_show", "cancelled", "ratings"))
    return row


def month_start(moment: datetime) -> date:
    utc = moment.astimezone(timezone.utc)
    return date(utc.year, utc.month, 1)


def next_month(first: date) -> date:
    return date(first.year + (first.month == 12), first.month % 12 + 1, 1)


@dataclass
class Store:
    """One PostgreSQL connection (not shared between threads: each thread opens its own)."""

    conn: psycopg.Connection[Any]
    _months: set[date] | None = None

    @classmethod
    def connect(cls, dsn: str) -> "Store":
        conn = psycopg.connect(dsn, autocommit=True)
        conn.execute("SET TIME ZONE 'UTC'")
        return cls(conn, set())

    def close(self) -> None:
        self.conn.close()

    def create_schema(self, now: datetime | None = None) -> None:
        with self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(80210001)")  # two processes starting at once
            self.conn.execute(SCHEMA)
        now = now or datetime.now(timezone.utc)
        first = month_start(now - timedelta(days=31))
        self.ensure_partitions([first, next_month(first), next_month(next_month(first)),
                                next_month(next_month(next_month(first)))])

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
        with self.conn.transaction():
            for centre, name, district in centres:
                self.conn.execute(
                    "INSERT INTO centres (centre, name, district) VALUES (%s, %s, %s) "
                    "ON CONFLICT (centre) DO UPDATE SET name = EXCLUDED.name, district = EXCLUDED.district",
                    (centre, name, district))

    # ------------------------------------------------------------------ writing
    def _write_events(self, events: list[RegionEvent]) -> int:
        """Inside a transaction: store the events; return how many were new."""
        self.ensure_partitions({month_start(e.at) for e in events})
        params = []
        for event in events:
            params.append({
                "id": event.id, "centre": event.centre, "kind": event.kind, "at": event.at,
                "grp": event.data.get("group"), "ticket_id": event.data.get("ticket_id"), "seq": event.seq,
                "via": event.via, "data": json.dumps(event.data, ensure_ascii=False), **rollup_of(event),
            })
        before = self._count_ids(events)
        with self.conn.cursor() as cur:
            cur.executemany(INSERT_EVENT, params)
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
