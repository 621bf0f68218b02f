"""HTTP API (FastAPI, OpenAPI at /openapi.json): a thin adapter over :class:`CentreService`.

Who may do what:
- anyone: the public centre description, a ticket's status by its tracking token, /health;
- devices (``Authorization: Bearer <device-id>:<secret>``): kiosks issue tickets, lease number
  blocks and ask for help; pads send ratings;
- officers and managers (``Authorization: Bearer <session token>`` from /api/v1/login, or the
  ``luot_session`` cookie set by the same call): counter actions; managers also reports and the
  event log.
Every refusal is a 4xx with ``{"error", "message" (Vietnamese), "message_en"}``; never a 500.

This module only assembles the app: its state, the error handlers and one ``include_router``
per resource (server/routes/); shared pieces are in server/http_common.py.
"""

import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from luot.credentials import Credentials
from server.accounts import AccountError, Accounts
from server.booking_service import BookingDesk
from server.notify.notifier import Notifier
from server.notify.turn import TurnMessages
from server.otp import OneTimeCodes
from server.phones import PhoneVault
from server.devices import DeviceRegistry, RegistryError
from server.engine import QueueError
from server.http_common import ApiError, error_response
from server.http_limits import EdgeMiddleware
from server.live import LiveHub
from server.login_gate import LoginGate
from server.metrics import CentreMetrics
from server.routes import booking_page, bookings, counters, devices, docs, dossiers, enrol, export, metrics, pages, public, reports, staff, tickets
from server.service import CentreService
from server.storage import StorageError

log = logging.getLogger("luot.api")


def create_app(service: CentreService, credentials: Credentials, link: Any = None,
               registry: DeviceRegistry | None = None, accounts: Accounts | None = None) -> FastAPI:
    """Build the FastAPI application for one centre; devices are checked in ``registry`` (one over
    the directory of secrets.json when none is given); ``accounts``: the runtime's, so sessions and
    the login guard are one in-memory state per process."""
    app = FastAPI(
        title="Luot centre API",
        version="1",
        description="Queue, kiosk and announcement API of one Public Administration Service Centre.",
        docs_url=None, redoc_url=None,  # FastAPI's pages load from CDNs: /docs comes from routes/docs.py
    )
    app.state.service = service
    app.state.credentials = credentials
    app.state.link = link
    app.state.registry = registry or DeviceRegistry(service.config, credentials, credentials.path.parent)
    app.state.accounts = accounts or Accounts(service.storage, service.config.staff)
    app.state.live = LiveHub(service)
    app.state.metrics = CentreMetrics(service, link, app.state.live)  # hooked into commits from the start
    _add_bookings(app, service, credentials.path.parent)
    _add_error_handlers(app)
    app.add_middleware(EdgeMiddleware)  # body size and origin, before routing and authentication
    app.add_middleware(LoginGate)  # a locked-out address's sign-ins refused before any parsing

    app.include_router(public.router)
    app.include_router(staff.router)
    app.include_router(tickets.router)
    app.include_router(bookings.router)
    app.include_router(counters.router)
    app.include_router(dossiers.router)
    app.include_router(devices.router)
    app.include_router(enrol.router)
    app.include_router(reports.router)
    app.include_router(export.router)
    app.include_router(metrics.router)
    app.mount("/static", StaticFiles(directory=pages.WEB_DIR), name="static")
    app.include_router(pages.router)
    app.include_router(booking_page.router)
    app.include_router(docs.router)
    docs.mount_assets(app)
    return app


def _add_bookings(app: FastAPI, service: CentreService, data_dir: Path) -> None:
    """Phones, one-time codes, the notifier's outbox, "your turn is near" and the booking desk
    (docs/bookings.md, docs/notifications.md). Their secrets and files live in the data directory;
    the runtime starts the background tasks (server/app.py)."""
    vault = PhoneVault.for_data_dir(data_dir)
    notifier = Notifier.for_centre(service.config, data_dir, vault, clock=service.now)
    desk = BookingDesk(service, vault)
    app.state.vault = vault
    app.state.notifier = notifier
    app.state.codes = OneTimeCodes.for_data_dir(data_dir, vault, notifier, service.config.otp)
    app.state.bookings = desk
    app.state.turns = TurnMessages(service, notifier, desk.contact_for_ticket)


def _add_error_handlers(app: FastAPI) -> None:
    """Errors in plain words, never a 500 for anything a caller did."""

    @app.exception_handler(QueueError)
    async def _queue_error(_: Request, error: QueueError) -> JSONResponse:
        return error_response(error.status, error.code, error.message, error.message_en)

    @app.exception_handler(AccountError)
    async def _account_error(_: Request, error: AccountError) -> JSONResponse:
        response = error_response(error.status, error.code, error.message, error.message_en)
        if error.retry_after is not None:
            response.headers["Retry-After"] = str(error.retry_after)
        return response

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, error: ApiError) -> JSONResponse:
        return error_response(error.status, error.code, error.message, error.message_en)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = []
        for item in error.errors()[:5]:
            where = ".".join(str(p) for p in item.get("loc", ()) if p != "body") or "body"
            problems.append(f"{where}: {item.get('msg')}")
        text = "; ".join(problems)
        return error_response(422, "invalid_request", f"Yêu cầu không hợp lệ: {text}", f"Invalid request: {text}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 404:
            return error_response(404, "not_found", "Không có trang này.", "No such page.")
        if error.status_code == 405:
            return error_response(405, "method_not_allowed", "Phương thức không được hỗ trợ.", "Method not allowed.")
        return error_response(error.status_code, "http_error", str(error.detail), str(error.detail))

    @app.exception_handler(RegistryError)
    async def _registry_error(_: Request, error: RegistryError) -> JSONResponse:
        return error_response(error.status, error.code, error.message, error.message_en)

    @app.exception_handler(StorageError)
    async def _storage(_: Request, error: StorageError) -> JSONResponse:
        return error_response(503, "storage_unavailable", "Hệ thống tạm thời không lưu được, xin thử lại.",
                              "Could not save; please retry.")

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return error_response(500, "internal", "Lỗi hệ thống, đã ghi nhật ký.", "Internal error; it has been logged.")
