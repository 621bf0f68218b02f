"""Dossiers (hồ sơ) handed in at a counter: attach one to a ticket, move its status on, read it."""

# No "from __future__ import annotations": FastAPI must see the real types used in Depends().

import re
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path
from pydantic import Field

from server.engine import DOSSIER_STATUSES, Dossier
from server.receipt import Receipt, ReceiptError, parse_receipt
from server.http_common import ApiError, Body, Principal, get_service, staff
from server.service import CentreService

router = APIRouter(tags=["dossiers"])
DossierCode = Annotated[str, Path(min_length=3, max_length=40)]


class DossierBody(Body):
    code: str = Field(min_length=1, max_length=1000,
                      description="the dossier code written on the receipt (3 to 40 letters, digits or . _ -), or the "
                                  "text of the receipt's QR code as a USB scanner types it (server/receipt.py reads "
                                  "the code, procedure code and appointment date from it)")
    appointment: date | None = Field(None, description="the date the receipt promises the result (ngày hẹn trả); "
                                                   "a dossier returned after it, or still open past it, is overdue")


class DossierStatusBody(Body):
    status: Literal[DOSSIER_STATUSES]  # type: ignore[valid-type]


@router.post("/api/v1/tickets/{ticket_id}/dossier")
async def attach_dossier(ticket_id: Annotated[str, Path(max_length=64)], body: DossierBody,
                         who: Annotated[Principal, Depends(staff)],
                         service: Annotated[CentreService, Depends(get_service)]) -> dict[str, Any]:
    """Attach the dossier handed in with this ticket (a typed code or a scanned receipt QR); the
    citizen's tracking page then follows it."""
    try:
        # a scanned receipt has structure (a link, JSON, labelled items, fields); a typed code goes
        # to the engine as before, which explains a malformed code in plain words
        scanned = len(body.code.strip()) > 40 or re.search(r"[=|;{:\n]|^https?://", body.code.strip(), re.I)
        receipt = parse_receipt(body.code) if scanned else Receipt(body.code)
    except ReceiptError as error:
        raise ApiError(422, "receipt_unreadable", error.message, error.message_en) from None
    code, appointment = receipt.code, body.appointment or receipt.appointment
    stored = await service.storage.dossier(code)
    if stored is not None and stored["ticket_id"] != ticket_id:
        raise ApiError(409, "dossier_taken", f"Mã hồ sơ {code} đã gắn với vé khác.",
                       f"Dossier {code} belongs to another ticket.")
    dossier = await service.run(lambda e, now: e.attach_dossier(ticket_id, code, now, appointment=appointment,
                                                                procedure=receipt.procedure), actor=who.id)
    return await service.storage.dossier(dossier.code) or {"code": dossier.code, "status": dossier.status}


@router.post("/api/v1/dossiers/{code}/status")
async def dossier_status(code: DossierCode, body: DossierStatusBody, who: Annotated[Principal, Depends(staff)],
                         service: Annotated[CentreService, Depends(get_service)]) -> dict[str, Any]:
    """Move a dossier on: received, processing, needs_documents, ready, returned (final)."""
    stored = await service.storage.dossier(code)
    known = Dossier(stored["code"], stored["ticket_id"], stored["status"]) if stored else None
    await service.run(lambda e, now: e.set_dossier_status(code, body.status, now, known=known), actor=who.id)
    return await service.storage.dossier(code) or {}


@router.get("/api/v1/dossiers/{code}")
async def dossier_get(code: DossierCode, who: Annotated[Principal, Depends(staff)],
                      service: Annotated[CentreService, Depends(get_service)]) -> dict[str, Any]:
    stored = await service.storage.dossier(code)
    if stored is None:
        raise ApiError(404, "dossier_not_found", f"Không tìm thấy hồ sơ {code}.", f"No dossier {code}.")
    return stored
