"""Refuses a sign-in from a locked-out address before FastAPI parses or routes it.

A guessing machine keeps sending ``POST /api/v1/login`` at full speed after its address is
locked; each refusal through the route (dependency solving, body validation, the exception
handler) costs the event loop that also serves the kiosks. The address's wait needs no body, so
this pure ASGI middleware answers 429 at the door, with the same JSON and ``Retry-After`` as the
route. A per-username wait still needs the body and stays in :meth:`Accounts.login`.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from server.accounts import locked
from server.http_common import error_response

LOGIN_PATH = "/api/v1/login"
ASGIApp = Callable[[dict[str, Any], Callable[[], Awaitable[dict[str, Any]]], Callable[[dict[str, Any]], Awaitable[None]]],
                   Awaitable[None]]


class LoginGate:
    """Pure ASGI middleware in front of the app (``app.add_middleware(LoginGate)``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == LOGIN_PATH:
            accounts = scope["app"].state.accounts  # Starlette puts the app in the scope first
            client = scope.get("client")
            wait = accounts.guard.address_wait_seconds(client[0] if client else "unknown")
            if wait > 0:
                refusal = locked(wait)
                response = error_response(refusal.status, refusal.code, refusal.message, refusal.message_en)
                response.headers["Retry-After"] = str(wait)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
