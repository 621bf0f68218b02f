"""Issue, look up and cancel tickets; the queue snapshot."""

# No "from __future__ import annotations": FastAPI must see the real types used in Depends().

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import Field

from server.http_common import Body, Principal, get_service, require, staff
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
    ticket = await service.run(lambda e, now: e.issue(body.group, now, priority=body.priority, source=who.id), actor=who.id)
    return {**service.ticket_view(ticket.id), "token": ticket.token, "tracking_url": service.tracking_url(ticket.token)}


@router.get("/api/v1/tickets/{ticket_id}", response_model=TicketOut)
async def ticket(ticket_id: Annotated[str, Path(max_length=64)], who: Annotated[Principal, Depends(staff)],
                 service: Annotated[CentreService, Depends(get_service)]) -> dict[str, Any]:
    return service.ticket_view(ticket_id)


@router.post("/api/v1/tickets/{ticket_id}/cancel", response_model=TicketOut)
async def cancel(ticket_id: Annotated[str, Path(max_length=64)], who: Annotated[Principal, Depends(staff)],
                 service: Annotated[CentreService, Depends(get_service)]) -> dict[str, Any]:
    ticket = await service.run(lambda e, now: e.cancel(ticket_id, now, reason="staff"), actor=who.id)
    return service.ticket_view(ticket.id)


@router.get("/api/v1/queue")
async def queue(who: Annotated[Principal, Depends(require("officer", "manager", "kiosk", "display"))],
                service: Annotated[CentreService, Depends(get_service)]) -> dict[str, Any]:
    """What is true now: waiting per group, longest waits, counters, recent calls."""
    return service.engine.snapshot(service.now())
