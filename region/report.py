"""Province figures from PostgreSQL: one row per centre, one centre's detail, early warnings.

"Today" is the region's local day, computed from ``now`` on every call. Nothing here reads events:
the tables :mod:`region.store` maintains in each event's transaction hold the figures already
(``now_groups``: waiting now and since when; ``daily``: today's sums and wait histogram;
``recent``: 5-minute buckets for the growth and satisfaction warnings), so a call reads a few rows
per centre whatever the hour or the history. The 30-day columns (``daily`` before today) do not
change during the day: :func:`month_figures` is computed apart so a caller can keep it for minutes.
"""

from __future__ import annotations

from dataclasses import dataclass
from time import perf_counter
from datetime import datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from region.warnings import Thresholds, centre_warnings

NOW_SQL = """
SELECT centre, grp, waiting, oldest FROM now_groups WHERE day = %(today)s AND waiting > 0 {one}
"""

TODAY_SQL = """
SELECT centre, grp, issued, called, wait_sum, wait_max, served, no_show, ratings, rating_sum, wait_p90
FROM daily WHERE day = %(today)s {one}
"""

P90_SQL = """
SELECT centre, wait_p90 FROM daily_centre WHERE day = %(today)s AND wait_p90 IS NOT NULL {one}
"""

MONTH_SQL = """
SELECT centre, sum(served) AS served, sum(called) AS called, sum(wait_sum) AS wait_sum,
       sum(ratings) AS ratings, sum(rating_sum) AS rating_sum
FROM daily WHERE day >= %(month_day)s AND day < %(today)s {one} GROUP BY centre
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

CENTRES_SQL = """
SELECT c.centre, c.name, c.ward, c.last_event_at, c.last_heard_at, c.server_online, c.server_at,
       c.bridge_online, c.bridge_at, c.catch_up_at, c.catch_up_error, c.high_water_seq,
       c.devices_offline, c.devices_known
FROM centres c {where} ORDER BY c.centre
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


def _rows(conn: psycopg.Connection[Any], sql: str, params: dict[str, Any], centre: str | None,
          spent: list[float] | None = None) -> list[dict[str, Any]]:
    """The rows of one statement; ``spent``: add the seconds it took (the benchmark splits SQL from Python)."""
    started = perf_counter()
    one = "AND centre = %(centre)s" if centre else ""
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(sql.format(one=one, where="WHERE c.centre = %(centre)s" if centre else ""),
                    {**params, "centre": centre})
        rows = list(cur.fetchall())
    if spent is not None:
        spent.append(perf_counter() - started)
    return rows


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
    rather than every couple of seconds: at 3,321 centres the 30 days are half a million rows."""

    day: str
    month: dict[str, dict[str, Any]]
    groups: list[dict[str, Any]]
    judged: dict[str, dict[str, Any]] | None = None  # per centre: dossiers and flagged (Decision 766)


def slow_figures(conn: psycopg.Connection[Any], now: datetime, zone: ZoneInfo, centre: str | None = None) -> Slow:
    win = Window.at(now, zone)
    params = {"today": win.day.date(), "month_day": win.month.date()}
    month = {r["centre"]: r for r in _rows(conn, MONTH_SQL, params, centre)}
    judged = {r["centre"]: r for r in _rows(conn, INDEX_766_SQL, params, centre)}
    return Slow(win.day.date().isoformat(), month, _rows(conn, "SELECT * FROM groups", {}, None), judged)


def figures(conn: psycopg.Connection[Any], now: datetime, zone: ZoneInfo, thresholds: Thresholds,
            centre: str | None = None, slow: Slow | None = None) -> dict[str, Any]:
    """Every centre's row (or one centre's, with its groups) and the warnings, as plain data.
    ``slow``: :func:`slow_figures` of the same day, when the caller keeps it (else read now)."""
    win = Window.at(now, zone, thresholds.growth_window_minutes)
    if slow is None or slow.day != win.day.date().isoformat():
        slow = slow_figures(conn, now, zone, centre)
    params = {"day": win.day, "today": win.day.date(), "window": win.window, "hour": win.hour}
    spent: list[float] = []
    centres = {r["centre"]: r for r in _rows(conn, CENTRES_SQL, params, centre, spent)}
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    thresholds_by_group = {(r["centre"], r["code"]): r for r in slow.groups}
    # a centre whose own list is not known yet (its API unreachable) borrows the name another centre
    # gives the same procedure group code, so a leader never reads a bare code such as "ho-tich"
    names_by_code = {r["code"]: r["name"] for r in slow.groups}

    def group(c: str, g: str | None) -> dict[str, Any]:
        key = (c, g or "")
        if key not in groups:
            meta = thresholds_by_group.get(key, {})
            groups[key] = {"centre": c, "group": g or "", "name": meta.get("name") or names_by_code.get(g or "") or g or "",
                           "threshold_minutes": meta.get("wait_alert_minutes") or thresholds.default_wait_minutes,
                           "waiting": 0, "longest_wait_minutes": 0.0, "issued": 0, "called": 0, "served": 0,
                           "no_show": 0, "mean_wait_minutes": None, "p90_wait_minutes": None}
        return groups[key]

    for row in _rows(conn, NOW_SQL, params, centre, spent):
        g = group(row["centre"], row["grp"])
        g["waiting"] = int(row["waiting"])
        g["longest_wait_minutes"] = round(max(0.0, (now - row["oldest"]).total_seconds() / 60), 1) if row["oldest"] else 0.0
    for row in _rows(conn, TODAY_SQL, params, centre, spent):
        g = group(row["centre"], row["grp"])
        g.update(issued=int(row["issued"]), called=int(row["called"]), served=int(row["served"]),
                 no_show=int(row["no_show"]), _wait_sum=float(row["wait_sum"]), _ratings=int(row["ratings"]),
                 _rating_sum=int(row["rating_sum"]))
        g["mean_wait_minutes"] = None if not row["called"] else round(float(row["wait_sum"]) / int(row["called"]) / 60, 1)
        g["_wait_max"] = float(row["wait_max"]) / 60
        if row["wait_p90"] is not None:  # one-minute buckets interpolate: never above the longest wait
            g["p90_wait_minutes"] = round(min(row["wait_p90"], g["_wait_max"]), 1)
    longest_today: dict[str, float] = {}
    for g in groups.values():
        longest_today[g["centre"]] = max(longest_today.get(g["centre"], 0.0), g.get("_wait_max", 0.0))
    p90_centre = {r["centre"]: round(min(r["wait_p90"], longest_today.get(r["centre"], r["wait_p90"])), 1)
                  for r in _rows(conn, P90_SQL, params, centre, spent)}
    recent: dict[str, dict[str, Any]] = {}
    for r in _rows(conn, RECENT_SQL, params, centre, spent):
        ratings_recent, rating_sum_recent = int(r["ratings_recent"] or 0), int(r["rating_sum_recent"] or 0)
        recent[r["centre"]] = {"issued_recent": int(r["issued_recent"] or 0), "called_recent": int(r["called_recent"] or 0),
                               "ratings_recent": ratings_recent, "rating_recent": _ratio(rating_sum_recent, ratings_recent),
                               "_rating_sum_recent": rating_sum_recent}
    month = slow.month

    by_centre: dict[str, list[dict[str, Any]]] = {}
    for (gc, _), g in groups.items():
        by_centre.setdefault(gc, []).append(g)
    rows, warnings = [], []
    for cid, c in centres.items():
        mine = by_centre.get(cid, [])
        called = sum(g["called"] for g in mine)
        wait_sum = sum(g.get("_wait_sum", 0.0) for g in mine)
        served = sum(g["served"] for g in mine)
        no_show = sum(g["no_show"] for g in mine)
        ratings = sum(g.get("_ratings", 0) for g in mine)
        rating_sum = sum(g.get("_rating_sum", 0) for g in mine)
        m = month.get(cid) or {}
        r = recent.get(cid) or {}
        # the day's ratings before the last hour: today's minus the last hour's
        r["ratings_before"] = max(0, ratings - int(r.get("ratings_recent") or 0))
        r["rating_before"] = _ratio(rating_sum - int(r.get("_rating_sum_recent") or 0), r["ratings_before"])
        row = {
            "centre": cid, "name": c["name"], "ward": c["ward"],
            "waiting": sum(g["waiting"] for g in mine),
            "longest_wait_minutes": max((g["longest_wait_minutes"] for g in mine), default=0.0),
            "mean_wait_minutes": None if not called else round(wait_sum / called / 60, 1),
            "p90_wait_minutes": p90_centre.get(cid),
            "issued": sum(g["issued"] for g in mine), "served": served,
            "no_show_rate": None if not (served + no_show) else round(no_show / (served + no_show) * 100, 1),
            "satisfaction": satisfaction_index(rating_sum, ratings), "ratings": ratings,
            "devices_offline": int(c["devices_offline"]),
            "served_30d": int(m.get("served") or 0),
            "mean_wait_30d_minutes": None if not m.get("called") else round(float(m["wait_sum"]) / int(m["called"]) / 60, 1),
            "satisfaction_30d": satisfaction_index(float(m.get("rating_sum") or 0), int(m.get("ratings") or 0)),
            "dossiers_30d": int((slow.judged or {}).get(cid, {}).get("dossiers") or 0),
            "index_766": index_766(int((slow.judged or {}).get(cid, {}).get("dossiers") or 0),
                                   int((slow.judged or {}).get(cid, {}).get("flagged") or 0)),
            "last_event_at": c["last_event_at"], "last_heard_at": c["last_heard_at"],
            "server_online": c["server_online"], "bridge_online": c["bridge_online"], "bridge_at": c["bridge_at"],
            "server_at": c["server_at"], "catch_up_at": c["catch_up_at"], "catch_up_error": c["catch_up_error"],
            "issued_recent": int(r.get("issued_recent") or 0), "called_recent": int(r.get("called_recent") or 0),
        }
        found = centre_warnings(row, mine, r, now, thresholds)
        row["warnings"] = len(found)
        row["link"] = link_status(row, now, thresholds)
        rows.append(row)
        warnings += found
    # the province's ranking by the Decision 766 index: 1 = best; centres without dossiers unranked
    ranked = sorted((r for r in rows if r["index_766"] is not None), key=lambda x: (-x["index_766"], -x["dossiers_30d"], x["centre"]))
    for place, row in enumerate(ranked, start=1):
        row["rank_766"] = place
    for row in rows:
        row.setdefault("rank_766", None)
    rows.sort(key=lambda x: (-x["waiting"], -x["longest_wait_minutes"], x["centre"]))
    for g in groups.values():
        for key in ("_wait_sum", "_ratings", "_rating_sum", "_wait_max"):
            g.pop(key, None)
    severity = {"cao": 0, "vừa": 1}
    warnings.sort(key=lambda w: (severity.get(w["level"], 2), w["centre"]))
    return {"now": now, "day": win.day.date().isoformat(), "sql_ms": round(sum(spent) * 1000, 1),
            "centres": rows, "warnings": warnings,
            "groups": sorted(groups.values(), key=lambda g: (g["centre"], -g["waiting"], g["group"]))}


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
