"""Province figures from PostgreSQL: one row per centre, one centre's detail, early warnings.

"Today" is the region's local day, computed from ``now`` on every call. Nothing here reads events:
the tables :mod:`region.store` maintains in each batch's transaction hold the figures already
(``daily_centre``: a centre's day in one row, sums and wait histogram; ``now_groups``: waiting now
and since when; ``recent``: 5-minute buckets for the growth and satisfaction warnings). The
overview is one statement returning one row per centre (issue 19: it used to read a row per centre
and group and assemble them in Python), plus the few groups waiting past their threshold, the only
group rows its warnings need. One centre's detail also reads its groups (``daily``). The 30-day
columns (``daily_centre`` before today) do not change during the day: :func:`slow_figures` is
computed apart so a caller can keep it for minutes.

Rows and group rows carry when their longest wait began (``longest_since``), and warnings that
count minutes their ``since`` (region.warnings), never minutes: whoever shows them adds the minutes
at the moment shown (:func:`with_longest_wait`, region.warnings.with_minutes), so the province's
kept snapshot (region.overview) changes only with the data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from time import perf_counter
from datetime import datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from region.warnings import Thresholds, centre_warnings, minutes_since

NOW_SQL = """
SELECT centre, grp, waiting, oldest FROM now_groups WHERE day = %(today)s AND waiting > 0 {one}
"""

TODAY_SQL = """
SELECT centre, grp, issued, called, wait_sum, wait_max, served, no_show, ratings, rating_sum, wait_p90
FROM daily WHERE day = %(today)s {one}
"""

MONTH_SQL = """
SELECT centre, sum(served) AS served, sum(called) AS called, sum(wait_sum) AS wait_sum,
       sum(ratings) AS ratings, sum(rating_sum) AS rating_sum
FROM daily_centre WHERE day >= %(month_day)s AND day < %(today)s {one} GROUP BY centre
"""

# 5-minute buckets overlapping the window (so the growth window is 30-35 minutes, not 30)
RECENT_SQL = """
SELECT centre,
       sum(issued) FILTER (WHERE bucket > %(window)s - interval '5 minutes') AS issued_recent,
       sum(called) FILTER (WHERE bucket > %(window)s - interval '5 minutes') AS called_recent,
       sum(ratings) FILTER (WHERE bucket > %(hour)s - interval '5 minutes') AS ratings_recent,
       sum(rating_sum) FILTER (WHERE bucket > %(hour)s - interval '5 minutes') AS rating_sum_recent
FROM recent WHERE bucket > least(%(window)s, %(hour)s) - interval '5 minutes' AND bucket >= %(day)s {one}
GROUP BY centre
"""

# One row per centre: its link and devices, today's sums, who waits now.
OVERVIEW_SQL = """
WITH now_c AS (
    SELECT centre, sum(waiting)::int AS waiting, min(oldest) AS oldest FROM now_groups
    WHERE day = %(today)s AND waiting > 0 {one} GROUP BY centre
)
SELECT c.centre, c.name, c.ward, c.last_event_at, c.last_heard_at, c.server_online, c.server_at,
       c.bridge_online, c.bridge_at, c.catch_up_at, c.catch_up_error, c.devices_offline,
       coalesce(n.waiting, 0), n.oldest, coalesce(t.issued, 0), coalesce(t.called, 0), coalesce(t.wait_sum, 0),
       coalesce(t.wait_max, 0), coalesce(t.served, 0), coalesce(t.no_show, 0), coalesce(t.ratings, 0),
       coalesce(t.rating_sum, 0), t.wait_p90
FROM centres c
LEFT JOIN daily_centre t ON t.day = %(today)s AND t.centre = c.centre
LEFT JOIN now_c n ON n.centre = c.centre
{where}
"""

# The groups someone has waited in longer than the shortest threshold of any group: a superset of
# the long-wait warnings (each group's own threshold, and the rule with its rounding, are applied in
# Python: region.warnings), usually a few rows.
LATE_SQL = """
SELECT centre, grp, waiting, oldest FROM now_groups
WHERE day = %(today)s AND waiting > 0 AND oldest < %(now)s - make_interval(mins => %(shortest_wait)s) {one}
"""


@dataclass(frozen=True)
class Window:
    now: datetime
    day: datetime  # start of the local day, as an aware time
    month: datetime  # 30 days before the day
    window: datetime  # start of the growth window
    hour: datetime  # an hour ago

    @classmethod
    def at(cls, now: datetime, zone: ZoneInfo, growth_minutes: int = 30) -> "Window":
        local = now.astimezone(zone)
        day = datetime.combine(local.date(), time(0), zone)
        return cls(now, day, day - timedelta(days=30), now - timedelta(minutes=growth_minutes), now - timedelta(hours=1))


def _run(conn: psycopg.Connection[Any], sql: str, params: dict[str, Any], centre: str | None,
         spent: list[float] | None, row_factory: Any) -> list[Any]:
    """The rows of one statement; ``spent``: add the seconds it took (the benchmark splits SQL from Python)."""
    started = perf_counter()
    one = "AND centre = %(centre)s" if centre else ""
    with conn.cursor(row_factory=row_factory) as cur:
        cur.execute(sql.format(one=one, where="WHERE c.centre = %(centre)s" if centre else ""),
                    {**params, "centre": centre})
        rows = list(cur.fetchall())
    if spent is not None:
        spent.append(perf_counter() - started)
    return rows


def _rows(conn: psycopg.Connection[Any], sql: str, params: dict[str, Any], centre: str | None,
          spent: list[float] | None = None) -> list[dict[str, Any]]:
    return _run(conn, sql, params, centre, spent, psycopg.rows.dict_row)


def _tuples(conn: psycopg.Connection[Any], sql: str, params: dict[str, Any], centre: str | None,
            spent: list[float] | None = None) -> list[tuple[Any, ...]]:
    """As :func:`_rows`, as plain tuples: the overview's thousands of rows without a dict each."""
    return _run(conn, sql, params, centre, spent, psycopg.rows.tuple_row)


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if not b else (a or 0) / b


def satisfaction_index(rating_sum: float, ratings: int) -> float | None:
    """0-100 from the 1-4 scale (4 rất hài lòng = 100, 1 không hài lòng = 0)."""
    return None if not ratings else round((rating_sum / ratings - 1) / 3 * 100, 1)


INDEX_766_SQL = """
SELECT centre, count(*) AS dossiers,
       count(*) FILTER (WHERE dissatisfied OR (appointment IS NOT NULL AND
                        coalesce(returned_on, %(today)s::date + 1) > appointment
                        AND (returned_on IS NOT NULL OR appointment < %(today)s))) AS flagged
FROM dossiers WHERE day >= %(month_day)s AND day <= %(today)s {one} GROUP BY centre
"""
"""Decision 766/QĐ-TTg per centre over the dossiers received in the last 30 days, today included:
a dossier counts against the index when its ticket was rated below 'bình thường', or it was
returned after its appointment, or it is still not returned after it (the centre's own report,
server/reports.py, counts the same way; complaints are not recorded by Luot)."""


def index_766(dossiers: int, flagged: int) -> float | None:
    return None if not dossiers else round((dossiers - flagged) / dossiers * 100, 1)


@dataclass(frozen=True)
class Slow:
    """What changes slowly: the 30 days before today per centre, and the procedure groups' names and
    thresholds. Read apart so the shared snapshot (region.dashboard) re-reads it every few minutes
    rather than every couple of seconds."""

    day: str
    month: dict[str, dict[str, Any]]
    groups: list[dict[str, Any]]
    judged: dict[str, dict[str, Any]] | None = None  # per centre: dossiers and flagged (Decision 766)
    by_key: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    """``groups`` by (centre, code)."""
    names: dict[str, str] = field(default_factory=dict)
    """A group code's name as some centre gives it: for a centre whose own list is not known yet
    (its API unreachable), so a leader never reads a bare code such as "ho-tich"."""
    shortest_wait: int = 30
    """The smallest ``wait_alert_minutes`` of any group: who waited less is no long-wait warning."""


def slow_figures(conn: psycopg.Connection[Any], now: datetime, zone: ZoneInfo, centre: str | None = None) -> Slow:
    win = Window.at(now, zone)
    params = {"today": win.day.date(), "month_day": win.month.date()}
    month = {r["centre"]: r for r in _rows(conn, MONTH_SQL, params, centre)}
    groups = _rows(conn, "SELECT * FROM groups", {}, None)
    judged = {r["centre"]: r for r in _rows(conn, INDEX_766_SQL, params, centre)}
    return Slow(win.day.date().isoformat(), month, groups, judged, {(r["centre"], r["code"]): r for r in groups},
                {r["code"]: r["name"] for r in groups},
                min((int(r["wait_alert_minutes"]) for r in groups if r["wait_alert_minutes"]), default=30))


@dataclass(frozen=True)
class Recent:
    """Per centre, the 5-minute buckets of the growth window and of the last hour summed: (tickets
    issued, first calls, ratings, rating sum). The buckets make these windows 30-35 and 60-65
    minutes wide already, so the shared snapshot re-reads them every ``RECENT_AGE`` seconds (at
    3,321 centres they are 40,000 rows at the end of a day, most of a refresh's SQL time)."""

    day: str
    by_centre: dict[str, tuple[int, int, int, int]]


def recent_figures(conn: psycopg.Connection[Any], now: datetime, zone: ZoneInfo, thresholds: Thresholds,
                   centre: str | None = None, spent: list[float] | None = None) -> Recent:
    win = Window.at(now, zone, thresholds.growth_window_minutes)
    params = {"day": win.day, "window": win.window, "hour": win.hour}
    return Recent(win.day.date().isoformat(),
                  {c: (int(i or 0), int(k or 0), int(r or 0), int(rs or 0))
                   for c, i, k, r, rs in _tuples(conn, RECENT_SQL, params, centre, spent)})


def figures(conn: psycopg.Connection[Any], now: datetime, zone: ZoneInfo, thresholds: Thresholds,
            centre: str | None = None, slow: Slow | None = None, recent: Recent | None = None) -> dict[str, Any]:
    """Every centre's row (or one centre's) and the warnings, as plain data. ``groups``: one
    centre's view lists all its groups today; the overview lists only the groups waiting past their
    threshold (what its warnings are about). ``slow``, ``recent``: :func:`slow_figures` and
    :func:`recent_figures` of the same day, when the caller keeps them (else read now)."""
    win = Window.at(now, zone, thresholds.growth_window_minutes)
    today = win.day.date().isoformat()
    if slow is None or slow.day != today:
        slow = slow_figures(conn, now, zone, centre)
    params = read_params(now, zone, thresholds, slow)
    spent: list[float] = []
    if recent is None or recent.day != today:
        recent = recent_figures(conn, now, zone, thresholds, centre, spent)
    recent_by_centre = recent.by_centre
    groups: dict[tuple[str, str], dict[str, Any]] = {}

    def group(c: str, g: str | None) -> dict[str, Any]:
        key = (c, g or "")
        if key not in groups:
            groups[key] = group_row(slow, thresholds, c, g)
        return groups[key]

    for row in _rows(conn, NOW_SQL if centre else LATE_SQL, params, centre, spent):
        g = group(row["centre"], row["grp"])
        g["waiting"] = int(row["waiting"])
        g["longest_since"] = row["oldest"]  # as a row's: the minutes are computed where they are shown
        if not centre and minutes_since(now, row["oldest"]) <= g["threshold_minutes"]:
            del groups[(g["centre"], g["group"])]  # within its own, longer threshold
    if centre:  # the detail page's table of groups
        for row in _rows(conn, TODAY_SQL, params, centre, spent):
            g = group(row["centre"], row["grp"])
            g.update(issued=int(row["issued"]), called=int(row["called"]), served=int(row["served"]),
                     no_show=int(row["no_show"]))
            g["mean_wait_minutes"] = None if not row["called"] else round(float(row["wait_sum"]) / int(row["called"]) / 60, 1)
            if row["wait_p90"] is not None:  # one-minute buckets interpolate: never above the longest wait
                g["p90_wait_minutes"] = round(min(row["wait_p90"], float(row["wait_max"]) / 60), 1)
    by_centre: dict[str, list[dict[str, Any]]] = {}
    for g in sorted(groups.values(), key=lambda g: g["group"]):  # a centre's warnings in the order of its groups' codes
        by_centre.setdefault(g["centre"], []).append(g)
    rows, warnings = [], []
    for raw in _tuples(conn, OVERVIEW_SQL, params, centre, spent):
        row, found, _ = overview_row(raw, now, slow, recent_by_centre, by_centre.get(raw[0], NO_GROUPS), thresholds)
        rows.append(row)
        warnings.append(found)
    rank_766(rows)
    result = ordered(now, win.day.date().isoformat(), round(sum(spent) * 1000, 1), rows, warnings, groups)
    result["recent"] = recent_part(recent_by_centre)
    return result


def read_params(now: datetime, zone: ZoneInfo, thresholds: Thresholds, slow: Slow) -> dict[str, Any]:
    """The parameters of the overview's statements at ``now``."""
    win = Window.at(now, zone, thresholds.growth_window_minutes)
    return {"day": win.day, "today": win.day.date(), "window": win.window, "hour": win.hour, "now": now,
            "shortest_wait": min(slow.shortest_wait, thresholds.default_wait_minutes)}


def group_threshold(slow: Slow, thresholds: Thresholds, c: str, g: str | None) -> int:
    """A group's wait threshold in minutes (its own ``wait_alert_minutes``, else the default)."""
    return slow.by_key.get((c, g or ""), {}).get("wait_alert_minutes") or thresholds.default_wait_minutes


def group_row(slow: Slow, thresholds: Thresholds, c: str, g: str | None) -> dict[str, Any]:
    """A group's row before its figures: its name and threshold (from ``slow``)."""
    meta = slow.by_key.get((c, g or ""), {})
    return {"centre": c, "group": g or "", "name": meta.get("name") or slow.names.get(g or "") or g or "",
            "threshold_minutes": group_threshold(slow, thresholds, c, g),
            "waiting": 0, "longest_since": None, "issued": 0, "called": 0, "served": 0,
            "no_show": 0, "mean_wait_minutes": None, "p90_wait_minutes": None}


def overview_row(raw: tuple[Any, ...], now: datetime, slow: Slow, recent_by_centre: dict[str, tuple[int, int, int, int]],
                 groups: list[dict[str, Any]], thresholds: Thresholds
                 ) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """One centre's overview row, its warnings and the recent figures they were judged on, from its
    OVERVIEW_SQL tuple (``groups``: its groups waiting past their threshold). ``rank_766`` is set
    by :func:`rank_766` over all rows."""
    (cid, name, ward, last_event_at, last_heard_at, server_online, server_at, bridge_online, bridge_at,
     catch_up_at, catch_up_error, devices_offline, waiting, oldest, issued, called, wait_sum, wait_max,
     served, no_show, ratings, rating_sum, p90) = raw
    m = slow.month.get(cid)
    judged = (slow.judged or {}).get(cid, {})
    recent = recent_context(raw, recent_by_centre)
    row = {
        "centre": cid, "name": name, "ward": ward, "waiting": waiting,
        # when the longest-waiting ticket was issued, not its minutes: the row then changes only with
        # the data (the page computes the minutes from the snapshot's ``now``; exports: longest_wait_minutes)
        "longest_since": oldest,
        "mean_wait_minutes": None if not called else round(wait_sum / called / 60, 1),
        # one-minute buckets interpolate: never above the day's longest wait
        "p90_wait_minutes": None if p90 is None else round(min(p90, wait_max / 60), 1),
        "issued": issued, "served": served,
        "no_show_rate": None if not (served + no_show) else round(no_show / (served + no_show) * 100, 1),
        "satisfaction": satisfaction_index(rating_sum, ratings), "ratings": ratings,
        "devices_offline": devices_offline,
        "served_30d": int(m["served"] or 0) if m else 0,
        "mean_wait_30d_minutes": None if not (m and m["called"]) else round(float(m["wait_sum"]) / int(m["called"]) / 60, 1),
        "satisfaction_30d": satisfaction_index(float(m["rating_sum"] or 0), int(m["ratings"] or 0)) if m else None,
        "dossiers_30d": int(judged.get("dossiers") or 0),
        "index_766": index_766(int(judged.get("dossiers") or 0), int(judged.get("flagged") or 0)),
        "last_event_at": last_event_at, "last_heard_at": last_heard_at,
        "server_online": server_online, "bridge_online": bridge_online, "bridge_at": bridge_at,
        "server_at": server_at, "catch_up_at": catch_up_at, "catch_up_error": catch_up_error,
    }
    return row, judge(row, recent, groups, now, thresholds), recent


def recent_context(raw: tuple[Any, ...], recent_by_centre: dict[str, tuple[int, int, int, int]]) -> dict[str, Any]:
    """A centre's recent figures (the growth and satisfaction warnings judge them; the row shows the
    first two), from its OVERVIEW_SQL tuple and the 5-minute buckets (:class:`Recent`)."""
    ratings, rating_sum = raw[20], raw[21]  # OVERVIEW_SQL: ratings, rating_sum
    issued_recent, called_recent, ratings_recent, rating_sum_recent = recent_by_centre.get(raw[0], NO_RECENT)
    ratings_before = max(0, ratings - ratings_recent)
    return {"issued_recent": issued_recent, "called_recent": called_recent, "ratings_recent": ratings_recent,
            "rating_recent": _ratio(rating_sum_recent, ratings_recent), "ratings_before": ratings_before,
            "rating_before": _ratio(rating_sum - rating_sum_recent, ratings_before)}


def recent_part(recent_by_centre: dict[str, tuple[int, int, int, int]]) -> dict[str, list[int]]:
    """The overview's ``recent`` part: per centre with 5-minute buckets, tickets issued and first
    calls in the growth window. Apart from the rows (issue 19): they move for almost every centre
    each time the buckets are re-read, and a row that stays the same keeps its encoded JSON
    (region.rowjson); the page does not show them, the growth warning's text does."""
    return {c: [r[0], r[1]] for c, r in recent_by_centre.items()}


def judge(row: dict[str, Any], recent: dict[str, Any], groups: list[dict[str, Any]], now: datetime,
          thresholds: Thresholds) -> list[dict[str, Any]]:
    """A centre's warnings at ``now``, with its ``warnings`` count and ``link`` put in its row (a
    row being built: see :func:`rejudge` for a kept one)."""
    found = centre_warnings(row, groups, recent, now, thresholds)
    row["warnings"] = len(found)
    row["link"] = link_status(row, now, thresholds)
    return found


def rejudge(row: dict[str, Any], recent: dict[str, Any], groups: list[dict[str, Any]], now: datetime,
            thresholds: Thresholds) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A kept row's warnings at ``now`` (the part of a row that moves with the time alone:
    region.overview judges a kept row again without rebuilding it). The row is not changed: the
    same row when its ``warnings`` count and ``link`` stand, else a new one with them."""
    found = centre_warnings(row, groups, recent, now, thresholds)
    link = link_status(row, now, thresholds)
    if row["warnings"] != len(found) or row["link"] != link:
        row = {**row, "warnings": len(found), "link": link}
    return row, found


def ranks_766(rows: Any) -> dict[str, int]:
    """The province's ranking by the Decision 766 index: 1 = best; centres without dossiers unranked
    (not in the result)."""
    ranked = sorted((r for r in rows if r["index_766"] is not None), key=lambda x: (-x["index_766"], -x["dossiers_30d"], x["centre"]))
    return {row["centre"]: place for place, row in enumerate(ranked, start=1)}


def rank_766(rows: list[dict[str, Any]]) -> None:
    """:func:`ranks_766` put in ``rows`` as ``rank_766`` (rows being built, never kept ones)."""
    ranks = ranks_766(rows)
    for row in rows:
        row["rank_766"] = ranks.get(row["centre"])


SEVERITY = {"cao": 0, "vừa": 1}


def row_order(row: dict[str, Any]) -> tuple[Any, ...]:
    """Where a centre row goes: longest queues first (most waiting, then the earliest start)."""
    return -row["waiting"], row["longest_since"] or NEVER, row["centre"]


def warning_order(w: dict[str, Any], place: int) -> tuple[Any, ...]:
    """Where a warning goes: the worst first, then by centre, then in the order its centre's were
    found (``place``: its index among them)."""
    return SEVERITY.get(w["level"], 2), w["centre"], place


def group_order(g: dict[str, Any]) -> tuple[Any, ...]:
    """Where a group row goes: by centre, the most waiting first."""
    return g["centre"], -g["waiting"], g["group"]


def ordered(now: datetime, day: str, sql_ms: float, rows: list[dict[str, Any]], found: list[list[dict[str, Any]]],
            groups: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    """The overview as the dashboard serves it: longest queues first, the worst warnings first
    (``found``: each centre's warnings). region.overview keeps the same orders as it goes."""
    rows.sort(key=row_order)
    warnings = [w for _, w in sorted(((warning_order(w, i), w) for each in found for i, w in enumerate(each)),
                                     key=lambda kw: kw[0])]
    return {"now": now, "day": day, "sql_ms": sql_ms, "centres": rows, "warnings": warnings,
            "groups": sorted(groups.values(), key=group_order)}


NO_GROUPS: list[dict[str, Any]] = []

NEVER = datetime.max.replace(tzinfo=timezone.utc)
"""Sorts after every start: a centre where nobody waits has the shortest longest wait."""


def longest_wait_minutes(row: dict[str, Any], now: datetime) -> float:
    """A centre's or a group's longest wait at ``now`` in minutes (0 when nobody waits), from its ``longest_since``."""
    return minutes_since(now, row["longest_since"])


def with_longest_wait(rows: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """``rows`` (centre or group rows) with ``longest_wait_minutes`` at ``now`` put in, in place
    (exports, the national view, one centre's page: computed once where it is shown, not in every
    refresh; never on the shared snapshot's rows, which are kept: copy them first)."""
    for row in rows:
        row["longest_wait_minutes"] = longest_wait_minutes(row, now)
    return rows


NO_RECENT = (0, 0, 0, 0)


def link_status(row: dict[str, Any], now: datetime, thresholds: Thresholds) -> str:
    """``ok``, ``bridge-down``, ``server-down``, ``silent`` or ``unknown`` (never heard)."""
    if row["bridge_online"] is False:
        return "bridge-down"
    if row["server_online"] is False:
        return "server-down"
    heard = row["last_heard_at"]
    if heard is None:
        return "unknown"
    if now - heard > timedelta(minutes=thresholds.offline_after_minutes) and thresholds.working_hours(now):
        return "silent"
    return "ok"


def hourly_series(conn: psycopg.Connection[Any], centre: str, now: datetime, zone: ZoneInfo) -> list[dict[str, Any]]:
    win = Window.at(now, zone)
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute("SELECT hour, sum(issued) AS issued, sum(served) AS served, sum(called) AS called, "
                    "sum(wait_sum) AS wait_sum FROM hourly WHERE centre = %s AND hour >= %s GROUP BY hour ORDER BY hour",
                    (centre, win.day))
        return [{"hour": r["hour"].astimezone(zone).strftime("%H:00"), "issued": int(r["issued"]), "served": int(r["served"]),
                 "mean_wait_minutes": None if not r["called"] else round(float(r["wait_sum"]) / int(r["called"]) / 60, 1)}
                for r in cur.fetchall()]


def devices(conn: psycopg.Connection[Any], centre: str) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute("SELECT device, online, at FROM devices WHERE centre = %s ORDER BY online, device", (centre,))
        return list(cur.fetchall())


def utc_now() -> datetime:
    return datetime.now(timezone.utc)
