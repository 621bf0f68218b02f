"""The province dashboard: a small FastAPI app served by the aggregator itself.

Plain HTML, vanilla JavaScript and the centre pages' stylesheet (``server/web/style.css``), nothing
from the internet. Pages: ``/`` (every centre, sortable and filterable, warnings first) and
``/centre/<id>`` (one centre: groups, hours, devices, link). Data: ``/api/overview``,
``/api/centre/<id>``; live: ``/api/stream`` (Server-Sent Events: a "changed" line after every
commit that stored something, and every 20 s so times move on), upon which the page reloads the
figures. Exports: ``/export.csv`` and ``/export.xlsx``. Access: HTTP Basic, user ``tinh`` with the
dashboard secret from the region secrets file (the aggregator listens on 127.0.0.1 by default).
"""

# No "from __future__ import annotations": FastAPI must see the closures used in Depends().

import asyncio
import hmac
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Callable

import psycopg
from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from fastapi.staticfiles import StaticFiles

from region.report import devices, figures, hourly_series, utc_now
from region.settings import DASHBOARD_USER, Region
from region.warnings import Thresholds
from server.reports import table_csv, table_xlsx

WEB_DIR = Path(__file__).resolve().parent / "web"
CENTRE_WEB_DIR = Path(__file__).resolve().parent.parent / "server" / "web"

EXPORT_FIELDS = [
    ("centre", "Mã trung tâm", "Centre id"), ("name", "Trung tâm", "Centre"), ("district", "Quận/huyện", "District"),
    ("waiting", "Đang chờ", "Waiting now"), ("longest_wait_minutes", "Chờ lâu nhất (phút)", "Longest wait (min)"),
    ("mean_wait_minutes", "Chờ trung bình hôm nay (phút)", "Mean wait today (min)"),
    ("p90_wait_minutes", "Chờ P90 hôm nay (phút)", "90th pct wait today (min)"),
    ("issued", "Đã cấp số hôm nay", "Tickets today"), ("served", "Đã phục vụ hôm nay", "Served today"),
    ("no_show_rate", "Tỷ lệ vắng mặt (%)", "No-show rate (%)"), ("satisfaction", "Chỉ số hài lòng (0-100)", "Satisfaction (0-100)"),
    ("devices_offline", "Thiết bị mất kết nối", "Devices offline"), ("link", "Đường truyền", "Link"),
    ("last_event_at", "Sự kiện gần nhất", "Last event"), ("warnings", "Số cảnh báo", "Warnings"),
    ("served_30d", "Đã phục vụ 30 ngày", "Served, 30 days"),
    ("mean_wait_30d_minutes", "Chờ trung bình 30 ngày (phút)", "Mean wait, 30 days (min)"),
]


def _plain(value: Any, zone: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
    return "" if value is None else value


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _export_rows(rows: list[dict[str, Any]], zone: Any) -> list[list[Any]]:
    return [[_plain(row.get(key), zone) for key, _, _ in EXPORT_FIELDS] for row in rows]


def export_csv(rows: list[dict[str, Any]], zone: Any) -> bytes:
    return table_csv(EXPORT_FIELDS, _export_rows(rows, zone))


def export_xlsx(rows: list[dict[str, Any]], title: str, zone: Any) -> bytes:
    return table_xlsx(EXPORT_FIELDS, _export_rows(rows, zone), title, "Tỉnh", freeze="C4", wide=frozenset({"name", "centre"}))


def create_app(region: Region, dsn: str, changed: Any = None, clock: Callable[[], datetime] = utc_now) -> FastAPI:
    """``changed``: a threading.Event set by the intake after each commit (live updates)."""
    app = FastAPI(title="Luot – tỉnh", docs_url=None, redoc_url=None, openapi_url=None)
    basic = HTTPBasic(realm="Luot tinh")
    secret = region.secrets[DASHBOARD_USER]
    thresholds = Thresholds(region.zone, offline_after_minutes=region.info.offline_after_minutes,
                            growth_window_minutes=region.info.growth_window_minutes)

    def viewer(credentials: Annotated[HTTPBasicCredentials, Depends(basic)]) -> str:
        ok_user = hmac.compare_digest(credentials.username.encode(), DASHBOARD_USER.encode())
        ok_pass = hmac.compare_digest(credentials.password.encode(), secret.encode())
        if not (ok_user and ok_pass):
            raise HTTPException(401, "Sai tên đăng nhập hoặc mật khẩu / wrong username or password",
                                headers={"WWW-Authenticate": 'Basic realm="Luot tinh"'})
        return credentials.username

    def query(fn: Callable[[psycopg.Connection[Any]], Any]) -> Any:
        with psycopg.connect(dsn) as conn:
            conn.execute("SET TIME ZONE 'UTC'")
            return fn(conn)

    def overview() -> dict[str, Any]:
        started = time.perf_counter()
        result = query(lambda conn: figures(conn, clock(), region.zone, thresholds))
        result["query_ms"] = round((time.perf_counter() - started) * 1000, 1)
        result["region"] = {"id": region.info.id, "name": region.info.name, "timezone": region.info.timezone}
        return result

    app.mount("/static", StaticFiles(directory=CENTRE_WEB_DIR), name="static")
    app.mount("/region-static", StaticFiles(directory=WEB_DIR), name="region-static")

    @app.get("/", include_in_schema=False)
    def index(who: Annotated[str, Depends(viewer)]) -> FileResponse:
        return FileResponse(WEB_DIR / "province.html", headers={"Cache-Control": "no-store"})

    @app.get("/centre/{centre}", include_in_schema=False)
    def centre_page(centre: str, who: Annotated[str, Depends(viewer)]) -> FileResponse:
        if centre not in region.centres:
            raise HTTPException(404, "Không có trung tâm này / no such centre")
        return FileResponse(WEB_DIR / "centre.html", headers={"Cache-Control": "no-store"})

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"ok": True, "connected": bool(changed is not None)}

    @app.get("/api/overview")
    def api_overview(who: Annotated[str, Depends(viewer)]) -> JSONResponse:
        return JSONResponse(_jsonable(overview()))

    @app.get("/api/centre/{centre}")
    def api_centre(centre: str, who: Annotated[str, Depends(viewer)]) -> JSONResponse:
        if centre not in region.centres:
            raise HTTPException(404, "Không có trung tâm này / no such centre")

        def load(conn: psycopg.Connection[Any]) -> dict[str, Any]:
            now = clock()
            result = figures(conn, now, region.zone, thresholds, centre=centre)
            result["hours"] = hourly_series(conn, centre, now, region.zone)
            result["devices"] = devices(conn, centre)
            result["region"] = {"id": region.info.id, "name": region.info.name, "timezone": region.info.timezone}
            return result

        return JSONResponse(_jsonable(query(load)))

    @app.get("/api/stream")
    async def stream(who: Annotated[str, Depends(viewer)]) -> StreamingResponse:
        async def lines() -> Any:
            yield "retry: 3000\n\n"
            last = time.monotonic()
            while True:
                fired = False
                if changed is not None and changed.is_set():
                    changed.clear()
                    fired = True
                if fired or time.monotonic() - last > 20:
                    last = time.monotonic()
                    yield f"data: {json.dumps({'changed': fired})}\n\n"
                await asyncio.sleep(1.0)

        return StreamingResponse(lines(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    def _title() -> str:
        return f"Luot – {region.info.name} – {clock().astimezone(region.zone):%d/%m/%Y %H:%M}"

    @app.get("/export.csv")
    def csv_export(who: Annotated[str, Depends(viewer)]) -> Response:
        rows = overview()["centres"]
        name = f"luot-{region.info.id}-{clock().astimezone(region.zone):%Y%m%d-%H%M}.csv"
        return Response(export_csv(rows, region.zone), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @app.get("/export.xlsx")
    def xlsx_export(who: Annotated[str, Depends(viewer)]) -> Response:
        rows = overview()["centres"]
        name = f"luot-{region.info.id}-{clock().astimezone(region.zone):%Y%m%d-%H%M}.xlsx"
        return Response(export_xlsx(rows, _title(), region.zone),
                        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    return app
