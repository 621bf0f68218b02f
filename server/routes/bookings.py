"""Bookings: slots, one-time codes, remote numbers and appointments, check-in and cancel
(docs/bookings.md has every endpoint with its JSON and refusals)."""

# No "from __future__ import annotations": FastAPI must see the real types used in Depends().

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import Field

from server.booking_service import BookingDesk
from server.booking_slots import bookable_days
from server.http_common import ApiError, Body, Principal, client_address, get_service, require, staff
from server.service import CentreService

router = APIRouter(tags=["bookings"])
PURPOSE = "booking"
"""The one-time code's purpose: a code sent for a booking opens nothing else."""
kiosk_or_staff = require("kiosk", "officer", "manager")
CODES_MISSING = ApiError(503, "codes_unavailable", "Chưa gửi được mã xác nhận; xin lấy số tại trung tâm.",
                         "One-time codes cannot be sent now; take a number at the centre.")


def get_desk(request: Request) -> BookingDesk:
    return request.app.state.bookings


def _refusal(error: Exception, status: int = 400) -> ApiError:
    """A refusal of server/phones.py or server/otp.py as this API's error shape."""
    reason = getattr(error, "reason", None) or "phone_invalid"
    retry = getattr(error, "retry_after_s", None)
    status = 429 if retry else status
    return ApiError(status, reason, getattr(error, "message_vi", str(error)), getattr(error, "message_en", str(error)))


def _confirmed_phone(request: Request, phone: str) -> str:
    """The normalised phone, or a 400 refusal in plain words (server/phones.py)."""
    from server.phones import PhoneRefused, normalise_phone

    try:
        return normalise_phone(phone)
    except PhoneRefused as error:
        raise _refusal(error) from None


class PhoneBody(Body):
    phone: str = Field(min_length=3, max_length=32, description="the citizen's mobile number, e.g. '0912 345 678'")


class BookingBody(Body):
    phone: str = Field(min_length=3, max_length=32)
    code: str = Field(min_length=4, max_length=12, description="the one-time code sent to the phone")
    group: str = Field(min_length=1, max_length=40)
    kind: Literal["remote", "appointment"]
    slot: datetime | None = Field(None, description="an appointment's slot start (from /api/v1/bookings/slots)")


class CheckInBody(Body):
    code: str | None = Field(None, max_length=16, description="the booking code as typed, e.g. 'K7QM-3XRA'")
    token: str | None = Field(None, max_length=300, description="the QR's token or whole tracking URL, as a scanner types it")


@router.get("/api/v1/bookings/slots")
async def slots(service: Annotated[CentreService, Depends(get_service)],
                group: Annotated[str | None, Query(max_length=40)] = None,
                day: Annotated[date | None, Query()] = None) -> dict[str, Any]:
    """The days that can be booked and each slot's seats left (public: the phone page asks)."""
    config = service.config
    now = service.now()
    days = bookable_days(config, now)
    if group is not None and group not in {g.code for g in config.groups}:
        raise ApiError(404, "group_not_found", f"Không có lĩnh vực '{group}'.", f"There is no procedure group '{group}'.")
    chosen = day or (days[0] if days else config.service_day(now))
    rows = [row for row in service.engine.slot_table(chosen, group) if datetime.fromisoformat(row["slot"]) > now]
    rules = config.booking
    return {"enabled": rules.enabled, "open_from": rules.open_from, "open_until": rules.open_until,
            "grace_minutes": rules.grace_minutes, "day": chosen.isoformat(),
            "days": [d.isoformat() for d in days], "slots": rows}


@router.post("/api/v1/bookings/code", status_code=202)
async def request_code(body: PhoneBody, request: Request,
                       service: Annotated[CentreService, Depends(get_service)]) -> dict[str, Any]:
    """Send a one-time code to the phone (rate-limited per phone and address by server/otp.py)."""
    codes = getattr(request.app.state, "codes", None)
    if codes is None:
        raise CODES_MISSING
    phone = _confirmed_phone(request, body.phone)
    from server.otp import CodeRefused

    try:
        await _maybe_await(codes.request(phone, PURPOSE, client_address(request), service.now()))
    except CodeRefused as error:
        raise _refusal(error) from None
    return {"sent": True}


@router.post("/api/v1/bookings", status_code=201)
async def make(body: BookingBody, request: Request, desk: Annotated[BookingDesk, Depends(get_desk)],
               service: Annotated[CentreService, Depends(get_service)]) -> dict[str, Any]:
    """Take a remote number or an appointment with a confirmed phone: answers the code, the QR's
    tracking URL and (for a remote number) the place in line and the estimate."""
    state = request.app.state
    codes, vault = getattr(state, "codes", None), getattr(state, "vault", None)
    if codes is None or vault is None:
        raise CODES_MISSING
    phone = _confirmed_phone(request, body.phone)
    from server.otp import CodeRefused

    try:
        await _maybe_await(codes.verify(phone, PURPOSE, body.code, service.now()))
    except CodeRefused as error:
        raise _refusal(error) from None
    return await desk.make(body.kind, body.group, vault.key(phone), vault.seal(phone), client_address(request),
                           actor="citizen", slot=body.slot)


@router.get("/api/v1/bookings/by-token/{token}")
async def by_token(token: Annotated[str, Path(min_length=16, max_length=64)],
                   desk: Annotated[BookingDesk, Depends(get_desk)]) -> dict[str, Any]:
    """A booking by the 128-bit token of its QR (public: the token is the key)."""
    return desk.by_token(token)


@router.post("/api/v1/bookings/by-token/{token}/cancel")
async def cancel_by_token(token: Annotated[str, Path(min_length=16, max_length=64)],
                          desk: Annotated[BookingDesk, Depends(get_desk)]) -> dict[str, Any]:
    """The citizen gives the booking up (frees the slot; a remote number leaves the line)."""
    booking = desk.by_token(token)
    return await desk.cancel(booking["id"], actor="citizen", reason="citizen")


@router.post("/api/v1/bookings/check-in")
async def check_in(body: CheckInBody, who: Annotated[Principal, Depends(kiosk_or_staff)],
                   desk: Annotated[BookingDesk, Depends(get_desk)]) -> dict[str, Any]:
    """The citizen is here: a kiosk scanned the QR or took the typed code, or the help desk did."""
    if not body.code and not body.token:
        raise ApiError(400, "checkin_key", "Hãy nhập mã số hẹn hoặc quét mã QR.", "Type the booking code or scan its QR.")
    return await desk.check_in(who.id, code=body.code, token=body.token)


@router.post("/api/v1/bookings/{booking_id}/check-in")
async def check_in_by_id(booking_id: Annotated[str, Path(max_length=40)], who: Annotated[Principal, Depends(staff)],
                         desk: Annotated[BookingDesk, Depends(get_desk)]) -> dict[str, Any]:
    """The help desk checks a citizen in from the list (identity checked by the officer)."""
    return await desk.check_in(who.id, booking_id=booking_id)


@router.post("/api/v1/bookings/{booking_id}/cancel")
async def cancel(booking_id: Annotated[str, Path(max_length=40)], who: Annotated[Principal, Depends(staff)],
                 desk: Annotated[BookingDesk, Depends(get_desk)]) -> dict[str, Any]:
    return await desk.cancel(booking_id, actor=who.id, reason="staff")


@router.get("/api/v1/bookings")
async def day_list(who: Annotated[Principal, Depends(require("officer", "manager"))],
                   desk: Annotated[BookingDesk, Depends(get_desk)], service: Annotated[CentreService, Depends(get_service)],
                   day: Annotated[date | None, Query()] = None) -> dict[str, Any]:
    """A day's bookings with their status and tickets, and the day's slots (staff)."""
    return await desk.day_list((day or service.config.service_day(service.now())).isoformat())


async def _maybe_await(value: Any) -> Any:
    """server/otp.py's calls may be plain or coroutines; either is awaited here."""
    if hasattr(value, "__await__"):
        return await value
    return value
