"""The citizen's booking page (``/dat-so``) and the QR of a booking, drawn here.

The page is plain HTML with a small vanilla script (``server/web/book.*``) that talks to the
bookings API (:mod:`server.routes.bookings`); the centre's groups are written into the page, so a
cheap phone on a slow link makes one request before it can choose. The QR is an SVG made on the
server with the ``qrcode`` library (no external service, no JavaScript library); it holds only the
tracking link ``<public_url>/t/<token>``, never the phone.
"""

# No "from __future__ import annotations": FastAPI must see the real types used in Depends().

import html
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from server.devices import qr_svg
from server.engine import NotFound, QueueError
from server.http_common import ApiError, get_service
from server.routes.pages import WEB_DIR, json_for_script
from server.service import CentreService

router = APIRouter(include_in_schema=False)
PAGE_TEMPLATE = (WEB_DIR / "book.html").read_text(encoding="utf-8")


def render_booking_page(service: CentreService) -> bytes:
    """The page with the centre's name and groups in it (they do not change while the server runs)."""
    config = service.config
    groups = [{"code": g.code, "name": g.name, "name_en": g.name_en} for g in config.groups]
    return (PAGE_TEMPLATE.replace("{{centre}}", html.escape(config.centre.name))
            .replace("{{data}}", json_for_script({"groups": groups, "days_ahead": config.booking.days_ahead}))).encode("utf-8")


@router.get("/dat-so")
async def booking_page(request: Request, service: Annotated[CentreService, Depends(get_service)]) -> Response:
    """The page, rendered once per server (it is asked far more often than anything else a
    citizen's phone asks: bench/drill_booking_bot.py drives it at 200 requests a second)."""
    body = getattr(request.app.state, "booking_page", None)
    if body is None:
        body = request.app.state.booking_page = render_booking_page(service)
    return Response(body, media_type="text/html; charset=utf-8",
                    headers={"Cache-Control": "no-cache", "Referrer-Policy": "no-referrer"})


@router.get("/dat-so/now")
async def remote_now(service: Annotated[CentreService, Depends(get_service)],
                     group: Annotated[str, Query(min_length=1, max_length=40)]) -> dict[str, Any]:
    """Can a remote number in ``group`` be taken now (booking hours, the centre open today, the
    group not full)? Asked when the citizen picks a group, so the page says it before asking for a
    phone. The engine answers with no phone (the per-phone limits come at booking); changes nothing."""
    try:
        service.engine.booking_allowed("remote", group, "page-check", service.now())  # a key no phone has
    except QueueError as refusal:
        return {"ok": False, "error": refusal.code, "message": refusal.message, "message_en": refusal.message_en}
    return {"ok": True}


@router.get("/dat-so/qr/{token}.svg")
async def booking_qr(token: Annotated[str, Path(min_length=16, max_length=64)],
                     service: Annotated[CentreService, Depends(get_service)]) -> Response:
    """The QR of a booking's tracking link (what the kiosk's scanner reads at check-in). Only a
    known booking's token is drawn: this is not a QR service for any text."""
    try:
        service.engine.find_booking(service.now(), token=token)
    except NotFound:
        raise ApiError(404, "booking_not_found", "Không tìm thấy lượt đặt.", "Booking not found.") from None
    return Response(qr_svg(service.tracking_url(token)), media_type="image/svg+xml",
                    headers={"Cache-Control": "private, max-age=86400", "Referrer-Policy": "no-referrer"})
