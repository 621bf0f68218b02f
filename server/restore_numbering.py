"""After a restore, today's numbering continues past the numbers the lost hours may have given out.

A backup holds the tickets up to the moment it was made. If the centre kept issuing after that
(the disk was lost at 10:40, the last backup is from 10:00), those tickets are gone with the disk,
but their paper slips are in citizens' hands; numbering "above the highest number in the backup"
would give the same numbers out again. So :func:`hold_lost_numbers` writes, into the restored file,
a floor per group for today (table ``number_floors``, read with the tickets and leased blocks by
:meth:`server.storage.Storage.used_numbers`): numbering continues above it.

How many numbers to skip: the time that may have been lost (from the later of the backup's last
event and an hour before today's opening, to the restore: :func:`lost_open_hours`) times the group's busiest hour in the backup's
last seven days (at least :data:`MIN_PER_HOUR`), but never more than its busiest day there (at
least :data:`MIN_PER_DAY`), times :data:`SAFETY`, and at least :data:`MIN_SKIP` (:func:`numbers_lost`). Skipping too many only makes
numbers bigger; too few repeats a number, so the rule leans long, and ``luot restore
--skip-numbers N`` sets the count by hand (a technician who knows how many slips went out). A
group whose range cannot hold the skip ends at its last number: it issues no more numbers today
(the kiosk says so) rather than a number someone already holds."""

from __future__ import annotations

import math
import sqlite3
from datetime import datetime, timedelta, timezone
from typing import Any

from luot.config import CentreConfig

NUMBER_FLOORS_DDL = """
CREATE TABLE IF NOT EXISTS number_floors (
    day TEXT NOT NULL,          -- the service day (local ISO date)
    grp TEXT NOT NULL,
    highest INTEGER NOT NULL,   -- numbers up to this one may be held by someone: never issue them again today
    reason TEXT NOT NULL,
    at TEXT NOT NULL,           -- when it was written (UTC ISO)
    PRIMARY KEY (day, grp)
) WITHOUT ROWID;
"""
"""One DDL for the storage's migration and for a restore of a backup made before that migration."""

MIN_PER_HOUR = 30
"""Numbers a group is assumed to give out in an hour when its history shows fewer (a new centre)."""

MIN_PER_DAY = 10 * MIN_PER_HOUR
"""Numbers a group is assumed to give out in a day when its history shows fewer."""

SAFETY = 1.5
"""The lost hours' numbers are estimated from the busiest hour, then multiplied by this."""

MIN_SKIP = 50
"""Skipped in every group whenever time may have been lost: an hour's average hides a morning's
rush (the restore drill's kiosks issue 48 tickets a second), and numbers are cheap."""

HISTORY_DAYS = 7

EARLY = timedelta(hours=1)
"""How long before opening the first ticket of a day may be issued."""


def lost_open_hours(config: CentreConfig, backup_at: datetime | None, now: datetime) -> float:
    """Hours from the later of the backup's last event and today's first possible ticket, to
    ``now``: the time tickets may have been issued that the backup does not hold. Today's first
    possible ticket is :data:`EARLY` before opening (kiosks are switched on early), or local
    midnight on a day the centre file calls closed (the server issues then too, if asked)."""
    today = config.service_day(now)
    hours = config.opening_hours(today)
    start = datetime.combine(today, datetime.min.time(), config.zone)
    if hours is not None:
        start = max(start, datetime.combine(today, hours[0], config.zone) - EARLY)
    since = max(start, backup_at) if backup_at is not None else start
    return max(0.0, (now - since).total_seconds() / 3600)


def busiest(db: sqlite3.Connection, until: datetime, span: str) -> dict[str, int]:
    """Per group, the most tickets issued in one clock hour (``span`` "hour") or one service day
    ("day") over the :data:`HISTORY_DAYS` before ``until``."""
    since = (until - timedelta(days=HISTORY_DAYS)).astimezone(timezone.utc).isoformat()
    key = {"hour": "substr(issued_at, 1, 13)", "day": "day"}[span]
    rows = db.execute(f"SELECT grp, MAX(n) FROM (SELECT grp, {key} AS k, COUNT(*) AS n FROM tickets "
                      "WHERE issued_at >= ? GROUP BY grp, k) GROUP BY grp", (since,))
    return {group: int(n) for group, n in rows}


def numbers_lost(per_hour: int, per_day: int, hours: float) -> int:
    """Numbers a group may have given out in ``hours``: at its busiest hour's pace, but never more
    than its busiest day (a restore the next evening does not skip a day and a half), each at
    least the minimum, times :data:`SAFETY`."""
    if hours <= 0:
        return 0
    return max(MIN_SKIP, math.ceil(min(max(per_hour, MIN_PER_HOUR) * hours, max(per_day, MIN_PER_DAY)) * SAFETY))


USED_NUMBERS_SQL = """
SELECT day, grp, MAX(highest) FROM (
    SELECT day, grp, MAX(number) AS highest FROM tickets WHERE day >= :since GROUP BY day, grp
    UNION ALL
    SELECT day, json_extract(data, '$.group'), MAX(json_extract(data, '$.last')) FROM events
    WHERE type = 'block.leased' AND day >= :since GROUP BY 1, 2
    UNION ALL
    SELECT day, grp, highest FROM number_floors WHERE day >= :since
) GROUP BY day, grp
"""
"""The highest number held per (service day, group) from day ``:since`` on: tickets, leased blocks
(a leased number may not be imported yet) and the floors a restore wrote. One query for the
server's start-up (:meth:`server.storage.Storage.used_numbers`) and for a restore (:func:`highest_used`)."""


def highest_used(db: sqlite3.Connection, day: str) -> dict[str, int]:
    """Per group, the highest number the backup holds for ``day`` (:data:`USED_NUMBERS_SQL`;
    ``number_floors`` must exist: an earlier restore's floor counts too)."""
    return {group: int(n) for used_day, group, n in db.execute(USED_NUMBERS_SQL, {"since": day}) if used_day == day}


def hold_lost_numbers(database: str, config: CentreConfig, now: datetime, skip: int | None = None) -> dict[str, Any]:
    """Write today's floors into ``database`` (a restored copy, before it is put in place) and
    say what was done: ``lost_hours``, and per group the highest number in the backup and the
    first number the centre will give next. ``skip``: numbers to skip per group, instead of the
    estimate."""
    db = sqlite3.connect(database, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        last = db.execute("SELECT MAX(at) FROM events").fetchone()[0]
        backup_at = datetime.fromisoformat(last) if last else None
        hours = lost_open_hours(config, backup_at, now)
        day = config.service_day(now).isoformat()
        per_hour, per_day = busiest(db, backup_at or now, "hour"), busiest(db, backup_at or now, "day")
        db.execute(NUMBER_FLOORS_DDL)  # a backup made before migration 10 has no such table yet
        used = highest_used(db, day)
        groups: dict[str, dict[str, Any]] = {}
        for group in config.groups:
            highest = max(used.get(group.code, 0), group.first_number - 1)
            count = skip if skip is not None else numbers_lost(per_hour.get(group.code, 0), per_day.get(group.code, 0), hours)
            floor = min(highest + count, group.last_number)
            if floor > highest:
                db.execute("INSERT INTO number_floors (day, grp, highest, reason, at) VALUES (?, ?, ?, 'restore', ?) "
                           "ON CONFLICT (day, grp) DO UPDATE SET highest = MAX(highest, excluded.highest), "
                           "reason = excluded.reason, at = excluded.at",
                           (day, group.code, floor, now.astimezone(timezone.utc).isoformat()))
            groups[group.code] = {"highest_in_backup": highest if highest >= group.first_number else None,
                                  "skipped": floor - highest,
                                  "next_number": floor + 1 if floor < group.last_number else None}
        db.execute("COMMIT")
    finally:
        db.close()
    return {"day": day, "backup_last_event": last, "lost_hours": round(hours, 2), "groups": groups}
