"""What devices send (pads' ratings, kiosks' help requests, number leases and offline tickets);
the list of devices with their state and availability; managers add a device (a one-time code and
its QR, server/devices.py) and revoke one. A manager-role *device* (a dashboard screen) may list,
never add or revoke (the read-only rule of ``require``)."""

# No "from __future__ import annotations": FastAPI must see the real types used in Depends().

from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import Field

from server.devices import DeviceRegistry, enrolment_text, format_code, qr_svg
from server.http_common import (ApiError, Body, Principal, apply_registry, get_link, get_registry, get_service,
                                manager, require, staff)
from luot.protocol import Reason
from server.ratings import rate
from server.schemas import TicketOut
from server.service import CentreService

router = APIRouter()  # tags per route: the device list is filed under reports


class RatingFields(Body):
    # No bounds here: a level the form does not have is refused by the engine, which counts it
    # (server/ratings.py); a schema refusal would go uncounted.
    rating: int = Field(ge=-1000, le=1000, description="with scale 5: 5 rất hài lòng, 4 hài lòng, 3 bình thường, "
                                                "2 không hài lòng, 1 rất không hài lòng; with scale 4 (the "
                                                "four-face pad): 4 rất hài lòng, 3 hài lòng, 2 bình thường, 1 không hài lòng")
    scale: Literal[4, 5] = 4
    reasons: list[Reason] = Field(default_factory=list, max_length=5,
                                  description="only below 'bình thường': wait, attitude, guidance, documents, other")


class FeedbackBody(RatingFields):
    ticket_id: str = Field(min_length=1, max_length=64)


class AssistanceBody(Body):
    request_id: str = Field(min_length=1, max_length=64)
    reason: Literal["help", "guided", "language", "other"] = "help"


class LeaseBody(Body):
    group: str = Field(min_length=1, max_length=40)
    size: int = Field(50, ge=1, le=200)


class OfflineTicketBody(Body):
    group: str = Field(min_length=1, max_length=40)
    number: int = Field(ge=1, le=999_999)
    issued_at: str = Field(description="ISO 8601 time the kiosk printed the ticket")
    token: str = Field(min_length=16, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    priority: str | None = Field(None, max_length=40)


@router.post("/api/v1/feedback", tags=["devices"])
async def feedback(body: FeedbackBody, who: Annotated[Principal, Depends(require("pad"))],
                   service: Annotated[CentreService, Depends(get_service)]) -> dict[str, Any]:
    await rate(service, body.ticket_id, body.rating, device=who.id, counter=who.counter, scale=body.scale,
               reasons=body.reasons, source="pad", actor=who.id)
    return {"ok": True}


TrackToken = Annotated[str, Path(min_length=1, max_length=64)]


def _tracked(service: CentreService, token: str) -> Any:
    """Today's ticket of a tracking token; a rating is only ever given on the day of service."""
    ticket = service.engine.ticket_by_token(token)
    if ticket is None:
        raise ApiError(404, "rating_closed", "Không còn đánh giá được vé này (chỉ trong ngày được phục vụ).",
                       "This ticket can no longer be rated (only on the day it was served).")
    return ticket


@router.get("/api/v1/track/{token}/feedback", tags=["public"])
async def track_feedback_state(token: TrackToken, service: Annotated[CentreService, Depends(get_service)]) -> dict[str, Any]:
    """Whether the tracking page may offer the rating: after service, today, once per ticket."""
    ticket = service.engine.ticket_by_token(token)
    if ticket is None:
        return {"open": False, "rated": False, "scale": service.config.centre.rating_scale}
    rated = ticket.id in service.engine.rated_tickets
    return {"open": ticket.status == "done" and not rated, "rated": rated, "scale": service.config.centre.rating_scale}


@router.post("/api/v1/track/{token}/feedback", tags=["public"])
async def track_feedback(token: TrackToken, body: RatingFields,
                         service: Annotated[CentreService, Depends(get_service)]) -> dict[str, Any]:
    """The citizen's own rating from the tracking page (public: the unguessable token is the
    right to rate that one ticket; the engine refuses it before service and a second time)."""
    ticket = _tracked(service, token)
    await rate(service, ticket.id, body.rating, device=None, counter=None, scale=body.scale, reasons=body.reasons,
               source="track", actor="citizen")
    return {"ok": True}


@router.post("/api/v1/assistance", tags=["devices"])
async def assistance(body: AssistanceBody, who: Annotated[Principal, Depends(require("kiosk", "pad"))],
                     service: Annotated[CentreService, Depends(get_service)]) -> dict[str, Any]:
    await service.run(lambda e, now: (None, e.request_assistance(who.id, body.request_id, body.reason, now, who.counter)), actor=who.id)
    return {"ok": True}


@router.post("/api/v1/leases", tags=["devices"])
async def lease(body: LeaseBody, who: Annotated[Principal, Depends(require("kiosk"))],
                service: Annotated[CentreService, Depends(get_service)]) -> dict[str, Any]:
    """Reserve a block of numbers the kiosk may issue on its own while it is offline."""
    first, last = await service.run(lambda e, now: e.lease_block(who.id, body.group, body.size, now), actor=who.id)
    return {"group": body.group, "first": first, "last": last, "day": service.engine.day.isoformat()}


@router.post("/api/v1/offline-tickets", response_model=TicketOut, tags=["devices"])
async def offline_ticket(body: OfflineTicketBody, who: Annotated[Principal, Depends(require("kiosk"))],
                         service: Annotated[CentreService, Depends(get_service)]) -> dict[str, Any]:
    """Hand over a ticket the kiosk issued offline from its leased block (safe to repeat)."""
    try:
        issued_at = datetime.fromisoformat(body.issued_at)
    except ValueError:
        raise ApiError(422, "invalid_request", "Thời điểm cấp vé không hợp lệ.", "issued_at is not an ISO 8601 time.") from None
    if issued_at.tzinfo is None:
        raise ApiError(422, "invalid_request", "Thời điểm cấp vé cần múi giờ.", "issued_at needs a time zone.")
    ticket, view = await service.run_viewed(lambda e, now: e.import_offline(who.id, body.group, body.number, issued_at,
                                                                            body.token, now, priority=body.priority),
                                            actor=who.id)
    return {**view, "token": ticket.token, "tracking_url": service.tracking_url(ticket.token)}


@router.get("/api/v1/devices", tags=["reports"])
async def devices(who: Annotated[Principal, Depends(staff)], registry: Annotated[DeviceRegistry, Depends(get_registry)],
                  link: Annotated[Any, Depends(get_link)]) -> dict[str, Any]:
    """Every device, declared or enrolled, its state (pending, active, revoked) and availability."""
    status = link.devices_status() if link is not None and hasattr(link, "devices_status") else {}
    return {"devices": [{**d.public(), **_availability(status.get(d.id))} for d in registry.devices()]}


def _availability(entry: Any) -> dict[str, Any]:
    if not entry:
        return {"online": False, "availability": "unknown", "since": None}
    state, since = entry
    return {"online": state == "online", "availability": state,
            "since": since.isoformat() if hasattr(since, "isoformat") else since}


class AddDeviceBody(Body):
    id: str = Field(min_length=1, max_length=40, description="the device's id, e.g. 'kiosk-3'")
    role: Literal["kiosk", "display", "pad", "manager"]
    counter: int | None = Field(None, ge=1, le=999, description="a pad's counter (required), a counter display's")


@router.post("/api/v1/devices", tags=["devices"])
async def add_device(body: AddDeviceBody, who: Annotated[Principal, Depends(manager)], request: Request,
                     registry: Annotated[DeviceRegistry, Depends(get_registry)]) -> dict[str, Any]:
    """Add a device; the answer carries its one-time code (valid 10 minutes, shown only here) and the
    QR of the server's address and the code, which the device is started with (``--enrol URL CODE``)."""
    device, code = registry.add(body.id, body.role, body.counter, datetime.now(timezone.utc))
    url = str(request.base_url).rstrip("/")  # the address the manager's browser reached us at
    text = enrolment_text(url, code)
    return {"device": device.public(), "code": format_code(code), "expires_at": device.code_expires_at,
            "url": url, "qr_text": text, "qr_svg": qr_svg(text)}


@router.post("/api/v1/devices/{device_id}/revoke", tags=["devices"])
async def revoke_device(device_id: Annotated[str, Path(min_length=1, max_length=40)],
                        who: Annotated[Principal, Depends(manager)], request: Request,
                        registry: Annotated[DeviceRegistry, Depends(get_registry)]) -> dict[str, Any]:
    """Throw a device out: its HTTP token is refused at once, its MQTT connection is dropped and its
    retained availability becomes ``revoked``."""
    device = registry.revoke(device_id, datetime.now(timezone.utc))
    await apply_registry(request)
    return {"device": device.public()}
