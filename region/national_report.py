"""National figures from the replicated summary rows: provinces ranked, centres ranked, warnings.

Nothing is recomputed differently from a province: the province dashboard's own
:func:`region.report.figures` runs in a schema of views (:func:`region.national.ensure_views`:
``p_all`` for the country, each centre id prefixed with its province; ``p_<code>`` for one
province), so every centre row and every early warning is exactly what the province's leader
sees, plus a province column. On top of them: one row per province (sums,
and means weighted by what they average), and one more warning the province cannot give, that the
province's rows stopped arriving (its subscription cut, disconnected or silent).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql

from region.national import ALL, SEPARATOR, replication_status, view_schema
from region.report import Slow, figures, satisfaction_index, slow_figures, with_longest_wait
from region.warnings import Thresholds, with_minutes

TOP_CENTRES = 100
"""Centres in the national ranking sent to every viewer (all of them: /api/province/<code>)."""
SEVERITY = {"cao": 0, "vừa": 1}


def link_state(status: dict[str, Any] | None, stale_after: timedelta) -> str:
    """``ok``, ``copying`` (initial copy), ``cut`` (subscription disabled), ``disconnected`` (enabled,
    no worker: the province unreachable), ``silent`` (connected, nothing heard for ``stale_after`` by
    the database's clock: a province sends a keep-alive at least every 30 s), ``none`` (never set up)."""
    if not status or status.get("enabled") is None:
        return "none"
    if not status["enabled"]:
        return "cut"
    if not status["connected"]:
        return "disconnected"
    if status.get("tables_copying"):
        return "copying"
    quiet = status.get("quiet_seconds")
    if quiet is not None and quiet > stale_after.total_seconds():
        return "silent"
    return "ok"


def _replication_warning(code: str, name: str, state: str, latest: datetime | None, zone: ZoneInfo) -> dict[str, Any]:
    since = latest.astimezone(zone).strftime("%H:%M %d/%m") if latest else "?"
    why_vi = {"cut": "đồng bộ đã bị tạm dừng", "disconnected": "không kết nối được tới máy chủ của tỉnh",
              "silent": "máy chủ của tỉnh không phản hồi", "none": "chưa thiết lập đồng bộ"}.get(state, state)
    why_en = {"cut": "replication is paused", "disconnected": "the province's server cannot be reached",
              "silent": "the province's server is silent", "none": "replication is not set up"}.get(state, state)
    return {"centre": None, "name": name, "province": code, "province_name": name, "level": "cao", "kind": "replication",
            "vi": f"Số liệu của {name} dừng ở {since}: {why_vi}; các con số của tỉnh có thể đã cũ.",
            "en": f"{name}'s figures stop at {since}: {why_en}; its numbers may be out of date."}


def province_row(code: str, name: str, rows: list[dict[str, Any]], warnings: list[dict[str, Any]], state: str) -> dict[str, Any]:
    """One province from its centre rows: sums, and means weighted by what they average (the mean
    wait by the people called, taken as served plus no-shows; satisfaction by the ratings). Only
    the centre rows are used: the overview's group rows list only the groups past their threshold."""
    served = sum(r["served"] for r in rows)
    no_shows = {r["centre"]: (r["no_show_rate"] * r["served"] / (100 - r["no_show_rate"])
                              if r["no_show_rate"] is not None and r["no_show_rate"] < 100 else 0.0) for r in rows}
    called = {r["centre"]: r["served"] + no_shows[r["centre"]] for r in rows if r["mean_wait_minutes"] is not None}
    wait = sum(r["mean_wait_minutes"] * called[r["centre"]] for r in rows if r["centre"] in called)
    no_show = sum(no_shows.values())
    ratings = sum(r["ratings"] for r in rows)
    rated = sum(r["satisfaction"] * r["ratings"] for r in rows if r["satisfaction"] is not None)
    latest = max((r["last_heard_at"] for r in rows if r["last_heard_at"] is not None), default=None)
    return {
        "province": code, "name": name, "centres": len(rows),
        "reporting": sum(1 for r in rows if r["issued"] or r["waiting"]),
        "waiting": sum(r["waiting"] for r in rows),
        "longest_wait_minutes": max((r["longest_wait_minutes"] for r in rows), default=0.0),
        "mean_wait_minutes": round(wait / sum(called.values()), 1) if sum(called.values()) else None,
        "issued": sum(r["issued"] for r in rows), "served": served,
        "no_show_rate": None if not (served + no_show) else round(no_show / (served + no_show) * 100, 1),
        # back from 0-100 to the 1-4 sums satisfaction_index takes, weighted by each centre's ratings
        "satisfaction": satisfaction_index(rated / 100 * 3 + ratings, ratings) if ratings else None,
        "centres_offline": sum(1 for r in rows if r["link"] not in ("ok", "unknown")),
        "warnings_high": sum(1 for w in warnings if w["level"] == "cao"),
        "warnings": len(warnings), "replication": state, "latest_heard_at": latest,
    }


def _report(conn: psycopg.Connection[Any], schema: str, now: datetime, zone: ZoneInfo, thresholds: Thresholds,
            slow: dict[str, Slow]) -> dict[str, Any] | None:
    """The province dashboard's own figures, run in a schema of views (None: no such schema yet)."""
    if not conn.execute("SELECT to_regnamespace(%s) IS NOT NULL", (schema,)).fetchone()[0]:
        return None
    conn.execute(sql.SQL("SET search_path TO {}, public").format(sql.Identifier(schema)))
    try:
        day = now.astimezone(zone).date().isoformat()
        if schema not in slow or slow[schema].day != day:
            slow[schema] = slow_figures(conn, now, zone)
        result = figures(conn, now, zone, thresholds, slow=slow[schema])
        with_longest_wait(result["centres"], now)  # the rows carry the start; the national view ranks by minutes
        # and the warnings their slots (minutes, the growing one's counts): the page prints them as they are
        with_minutes(result["warnings"], now, result["recent"])
        return result
    finally:
        conn.execute("RESET search_path")


def national_figures(conn: psycopg.Connection[Any], now: datetime, zone: ZoneInfo, thresholds: Thresholds,
                     slow: dict[str, Slow] | None = None, stale_after: timedelta = timedelta(minutes=5),
                     top: int = TOP_CENTRES, only: str | None = None) -> dict[str, Any]:
    """Provinces ranked (most urgent warnings first), the ``top`` centres of the country ranked the
    same way, and every warning. One run of :func:`region.report.figures` over every province
    (schema ``p_all``, centre ids ``<province>/<centre>``, split again here), or over one
    (``only``: that province, with all its centres). ``slow``: the 30-day part per schema, kept by
    the caller (filled here when missing or of another day)."""
    started = time.perf_counter()
    slow = {} if slow is None else slow
    status = {r["code"]: r for r in replication_status(conn)}
    provinces = [(r[0], r[1]) for r in conn.execute("SELECT code, name FROM provinces ORDER BY code")
                 if only is None or r[0] == only]
    names = dict(provinces)
    rows: dict[str, list[dict[str, Any]]] = {code: [] for code in names}
    found: dict[str, list[dict[str, Any]]] = {code: [] for code in names}
    result = _report(conn, ALL if only is None else view_schema(only), now, zone, thresholds, slow)
    if result is not None:
        for item, into in [(r, rows) for r in result["centres"]] + [(w, found) for w in result["warnings"]]:
            code, centre = item["centre"].split(SEPARATOR, 1) if only is None else (only, item["centre"])
            if code in names:
                item.update(centre=centre, province=code, province_name=names[code])
                into[code].append(item)
    ranking, centres, warnings = [], [], []
    for code, name in provinces:
        state = link_state(status.get(code), stale_after)
        row = province_row(code, name, rows[code], found[code], state)
        ranking.append(row)
        if state != "ok" and state != "copying":  # stale figures: the province goes to the top
            warnings.append(_replication_warning(code, name, state, row["latest_heard_at"], zone))
            row["warnings_high"] += 1
            row["warnings"] += 1
        centres += rows[code]
        warnings += found[code]
    ranking.sort(key=lambda p: (p["replication"] in ("ok", "copying"), -p["warnings_high"], -p["longest_wait_minutes"],
                                -p["waiting"], p["province"]))
    centres.sort(key=lambda c: (-c["warnings"], -c["longest_wait_minutes"], -c["waiting"], c["province"], c["centre"]))
    rank = {p["province"]: i for i, p in enumerate(ranking)}  # within a level, provinces in their ranking's order
    warnings.sort(key=lambda w: (SEVERITY.get(w["level"], 2), w["kind"] != "replication", rank[w["province"]], w["centre"] or ""))
    totals = {k: sum(p[k] for p in ranking) for k in ("centres", "waiting", "issued", "served", "warnings", "warnings_high", "centres_offline")}
    return {"now": now, "day": now.astimezone(zone).date().isoformat(), "provinces": ranking,
            "centres": centres if only else centres[:top], "centres_total": len(centres), "warnings": warnings,
            "totals": totals, "sql_ms": result["sql_ms"] if result else 0.0,
            "query_ms": round((time.perf_counter() - started) * 1000, 1)}
