"""Web pages served by the centre: counter console, manager dashboard, reports, citizen tracking.

Pages are plain HTML, CSS and small vanilla JavaScript under ``server/web/`` (nothing is loaded
from the internet). They use the JSON API and two Server-Sent Event streams fed by
:class:`server.live.LiveHub`:

- ``GET /api/v1/stream`` (officers, managers): the queue snapshot and events after every commit;
- ``GET /api/v1/track/{token}/stream`` (anyone with the QR code): that one ticket's public view.

The live hub is ``request.app.state.live`` (made by :func:`server.api.create_app`, which also
mounts :data:`WEB_DIR` at ``/static``). Report exports and the dashboard's settings are in
:mod:`server.routes.reports`, ``/api/v1/me`` in :mod:`server.routes.staff`.
"""

# No "from __future__ import annotations": FastAPI must see the real types used in Depends().

import html
import json
from pathlib import Path
from typing import Annotated, Any, Callable

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from server.engine import NotFound
from server.http_common import ApiError, Principal, get_service, staff
from server.live import LiveHub, StreamsFull, Subscriber, public_ticket, sse
from server.service import CentreService

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
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


def json_for_script(value: Any) -> str:
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


def get_live(request: Request) -> LiveHub:
    """The live hub feeding this app's event streams."""
    return request.app.state.live


def _page(text: str) -> Callable[[], Any]:
    async def serve() -> HTMLResponse:
        return HTMLResponse(text, headers={"Cache-Control": "no-cache"})
    return serve


router = APIRouter()
for _path, (_file_name, _login_title) in PAGES.items():
    router.add_api_route(_path, _page(render_page(_file_name, _login_title)), methods=["GET"], include_in_schema=False)
TRACK_TEMPLATE = (WEB_DIR / "track.html").read_text(encoding="utf-8")


# ---------------------------------------------------------------------- live streams
TOO_MANY_STREAMS = ApiError(503, "too_many_streams", "Đang có quá nhiều kết nối theo dõi; trang sẽ tự cập nhật sau ít giây.",
                            "Too many live connections; the page will refresh itself shortly.")


def _subscribe(hub: LiveHub, kind: str, ticket_id: str | None = None,
               dossiers: list[dict[str, Any]] | None = None) -> Subscriber | None:
    try:
        return hub.subscribe(kind, ticket_id, dossiers)
    except StreamsFull:
        raise TOO_MANY_STREAMS from None


@router.get("/api/v1/stream", tags=["live"], response_class=StreamingResponse)
async def staff_stream(who: Annotated[Principal, Depends(staff)], service: Annotated[CentreService, Depends(get_service)],
                       hub: Annotated[LiveHub, Depends(get_live)]) -> StreamingResponse:
    """Server-Sent Events for the console and dashboard: ``update`` {snapshot, events} after
    every commit, starting with the current snapshot; a comment line every 15 s."""
    first = sse("update", {"snapshot": service.engine.snapshot(service.now()), "events": []})
    subscriber = _subscribe(hub, "staff")
    return StreamingResponse(hub.stream(subscriber, first), media_type="text/event-stream", headers=SSE_HEADERS)


@router.get("/api/v1/track/{token}/stream", tags=["live"], response_class=StreamingResponse)
async def ticket_stream(token: str, service: Annotated[CentreService, Depends(get_service)],
                        hub: Annotated[LiveHub, Depends(get_live)]) -> Response:
    """Server-Sent Events for one ticket: ``ticket`` with its public view whenever it changes."""
    known = service.engine.ticket_by_token(token) if 1 <= len(token) <= 64 else None
    if known is not None and not hub.has_room("ticket", known.id):
        raise TOO_MANY_STREAMS  # refused before the database is asked anything
    found = await public_ticket(service, token) if 1 <= len(token) <= 64 else None
    if found is None:
        return Response(json.dumps({"error": "ticket_not_found",
                                    "message": "Không tìm thấy vé. Hãy kiểm tra lại mã trên vé.",
                                    "message_en": "Ticket not found. Check the code on your ticket."},
                                   ensure_ascii=False), status_code=404, media_type="application/json")
    live_id, view = found
    first = sse("ticket", view)
    subscriber = _subscribe(hub, "ticket", live_id, view["dossiers"]) if live_id else None
    if subscriber is not None:
        subscriber.last = first
    return StreamingResponse(hub.stream(subscriber, first), media_type="text/event-stream", headers=SSE_HEADERS)


# ---------------------------------------------------------------------- citizen tracking page
APPOINTMENT_PAGE = """<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex"><title>Lịch hẹn {time}</title><link rel="stylesheet" href="/static/track.css"></head>
<body><main class="track"><p class="centre">{centre}</p>
<p class="label">Lịch hẹn của bạn <span class="en" lang="en">Your appointment</span></p>
<p class="number">{time}</p><p class="group">{group} · {day}</p>
<section class="state"><p class="headline">{status}</p><p class="detail">{detail}</p></section>
</main></body></html>
"""
APPOINTMENT_STATUS = {
    "booked": ("Đã đặt lịch", "Đến trước giờ hẹn, quét mã QR này hoặc nhập mã tại ki-ốt để nhận số thứ tự. "
                              "(Come before your time and check in at the kiosk to get your number.)"),
    "cancelled": ("Lịch hẹn đã hủy", "(This appointment was cancelled.)"),
    "lapsed": ("Lịch hẹn đã quá hạn", "Bạn đã không đến nhận lượt. (You did not check in.)"),
    "no_show": ("Lịch hẹn đã quá hạn", "Bạn đã không đến nhận lượt. (You did not check in.)"),
}


def _appointment_page(service: CentreService, token: str) -> str | None:
    """An appointment's QR before its check-in: the ticket does not exist yet, so the tracking
    page shows the booking (time, group, what to do) instead of "ticket not found"."""
    try:
        booking = service.engine.find_booking(service.now(), token=token)
    except NotFound:
        return None
    if booking.kind != "appointment" or booking.slot is None or booking.status not in APPOINTMENT_STATUS:
        return None
    config = service.config
    status, detail = APPOINTMENT_STATUS[booking.status]
    return APPOINTMENT_PAGE.format(
        centre=html.escape(config.centre.name), time=booking.slot.astimezone(config.zone).strftime("%H:%M"),
        group=html.escape(config.group(booking.group).name), day=booking.day.strftime("%d/%m/%Y"),
        status=status, detail=detail)
@router.get("/t/{token}", include_in_schema=False)
async def tracking_page(token: str, service: Annotated[CentreService, Depends(get_service)]) -> HTMLResponse:
    found = await public_ticket(service, token) if 1 <= len(token) <= 64 else None
    if found is None:
        appointment = _appointment_page(service, token) if 16 <= len(token) <= 64 else None
        if appointment is not None:
            return HTMLResponse(appointment, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})
        return HTMLResponse(NOT_FOUND_PAGE, status_code=404, headers={"Cache-Control": "no-store"})
    view = found[1]
    body = (TRACK_TEMPLATE
            .replace("{{centre}}", html.escape(service.config.centre.name))
            .replace("{{number}}", str(int(view["number"])))
            .replace("{{group}}", html.escape(view["group_name"]))
            .replace("{{token}}", html.escape(token))
            .replace("{{near}}", str(int(service.config.notify.near_ahead)))
            .replace("{{data}}", json_for_script(view)))
    return HTMLResponse(body, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})
