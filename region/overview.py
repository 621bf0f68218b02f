"""The province overview kept up to date by what changed, not recomputed for every centre.

Why (issue 19): :func:`region.report.figures` builds every centre's row, in SQL and in Python, on
each refresh: 3,321 centres cost hundreds of milliseconds every two seconds, whatever happened
meanwhile. Here one :class:`Overview` keeps each centre's OVERVIEW_SQL tuple and its computed row
and warnings between refreshes, and a refresh re-reads and recomputes only:

- the centres whose ``centres.changed_xid`` (set by every writing transaction, region.store) was
  not visible in the previous refresh's snapshot (``pg_visible_in_snapshot``: a transaction still
  open then, or begun since, however long another transaction on the server stays open; a
  comparison with the snapshot's xmin would re-read every centre while a backup runs). The reads
  run in one REPEATABLE READ transaction, so the snapshot and the rows agree;
- the centres whose warnings or link depend on the time and may have moved: a group waiting past
  its threshold now or at the previous refresh (LATE_SQL, read every time), a centre silent past
  ``offline_after_minutes`` in working hours. Only their warnings and link are judged again
  (region.report.judge), and only when what the warnings print moved (:func:`time_key`: a wait's
  whole minutes, a level, the silent minutes);
- the centres whose 5-minute buckets (region.report.Recent, re-read every 30 s) differ from the
  ones their row was built with.

Every other row is kept as it is: a row carries its longest wait's start (``longest_since``), not
its minutes, so the clock alone changes no row (the page computes the minutes from the snapshot's
``now``; exports and the national view call region.report.with_longest_wait). The late groups'
rows are kept too: a group whose count and oldest ticket did not change only has its minutes moved
(from integer microseconds kept with it, the same float as region.report._minutes_since) and is
dropped when back within its threshold; a copy of each goes into the snapshot. Everything is rebuilt from
scratch (as :func:`region.report.figures`) on the first refresh, when the slow part (30 days,
group names, region.report.Slow) or the day changes, when working hours begin or end, and every
``full_every`` seconds. The result equals :func:`region.report.figures` at the same moment
(tests/test_region_overview.py checks it with events arriving between refreshes).

Not thread-safe: one owner (the dashboard's shared snapshot computes under its lock).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from region.report import (LATE_SQL, NO_GROUPS, NO_RECENT, OVERVIEW_SQL, Recent, Slow, group_row, judge,
                           ordered, overview_row, rank_766, read_params)
from region.warnings import Thresholds

FULL_EVERY = 300.0
"""Seconds: a refresh rebuilds every row at least this often (a safety net, not needed for correctness)."""

CHANGED_WHERE = "WHERE NOT pg_visible_in_snapshot(c.changed_xid, %(since)s::pg_snapshot)"
CHANGED_NOW = "AND centre IN (SELECT centre FROM centres WHERE NOT pg_visible_in_snapshot(changed_xid, %(since)s::pg_snapshot))"
"""The same centres for the statement's sum of who waits now (else it sums every centre's groups first)."""


def time_key(groups: list[dict[str, Any]], heard: datetime | None, now: datetime,
             silent_at: datetime | None) -> tuple[Any, ...]:
    """What a centre's warnings and link say that the time alone moves: each late group's waiting,
    whole minutes (as the text prints them) and level, and the minutes a centre has been silent
    (``silent_at``: heard before this is silent; None outside working hours). Equal keys: equal
    warnings (region.warnings), so the kept ones stand."""
    late = tuple((g["group"], g["waiting"], f"{g['longest_wait_minutes']:.0f}",
                  g["longest_wait_minutes"] > 2 * g["threshold_minutes"]) for g in groups)
    silent = (int((now - heard).total_seconds() // 60) if silent_at is not None and heard is not None and heard < silent_at
              else None)
    return late, silent


@dataclass
class Refresh:
    """What the last refresh did (the benchmark prints it)."""

    full: bool = False
    read: int = 0  # centre rows read from SQL
    rebuilt: int = 0  # rows recomputed in Python
    sql_ms: float = 0.0
    python_ms: float = 0.0
    judged: int = 0  # kept rows whose warnings and link were judged again (the time moved them)


@dataclass
class Overview:
    zone: ZoneInfo
    thresholds: Thresholds
    full_every: float = FULL_EVERY
    clock: Any = time.monotonic
    last: Refresh = field(default_factory=Refresh)
    _raw: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    _rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    _warnings: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _context: dict[str, dict[str, Any]] = field(default_factory=dict)  # a row's recent figures, for judge()
    _keys: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # what its warnings said of the time (time_key)
    _late: set[str] = field(default_factory=set)
    _recent: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)
    _groups: dict[tuple[str, str], tuple[int, Any, int, dict[str, Any]]] = field(default_factory=dict)  # LATE_SQL row kept
    _since: str | None = None  # the previous refresh's snapshot (pg_snapshot as text)
    _slow: Slow | None = None
    _day: str = ""
    _working: bool | None = None
    _full_at: float = 0.0

    def forget(self) -> None:
        """The next refresh rebuilds everything (e.g. after the connection was lost)."""
        self._since = None

    def refresh(self, conn: psycopg.Connection[Any], now: datetime, slow: Slow, recent: Recent) -> dict[str, Any]:
        """The overview at ``now``, as :func:`region.report.figures` returns it. ``conn``: not in a
        transaction (a REPEATABLE READ one is opened here)."""
        started = time.perf_counter()
        t = self.thresholds
        params = read_params(now, self.zone, t, slow)
        day = params["today"].isoformat()
        working = t.working_hours(now)
        full = (self._since is None or slow is not self._slow or day != self._day or working != self._working
                or self.clock() - self._full_at >= self.full_every)
        sql = 0.0
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with conn.transaction():
            t0 = time.perf_counter()
            since = str(conn.execute("SELECT pg_current_snapshot()::text").fetchone()[0])
            overview = OVERVIEW_SQL.format(one="" if full else CHANGED_NOW, where="" if full else CHANGED_WHERE)
            with conn.cursor() as cur:
                cur.execute(overview, {**params, "since": self._since, "centre": None})
                raws = cur.fetchall()
                cur.execute(LATE_SQL.format(one=""), params)
                late_raw = cur.fetchall()
            sql += time.perf_counter() - t0
        if full:
            self._groups = {}
        late = self._late_groups(late_raw, now, slow)
        by_centre: dict[str, list[dict[str, Any]]] = {}
        for g in late.values():
            by_centre.setdefault(g["centre"], []).append(g)
        timely: set[str] = set()  # only the time moved them: their warnings and link again
        if full:
            self._raw, self._rows, self._warnings, self._keys = {}, {}, {}, {}
            dirty = set()
        else:
            dirty = {c for c, r in recent.by_centre.items() if self._recent.get(c, NO_RECENT) != r}
            dirty |= {c for c, r in self._recent.items() if c not in recent.by_centre and r != NO_RECENT}
            timely = self._late | set(by_centre)
            if working:
                silent_after = now - timedelta(minutes=t.offline_after_minutes)
                timely |= {c for c, raw in self._raw.items() if raw[4] is not None and raw[4] < silent_after}
        for raw in raws:
            self._raw[raw[0]] = raw
            dirty.add(raw[0])
        timely -= dirty
        silent_at = now - timedelta(minutes=t.offline_after_minutes) if working else None
        judged = 0
        for cid in timely:
            row = self._rows.get(cid)
            if row is None:
                continue
            groups = by_centre.get(cid, NO_GROUPS)
            key = time_key(groups, self._raw[cid][4], now, silent_at)
            if key != self._keys.get(cid):  # what its warnings say moved: judge them again
                self._warnings[cid] = judge(row, self._context[cid], groups, now, t)
                self._keys[cid] = key
                judged += 1
        for cid in dirty:
            raw = self._raw.get(cid)
            if raw is None:  # a group or bucket of a centre not (or no longer) registered
                continue
            row, found, context = overview_row(raw, now, slow, recent.by_centre, by_centre.get(cid, NO_GROUPS), t)
            old = self._rows.get(cid)
            row["rank_766"] = old["rank_766"] if old is not None else None
            self._rows[cid] = row
            self._warnings[cid] = found
            self._context[cid] = context
            self._keys[cid] = time_key(by_centre.get(cid, NO_GROUPS), raw[4], now,
                                       now - timedelta(minutes=t.offline_after_minutes) if working else None)
        rows = list(self._rows.values())
        if full:
            rank_766(rows)  # the index changes only with the slow part
            self._full_at = self.clock()
        warnings = [w for found in self._warnings.values() for w in found]
        result = ordered(now, day, round(sql * 1000, 1), rows, warnings, late)
        # copies: the caller may keep or change the rows (the dashboard encodes them once)
        result["centres"] = [dict(r) for r in result["centres"]]
        result["groups"] = [dict(g) for g in result["groups"]]
        self._since, self._slow, self._day, self._working = since, slow, day, working
        self._late, self._recent = set(by_centre), dict(recent.by_centre)
        total = time.perf_counter() - started
        self.last = Refresh(full, len(raws), len(dirty), round(sql * 1000, 1), round((total - sql) * 1000, 1), judged)
        return result

    def _late_groups(self, late_raw: list[tuple[Any, ...]], now: datetime, slow: Slow) -> dict[tuple[str, str], dict[str, Any]]:
        """LATE_SQL's groups where someone waits past the group's own threshold. Their rows are kept
        between refreshes: a group whose count and oldest ticket are unchanged only has its minutes moved."""
        kept = self._groups
        fresh: dict[tuple[str, str], tuple[int, Any, int, dict[str, Any]]] = {}
        late: dict[tuple[str, str], dict[str, Any]] = {}
        now_us = _micros(now)
        for c, grp, waiting, oldest in late_raw:
            key = (c, grp or "")
            old = kept.get(key)
            if old is not None and old[0] == waiting and old[1] == oldest:
                entry = old
            else:
                g = group_row(slow, self.thresholds, c, grp)
                g["waiting"] = int(waiting)
                entry = (waiting, oldest, _micros(oldest) if oldest is not None else None, g)
            fresh[key] = entry
            g = entry[3]
            us = entry[2]
            g["longest_wait_minutes"] = round(max(0.0, (now_us - us) / 10**6 / 60), 1) if us is not None else 0.0
            if g["longest_wait_minutes"] > g["threshold_minutes"]:
                late[(g["centre"], g["group"])] = g
        self._groups = fresh
        return late


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _micros(moment: datetime) -> int:
    """Integer microseconds since the epoch: differences of two are exact, and divided by 10**6
    give the same float as ``timedelta.total_seconds()``."""
    d = moment - _EPOCH
    return (d.days * 86400 + d.seconds) * 10**6 + d.microseconds
