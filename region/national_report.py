"""National figures from the replicated summary rows: provinces ranked, centres ranked, warnings.

Nothing is recomputed differently from a province: for each province the province dashboard's own
:func:`region.report.figures` runs in that province's schema of views (``p_<code>``, made by
:func:`region.national.ensure_views`), so every centre row and every early warning is exactly what
the province's leader sees, plus a province column. On top of them: one row per province (sums,
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

from region.national import replication_status, view_schema
from region.report import Slow, figures, satisfaction_index, slow_figures
from region.warnings import Thresholds

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


def province_row(code: str, name: str, result: dict[str, Any] | None, state: str) -> dict[str, Any]:
    """One province from its centre and group rows: sums, and means weighted by what they average."""
    rows = result["centres"] if result else []
    groups = result["groups"] if result else []
    called = sum(g["called"] for g in groups if g["mean_wait_minutes"] is not None)
    wait = sum(g["mean_wait_minutes"] * g["called"] for g in groups if g["mean_wait_minutes"] is not None)
    served, no_show = sum(g["served"] for g in groups), sum(g["no_show"] for g in groups)
    ratings = sum(r["ratings"] for r in rows)
    rated = sum(r["satisfaction"] * r["ratings"] for r in rows if r["satisfaction"] is not None)
    warnings = result["warnings"] if result else []
    latest = max((r["last_heard_at"] for r in rows if r["last_heard_at"] is not None), default=None)
    return {
        "province": code, "name": name, "centres": len(rows),
        "reporting": sum(1 for r in rows if r["issued"] or r["waiting"]),
        "waiting": sum(r["waiting"] for r in rows),
        "longest_wait_minutes": max((r["longest_wait_minutes"] for r in rows), default=0.0),
        "mean_wait_minutes": round(wait / called, 1) if called else None,
        "issued": sum(r["issued"] for r in rows), "served": served,
        "no_show_rate": None if not (served + no_show) else round(no_show / (served + no_show) * 100, 1),
        # back from 0-100 to the 1-4 sums satisfaction_index takes, weighted by each centre's ratings
        "satisfaction": satisfaction_index(rated / 100 * 3 + ratings, ratings) if ratings else None,
        "centres_offline": sum(1 for r in rows if r["link"] not in ("ok", "unknown")),
        "warnings_high": sum(1 for w in warnings if w["level"] == "cao"),
        "warnings": len(warnings), "replication": state, "latest_heard_at": latest,
    }


def national_figures(conn: psycopg.Connection[Any], now: datetime, zone: ZoneInfo, thresholds: Thresholds,
                     slow: dict[str, Slow] | None = None, stale_after: timedelta = timedelta(minutes=5),
                     top: int = TOP_CENTRES, only: str | None = None) -> dict[str, Any]:
    """Provinces ranked (most urgent warnings first), the ``top`` centres of the country ranked the
    same way, and every warning. ``slow``: per province the 30-day part, kept by the caller (filled
    here when missing or of another day). ``only``: one province, with all its centres."""
    started = time.perf_counter()
    slow = {} if slow is None else slow
    status = {r["code"]: r for r in replication_status(conn)}
    provinces = [(r[0], r[1]) for r in conn.execute("SELECT code, name FROM provinces ORDER BY code")]
    day = now.astimezone(zone).date().isoformat()
    ranking, centres, warnings, sql_ms = [], [], [], 0.0
    for code, name in provinces:
        if only is not None and code != only:
            continue
        state = link_state(status.get(code), stale_after)
        has_views = conn.execute("SELECT to_regnamespace(%s) IS NOT NULL", (view_schema(code),)).fetchone()[0]
        result = None
        if has_views:
            conn.execute(sql.SQL("SET search_path TO {}, public").format(sql.Identifier(view_schema(code))))
            try:
                if code not in slow or slow[code].day != day:
                    slow[code] = slow_figures(conn, now, zone)
                result = figures(conn, now, zone, thresholds, slow=slow[code])
            finally:
                conn.execute("RESET search_path")
            sql_ms += result["sql_ms"]
            for row in result["centres"]:
                row.update(province=code, province_name=name)
            for w in result["warnings"]:
                w.update(province=code, province_name=name)
        row = province_row(code, name, result, state)
        ranking.append(row)
        if state != "ok" and state != "copying":  # stale figures: the province goes to the top
            warnings.append(_replication_warning(code, name, state, row["latest_heard_at"], zone))
            row["warnings_high"] += 1
            row["warnings"] += 1
        if result:
            centres += result["centres"]
            warnings += result["warnings"]
    ranking.sort(key=lambda p: (p["replication"] in ("ok", "copying"), -p["warnings_high"], -p["longest_wait_minutes"],
                                -p["waiting"], p["province"]))
    centres.sort(key=lambda c: (-c["warnings"], -c["longest_wait_minutes"], -c["waiting"], c["province"], c["centre"]))
    warnings.sort(key=lambda w: (SEVERITY.get(w["level"], 2), w["kind"] != "replication", w["province"], w["centre"] or ""))
    totals = {k: sum(p[k] for p in ranking) for k in ("centres", "waiting", "issued", "served", "warnings", "warnings_high", "centres_offline")}
    return {"now": now, "day": day, "provinces": ranking, "centres": centres if only else centres[:top],
            "centres_total": len(centres), "warnings": warnings, "totals": totals,
            "sql_ms": round(sql_ms, 1), "query_ms": round((time.perf_counter() - started) * 1000, 1)}
