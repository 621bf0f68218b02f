"""Province figures from PostgreSQL: one row per centre, one centre's detail, early warnings.

"Today" is the region's local day, computed from ``now`` on every call (never cached). Totals come
from the ``hourly`` rollups; what needs individual events (people waiting now, the 90th percentile
of waits, the last 30 minutes) reads only today's events through the ``(centre, at)`` index, so the
cost does not grow with history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from region.warnings import Thresholds, centre_warnings

WAITING_SQL = """
WITH last AS (
    SELECT DISTINCT ON (centre, ticket_id) centre, ticket_id, kind, grp
    FROM events
    WHERE at >= %(day)s AND ticket_id IS NOT NULL AND kind LIKE 'ticket.%%' {one}
    ORDER BY centre, ticket_id, at DESC, (kind = 'ticket.issued')
), issued AS (
    SELECT centre, ticket_id, min(at) AS issued_at FROM events
    WHERE at >= %(day)s AND kind = 'ticket.issued' {one} GROUP BY centre, ticket_id
)
SELECT last.centre, last.grp, count(*) AS waiting, min(issued.issued_at) AS oldest
FROM last JOIN issued USING (centre, ticket_id)
WHERE last.kind IN ('ticket.issued', 'ticket.transferred')
GROUP BY last.centre, last.grp
"""

TODAY_SQL = """
SELECT centre, grp, sum(issued) AS issued, sum(called) AS called, sum(wait_sum) AS wait_sum,
       max(wait_max) AS wait_max, sum(served) AS served, sum(no_show) AS no_show,
       sum(ratings) AS ratings, sum(rating_sum) AS rating_sum
FROM hourly WHERE hour >= %(day)s {one} GROUP BY centre, grp
"""

MONTH_SQL = """
SELECT centre, sum(served) AS served, sum(called) AS called, sum(wait_sum) AS wait_sum,
       sum(ratings) AS ratings, sum(rating_sum) AS rating_sum
FROM hourly WHERE hour >= %(month)s AND hour < %(day)s {one} GROUP BY centre
"""

P90_SQL = """
SELECT centre, grp, percentile_cont(0.9) WITHIN GROUP (ORDER BY (data->>'wait_seconds')::float) AS p90
FROM events
WHERE at >= %(day)s AND kind = 'ticket.called' AND data->>'first_call' = 'true' {one}
GROUP BY GROUPING SETS ((centre), (centre, grp))
"""

RECENT_SQL = """
SELECT centre,
       count(*) FILTER (WHERE kind = 'ticket.issued' AND at >= %(window)s) AS issued_recent,
       count(*) FILTER (WHERE kind = 'ticket.called' AND data->>'first_call' = 'true' AND at >= %(window)s) AS called_recent,
       avg((data->>'rating')::float) FILTER (WHERE kind = 'feedback.recorded' AND at >= %(hour)s) AS rating_recent,
       count(*) FILTER (WHERE kind = 'feedback.recorded' AND at >= %(hour)s) AS ratings_recent,
       avg((data->>'rating')::float) FILTER (WHERE kind = 'feedback.recorded' AND at < %(hour)s) AS rating_before,
       count(*) FILTER (WHERE kind = 'feedback.recorded' AND at < %(hour)s) AS ratings_before
FROM events WHERE at >= %(day)s {one} GROUP BY centre
"""

CENTRES_SQL = """
SELECT c.centre, c.name, c.district, c.last_event_at, c.last_heard_at, c.server_online, c.server_at,
       c.bridge_online, c.bridge_at, c.catch_up_at, c.catch_up_error, c.high_water_seq,
       (SELECT count(*) FROM devices d WHERE d.centre = c.centre AND NOT d.online) AS devices_offline,
       (SELECT count(*) FROM devices d WHERE d.centre = c.centre) AS devices_known
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


def _rows(conn: psycopg.Connection[Any], sql: str, params: dict[str, Any], centre: str | None) -> list[dict[str, Any]]:
    one = "AND centre = %(centre)s" if centre else ""
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(sql.format(one=one, where="WHERE c.centre = %(centre)s" if centre else ""),
                    {**params, "centre": centre})
        return list(cur.fetchall())


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if not b else (a or 0) / b


def satisfaction_index(rating_sum: float, ratings: int) -> float | None:
    """0-100 from the 1-4 scale (4 rất hài lòng = 100, 1 không hài lòng = 0)."""
    return None if not ratings else round((rating_sum / ratings - 1) / 3 * 100, 1)


def figures(conn: psycopg.Connection[Any], now: datetime, zone: ZoneInfo, thresholds: Thresholds,
            centre: str | None = None) -> dict[str, Any]:
    """Every centre's row (or one centre's, with its groups) and the warnings, as plain data."""
    win = Window.at(now, zone, thresholds.growth_window_minutes)
    params = {"day": win.day, "month": win.month, "window": win.window, "hour": win.hour}
    centres = {r["centre"]: r for r in _rows(conn, CENTRES_SQL, params, centre)}
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    group_rows = _rows(conn, "SELECT * FROM groups", {}, None)
    thresholds_by_group = {(r["centre"], r["code"]): r for r in group_rows}
    # a centre whose own list is not known yet (its API unreachable) borrows the name another centre
    # gives the same procedure group code, so a leader never reads a bare code such as "ho-tich"
    names_by_code = {r["code"]: r["name"] for r in group_rows}

    def group(c: str, g: str | None) -> dict[str, Any]:
        key = (c, g or "")
        if key not in groups:
            meta = thresholds_by_group.get(key, {})
            groups[key] = {"centre": c, "group": g or "", "name": meta.get("name") or names_by_code.get(g or "") or g or "",
                           "threshold_minutes": meta.get("wait_alert_minutes") or thresholds.default_wait_minutes,
                           "waiting": 0, "longest_wait_minutes": 0.0, "issued": 0, "called": 0, "served": 0,
                           "no_show": 0, "mean_wait_minutes": None, "p90_wait_minutes": None}
        return groups[key]

    for row in _rows(conn, WAITING_SQL, params, centre):
        g = group(row["centre"], row["grp"])
        g["waiting"] = int(row["waiting"])
        g["longest_wait_minutes"] = round(max(0.0, (now - row["oldest"]).total_seconds() / 60), 1)
    for row in _rows(conn, TODAY_SQL, params, centre):
        g = group(row["centre"], row["grp"])
        g.update(issued=int(row["issued"]), called=int(row["called"]), served=int(row["served"]),
                 no_show=int(row["no_show"]), _wait_sum=float(row["wait_sum"]), _ratings=int(row["ratings"]),
                 _rating_sum=int(row["rating_sum"]))
        g["mean_wait_minutes"] = None if not row["called"] else round(float(row["wait_sum"]) / int(row["called"]) / 60, 1)
    p90_centre: dict[str, float] = {}
    for row in _rows(conn, P90_SQL, params, centre):
        if row["grp"] is None:
            p90_centre[row["centre"]] = round(row["p90"] / 60, 1)
        else:
            group(row["centre"], row["grp"])["p90_wait_minutes"] = round(row["p90"] / 60, 1)
    recent = {r["centre"]: r for r in _rows(conn, RECENT_SQL, params, centre)}
    month = {r["centre"]: r for r in _rows(conn, MONTH_SQL, params, centre)}

    rows, warnings = [], []
    for cid, c in centres.items():
        mine = [g for (gc, _), g in groups.items() if gc == cid]
        called = sum(g["called"] for g in mine)
        wait_sum = sum(g.get("_wait_sum", 0.0) for g in mine)
        served = sum(g["served"] for g in mine)
        no_show = sum(g["no_show"] for g in mine)
        ratings = sum(g.get("_ratings", 0) for g in mine)
        rating_sum = sum(g.get("_rating_sum", 0) for g in mine)
        m = month.get(cid) or {}
        r = recent.get(cid) or {}
        row = {
            "centre": cid, "name": c["name"], "district": c["district"],
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
    rows.sort(key=lambda x: (-x["waiting"], -x["longest_wait_minutes"], x["centre"]))
    for g in groups.values():
        for key in ("_wait_sum", "_ratings", "_rating_sum"):
            g.pop(key, None)
    severity = {"cao": 0, "vừa": 1}
    warnings.sort(key=lambda w: (severity.get(w["level"], 2), w["centre"]))
    return {"now": now, "day": win.day.date().isoformat(), "centres": rows, "warnings": warnings,
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
