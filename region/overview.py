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
- the centres whose warnings or link the time alone moved: a group passing its threshold or
  twice it, a centre falling silent past ``offline_after_minutes`` in working hours. Only their
  warnings and link are judged again (region.report.rejudge). Every group where someone waits is
  kept (``now_groups`` re-read for the changed centres only, with the same visibility test) with
  the moment the time could next move it past a threshold, in a heap: a refresh looks only at the
  groups whose moment came;
- the centres whose 5-minute buckets (region.report.Recent, re-read every 30 s) differ from the
  ones their row was built with, and whose growing warning comes or goes, or which have a
  satisfaction warning with the old buckets or the new (region.warnings.recent_moved): their
  warnings only. The growing warning's counts are slots filled from the ``recent`` part where it
  is shown, so one that stays is the same dict (42-57 % of the centres at 3,321, issue 19). The recent figures themselves are
  not in the rows but in the result's ``recent`` part (region.report.recent_part, new only when the
  buckets moved): a bucket re-read moves them for almost every centre, and a row that stays the
  same object keeps its encoded JSON (region.rowjson);
- the centres whose 30-day figures (region.report.Slow, re-read every 5 minutes) changed in value,
  rebuilt from their kept tuple (no SQL), and the Decision 766 ranks when an index changed (a new
  row where a rank moved). A re-read with the same values changes nothing.

Every other row is kept as it is: a row carries its longest wait's start (``longest_since``), not
its minutes, and so do a late group (``longest_since``) and a warning that counts minutes
(``since``, its text with a slot for them: region.warnings), so the clock alone changes none of
them (the page computes the minutes from the snapshot's ``now``; exports, a centre's page and the
national view add them: region.report.with_longest_wait, region.warnings.with_minutes, which also
fills the growing warning's counts from the ``recent`` part). A group's
minutes against its thresholds are computed from integer microseconds kept with it (the same
float as region.warnings.minutes_since). Everything is rebuilt from scratch (as
:func:`region.report.figures`) on the first refresh, when the groups' names or thresholds (in the
slow part) or the day change, when working hours begin or end, and every ``full_every`` seconds.
The result equals :func:`region.report.figures` at the same moment (tests/test_region_overview.py
checks it with events arriving between refreshes, the buckets and the slow part re-read).

**Kept dicts are never changed** (the snapshot shares them, no copy): a row, a warning or a group
row that changes is replaced by a new dict; the lists of a result are new at every refresh and kept
in their order by re-placing only what changed (region.keptorder). So a caller must not change a
result's rows, warnings or groups (copy them first, as the exports do), and may reuse what it
derived from one of them while it is the same object (region.rowjson reuses its JSON).

Not thread-safe: one owner (the dashboard's shared snapshot computes under its lock).
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, NamedTuple
from zoneinfo import ZoneInfo

import psycopg

from region.keptorder import KeptOrder
from region.report import (NOW_SQL, NO_GROUPS, NO_RECENT, OVERVIEW_SQL, Recent, Slow, group_order, group_row,
                           group_threshold, overview_row, rank_766, ranks_766, read_params, recent_context, recent_part,
                           rejudge, row_order, warning_order)
from region.warnings import Thresholds, recent_moved, with_recent_warnings

FULL_EVERY = 3600.0
"""Seconds: a refresh rebuilds every row at least this often (a safety net, not needed for
correctness: tests/test_region_overview.py checks every refresh against a full recompute). Once an
hour: a rebuild costs a few hundred milliseconds at 3,321 centres (issue 19, sixth round)."""

CHANGED_WHERE = "WHERE NOT pg_visible_in_snapshot(c.changed_xid, %(since)s::pg_snapshot)"
CHANGED_NOW = "AND centre IN (SELECT centre FROM centres WHERE NOT pg_visible_in_snapshot(changed_xid, %(since)s::pg_snapshot))"
"""The same centres for the statement's sum of who waits now (else it sums every centre's groups first)."""

NO_WARNINGS: list[dict[str, Any]] = []


@dataclass
class Refresh:
    """What the last refresh did (the benchmark prints it)."""

    full: bool = False
    read: int = 0  # centre rows read from SQL
    rebuilt: int = 0  # rows recomputed in Python
    sql_ms: float = 0.0
    python_ms: float = 0.0
    judged: int = 0  # kept rows whose warnings and link were judged again (the time moved them)


class _Group(NamedTuple):
    """A ``now_groups`` row kept: its figures, its threshold, what the time made of it when last
    judged, and its row once it is late (``g``: made only for the late ones, a few of the waiting)."""

    waiting: int
    oldest: datetime | None
    us: int | None  # ``oldest`` in integer microseconds
    limit: int  # its threshold, minutes
    g: dict[str, Any] | None
    late: bool  # past its threshold
    high: bool  # past twice its threshold (the warning's level)
    next_us: float  # before this moment (integer microseconds) the time alone changes neither


_MINUTE_US = 60 * 10**6
_NEVER = float("inf")


def _judged(waiting: int, oldest: datetime | None, limit: int, g: dict[str, Any] | None, now_us: int) -> _Group:
    """A group at ``now_us``: past its threshold, past twice it (minutes to a tenth, as
    region.warnings.minutes_since), and the moment before which neither can change."""
    us = _micros(oldest) if oldest is not None else None
    minutes = round(max(0.0, (now_us - us) / 10**6 / 60), 1) if us is not None else 0.0
    late, high = minutes > limit, minutes > 2 * limit
    # a wait of exactly N minutes rounds to N, not past it: neither flag moves before then
    next_us = _NEVER if high or us is None else us + (2 if late else 1) * limit * _MINUTE_US
    return _Group(waiting, oldest, us, limit, g, late, high, next_us)


@dataclass
class Overview:
    zone: ZoneInfo
    thresholds: Thresholds
    full_every: float = FULL_EVERY
    clock: Any = time.monotonic
    last: Refresh = field(default_factory=Refresh)
    _raw: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    _rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    _found: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # each centre's warnings
    _context: dict[str, dict[str, Any]] = field(default_factory=dict)  # a row's recent figures, for rejudge()
    _recent: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)
    _groups: dict[str, dict[str, _Group]] = field(default_factory=dict)  # per centre, its groups where someone waits
    _due: list[tuple[float, str, str]] = field(default_factory=list)  # heap: (a group's next_us, centre, code)
    _late: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # per centre, its late groups by code
    _silent: set[str] = field(default_factory=set)
    _row_order: KeptOrder[dict[str, Any]] = field(default_factory=KeptOrder)
    _warning_order: KeptOrder[dict[str, Any]] = field(default_factory=KeptOrder)
    _group_order: KeptOrder[dict[str, Any]] = field(default_factory=KeptOrder)
    _recent_part: dict[str, list[int]] = field(default_factory=dict)  # the result's ``recent``, shared while unchanged
    _since: str | None = None  # the previous refresh's snapshot (pg_snapshot as text)
    _slow: Slow | None = None
    _day: str = ""
    _working: bool | None = None
    _full_at: float = 0.0

    def forget(self) -> None:
        """The next refresh rebuilds everything (e.g. after the connection was lost)."""
        self._since = None

    def refresh(self, conn: psycopg.Connection[Any], now: datetime, slow: Slow, recent: Recent,
                also: Callable[[psycopg.Connection[Any], str], object] | None = None) -> dict[str, Any]:
        """The overview at ``now``, as :func:`region.report.figures` returns it (its dicts shared
        with later results: never change them). ``conn``: not in a transaction (a REPEATABLE READ
        one is opened here). ``also(conn, snapshot)`` runs inside that transaction after the
        overview's reads, for what must come from the same moment (the dashboard's booking
        figures, region.bookings ``TodayBookings.read_in``)."""
        started = time.perf_counter()
        t = self.thresholds
        params = read_params(now, self.zone, t, slow)
        day = params["today"].isoformat()
        working = t.working_hours(now)
        full = (self._since is None or day != self._day or working != self._working
                or self.clock() - self._full_at >= self.full_every)
        reslowed: set[str] = set()  # centres whose 30-day figures changed with a re-read slow part
        reranked = False
        if not full and slow is not self._slow:
            full, reslowed, reranked = self._slow_moved(slow)
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        t0 = time.perf_counter()
        with conn.transaction():
            since = str(conn.execute("SELECT pg_current_snapshot()::text").fetchone()[0])
            overview = OVERVIEW_SQL.format(one="" if full else CHANGED_NOW, where="" if full else CHANGED_WHERE)
            with conn.cursor() as cur:
                cur.execute(overview, {**params, "since": self._since, "centre": None})
                raws = cur.fetchall()
                cur.execute(NOW_SQL.format(one="" if full else CHANGED_NOW), {**params, "since": self._since})
                waiting_raw = cur.fetchall()
            if also is not None:
                also(conn, since)
        sql = time.perf_counter() - t0  # with the transaction's BEGIN and COMMIT
        if full:
            self._raw, self._rows, self._found, self._context = {}, {}, {}, {}
            self._groups, self._due, self._late, self._silent = {}, [], {}, set()
            bucketed: set[str] = set()
        else:  # only their 5-minute buckets moved (every RECENT_AGE s, most centres at once)
            bucketed = {c for c, r in recent.by_centre.items() if self._recent.get(c, NO_RECENT) != r}
            bucketed |= {c for c, r in self._recent.items() if c not in recent.by_centre and r != NO_RECENT}
        dirty: set[str] = set()
        for raw in raws:
            self._raw[raw[0]] = raw
            dirty.add(raw[0])
        moved = self._take_groups(waiting_raw, dirty, now, slow, full)  # centres whose late groups moved
        dirty |= {c for c in reslowed if c in self._raw}  # rebuilt from their kept tuple (no SQL re-read)
        bucketed -= dirty
        silent: set[str] = set()
        if working:
            silent_after = now - timedelta(minutes=t.offline_after_minutes)
            silent = {c for c, raw in self._raw.items() if raw[4] is not None and raw[4] < silent_after}
        moved |= silent ^ self._silent
        judged = 0
        rejudged: set[str] = set()
        for cid in bucketed:  # new recent figures: the warnings again only if they may change
            row = self._rows.get(cid)
            if row is not None:
                before, self._context[cid] = self._context[cid], recent_context(self._raw[cid], recent.by_centre)
                if cid not in moved and recent_moved(row, before, self._context[cid], t):
                    # nothing else moved it: its other warnings stand (the same dicts)
                    found = with_recent_warnings(row, self._found.get(cid, NO_WARNINGS), self._context[cid], t)
                    self._put(cid, row if row["warnings"] == len(found) else {**row, "warnings": len(found)}, found, full)
                    rejudged.add(cid)
        for cid in moved - dirty - rejudged:  # only the time moved them: their warnings and link again
            row = self._rows.get(cid)
            if row is not None:
                self._put(cid, *rejudge(row, self._context[cid], self._late_groups_of(cid), now, t), full)
                judged += 1
        for cid in dirty:
            raw = self._raw.get(cid)
            if raw is None:  # a group or bucket of a centre not (or no longer) registered
                continue
            row, found, context = overview_row(raw, now, slow, recent.by_centre, self._late_groups_of(cid), t)
            old = self._rows.get(cid)
            row["rank_766"] = old["rank_766"] if old is not None else None
            self._context[cid] = context
            self._put(cid, row, found, full)
        if reranked:  # an index changed: the ranks again, a new row where its rank moved
            ranks = ranks_766(self._rows.values())
            for cid, row in list(self._rows.items()):
                if row["rank_766"] != ranks.get(cid):
                    self._put(cid, {**row, "rank_766": ranks.get(cid)}, self._found.get(cid, NO_WARNINGS), full)
        if full:
            rank_766(list(self._rows.values()))  # the index changes only with the slow part
            self._row_order.reset((row_order(r), r) for r in self._rows.values())
            self._warning_order.reset((warning_order(w, i), w) for found in self._found.values() for i, w in enumerate(found))
            self._group_order.reset((group_order(g), g) for late in self._late.values() for g in late.values())
            self._full_at = self.clock()
        if full or recent.by_centre != self._recent:  # the buckets moved (re-read every RECENT_AGE s)
            self._recent_part = recent_part(recent.by_centre)
        result = {"now": now, "day": day, "sql_ms": round(sql * 1000, 1), "centres": self._row_order.items(),
                  "warnings": self._warning_order.items(), "groups": self._group_order.items(),
                  "recent": self._recent_part}
        self._since, self._slow, self._day, self._working = since, slow, day, working
        self._silent, self._recent = silent, dict(recent.by_centre)
        total = time.perf_counter() - started
        self.last = Refresh(full, len(raws), len(dirty) + len(rejudged), round(sql * 1000, 1), round((total - sql) * 1000, 1),
                            judged)
        return result

    def _put(self, cid: str, row: dict[str, Any], found: list[dict[str, Any]], full: bool) -> None:
        """A centre's row and warnings as they are now, re-placed in the kept orders if they changed
        (an equal one keeps the dict already published; on a full rebuild the orders are built after)."""
        old = self._rows.get(cid)
        if old is None or (old is not row and old != row):
            self._rows[cid] = row
            if not full:
                if old is None:
                    self._row_order.add(row_order(row), row)
                else:
                    self._row_order.replace(row_order(old), row_order(row), row)
        before = self._found.get(cid, NO_WARNINGS)
        if found != before:
            self._found[cid] = found
            if not full:
                if len(found) == len(before):  # only the warnings that changed are re-placed
                    for i, (w, old_w) in enumerate(zip(found, before)):
                        if w != old_w:
                            self._warning_order.replace(warning_order(old_w, i), warning_order(w, i), w)
                        elif w is not old_w:
                            found[i] = old_w  # an equal warning keeps the dict already published
                else:
                    for i, w in enumerate(before):
                        self._warning_order.remove(warning_order(w, i))
                    for i, w in enumerate(found):
                        self._warning_order.add(warning_order(w, i), w)

    def _slow_moved(self, slow: Slow) -> tuple[bool, set[str], bool]:
        """A slow part read again (every few minutes; the same day): whether everything must be
        rebuilt (the groups' names or thresholds changed), the centres whose 30-day figures
        changed (history arriving late), and whether an index changed (the ranks move)."""
        old = self._slow
        assert old is not None
        if slow.groups != old.groups or slow.names != old.names or slow.shortest_wait != old.shortest_wait:
            return True, set(), False
        month: set[str] = set()
        if slow.month != old.month:  # one comparison in C first: usually equal
            month = {c for c in slow.month.keys() | old.month.keys() if slow.month.get(c) != old.month.get(c)}
        now_j, old_j = slow.judged or {}, old.judged or {}
        judged: set[str] = set()
        if now_j != old_j:
            judged = {c for c in now_j.keys() | old_j.keys() if now_j.get(c) != old_j.get(c)}
        return False, month | judged, bool(judged)

    def _late_groups_of(self, cid: str) -> list[dict[str, Any]]:
        """A centre's groups past their threshold, by code (the order its warnings are found in)."""
        late = self._late.get(cid)
        return sorted(late.values(), key=lambda g: g["group"]) if late else NO_GROUPS

    def _take_groups(self, rows: list[tuple[Any, ...]], read: set[str], now: datetime, slow: Slow, full: bool) -> set[str]:
        """Take in the ``now_groups`` rows of the centres ``read`` (every centre's on a full
        rebuild), then judge again the kept groups whose moment came (``_due``). A group whose count
        and oldest ticket are unchanged keeps its row. Returns the centres whose late groups changed:
        one entered, left or changed, or passed twice its threshold."""
        now_us = _micros(now)
        moved: set[str] = set()
        fresh: dict[str, dict[str, tuple[Any, Any]]] = {}
        for c, grp, waiting, oldest in rows:
            fresh.setdefault(c, {})[grp or ""] = (waiting, oldest)
        for c in (read | set(fresh)) if not full else set(fresh):
            kept = self._groups.get(c, {})
            now_c = fresh.get(c, {})
            for code, old in list(kept.items()):
                if code not in now_c:  # nobody waits there any more
                    self._put_group(c, code, old, None, full, moved, now_us)
            for code, (waiting, oldest) in now_c.items():
                old = kept.get(code)
                if old is not None and old.waiting == waiting and old.oldest == oldest:
                    continue  # as it was (its moment, if any, is in the heap)
                limit = old.limit if old is not None else group_threshold(slow, self.thresholds, c, code)
                self._put_group(c, code, old, _judged(waiting, oldest, limit, None, now_us), full, moved, now_us, slow)
        due = self._due
        if full:
            heapq.heapify(due)
        while due and due[0][0] <= now_us:  # the groups the time may have moved since the last refresh
            at, c, code = heapq.heappop(due)
            old = self._groups.get(c, {}).get(code)
            if old is not None and old.next_us == at:  # else replaced or gone since it was pushed
                self._put_group(c, code, old, _judged(old.waiting, old.oldest, old.limit, old.g, now_us), full, moved,
                                now_us, slow)
        return moved

    def _put_group(self, c: str, code: str, old: _Group | None, new: _Group | None, full: bool, moved: set[str],
                   now_us: int, slow: Slow | None = None) -> None:
        """A kept group as it is now (None: nobody waits there), its late row in the kept order (made
        when it is first late with these figures) and its next moment in the heap."""
        if new is not None and new.late and new.g is None:
            assert slow is not None
            g = group_row(slow, self.thresholds, c, code)
            g["waiting"], g["longest_since"] = int(new.waiting), new.oldest
            new = _Group(new.waiting, new.oldest, new.us, new.limit, g, new.late, new.high, new.next_us)
        if new is None:
            del self._groups[c][code]
            if not self._groups[c]:
                del self._groups[c]
        else:
            if new.next_us != _NEVER and (old is None or old.next_us != new.next_us or new.next_us <= now_us):
                # its next moment; one already past (a wait of N minutes and a few seconds still rounds
                # to N): the next refresh. A full rebuild orders the heap once at the end.
                if new.next_us <= now_us:
                    new = _Group(new.waiting, new.oldest, new.us, new.limit, new.g, new.late, new.high, now_us + 1)
                if full:
                    self._due.append((new.next_us, c, code))
                else:
                    heapq.heappush(self._due, (new.next_us, c, code))
            self._groups.setdefault(c, {})[code] = new
        was = old is not None and old.late
        late = new is not None and new.late
        if late and (not was or old.g is not new.g):  # entered, or its figures changed
            self._late.setdefault(c, {})[code] = new.g
            if not full:
                if was:
                    self._group_order.replace(group_order(old.g), group_order(new.g), new.g)
                else:
                    self._group_order.add(group_order(new.g), new.g)
            moved.add(c)
        elif late and was and new.high != old.high:
            moved.add(c)
        elif was and not late:
            self._drop_late(c, old.g, full)
            moved.add(c)

    def _drop_late(self, c: str, g: dict[str, Any], full: bool) -> None:
        late = self._late[c]
        del late[g["group"]]
        if not late:
            del self._late[c]
        if not full:
            self._group_order.remove(group_order(g))


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _micros(moment: datetime) -> int:
    """Integer microseconds since the epoch: differences of two are exact, and divided by 10**6
    give the same float as ``timedelta.total_seconds()``."""
    d = moment - _EPOCH
    return (d.days * 86400 + d.seconds) * 10**6 + d.microseconds
