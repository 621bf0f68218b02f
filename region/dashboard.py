"""The province dashboard: a small FastAPI app, served by ``luot region`` from its own process
(region.dashboard_process) beside the intake, or from the intake's process (``--dashboard-in-process``).

Plain HTML, vanilla JavaScript and the centre pages' stylesheet (``server/web/style.css``), nothing
from the internet. Pages: ``/`` (every centre, sortable and filterable, warnings first) and
``/centre/<id>`` (one centre: groups, hours, devices, link). Data: ``/api/overview``,
``/api/centre/<id>``; live: ``/api/stream`` (Server-Sent Events: a "changed" line when the intake
committed something since this viewer's last line, at most every ``NOTIFY_EVERY`` seconds, and
every 20 s so times move on), upon which the page reloads the figures. ``/api/overview`` is one
snapshot shared by every viewer (:class:`region.live.Cached`), refreshed by what changed
(:class:`region.overview.Overview`, on one kept connection) at most every
``SNAPSHOT_MAX_AGE`` seconds however many pages are open, encoded and gzipped once for all of
them (the 5-minute buckets every ``RECENT_AGE`` s, the 30 days every ``SLOW_AGE`` s). Exports: ``/export.csv`` and ``/export.xlsx``. Access: HTTP Basic, user ``tinh`` with the
dashboard secret from the region secrets file (the aggregator listens on 127.0.0.1 by default).
"""

# No "from __future__ import annotations": FastAPI must see the closures used in Depends().

import asyncio
import gc
import gzip
import hmac
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Callable, Literal

import psycopg
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from fastapi.staticfiles import StaticFiles

from region.live import Cached, ChangeSignal, version_of
from region.bookings import TodayBookings, add_booking_figures, booking_columns
from region.joined import Joined
from region.overview import Overview
from region.rowjson import RowJson
from region.report import (Slow, devices, figures, hourly_series, recent_figures, slow_figures, utc_now,
                           with_longest_wait)
from region.settings import DASHBOARD_USER, Region
from region.warnings import Thresholds, with_minutes
from server.reports import table_csv, table_xlsx

WEB_DIR = Path(__file__).resolve().parent / "web"
CENTRE_WEB_DIR = Path(__file__).resolve().parent.parent / "server" / "web"

EXPORT_FIELDS = [
    ("centre", "Mã trung tâm", "Centre id"), ("name", "Trung tâm", "Centre"), ("ward", "Phường/xã/đặc khu", "Ward/commune"),
    ("waiting", "Đang chờ", "Waiting now"), ("longest_wait_minutes", "Chờ lâu nhất (phút)", "Longest wait (min)"),
    ("mean_wait_minutes", "Chờ trung bình hôm nay (phút)", "Mean wait today (min)"),
    ("p90_wait_minutes", "Chờ P90 hôm nay (phút)", "90th pct wait today (min)"),
    ("issued", "Đã cấp số hôm nay", "Tickets today"), ("served", "Đã phục vụ hôm nay", "Served today"),
    ("no_show_rate", "Tỷ lệ vắng mặt (%)", "No-show rate (%)"), ("satisfaction", "Chỉ số hài lòng (0-100)", "Satisfaction (0-100)"),
    ("index_766", "Chỉ số hài lòng theo QĐ 766, 30 ngày (%)", "Decision 766 index, 30 days (%)"),
    ("rank_766", "Xếp hạng theo QĐ 766", "Rank by Decision 766"), ("dossiers_30d", "Hồ sơ 30 ngày", "Dossiers, 30 days"),
    ("devices_offline", "Thiết bị mất kết nối", "Devices offline"), ("link", "Đường truyền", "Link"),
    ("last_event_at", "Sự kiện gần nhất", "Last event"), ("warnings", "Số cảnh báo", "Warnings"),
    ("remote", "Số trực tuyến hôm nay", "Remote numbers today"), ("remote_share", "Tỷ lệ số trực tuyến (%)", "Remote share (%)"),
    ("no_show", "Vắng mặt hôm nay", "No-shows today"), ("lapsed", "Số hẹn không đến", "Bookings lapsed"),
    ("wait_walk_in_minutes", "Chờ TB số trực tiếp (phút)", "Mean wait, walk-in (min)"),
    ("wait_remote_minutes", "Chờ TB số trực tuyến, từ khi đến (phút)", "Mean wait, remote, from check-in (min)"),
    ("wait_appointment_minutes", "Chờ TB số hẹn (phút)", "Mean wait, appointment (min)"),
    ("served_30d", "Đã phục vụ 30 ngày", "Served, 30 days"),
    ("mean_wait_30d_minutes", "Chờ trung bình 30 ngày (phút)", "Mean wait, 30 days (min)"),
]


def _plain(value: Any, zone: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
    return "" if value is None else value


def json_default(value: Any) -> str:
    """json.dumps' fallback: the only values it cannot encode itself are times."""
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


def _export_rows(rows: list[dict[str, Any]], zone: Any) -> list[list[Any]]:
    return [[_plain(row.get(key), zone) for key, _, _ in EXPORT_FIELDS] for row in rows]


def export_csv(rows: list[dict[str, Any]], zone: Any, excel_vi: bool = False) -> bytes:
    """``excel_vi``: ';' between fields and ',' in decimals, for Excel under a Vietnamese Windows
    region (server.reports.table_csv, docs/ratings.md); else RFC 4180 commas."""
    return table_csv(EXPORT_FIELDS, _export_rows(rows, zone), excel_vi)


def export_xlsx(rows: list[dict[str, Any]], title: str, zone: Any) -> bytes:
    return table_xlsx(EXPORT_FIELDS, _export_rows(rows, zone), title, "Tỉnh", freeze="C4", wide=frozenset({"name", "centre"}))


SNAPSHOT_MAX_AGE = 2.0
"""Seconds: the province figures are recomputed at most this often, for all viewers together."""
SNAPSHOT_IDLE_AGE = 15.0
"""Seconds: with no commit meanwhile, the snapshot is still recomputed this often (waits grow)."""
RECENT_AGE = 30.0
"""Seconds: the growth and satisfaction windows' 5-minute buckets are re-read this often (region.report.Recent)."""
GZIP_LEVEL = 5
"""The overview is compressed once per snapshot: at 3,321 centres its JSON is megabytes, per viewer."""
SLOW_AGE = 300.0
"""Seconds: the 30-day columns and group names are re-read this often (and when the day changes)."""
NOTIFY_EVERY = 2.0
HEARTBEAT = 20.0


def basic_viewer(user: str, secret: str, realm: str) -> Callable[..., str]:
    """The FastAPI dependency of a dashboard read with HTTP Basic: one user, its secret, compared in
    constant time (the province's ``tinh``, the nation's ``quocgia``)."""
    basic = HTTPBasic(realm=realm)

    def viewer(credentials: Annotated[HTTPBasicCredentials, Depends(basic)]) -> str:
        ok_user = hmac.compare_digest(credentials.username.encode(), user.encode())
        ok_pass = hmac.compare_digest(credentials.password.encode(), secret.encode())
        if not (ok_user and ok_pass):
            raise HTTPException(401, "Sai tên đăng nhập hoặc mật khẩu / wrong username or password",
                                headers={"WWW-Authenticate": f'Basic realm="{realm}"'})
        return credentials.username

    return viewer


def create_app(region: Region, dsn: str, changed: ChangeSignal | None = None,
               clock: Callable[[], datetime] = utc_now) -> FastAPI:
    """``changed``: the intake's :class:`ChangeSignal`, moved after each commit (live updates)."""
    app = FastAPI(title="Luot – tỉnh", docs_url=None, redoc_url=None, openapi_url=None)
    viewer = basic_viewer(DASHBOARD_USER, region.secrets[DASHBOARD_USER], "Luot tinh")
    thresholds = Thresholds(region.zone, offline_after_minutes=region.info.offline_after_minutes,
                            growth_window_minutes=region.info.growth_window_minutes)

    def query(fn: Callable[[psycopg.Connection[Any]], Any]) -> Any:
        with psycopg.connect(dsn) as conn:
            conn.execute("SET TIME ZONE 'UTC'")
            return fn(conn)

    slow = Cached(lambda: query(lambda conn: slow_figures(conn, clock(), region.zone)), SLOW_AGE)

    def day_slow() -> Slow:
        value = slow.get()
        if value.day != clock().astimezone(region.zone).date().isoformat():  # midnight: a new 30 days
            slow.forget()
            value = slow.get()
        return value

    recent = Cached(lambda: query(lambda conn: recent_figures(conn, clock(), region.zone, thresholds)), RECENT_AGE)

    kept = Overview(region.zone, thresholds)
    bookings = TodayBookings(region.zone)
    rows_json = RowJson(json_default)
    booked = Joined()  # the rows with their booking columns, as new dicts: the refresh's rows are shared (region.overview)
    held: list[psycopg.Connection[Any]] = []  # the snapshot's own connection, kept between refreshes

    def refresh(reference: Slow, lately: Any) -> dict[str, Any]:
        """The overview by what changed since the last snapshot (region.overview), on one kept connection."""
        if not held or held[0].closed:
            conn = psycopg.connect(dsn, autocommit=True)
            conn.execute("SET TIME ZONE 'UTC'")
            held[:] = [conn]
            kept.forget()
            bookings.forget()
        try:
            now = clock()
            # today's booking counts and waits: maintained rows (region.store), the changed centres' only,
            # read in the overview's own transaction (one snapshot for the rows and their booking columns)
            result = kept.refresh(held[0], now, reference, lately, also=lambda conn, snapshot: bookings.read_in(conn, now, snapshot))
            if kept.last.full:  # the kept rows, warnings and groups out of the interpreter's full collections
                gc.collect()  # (they hold no reference cycles: still freed when replaced); rare (region.overview)
                gc.freeze()
            # joined into new dicts (the refresh's rows are shared with the next refreshes: region.overview)
            found = bookings.current
            result["centres"] = booked.rows(result["centres"], lambda centre: booking_columns(found, centre))
            return result
        except psycopg.OperationalError:
            held[0].close()  # reconnect (and rebuild) next time
            raise

    def compute() -> tuple[dict[str, Any], bytes, bytes]:
        """The figures and their JSON, encoded (and compressed) once for every viewer."""
        reference = day_slow()
        lately = recent.get()
        started = time.perf_counter()
        result = refresh(reference, lately)
        result["query_ms"] = round((time.perf_counter() - started) * 1000, 1)
        result["refresh"] = {"full": kept.last.full, "centres_read": kept.last.read, "rows_rebuilt": kept.last.rebuilt}
        result["region"] = {"id": region.info.id, "name": region.info.name, "timezone": region.info.timezone}
        encoding = time.perf_counter()
        body = rows_json.dumps(result)  # only the rows that changed since the last snapshot are encoded again
        app.state.encode = {"ms": round((time.perf_counter() - encoding) * 1000, 1), "rows_encoded": rows_json.encoded}
        return result, body, gzip.compress(body, GZIP_LEVEL)

    snapshot = Cached(compute, SNAPSHOT_MAX_AGE, SNAPSHOT_IDLE_AGE, changed)
    app.state.snapshot = snapshot  # the benchmark counts its computations

    def overview() -> dict[str, Any]:
        return snapshot.get()[0]

    def exported() -> list[dict[str, Any]]:
        """The snapshot's rows with their longest wait in minutes at the snapshot's time (copies)."""
        snap = overview()
        return with_longest_wait([dict(r) for r in snap["centres"]], snap["now"])

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
    def api_overview(request: Request, who: Annotated[str, Depends(viewer)]) -> JSONResponse:
        result, body, packed = snapshot.get()
        spent = {"X-Query-Ms": str(result.get("query_ms", ""))}  # the benchmark's pages read it without decoding
        if "gzip" in request.headers.get("accept-encoding", ""):  # compressed once, not once per viewer
            return Response(packed, media_type="application/json",
                            headers={"Content-Encoding": "gzip", "Vary": "Accept-Encoding", **spent})
        return Response(body, media_type="application/json", headers={"Vary": "Accept-Encoding", **spent})

    @app.get("/api/centre/{centre}")
    def api_centre(centre: str, who: Annotated[str, Depends(viewer)]) -> JSONResponse:
        if centre not in region.centres:
            raise HTTPException(404, "Không có trung tâm này / no such centre")

        def load(conn: psycopg.Connection[Any]) -> dict[str, Any]:
            now = clock()
            result = add_booking_figures(figures(conn, now, region.zone, thresholds, centre=centre, slow=day_slow()),
                                         conn, now, region.zone, centre)
            with_longest_wait(result["centres"] + result["groups"], now)  # they carry when the wait began
            with_minutes(result["warnings"], now, result["recent"])  # their minutes and the growing one's counts
            result["hours"] = hourly_series(conn, centre, now, region.zone)
            result["devices"] = devices(conn, centre)
            result["region"] = {"id": region.info.id, "name": region.info.name, "timezone": region.info.timezone}
            return result

        return JSONResponse(jsonable(query(load)))

    @app.get("/api/stream")
    async def stream(who: Annotated[str, Depends(viewer)]) -> StreamingResponse:
        async def lines() -> Any:
            yield "retry: 3000\n\n"
            last = time.monotonic()
            seen = version_of(changed)  # this viewer's own mark: no viewer clears another's news
            while True:
                now = time.monotonic()
                version = version_of(changed)
                fired = version != seen and now - last >= NOTIFY_EVERY
                if fired or now - last > HEARTBEAT:
                    last, seen = now, version if fired else seen
                    yield f"data: {json.dumps({'changed': fired})}\n\n"
                await asyncio.sleep(0.5)

        return StreamingResponse(lines(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    def _title() -> str:
        return f"Luot – {region.info.name} – {clock().astimezone(region.zone):%d/%m/%Y %H:%M}"

    @app.get("/export.csv")
    def csv_export(who: Annotated[str, Depends(viewer)], excel: Literal["vi"] | None = None) -> Response:
        rows = exported()
        name = f"luot-{region.info.id}-{clock().astimezone(region.zone):%Y%m%d-%H%M}.csv"
        return Response(export_csv(rows, region.zone, excel == "vi"), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @app.get("/export.xlsx")
    def xlsx_export(who: Annotated[str, Depends(viewer)]) -> Response:
        rows = exported()
        name = f"luot-{region.info.id}-{clock().astimezone(region.zone):%Y%m%d-%H%M}.xlsx"
        return Response(export_xlsx(rows, _title(), region.zone),
                        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    return app
