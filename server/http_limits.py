"""The HTTP server's edges: what a misbehaving client can hold of it, before anyone is authenticated.

A centre's server listens on the hall's Wi-Fi, where any phone can connect. Each limit here keeps
one client from taking what the kiosks and the officers need:

- :class:`EdgeProtocol`: a connection must finish its request headers within
  :data:`HEADER_TIMEOUT_SECONDS` of connecting (or of starting its next request). uvicorn arms a
  timer only *after* a response (keep-alive), so a connection that never sends a full request was
  held for ever: about 1,000 of them used every file descriptor and stopped all new connections.
  One address holds at most :data:`MAX_CONNECTIONS_PER_ADDRESS` connections at once: a flood of
  2,000 connections from one phone is cut at the door, before any HTTP is parsed, so a kiosk's
  request does not wait behind it. The cap is generous because a Wi-Fi router that translates
  addresses shows every phone in the hall as one.
- :class:`EdgeMiddleware` (pure ASGI, runs before routing and authentication):
  a body larger than :data:`MAX_BODY_BYTES` gets 413 before it is read into memory (one 200 MB
  body took the server from 131 to 757 MB), and a state-changing request sent by a browser from
  another origin gets 403 (a form on another port of the same host closed a counter with the
  manager's cookie: SameSite does not separate ports).
- :func:`raise_open_files_limit`: the soft limit on open files goes up to the hard limit, so a
  burst of idle connections waits for its timeout instead of starving ``accept``.
"""

from __future__ import annotations

import json
import logging
import resource
from asyncio import TimerHandle
from collections import Counter
from weakref import WeakKeyDictionary
from typing import Any, Awaitable, Callable
from urllib.parse import urlsplit

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

log = logging.getLogger("luot.http")

HEADER_TIMEOUT_SECONDS = 10.0
MAX_CONNECTIONS_PER_ADDRESS = 256
MAX_BODY_BYTES = 1024 * 1024  # the largest legitimate body (an offline ticket, a login) is under 2 KB
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


# Connections per client address, per server (tests run several servers in one process).
_open_per_address: "WeakKeyDictionary[ServerState, Counter[str]]" = WeakKeyDictionary()


class EdgeProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for each request's headers and a cap on the
    connections one address holds.

    Passed to ``uvicorn.Config(http=...)``, uvicorn's public way to choose the protocol class. The
    deadline runs from the connection (or from the first byte of a further request on a kept-alive
    connection) to the end of the headers; a client that trickles a header a byte at a time does not
    reset it.
    """

    header_timeout = HEADER_TIMEOUT_SECONDS
    max_per_address = MAX_CONNECTIONS_PER_ADDRESS
    _header_deadline: TimerHandle | None = None
    _address: str | None = None

    def __init__(self, config: Any, server_state: ServerState, app_state: dict[str, Any], _loop: Any = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._open = _open_per_address.setdefault(server_state, Counter())

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if peer else ""
        if self._open[address] >= self.max_per_address:
            transport.abort()  # before uvicorn knows of it: nothing parsed, nothing logged per connection
            return
        self._open[address] += 1
        self._address = address
        super().connection_made(transport)
        self._arm_header_deadline()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_deadline is None:
            self._arm_header_deadline()

    def on_headers_complete(self) -> None:
        self._disarm_header_deadline()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._address is None:
            return  # refused at the door; uvicorn never saw it
        self._open[self._address] -= 1
        if self._open[self._address] <= 0:
            del self._open[self._address]
        self._address = None
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def raise_open_files_limit() -> tuple[int, int]:
    """Lift the soft open-files limit to the hard one (systemd's LimitNOFILE sets the hard one)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as error:
            log.warning("could not raise the open-files limit from %d: %s", soft, error)
    return soft, hard


def _refusal(status: int, code: str, message: str, message_en: str) -> tuple[Message, Message]:
    body = json.dumps({"error": code, "message": message, "message_en": message_en}, ensure_ascii=False).encode()
    start = {"type": "http.response.start", "status": status,
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                         (b"connection", b"close")]}
    return start, {"type": "http.response.body", "body": body}


TOO_LARGE = _refusal(413, "body_too_large", f"Yêu cầu quá lớn (tối đa {MAX_BODY_BYTES // 1024} KB).",
                     f"Request body too large (at most {MAX_BODY_BYTES // 1024} KB).")
FOREIGN_ORIGIN = _refusal(403, "foreign_origin", "Yêu cầu đến từ một trang khác; hãy thao tác trên trang của trung tâm.",
                          "The request came from another site; use the centre's own pages.")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def same_origin(scope: Scope) -> bool:
    """Is a browser's state-changing request from a page of this server?

    Browsers send ``Origin`` with every POST; it must name the host the browser is talking to (the
    ``Host`` header). Without ``Origin``, a request authenticated by the session cookie must carry a
    same-origin ``Referer``. Requests with an ``Authorization`` header (devices, scripts) cannot be
    forged by another page, so they pass.
    """
    host = _header(scope, b"host")
    origin = _header(scope, b"origin")
    if origin is not None:
        return origin != "null" and host is not None and urlsplit(origin).netloc == host
    if _header(scope, b"authorization") is not None:
        return True
    cookies = _header(scope, b"cookie") or ""
    if "luot_session=" not in cookies:
        return True  # no ambient credential to abuse
    referer = _header(scope, b"referer")
    return referer is not None and host is not None and urlsplit(referer).netloc == host


class EdgeMiddleware:
    """Body size and origin checks, before FastAPI reads a byte of the body or looks at who asks."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] in UNSAFE_METHODS and not same_origin(scope):
            await self._refuse(send, FOREIGN_ORIGIN)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            await self._refuse(send, TOO_LARGE)
            return
        await self._guarded(scope, receive, send)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A chunked body (no Content-Length) is counted as it arrives and cut at the limit: the client
        gets 413, the app sees the client leave, and whatever the app answers then is dropped."""
        received = 0
        refused = False

        async def counted_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    refused = True
                    await self._refuse(send, TOO_LARGE)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, counted_receive, guarded_send)

    @staticmethod
    async def _refuse(send: Send, refusal: tuple[Message, Message]) -> None:
        start, body = refusal
        await send(start)
        await send(body)

