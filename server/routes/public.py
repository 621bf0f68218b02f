"""Anyone may ask: is the server up, what does the centre offer, where is my ticket."""

# No "from __future__ import annotations": FastAPI must see the real types used in Depends().

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse

from server.backup import storage_health
from server.http_common import ApiError, get_link, get_service
from server.live import public_ticket
from server.schemas import WaitWords
from server.service import CentreService

router = APIRouter(tags=["public"])


class TrackOut(WaitWords):
    number: int
    group_name: str
    group_name_en: str
    status: str
    ahead: int | None
    wait_minutes: float | None
    counter: int | None
    called_at: str | None
    calls: int
    day: str
    dossiers: list[dict[str, Any]] = []
    moved_to: dict[str, Any] | None = None


@router.get("/health", responses={503: {"description": "storage trouble (see `storage.problems`)"}})
async def health(request: Request, service: Annotated[CentreService, Depends(get_service)],
                 link: Annotated[Any, Depends(get_link)]) -> JSONResponse:
    """Is the centre server up, is its broker link up, and is its storage sound: 503 with
    ``status`` "storage-trouble" when the disk is nearly full, the latest commit failed or the
    latest backup found the database damaged (server/backup.py ``storage_health``)."""
    storage = storage_health(service.storage, service.config.storage.min_free_mb,
                             getattr(request.app.state, "backups", None))
    sound = storage["status"] == "ok"
    return JSONResponse({
        "ok": sound,
        "status": storage["status"],
        "centre": service.config.centre.id,
        "day": service.engine.day.isoformat() if service.engine.day else None,
        "mqtt": bool(link and link.connected),
        "events": service.storage.committed_events,
        "storage": storage,
    }, status_code=200 if sound else 503)


@router.get("/api/v1/centre")
async def centre(service: Annotated[CentreService, Depends(get_service)]) -> dict[str, Any]:
    """The public description kiosks and pages need: groups, counters, priority classes."""
    config = service.config
    now = service.now()
    return {
        "id": config.centre.id, "name": config.centre.name, "name_en": config.centre.name_en,
        "notice": config.centre.notice, "notice_en": config.centre.notice_en,
        "rating_scale": config.centre.rating_scale,
        "results_group": config.centre.results_group,  # the kiosk offers a results ticket from a receipt
        "open_now": config.is_open(now), "day": config.service_day(now).isoformat(),
        "groups": [{**g.model_dump(include={"code", "letter", "name", "name_en", "description", "service_minutes",
                                            "legal_days", "documents"}),
                    "wait_alert_minutes": config.wait_alert_minutes(g.code)} for g in config.groups],
        "counters": [{"number": c.number, "name": c.label, "groups": c.groups} for c in config.counters],
        "priority_classes": [p.model_dump() for p in config.priority_classes],
    }


@router.get("/api/v1/track/{token}", response_model=TrackOut)
async def track(token: Annotated[str, Path(min_length=1, max_length=64)],
                service: Annotated[CentreService, Depends(get_service)]) -> dict[str, Any]:
    """A ticket's place in line, by the unguessable token printed in its QR code."""
    found = await public_ticket(service, token)
    if found is None:
        raise ApiError(404, "ticket_not_found", "Không tìm thấy vé. Hãy kiểm tra lại mã trên vé.",
                       "Ticket not found. Check the code on your ticket.")
    return found[1]
