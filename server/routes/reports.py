"""What managers read: waiting and satisfaction statistics, period reports and their CSV/XLSX
exports, the dashboard's settings and the event log."""

# No "from __future__ import annotations": FastAPI must see the real types used in Depends().

from datetime import date, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from luot.protocol import BOOKING_PRIVATE_FIELDS
from server.booking_report import kinds_report
from server.http_common import ApiError, Principal, get_link, get_service, manager
from server.reports import (SatisfactionBy, build_report, refused_ratings, satisfaction_csv, satisfaction_report,
                            satisfaction_xlsx, to_csv, to_xlsx)
from server.service import CentreService

router = APIRouter(tags=["reports"])

First = Annotated[date | None, Query(alias="from")]
Last = Annotated[date | None, Query(alias="to")]
By = Literal["group", "counter", "officer"]
Period = Literal["day", "week"]


def day_range(service: CentreService, first: date | None, last: date | None) -> tuple[date, date]:
    """A report's [first, last] days: both default to today, at most a year apart."""
    today = service.config.service_day(service.now())
    last = last or today
    first = first or last
    if first > last or (last - first) > timedelta(days=366):
        raise ApiError(422, "invalid_range", "Khoảng ngày không hợp lệ (tối đa 1 năm).", "Invalid date range (at most one year).")
    return first, last


@router.get("/api/v1/stats/waiting")
async def stats_waiting(
    who: Annotated[Principal, Depends(manager)],
    service: Annotated[CentreService, Depends(get_service)],
    first: First = None,
    last: Last = None,
    by: Literal["group", "hour", "counter", "officer"] = "group",
) -> dict[str, Any]:
    """Tickets, mean and 90th-percentile wait, mean service time and no-show rate (rollups)."""
    a, b = day_range(service, first, last)
    return {"from": a.isoformat(), "to": b.isoformat(), "by": by, "rows": await service.storage.waiting_stats(a, b, by)}


@router.get("/api/v1/stats/satisfaction")
async def stats_satisfaction(
    who: Annotated[Principal, Depends(manager)],
    service: Annotated[CentreService, Depends(get_service)],
    first: First = None,
    last: Last = None,
    by: Literal["counter", "officer", "group"] = "counter",
) -> dict[str, Any]:
    a, b = day_range(service, first, last)
    return {"from": a.isoformat(), "to": b.isoformat(), "by": by, "rows": await service.storage.satisfaction(a, b, by)}


@router.get("/api/v1/events")
async def events(
    who: Annotated[Principal, Depends(manager)],
    service: Annotated[CentreService, Depends(get_service)],
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> dict[str, Any]:
    """The append-only event log by sequence number, for catch-up after an outage."""
    rows = await service.storage.events_after(after, limit)
    for row in rows:
        for key in ("token", *BOOKING_PRIVATE_FIELDS):  # the keyed hashes of a booking stay here
            row["data"].pop(key, None)
    return {"events": rows, "last_seq": await service.storage.last_seq()}


@router.get("/api/v1/dashboard")
async def dashboard_settings(who: Annotated[Principal, Depends(manager)],
                             service: Annotated[CentreService, Depends(get_service)],
                             link: Annotated[Any, Depends(get_link)]) -> dict[str, Any]:
    """What the dashboard needs besides the snapshot: alert thresholds, and whether device
    availability is known at all (it comes from the MQTT link, absent when MQTT is off)."""
    config = service.config
    return {"centre": config.centre.name,
            "wait_alert_minutes": {g.code: config.wait_alert_minutes(g.code) for g in config.groups},
            "availability_known": bool(link is not None and hasattr(link, "devices_status")),
            "mqtt_connected": bool(link is not None and getattr(link, "connected", False))}


async def _report(service: CentreService, first: date | None, last: date | None, by: str,
                  period: str) -> tuple[date, date, list[dict[str, Any]]]:
    a, b = day_range(service, first, last)
    return a, b, await build_report(service.storage, service.config, a, b, by, period)  # type: ignore[arg-type]


@router.get("/api/v1/reports")
async def report(
    who: Annotated[Principal, Depends(manager)],
    service: Annotated[CentreService, Depends(get_service)],
    first: First = None,
    last: Last = None,
    by: By = "group",
    period: Period = "day",
) -> dict[str, Any]:
    """Per day or ISO week, by group, counter or officer: tickets, mean and P90 wait, mean
    service time, no-show rate (%) and satisfaction index (0-100)."""
    a, b, rows = await _report(service, first, last, by, period)
    return {"from": a.isoformat(), "to": b.isoformat(), "by": by, "period": period, "rows": rows}


@router.get("/api/v1/reports/kinds")
async def report_kinds(who: Annotated[Principal, Depends(manager)],
                       service: Annotated[CentreService, Depends(get_service)],
                       first: First = None, last: Last = None) -> dict[str, Any]:
    """Walk-in, remote and appointment tickets: issued, called, no-shows (and lapsed bookings),
    mean wait of each kind, and the remote share (server/booking_report.py)."""
    a, b = day_range(service, first, last)
    return await kinds_report(service.storage, a, b)


EXPORTS = {
    "csv": ("text/csv; charset=utf-8", lambda rows, title, excel_vi=False: to_csv(rows, excel_vi)),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
             lambda rows, title, excel_vi=False: to_xlsx(rows, title)),
}
ExcelVi = Annotated[Literal["vi"] | None, Query(description="'vi': a CSV for Excel on Vietnamese Windows (';' between "
                                                            "fields, ',' in decimals); default RFC 4180 commas")]


@router.get("/api/v1/reports/export.{fmt}")
async def export(
    fmt: Literal["csv", "xlsx"],
    who: Annotated[Principal, Depends(manager)],
    service: Annotated[CentreService, Depends(get_service)],
    first: First = None,
    last: Last = None,
    by: By = "group",
    period: Period = "day",
    excel: ExcelVi = None,
) -> Response:
    """The report as CSV (UTF-8 with BOM, for Excel) or as an Excel workbook; Vietnamese headings."""
    a, b, rows = await _report(service, first, last, by, period)
    media_type, render = EXPORTS[fmt]
    centre = service.config.centre
    title = f"{centre.name} — báo cáo {a.isoformat()} đến {b.isoformat()}"
    name = f"luot-{centre.id}-{by}-{period}-{a.isoformat()}-{b.isoformat()}.{fmt}"
    return Response(render(rows, title, excel == "vi"), media_type=media_type,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/api/v1/reports/satisfaction")
async def satisfaction(
    who: Annotated[Principal, Depends(manager)],
    service: Annotated[CentreService, Depends(get_service)],
    first: First = None,
    last: Last = None,
    by: SatisfactionBy = "group",
) -> dict[str, Any]:
    """Satisfaction the way the centre is judged, by group, procedure code (mã TTHC from the
    dossier's receipt), counter, officer or month over [from, to]: the Decision 766 per-dossier index, ratings by level, reasons, the waits of
    dissatisfied versus satisfied citizens, on-time returns and early/late comers; the last row
    (key ``*``) is the whole centre. ``refused``: ratings refused in the range, by reason."""
    a, b = day_range(service, first, last)
    rows = await satisfaction_report(service.storage, service.config, a, b, by)
    return {"from": a.isoformat(), "to": b.isoformat(), "by": by, "rows": rows,
            "refused": await refused_ratings(service.storage, a, b)}


@router.get("/api/v1/reports/satisfaction.{fmt}")
async def satisfaction_export(
    fmt: Literal["csv", "xlsx"],
    who: Annotated[Principal, Depends(manager)],
    service: Annotated[CentreService, Depends(get_service)],
    first: First = None,
    last: Last = None,
    by: SatisfactionBy = "group",
    excel: ExcelVi = None,
) -> Response:
    """The satisfaction report as CSV (UTF-8 with BOM) or XLSX, Vietnamese headings."""
    a, b = day_range(service, first, last)
    rows = await satisfaction_report(service.storage, service.config, a, b, by)
    centre = service.config.centre
    body = satisfaction_csv(rows, excel == "vi") if fmt == "csv" else satisfaction_xlsx(rows, f"{centre.name} — hài lòng {a} đến {b}")
    name = f"luot-{centre.id}-hai-long-{by}-{a.isoformat()}-{b.isoformat()}.{fmt}"
    return Response(body, media_type=EXPORTS[fmt][0], headers={"Content-Disposition": f'attachment; filename="{name}"'})
