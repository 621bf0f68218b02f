"""Issue, look up and cancel tickets; the queue snapshot and a newcomer's outlook."""

# No "from __future__ import annotations": FastAPI must see the real types used in Depends().

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import Field

from server.estimates import wait_view
from server.http_common import ApiError, Body, Principal, get_service, require, staff
from server.receipt import ReceiptError, parse_receipt
from server.schemas import TicketOut
from server.service import CentreService

router = APIRouter(tags=["tickets"])


class IssueBody(Body):
    group: str = Field(min_length=1, max_length=40, description="procedure group code, e.g. 'ho-tich'")
    priority: str | None = Field(None, max_length=40, description="priority class code, e.g. 'elderly'")


@router.post("/api/v1/tickets", response_model=TicketOut, status_code=201)
async def issue(body: IssueBody, who: Annotated[Principal, Depends(require("kiosk", "officer", "manager"))],
                service: Annotated[CentreService, Depends(get_service)]) -> dict[str, Any]:
    """Issue the next number of a group. The answer comes only after the ticket is on disk."""
    ticket, view = await service.run_viewed(lambda e, now: e.issue(body.group, now, priority=body.priority, source=who.id),
                                            actor=who.id)
    return {**view, "token": ticket.token, "tracking_url": service.tracking_url(ticket.token)}


class ReturnBody(Body):
    receipt: str = Field(min_length=1, max_length=1000,
                         description="the text of the dossier receipt's QR code as the kiosk's USB scanner types it, "
                                     "or the dossier code the citizen typed (server/receipt.py)")


@router.post("/api/v1/tickets/return", response_model=TicketOut, status_code=201)
async def issue_return(body: ReturnBody, who: Annotated[Principal, Depends(require("kiosk", "officer", "manager"))],
                       service: Annotated[CentreService, Depends(get_service)]) -> dict[str, Any]:
    """A citizen coming back for a result: a ticket of the results group ([centre] results_group)
    for the dossier on the receipt, with its appointment date (from the receipt, else from the
    dossier Luot stored when it was received). A QR that is not a receipt is refused in plain
    words and issues nothing."""
    try:
        receipt = parse_receipt(body.receipt)
    except ReceiptError as error:
        raise ApiError(422, "receipt_unreadable", error.message, error.message_en) from None
    appointment = receipt.appointment
    if appointment is None:
        stored = await service.storage.dossier(receipt.code)
        appointment = date.fromisoformat(stored["appointment"]) if stored and stored["appointment"] else None
    ticket, view = await service.run_viewed(lambda e, now: e.issue_return(receipt.code, appointment, now, source=who.id),
                                            actor=who.id)
    return {**view, "token": ticket.token, "tracking_url": service.tracking_url(ticket.token)}


@router.get("/api/v1/tickets/{ticket_id}", response_model=TicketOut)
async def ticket(ticket_id: Annotated[str, Path(max_length=64)], who: Annotated[Principal, Depends(staff)],
                 service: Annotated[CentreService, Depends(get_service)]) -> dict[str, Any]:
    return service.ticket_view(ticket_id)


@router.post("/api/v1/tickets/{ticket_id}/cancel", response_model=TicketOut)
async def cancel(ticket_id: Annotated[str, Path(max_length=64)], who: Annotated[Principal, Depends(staff)],
                 service: Annotated[CentreService, Depends(get_service)]) -> dict[str, Any]:
    _, view = await service.run_viewed(lambda e, now: e.cancel(ticket_id, now, reason="staff"), actor=who.id)
    return view


@router.get("/api/v1/queue")
async def queue(who: Annotated[Principal, Depends(require("officer", "manager", "kiosk", "display"))],
                service: Annotated[CentreService, Depends(get_service)]) -> dict[str, Any]:
    """What is true now: waiting per group, longest waits, counters, recent calls."""
    return service.engine.snapshot(service.now())


@router.get("/api/v1/queue/outlook/{group}")
async def outlook(group: Annotated[str, Path(max_length=40)],
                  who: Annotated[Principal, Depends(require("officer", "manager", "kiosk"))],
                  service: Annotated[CentreService, Depends(get_service)]) -> dict[str, Any]:
    """What a ticket of ``group`` taken now would be told, before issuing it: the kiosk warns when
    the call is unlikely before closing and offers the ticket anyway. ``booking_available`` (with
    ``booking``, the offered slot: the next working day's earliest free one) is true when
    ``[booking]`` is on, a seat is free and the asking kiosk is under its daily cap; the kiosk then
    offers "Đặt lịch hẹn ngày mai" (``POST /api/v1/bookings/kiosk``)."""
    now = service.now()
    engine = service.engine
    try:
        estimate = engine.newcomer_estimate(group, now)
    except KeyError:
        raise ApiError(404, "group_not_found", f"Không có lĩnh vực '{group}'.", f"There is no procedure group '{group}'.") from None
    offer = engine.next_day_offer(group, now)
    if offer is not None and who.role == "kiosk" and engine.kiosk_bookings_today(who.id, now) >= service.config.booking.per_kiosk_day:
        offer = None
    return {"group": group, **wait_view(service.config, estimate, now), "booking_available": offer is not None,
            "booking": offer}
