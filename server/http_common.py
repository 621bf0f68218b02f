"""What every HTTP router shares: the refusal type and its JSON, who is calling, role checks.

Every refusal is a 4xx with ``{"error", "message" (Vietnamese), "message_en"}``. Routers reach the
centre through ``request.app.state`` (service, credentials, MQTT link, accounts, live hub), set
once by :func:`server.api.create_app`, so no router imports another or the app module.
"""

# No "from __future__ import annotations": FastAPI must see the real types used in Depends().

from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Literal

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from server.accounts import Accounts
from server.devices import DeviceRegistry
from server.service import CentreService

SESSION_COOKIE = "luot_session"
BACKGROUND_HEADER = "x-luot-background"


class ApiError(Exception):
    """A refusal in plain words; the app's handler turns it into :func:`error_response`."""

    def __init__(self, status: int, code: str, message: str, message_en: str) -> None:
        super().__init__(message_en)
        self.status, self.code, self.message, self.message_en = status, code, message, message_en


def error_response(status: int, code: str, message: str, message_en: str) -> JSONResponse:
    """The one JSON shape of every refusal."""
    return JSONResponse({"error": code, "message": message, "message_en": message_en}, status_code=status)


UNAUTHORISED = ApiError(401, "unauthorised", "Cần đăng nhập hoặc mã thiết bị hợp lệ.", "Log in or use a valid device credential.")
FORBIDDEN = ApiError(403, "forbidden", "Bạn không có quyền làm việc này.", "You are not allowed to do this.")
READ_ONLY = ApiError(403, "read_only_device", "Màn hình quản lý chỉ được xem, không được thay đổi gì.",
                     "A manager screen (device) may read, never change anything.")
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Body(BaseModel):
    """A request body: unknown fields are refused, not silently dropped."""

    model_config = {"extra": "forbid"}


PASSWORD_CHANGE_REQUIRED = ApiError(403, "password_change_required",
                                    "Bạn cần đổi mật khẩu trước khi làm việc.",
                                    "Change your password before doing anything else.")


@dataclass(frozen=True)
class Principal:
    """Who is calling: a device (role kiosk/display/pad/manager) or a person (officer/manager).

    ``counter``: a device's counter, or the counter a person's sign-in is bound to (login with a
    counter, or opening one). ``session``: a person's session key (the token's hash)."""

    kind: Literal["device", "user"]
    id: str
    role: str
    counter: int | None = None
    must_change_password: bool = False
    session: str | None = None


def get_service(request: Request) -> CentreService:
    """The centre service of this app (a dependency: ``Annotated[CentreService, Depends(get_service)]``)."""
    return request.app.state.service


def get_accounts(request: Request) -> Accounts:
    """Staff accounts and sessions of this app."""
    return request.app.state.accounts


def get_registry(request: Request) -> DeviceRegistry:
    """Who each device is and whether it may still come in (server/devices.py)."""
    return request.app.state.registry


async def apply_registry(request: Request) -> None:
    """Tell the broker about an enrolment or revocation now, not at the watcher's next look."""
    access = getattr(request.app.state, "access", None)
    if access is not None:
        await access.sync()


def get_link(request: Request) -> Any:
    """The MQTT link, or None when MQTT is off."""
    return request.app.state.link


def session_token(request: Request) -> str:
    """The bearer token of the Authorization header, else the session cookie, else ''."""
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else request.cookies.get(SESSION_COOKIE, "")


async def principal(request: Request) -> Principal | None:
    """The device (``<device-id>:<secret>``) or person (session token) calling, or None."""
    token = session_token(request)
    if not token:
        return None
    state = request.app.state
    service: CentreService = state.service
    if ":" in token:  # a device, asked of the registry on every request: a revocation counts at once
        device_id, _, secret = token.partition(":")
        device = state.registry.http_device(device_id, secret)
        return Principal("device", device.id, device.role, device.counter) if device else None
    # A page's own refresh (timer, live update) is not activity: it must not keep an unattended
    # console signed in past the idle time.
    found = await state.accounts.session(token, service.now(), touch=request.headers.get(BACKGROUND_HEADER) != "1")
    if found is None:
        return None
    user = found.user
    return Principal("user", user.username, user.role, found.counter, user.must_change_password, found.key)


def require(*roles: str, password_change: bool = False) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency admitting only callers with one of ``roles`` (401 unknown, 403 other role).

    A person still holding a one-time password is refused everything (403
    ``password_change_required``) except where ``password_change`` is True."""
    # Takes the request itself rather than Depends(principal): one level of dependency
    # solving less on every staff and kiosk request (bench/bench_load.py).
    async def dependency(request: Request) -> Principal:
        who = await principal(request)
        if who is None:
            raise UNAUTHORISED
        if who.role not in roles:
            raise FORBIDDEN
        if who.must_change_password and not password_change:
            raise PASSWORD_CHANGE_REQUIRED
        if who.kind == "device" and who.role == "manager" and request.method not in READ_METHODS:
            raise READ_ONLY  # a dashboard screen reads what a manager reads and changes nothing
        return who
    return dependency


def client_address(request: Request) -> str:
    """The caller's IP address as the server sees it (proxy headers are not trusted)."""
    return request.client.host if request.client else "unknown"


staff = require("officer", "manager")
manager = require("manager")
signed_in = require("officer", "manager", password_change=True)

