"""The province hand-off (docs/export.md): the JSON-lines feed of ratings and dossier links with a
since-cursor, its field list, and the daily CSV. Managers (people or a manager-role device, such as
an integrator's read-only account) only."""

# No "from __future__ import annotations": FastAPI must see the real types used in Depends().

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from server.export import FIELDS, SCHEMA, daily_csv, day_records, feed, ndjson
from server.http_common import Principal, get_service, manager
from server.service import CentreService

router = APIRouter(tags=["export"])


@router.get("/api/v1/export/feed")
async def export_feed(
    who: Annotated[Principal, Depends(manager)],
    service: Annotated[CentreService, Depends(get_service)],
    since: Annotated[int, Query(ge=0, description="the cursor: records after this sequence number")] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> Response:
    """Ratings and dossier links after ``since``, one JSON object a line (application/x-ndjson).
    Ask again with ``since`` = the ``X-Luot-Next-Since`` header until a page comes back empty."""
    records, cursor = await feed(service.storage, service.config, since, limit)
    return Response(ndjson(records), media_type="application/x-ndjson; charset=utf-8",
                    headers={"X-Luot-Next-Since": str(cursor), "X-Luot-Schema": SCHEMA})


@router.get("/api/v1/export/fields")
async def export_fields(who: Annotated[Principal, Depends(manager)]) -> dict[str, Any]:
    """The documented record layout: each key, the evaluation-form item it answers, its meaning,
    the record kinds it appears in, and whether the key name is Luot's mapping."""
    return {"schema": SCHEMA, "fields": [{"key": f.key, "form_item": f.form_item, "meaning": f.meaning,
                                          "kinds": list(f.kinds), "mapping": f.mapping} for f in FIELDS]}


@router.get("/api/v1/export/daily.csv")
async def export_daily(
    who: Annotated[Principal, Depends(manager)],
    service: Annotated[CentreService, Depends(get_service)],
    day: Annotated[date | None, Query(description="the service day; default today")] = None,
) -> Response:
    """One service day's ratings and dossier links as CSV (UTF-8 with BOM, for Excel)."""
    day = day or service.config.service_day(service.now())
    body = daily_csv(await day_records(service.storage, service.config, day))
    name = f"luot-{service.config.centre.id}-export-{day.isoformat()}.csv"
    return Response(body, media_type="text/csv; charset=utf-8", headers={"Content-Disposition": f'attachment; filename="{name}"'})
