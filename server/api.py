"""HTTP API (FastAPI, OpenAPI at /openapi.json): a thin adapter over :class:`CentreService`.

Who may do what:
- anyone: the public centre description, a ticket's status by its tracking token, /health;
- devices (``Authorization: Bearer <device-id>:<secret>``): kiosks issue tickets, lease number
  blocks and ask for help; pads send ratings;
- officers and managers (``Authorization: Bearer <session token>`` from /api/v1/login, or the
  ``luot_session`` cookie set by the same call): counter actions; managers also reports and the
  event log.
Every refusal is a 4xx with ``{"error", "message" (Vietnamese), "message_en"}``; never a 500.
"""

# No "from __future__ import annotations": FastAPI must see the closures used in Depends().

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from luot.credentials import Credentials
from server.engine import DOSSIER_STATUSES, Dossier, QueueError
from server.live import public_ticket
from server.service import CentreService
from server.storage import StorageError

log = logging.getLogger("luot.api")

SESSION_COOKIE = "luot_session"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, message_en: str) -> None:
        super().__init__(message_en)
        self.status, self.code, self.message, self.message_en = status, code, message, message_en


def _error(status: int, code: str, message: str, message_en: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, "message_en": message_en}, status_code=status)


UNAUTHORISED = ApiError(401, "unauthorised", "Cần đăng nhập hoặc mã thiết bị hợp lệ.", "Log in or use a valid device credential.")


@dataclass(frozen=True)
class Principal:
    """Who is calling: a device (role kiosk/display/pad/manager) or a person (officer/manager)."""

    kind: Literal["device", "user"]
    id: str
    role: str
    counter: int | None = None


# ---------------------------------------------------------------------- request and response bodies
class _Body(BaseModel):
    model_config = {"extra": "forbid"}


class LoginBody(_Body):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class IssueBody(_Body):
    group: str = Field(min_length=1, max_length=40, description="procedure group code, e.g. 'ho-tich'")
    priority: str | None = Field(None, max_length=40, description="priority class code, e.g. 'elderly'")


class TicketOut(BaseModel):
    id: str
    number: int
    group: str
    group_name: str
    group_name_en: str
    letter: str
    priority: bool
    status: str
    counter: int | None
    counters: list[int]
    ahead: int
    wait_minutes: float | None
    calls: int
    issued_at: str
    called_at: str | None
    offline: bool
    token: str | None = None
    tracking_url: str | None = None


class TrackOut(BaseModel):
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


class PauseBody(_Body):
    reason: str | None = Field(None, max_length=200)


class CallBody(_Body):
    ticket_id: str = Field(min_length=1, max_length=64)


class TransferBody(_Body):
    group: str | None = Field(None, max_length=40)
    counter: int | None = Field(None, ge=1, le=999)


class DossierBody(_Body):
    code: str = Field(min_length=1, max_length=60,
                      description="the dossier code written on the receipt: 3 to 40 letters, digits or . _ - "
                                  "(checked by the engine, which explains a wrong code in plain words)")


class DossierStatusBody(_Body):
    status: Literal[DOSSIER_STATUSES]  # type: ignore[valid-type]


class FeedbackBody(_Body):
    ticket_id: str = Field(min_length=1, max_length=64)
    rating: int = Field(ge=1, le=4, description="4 rất hài lòng, 3 hài lòng, 2 bình thường, 1 không hài lòng")


class AssistanceBody(_Body):
    request_id: str = Field(min_length=1, max_length=64)
    reason: Literal["help", "guided", "language", "other"] = "help"


class LeaseBody(_Body):
    group: str = Field(min_length=1, max_length=40)
    size: int = Field(50, ge=1, le=200)


class OfflineTicketBody(_Body):
    group: str = Field(min_length=1, max_length=40)
    number: int = Field(ge=1, le=999_999)
    issued_at: str = Field(description="ISO 8601 time the kiosk printed the ticket")
    token: str = Field(min_length=16, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    priority: str | None = Field(None, max_length=40)


CounterAction = Literal["open", "close", "pause", "resume", "call-next", "recall", "no-show", "start", "finish"]


def create_app(service: CentreService, credentials: Credentials, link: Any = None) -> FastAPI:
    """Build the FastAPI application for one centre."""
    config = service.config
    app = FastAPI(
        title="Luot centre API",
        version="1",
        description="Queue, kiosk and announcement API of one Public Administration Service Centre.",
    )
    app.state.service = service
    app.state.credentials = credentials
    app.state.link = link

    # ------------------------------------------------------------------ errors: plain words, never a 500
    @app.exception_handler(QueueError)
    async def _queue_error(_: Request, error: QueueError) -> JSONResponse:
        return _error(error.status, error.code, error.message, error.message_en)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, error: ApiError) -> JSONResponse:
        return _error(error.status, error.code, error.message, error.message_en)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = []
        for item in error.errors()[:5]:
            where = ".".join(str(p) for p in item.get("loc", ()) if p != "body") or "body"
            problems.append(f"{where}: {item.get('msg')}")
        text = "; ".join(problems)
        return _error(422, "invalid_request", f"Yêu cầu không hợp lệ: {text}", f"Invalid request: {text}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 404:
            return _error(404, "not_found", "Không có trang này.", "No such page.")
        if error.status_code == 405:
            return _error(405, "method_not_allowed", "Phương thức không được hỗ trợ.", "Method not allowed.")
        return _error(error.status_code, "http_error", str(error.detail), str(error.detail))

    @app.exception_handler(StorageError)
    async def _storage(_: Request, error: StorageError) -> JSONResponse:
        return _error(503, "storage_unavailable", "Hệ thống tạm thời không lưu được, xin thử lại.", "Could not save; please retry.")

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return _error(500, "internal", "Lỗi hệ thống, đã ghi nhật ký.", "Internal error; it has been logged.")

    # ------------------------------------------------------------------ identity
    async def principal(request: Request) -> Principal | None:
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else request.cookies.get(SESSION_COOKIE, "")
        if not token:
            return None
        if ":" in token:
            device_id, _, secret = token.partition(":")
            if credentials.check(device_id, secret):
                try:
                    device = config.device(device_id)
                except KeyError:
                    return None
                return Principal("device", device.id, device.role, device.counter)
            return None
        user = await service.storage.session_user(token, service.now())
        return Principal("user", user.username, user.role) if user else None

    def require(*roles: str):
        # Takes the request itself rather than Depends(principal): one level of dependency
        # solving less on every staff and kiosk request (bench/bench_load.py).
        async def dependency(request: Request) -> Principal:
            who = await principal(request)
            if who is None:
                raise UNAUTHORISED
            if who.role not in roles:
                raise ApiError(403, "forbidden", "Bạn không có quyền làm việc này.", "You are not allowed to do this.")
            return who
        return dependency

    staff = require("officer", "manager")
    manager = require("manager")
    app.state.require = require  # the web pages' module (server/web.py) uses the same checks

    # ------------------------------------------------------------------ public
    @app.get("/health", tags=["public"])
    async def health() -> dict[str, Any]:
        """Is the centre server up, and is its broker link up."""
        return {
            "ok": True,
            "centre": config.centre.id,
            "day": service.engine.day.isoformat() if service.engine.day else None,
            "mqtt": bool(link and link.connected),
            "events": service.storage.committed_events,
        }

    @app.get("/api/v1/centre", tags=["public"])
    async def centre() -> dict[str, Any]:
        """The public description kiosks and pages need: groups, counters, priority classes."""
        now = service.now()
        return {
            "id": config.centre.id, "name": config.centre.name, "name_en": config.centre.name_en,
            "notice": config.centre.notice, "notice_en": config.centre.notice_en,
            "open_now": config.is_open(now), "day": config.service_day(now).isoformat(),
            "groups": [{**g.model_dump(include={"code", "letter", "name", "name_en", "description", "service_minutes",
                                                "legal_days", "documents"}),
                        "wait_alert_minutes": config.wait_alert_minutes(g.code)} for g in config.groups],
            "counters": [{"number": c.number, "name": c.label, "groups": c.groups} for c in config.counters],
            "priority_classes": [p.model_dump() for p in config.priority_classes],
        }

    @app.get("/api/v1/track/{token}", response_model=TrackOut, tags=["public"])
    async def track(token: Annotated[str, Path(min_length=1, max_length=64)]) -> dict[str, Any]:
        """A ticket's place in line, by the unguessable token printed in its QR code."""
        not_found = ApiError(404, "ticket_not_found", "Không tìm thấy vé. Hãy kiểm tra lại mã trên vé.",
                             "Ticket not found. Check the code on your ticket.")
        found = await public_ticket(service, token)
        if found is None:
            raise not_found
        return found[1]

    # ------------------------------------------------------------------ sessions
    @app.post("/api/v1/login", tags=["staff"])
    async def login(body: LoginBody) -> JSONResponse:
        user = await service.storage.verify_user(body.username, body.password)
        if user is None:
            raise ApiError(401, "bad_login", "Sai tên đăng nhập hoặc mật khẩu.", "Wrong username or password.")
        token = await service.storage.create_session(user.username, service.now())
        response = JSONResponse({"token": token, "username": user.username, "name": user.name, "role": user.role})
        response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", max_age=12 * 3600)
        return response

    @app.post("/api/v1/logout", tags=["staff"])
    async def logout(request: Request) -> JSONResponse:
        token = request.cookies.get(SESSION_COOKIE) or request.headers.get("authorization", "")[7:]
        if token:
            await service.storage.end_session(token)
        response = JSONResponse({"ok": True})
        response.delete_cookie(SESSION_COOKIE)
        return response

    # ------------------------------------------------------------------ tickets
    @app.post("/api/v1/tickets", response_model=TicketOut, status_code=201, tags=["tickets"])
    async def issue(body: IssueBody, who: Annotated[Principal, Depends(require("kiosk", "officer", "manager"))]) -> dict[str, Any]:
        """Issue the next number of a group. The answer comes only after the ticket is on disk."""
        ticket = await service.run(lambda e, now: e.issue(body.group, now, priority=body.priority, source=who.id))
        return {**service.ticket_view(ticket.id), "token": ticket.token, "tracking_url": service.tracking_url(ticket.token)}

    @app.get("/api/v1/tickets/{ticket_id}", response_model=TicketOut, tags=["tickets"])
    async def ticket(ticket_id: Annotated[str, Path(max_length=64)], who: Annotated[Principal, Depends(staff)]) -> dict[str, Any]:
        return service.ticket_view(ticket_id)

    @app.post("/api/v1/tickets/{ticket_id}/cancel", response_model=TicketOut, tags=["tickets"])
    async def cancel(ticket_id: Annotated[str, Path(max_length=64)], who: Annotated[Principal, Depends(staff)]) -> dict[str, Any]:
        ticket = await service.run(lambda e, now: e.cancel(ticket_id, now, reason="staff"))
        return service.ticket_view(ticket.id)

    @app.get("/api/v1/queue", tags=["tickets"])
    async def queue(who: Annotated[Principal, Depends(require("officer", "manager", "kiosk", "display"))]) -> dict[str, Any]:
        """What is true now: waiting per group, longest waits, counters, recent calls."""
        return service.engine.snapshot(service.now())

    # ------------------------------------------------------------------ counters
    @app.get("/api/v1/counters/{number}/waiting", tags=["counters"])
    async def counter_waiting(number: Annotated[int, Path(ge=1, le=999)], who: Annotated[Principal, Depends(staff)]) -> dict[str, Any]:
        """The tickets this counter may call, in calling order, with their expected waits."""
        engine = service.engine
        counter = engine.counter(number)
        now = service.now()
        estimates = engine.estimates(now)
        rows = []
        for t in engine.waiting():
            if engine.eligible(t, counter):
                est = estimates.get(t.id)
                rows.append({"id": t.id, "number": t.number, "group": t.group, "priority": t.priority is not None,
                             "waited_minutes": round((now - t.queue_since).total_seconds() / 60, 1),
                             "wait_minutes": est.wait_minutes if est else None, "transferred": t.transfers > 0})
        return {"counter": engine.counter_view(number), "waiting": rows}

    @app.post("/api/v1/counters/{number}/call", tags=["counters"])
    async def counter_call(number: Annotated[int, Path(ge=1, le=999)], body: CallBody,
                           who: Annotated[Principal, Depends(staff)]) -> dict[str, Any]:
        """Call one chosen ticket from the counter's waiting list."""
        ticket = await service.run(lambda e, now: e.call_ticket(number, body.ticket_id, now))
        return {"counter": service.engine.counter_view(number), "ticket": {"id": ticket.id, "number": ticket.number}}

    @app.post("/api/v1/counters/{number}/transfer", tags=["counters"])
    async def counter_transfer(number: Annotated[int, Path(ge=1, le=999)], body: TransferBody,
                               who: Annotated[Principal, Depends(staff)]) -> dict[str, Any]:
        """Send the current ticket to another group or counter; it keeps its place in line."""
        ticket = await service.run(lambda e, now: e.transfer(number, now, to_group=body.group, to_counter=body.counter))
        return {"counter": service.engine.counter_view(number), "ticket": service.ticket_view(ticket.id)}

    # registered after /call and /transfer: the generic {action} route would shadow them
    @app.post("/api/v1/counters/{number}/{action}", tags=["counters"])
    async def counter_action(
        number: Annotated[int, Path(ge=1, le=999)],
        action: CounterAction,
        who: Annotated[Principal, Depends(staff)],
        pause: PauseBody | None = None,
    ) -> dict[str, Any]:
        """Open, close, pause, resume, call next, recall, mark absent, start or finish at a counter."""
        commands = {
            "open": lambda e, now: (None, e.open_counter(number, who.id, now)),
            "close": lambda e, now: (None, e.close_counter(number, now)),
            "pause": lambda e, now: (None, e.pause(number, now, reason=pause.reason if pause else None)),
            "resume": lambda e, now: (None, e.resume(number, now)),
            "call-next": lambda e, now: e.call_next(number, now),
            "recall": lambda e, now: e.recall(number, now),
            "no-show": lambda e, now: e.no_show(number, now),
            "start": lambda e, now: e.start(number, now),
            "finish": lambda e, now: e.finish(number, now),
        }
        service.engine.counter(number)  # 404 for an unknown counter before anything else
        ticket = await service.run(commands[action])
        return {"counter": service.engine.counter_view(number),
                "ticket": {"id": ticket.id, "number": ticket.number, "group": ticket.group, "status": ticket.status}
                if ticket else None}

    @app.post("/api/v1/day/close", tags=["counters"])
    async def close_day(who: Annotated[Principal, Depends(manager)]) -> dict[str, Any]:
        """End of day: tickets still open expire, counters close. Numbers are not reused today."""
        await service.run(lambda e, now: (None, e.close_day(now)))
        return {"ok": True, "day": service.engine.day.isoformat() if service.engine.day else None}

    # ------------------------------------------------------------------ dossiers
    @app.post("/api/v1/tickets/{ticket_id}/dossier", tags=["dossiers"])
    async def attach_dossier(ticket_id: Annotated[str, Path(max_length=64)], body: DossierBody,
                             who: Annotated[Principal, Depends(staff)]) -> dict[str, Any]:
        """Attach the dossier handed in with this ticket; the citizen's tracking page then follows it."""
        stored = await service.storage.dossier(body.code)
        if stored is not None and stored["ticket_id"] != ticket_id:
            raise ApiError(409, "dossier_taken", f"Mã hồ sơ {body.code} đã gắn với vé khác.",
                           f"Dossier {body.code} belongs to another ticket.")
        dossier = await service.run(lambda e, now: e.attach_dossier(ticket_id, body.code, now))
        return await service.storage.dossier(dossier.code) or {"code": dossier.code, "status": dossier.status}

    @app.post("/api/v1/dossiers/{code}/status", tags=["dossiers"])
    async def dossier_status(code: Annotated[str, Path(min_length=3, max_length=40)], body: DossierStatusBody,
                             who: Annotated[Principal, Depends(staff)]) -> dict[str, Any]:
        """Move a dossier on: received, processing, needs_documents, ready, returned (final)."""
        stored = await service.storage.dossier(code)
        known = Dossier(stored["code"], stored["ticket_id"], stored["status"]) if stored else None
        await service.run(lambda e, now: e.set_dossier_status(code, body.status, now, known=known))
        return await service.storage.dossier(code) or {}

    @app.get("/api/v1/dossiers/{code}", tags=["dossiers"])
    async def dossier_get(code: Annotated[str, Path(min_length=3, max_length=40)],
                          who: Annotated[Principal, Depends(staff)]) -> dict[str, Any]:
        stored = await service.storage.dossier(code)
        if stored is None:
            raise ApiError(404, "dossier_not_found", f"Không tìm thấy hồ sơ {code}.", f"No dossier {code}.")
        return stored

    # ------------------------------------------------------------------ devices
    @app.post("/api/v1/feedback", tags=["devices"])
    async def feedback(body: FeedbackBody, who: Annotated[Principal, Depends(require("pad"))]) -> dict[str, Any]:
        await service.run(lambda e, now: (None, e.record_feedback(body.ticket_id, body.rating, who.id, who.counter, now)))
        return {"ok": True}

    @app.post("/api/v1/assistance", tags=["devices"])
    async def assistance(body: AssistanceBody, who: Annotated[Principal, Depends(require("kiosk", "pad"))]) -> dict[str, Any]:
        await service.run(lambda e, now: (None, e.request_assistance(who.id, body.request_id, body.reason, now, who.counter)))
        return {"ok": True}

    @app.post("/api/v1/leases", tags=["devices"])
    async def lease(body: LeaseBody, who: Annotated[Principal, Depends(require("kiosk"))]) -> dict[str, Any]:
        """Reserve a block of numbers the kiosk may issue on its own while it is offline."""
        first, last = await service.run(lambda e, now: e.lease_block(who.id, body.group, body.size, now))
        return {"group": body.group, "first": first, "last": last, "day": service.engine.day.isoformat()}

    @app.post("/api/v1/offline-tickets", response_model=TicketOut, tags=["devices"])
    async def offline_ticket(body: OfflineTicketBody, who: Annotated[Principal, Depends(require("kiosk"))]) -> dict[str, Any]:
        """Hand over a ticket the kiosk issued offline from its leased block (safe to repeat)."""
        try:
            issued_at = datetime.fromisoformat(body.issued_at)
        except ValueError:
            raise ApiError(422, "invalid_request", "Thời điểm cấp vé không hợp lệ.", "issued_at is not an ISO 8601 time.") from None
        if issued_at.tzinfo is None:
            raise ApiError(422, "invalid_request", "Thời điểm cấp vé cần múi giờ.", "issued_at needs a time zone.")
        ticket = await service.run(lambda e, now: e.import_offline(who.id, body.group, body.number, issued_at, body.token, now,
                                                                   priority=body.priority))
        return {**service.ticket_view(ticket.id), "token": ticket.token, "tracking_url": service.tracking_url(ticket.token)}

    # ------------------------------------------------------------------ reports
    def _range(first: date | None, last: date | None) -> tuple[date, date]:
        today = config.service_day(service.now())
        last = last or today
        first = first or last
        if first > last or (last - first) > timedelta(days=366):
            raise ApiError(422, "invalid_range", "Khoảng ngày không hợp lệ (tối đa 1 năm).", "Invalid date range (at most one year).")
        return first, last

    @app.get("/api/v1/stats/waiting", tags=["reports"])
    async def stats_waiting(
        who: Annotated[Principal, Depends(manager)],
        first: Annotated[date | None, Query(alias="from")] = None,
        last: Annotated[date | None, Query(alias="to")] = None,
        by: Literal["group", "hour", "counter", "officer"] = "group",
    ) -> dict[str, Any]:
        """Tickets, mean and 90th-percentile wait, mean service time and no-show rate (rollups)."""
        a, b = _range(first, last)
        return {"from": a.isoformat(), "to": b.isoformat(), "by": by, "rows": await service.storage.waiting_stats(a, b, by)}

    @app.get("/api/v1/stats/satisfaction", tags=["reports"])
    async def stats_satisfaction(
        who: Annotated[Principal, Depends(manager)],
        first: Annotated[date | None, Query(alias="from")] = None,
        last: Annotated[date | None, Query(alias="to")] = None,
        by: Literal["counter", "officer", "group"] = "counter",
    ) -> dict[str, Any]:
        a, b = _range(first, last)
        return {"from": a.isoformat(), "to": b.isoformat(), "by": by, "rows": await service.storage.satisfaction(a, b, by)}

    @app.get("/api/v1/events", tags=["reports"])
    async def events(
        who: Annotated[Principal, Depends(manager)],
        after: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    ) -> dict[str, Any]:
        """The append-only event log by sequence number, for catch-up after an outage."""
        rows = await service.storage.events_after(after, limit)
        for row in rows:
            row["data"].pop("token", None)
        return {"events": rows, "last_seq": await service.storage.last_seq()}

    @app.get("/api/v1/devices", tags=["reports"])
    async def devices(who: Annotated[Principal, Depends(staff)]) -> dict[str, Any]:
        """Configured devices and whether each is online (from MQTT availability)."""
        status = link.devices_status() if link is not None and hasattr(link, "devices_status") else {}
        return {"devices": [{"id": d.id, "role": d.role, "counter": d.counter, **_availability(status.get(d.id))}
                            for d in config.devices]}

    from server.web import mount_pages  # pages and live streams; imported here to keep api.py their only entry
    mount_pages(app, service)
    from server.routes.metrics import install_metrics  # /metrics (Prometheus); after the pages' live hub
    install_metrics(app)
    return app


def _availability(entry: Any) -> dict[str, Any]:
    if not entry:
        return {"online": False, "since": None}
    state, since = entry
    return {"online": state == "online", "since": since.isoformat() if hasattr(since, "isoformat") else since}
