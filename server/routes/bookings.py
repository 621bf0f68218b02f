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
from server.otp import CodeRefused
from server.phones import PhoneRefused, normalise_phone
from server.service import CentreService

router = APIRouter(tags=["bookings"])
PURPOSE = "booking"
"""The one-time code's purpose: a code sent for a booking opens nothing else."""
kiosk_or_staff = require("kiosk", "officer", "manager")


def get_desk(request: Request) -> BookingDesk:
    return request.app.state.bookings


def _refusal(error: PhoneRefused | CodeRefused) -> ApiError:
    """A refusal of server/phones.py or server/otp.py in this API's error shape: 400 for a bad
    phone or code, 429 (with ``retry_after_s`` in the message's reason) for a limit, 503 when no
    channel can carry a code."""
    if isinstance(error, PhoneRefused):
        return ApiError(400, "phone_invalid", error.message_vi, error.message_en)
    status = 503 if error.reason == "no-channel" else 429 if error.retry_after_s else 400
    return ApiError(status, error.reason, error.message_vi, error.message_en)


def _confirmed_phone(phone: str) -> str:
    """The normalised phone, or a 400 refusal in plain words (server/phones.py)."""
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
    phone = _confirmed_phone(body.phone)
    try:
        request.app.state.codes.request(phone, PURPOSE, client_address(request), service.now())
    except CodeRefused as error:
        raise _refusal(error) from None
    return {"sent": True}


@router.post("/api/v1/bookings", status_code=201)
async def make(body: BookingBody, request: Request, desk: Annotated[BookingDesk, Depends(get_desk)],
               service: Annotated[CentreService, Depends(get_service)]) -> dict[str, Any]:
    """Take a remote number or an appointment with a confirmed phone: answers the code, the QR's
    tracking URL and (for a remote number) the place in line and the estimate."""
    state = request.app.state
    vault = state.vault
    phone = _confirmed_phone(body.phone)
    await desk.precheck(body.kind, body.group, vault.key(phone), client_address(request), body.slot)
    try:
        state.codes.verify(phone, PURPOSE, body.code, service.now())
    except CodeRefused as error:
        raise _refusal(error) from None
    return await desk.make(body.kind, body.group, vault.key(phone), vault.seal(phone), client_address(request),
                           actor="citizen", slot=body.slot)


class StaffBookingBody(Body):
    phone: str = Field(min_length=3, max_length=32)
    group: str = Field(min_length=1, max_length=40)
    kind: Literal["remote", "appointment"]
    slot: datetime | None = None


@router.post("/api/v1/bookings/staff", status_code=201)
async def make_for_citizen(body: StaffBookingBody, request: Request, who: Annotated[Principal, Depends(staff)],
                           desk: Annotated[BookingDesk, Depends(get_desk)]) -> dict[str, Any]:
    """An officer books for a citizen who phoned or stands at the help desk: no one-time code (the
    officer answers for the identity), every other limit the same; the event names the officer."""
    vault = request.app.state.vault
    phone = _confirmed_phone(body.phone)
    return await desk.make(body.kind, body.group, vault.key(phone), vault.seal(phone), None, actor=who.id, slot=body.slot)


class KioskBookingBody(Body):
    group: str = Field(min_length=1, max_length=40)
    slot: datetime = Field(description="the slot start the outlook offered (GET /api/v1/queue/outlook/{group})")


@router.post("/api/v1/bookings/kiosk", status_code=201)
async def make_at_kiosk(body: KioskBookingBody, who: Annotated[Principal, Depends(require("kiosk"))],
                        desk: Annotated[BookingDesk, Depends(get_desk)]) -> dict[str, Any]:
    """"Đặt lịch hẹn ngày mai" at the kiosk: an appointment for the citizen standing there, with
    no phone (the printed slip carries the check-in code and QR). Only a kiosk device may; each
    kiosk books at most ``booking.per_kiosk_day`` a day; the event names the kiosk."""
    return await desk.make_at_kiosk(body.group, who.id, body.slot)


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

