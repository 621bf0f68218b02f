"""Web pages served by the centre: counter console, manager dashboard, reports, citizen tracking.

Pages are plain HTML, CSS and small vanilla JavaScript under ``server/web/`` (nothing is loaded
from the internet). They use the JSON API and two Server-Sent Event streams fed by
:class:`server.live.LiveHub`:

- ``GET /api/v1/stream`` (officers, managers): the queue snapshot and events after every commit;
- ``GET /api/v1/track/{token}/stream`` (anyone with the QR code): that one ticket's public view.

Reports are exported as CSV (UTF-8 with BOM) and XLSX. :func:`mount_pages` is the only entry,
called once from :func:`server.api.create_app`.
"""

# No "from __future__ import annotations": FastAPI must see the closures used in Depends().

import html
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles

from server.live import LiveHub, public_ticket, sse
from server.reports import build_report, to_csv, to_xlsx
from server.service import CentreService

WEB_DIR = Path(__file__).resolve().parent / "web"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# path -> (file, the title of its sign-in form in Vietnamese and English; None: a public page)
PAGES: dict[str, tuple[str, tuple[str, str] | None]] = {
    "/console": ("console.html", ("Đăng nhập", "Sign in")),
    "/dashboard": ("dashboard.html", ("Đăng nhập quản lý", "Manager sign in")),
    "/reports": ("reports.html", ("Đăng nhập quản lý", "Manager sign in")),
    "/": ("index.html", None),
}
STAFF_LOGIN_MARK = "<!--#staff-login-->"

NOT_FOUND_PAGE = """<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Không tìm thấy vé</title><link rel="stylesheet" href="/static/track.css"></head>
<body><main class="track"><h1>Không tìm thấy vé</h1>
<p>Hãy kiểm tra lại mã QR trên vé, hoặc hỏi quầy hướng dẫn.</p>
<p lang="en" class="en">Ticket not found. Check the QR code on your ticket or ask the help desk.</p>
</main></body></html>
"""


def _json_for_script(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_page(file_name: str, login_title: tuple[str, str] | None) -> str:
    """A page's HTML, with the staff sign-in form (server/web/staff_login.html, one copy for the
    three staff pages) put where the page marks it, under the page's own title."""
    text = (WEB_DIR / file_name).read_text(encoding="utf-8")
    if login_title is None:
        return text
    title, title_en = login_title
    form = ((WEB_DIR / "staff_login.html").read_text(encoding="utf-8")
            .replace("{{login_title}}", html.escape(title)).replace("{{login_title_en}}", html.escape(title_en)))
    if STAFF_LOGIN_MARK not in text:
        raise ValueError(f"{file_name}: a staff page must mark where its sign-in form goes with {STAFF_LOGIN_MARK}")
    return text.replace(STAFF_LOGIN_MARK + "\n", form, 1)


def mount_pages(app: FastAPI, service: CentreService) -> LiveHub:
    """Add the pages, static files, live streams and report exports to ``app``."""
    hub = LiveHub(service)
    app.state.live = hub
    require = app.state.require
    staff = require("officer", "manager")
    manager = require("manager")
    config = service.config
    track_template = (WEB_DIR / "track.html").read_text(encoding="utf-8")

    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")

    def page(file_name: str, login_title: tuple[str, str] | None):
        text = render_page(file_name, login_title)

        async def serve() -> HTMLResponse:
            return HTMLResponse(text, headers={"Cache-Control": "no-cache"})
        return serve

    for path, (file_name, login_title) in PAGES.items():
        app.add_api_route(path, page(file_name, login_title), methods=["GET"], include_in_schema=False)

    @app.get("/api/v1/me", tags=["staff"])
    async def me(who: Annotated[Any, Depends(require("officer", "manager"))]) -> dict[str, Any]:
        """Who the session belongs to: the pages ask this to decide whether to show the login form."""
        return {"username": who.id, "role": who.role}

    @app.get("/api/v1/dashboard", tags=["reports"])
    async def dashboard_settings(who: Annotated[Any, Depends(manager)]) -> dict[str, Any]:
        """What the dashboard needs besides the snapshot: alert thresholds, and whether device
        availability is known at all (it comes from the MQTT link, absent when MQTT is off)."""
        link = app.state.link
        return {"centre": config.centre.name,
                "wait_alert_minutes": {g.code: config.wait_alert_minutes(g.code) for g in config.groups},
                "availability_known": bool(link is not None and hasattr(link, "devices_status")),
                "mqtt_connected": bool(link is not None and getattr(link, "connected", False))}

    # ------------------------------------------------------------------ live streams
    @app.get("/api/v1/stream", tags=["live"], response_class=StreamingResponse)
    async def staff_stream(who: Annotated[Any, Depends(staff)]) -> StreamingResponse:
        """Server-Sent Events for the console and dashboard: ``update`` {snapshot, events} after
        every commit, starting with the current snapshot; a comment line every 15 s."""
        first = sse("update", {"snapshot": service.engine.snapshot(service.now()), "events": []})
        subscriber = hub.subscribe("staff")
        return StreamingResponse(hub.stream(subscriber, first), media_type="text/event-stream", headers=SSE_HEADERS)

    @app.get("/api/v1/track/{token}/stream", tags=["live"], response_class=StreamingResponse)
    async def ticket_stream(token: str) -> Response:
        """Server-Sent Events for one ticket: ``ticket`` with its public view whenever it changes."""
        found = await public_ticket(service, token) if 1 <= len(token) <= 64 else None
        if found is None:
            return Response(json.dumps({"error": "ticket_not_found",
                                        "message": "Không tìm thấy vé. Hãy kiểm tra lại mã trên vé.",
                                        "message_en": "Ticket not found. Check the code on your ticket."},
                                       ensure_ascii=False), status_code=404, media_type="application/json")
        live_id, view = found
        first = sse("ticket", view)
        subscriber = hub.subscribe("ticket", live_id, view["dossiers"]) if live_id else None
        if subscriber is not None:
            subscriber.last = first
        return StreamingResponse(hub.stream(subscriber, first), media_type="text/event-stream", headers=SSE_HEADERS)

    # ------------------------------------------------------------------ citizen tracking page
    @app.get("/t/{token}", include_in_schema=False)
    async def tracking_page(token: str) -> HTMLResponse:
        found = await public_ticket(service, token) if 1 <= len(token) <= 64 else None
        if found is None:
            return HTMLResponse(NOT_FOUND_PAGE, status_code=404, headers={"Cache-Control": "no-store"})
        view = found[1]
        body = (track_template
                .replace("{{centre}}", html.escape(config.centre.name))
                .replace("{{number}}", str(int(view["number"])))
                .replace("{{group}}", html.escape(view["group_name"]))
                .replace("{{token}}", html.escape(token))
                .replace("{{data}}", _json_for_script(view)))
        return HTMLResponse(body, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})

    # ------------------------------------------------------------------ reports
    def _range(first: date | None, last: date | None) -> tuple[date, date]:
        from server.api import ApiError

        today = config.service_day(service.now())
        last = last or today
        first = first or last
        if first > last or (last - first) > timedelta(days=366):
            raise ApiError(422, "invalid_range", "Khoảng ngày không hợp lệ (tối đa 1 năm).",
                           "Invalid date range (at most one year).")
        return first, last

    async def _report(first: date | None, last: date | None, by: str, period: str) -> tuple[date, date, list[dict[str, Any]]]:
        a, b = _range(first, last)
        return a, b, await build_report(service.storage, config, a, b, by, period)  # type: ignore[arg-type]

    By = Literal["group", "counter", "officer"]
    Period = Literal["day", "week"]

    @app.get("/api/v1/reports", tags=["reports"])
    async def report(
        who: Annotated[Any, Depends(manager)],
        first: Annotated[date | None, Query(alias="from")] = None,
        last: Annotated[date | None, Query(alias="to")] = None,
        by: By = "group",
        period: Period = "day",
    ) -> dict[str, Any]:
        """Per day or ISO week, by group, counter or officer: tickets, mean and P90 wait, mean
        service time, no-show rate (%) and satisfaction index (0-100)."""
        a, b, rows = await _report(first, last, by, period)
        return {"from": a.isoformat(), "to": b.isoformat(), "by": by, "period": period, "rows": rows}

    exports = {
        "csv": ("text/csv; charset=utf-8", lambda rows, title: to_csv(rows)),
        "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", to_xlsx),
    }

    @app.get("/api/v1/reports/export.{fmt}", tags=["reports"])
    async def export(
        fmt: Literal["csv", "xlsx"],
        who: Annotated[Any, Depends(manager)],
        first: Annotated[date | None, Query(alias="from")] = None,
        last: Annotated[date | None, Query(alias="to")] = None,
        by: By = "group",
        period: Period = "day",
    ) -> Response:
        """The report as CSV (UTF-8 with BOM, for Excel) or as an Excel workbook; Vietnamese headings."""
        a, b, rows = await _report(first, last, by, period)
        media_type, render = exports[fmt]
        title = f"{config.centre.name} — báo cáo {a.isoformat()} đến {b.isoformat()}"
        name = f"luot-{config.centre.id}-{by}-{period}-{a.isoformat()}-{b.isoformat()}.{fmt}"
        return Response(render(rows, title), media_type=media_type,
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    return hub
