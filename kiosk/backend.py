"""Everything the kiosk and the pad say to the centre, on a background asyncio loop.

Why a background loop: Kivy widgets belong to the main thread and must never wait on the network.
The UI calls :meth:`Backend.submit` with a coroutine and a callback; the coroutine runs on the
backend's own loop thread and the callback is handed back to the main thread with
``Clock.schedule_once`` (see :func:`on_main_thread`).

What it does:
* issue a ticket online (``POST /api/v1/tickets``, 2 s limit); when the server cannot be reached,
  issue it from the leased block in the :class:`~kiosk.outbox.Outbox` instead (committed before
  the ticket is shown or printed);
* keep a leased block per group topped up while online;
* watch the link and, when it returns, hand over every offline ticket (idempotent, so a ticket
  sent twice is still one ticket);
* send assistance requests and satisfaction ratings over MQTT (QoS 1, the device's own user),
  falling back to HTTP when the broker is not reachable.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable
from zoneinfo import ZoneInfo

import httpx

from kiosk.outbox import LeaseExhausted, Outbox

log = logging.getLogger("luot.kiosk")

TIMEOUT = httpx.Timeout(2.0)
"""An unreachable server must not keep a visitor waiting: after 2 s the kiosk issues offline."""


def on_main_thread(callback: Callable[..., Any], *args: Any) -> None:
    """Run ``callback(*args)`` on Kivy's main thread at the next frame."""
    from kivy.clock import Clock

    Clock.schedule_once(lambda _dt: callback(*args), 0)


class AsyncRunner:
    """One asyncio loop in a daemon thread; the UI hands it coroutines."""

    def __init__(self, name: str = "luot-kiosk-net") -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Awaitable[Any], callback: Callable[[Any, BaseException | None], None] | None = None,
               main_thread: bool = True) -> Future:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]
        if callback is not None:
            def done(f: Future) -> None:
                error = f.exception()
                result = None if error else f.result()
                if main_thread:
                    on_main_thread(callback, result, error)
                else:
                    callback(result, error)
            future.add_done_callback(done)
        return future

    def call(self, coro: Awaitable[Any], timeout: float = 30.0) -> Any:
        """Run and wait (never from the Kivy thread during a frame: start-up, tests, CLI only)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


@dataclass
class IssuedTicket:
    """What the ticket screen shows and the printer prints, online or offline alike."""

    number: int
    group: str
    group_name: str
    group_name_en: str
    letter: str
    counters: list[int]
    ahead: int | None
    wait_minutes: float | None
    priority: bool
    token: str
    tracking_url: str
    issued_at: datetime
    offline: bool
    server_id: str | None = None
    wait_text: str | None = None  # the server's wording: a range, or a clock time after a break
    wait_text_en: str | None = None
    after_closing: bool = False  # unlikely to be served before closing today
    returns_dossier: str | None = None  # a results ticket: the dossier code on the receipt scanned
    appointment: str | None = None  # that dossier's appointment date (YYYY-MM-DD), shown and printed


class KioskError(Exception):
    """A refusal to show the visitor: Vietnamese first, English second."""

    def __init__(self, message: str, message_en: str = "", code: str = "") -> None:
        super().__init__(message)
        self.message, self.message_en, self.code = message, message_en or message, code


NO_LEASE = KioskError("Đang mất kết nối và hết số dự phòng. Xin mời đến quầy hướng dẫn.",
                      "Offline and no reserve numbers left. Please go to the help desk.", "no_lease")


@dataclass
class DeviceIdentity:
    device_id: str
    secret: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.device_id}:{self.secret}"}


def read_secret(data_dir: Path, device_id: str) -> str:
    """The device's secret from ``<data>/secrets.json`` as written by the server."""
    file = data_dir / "secrets.json"
    try:
        secrets = json.loads(file.read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise KioskError(f"Không đọc được {file}: {error}; hãy đăng ký thiết bị (--enrol URL MÃ)",
                         f"cannot read {file}: {error}; enrol the device (--enrol URL CODE)") from None
    if device_id not in secrets:
        raise KioskError(f"{file} không có mã của thiết bị {device_id}", f"{file} has no secret for {device_id}")
    return str(secrets[device_id])


@dataclass
class CentreLink:
    """HTTP side of one kiosk: online issue, leases, offline issue, sync, assistance, feedback."""

    server_url: str
    identity: DeviceIdentity
    data_dir: Path
    lease_size: int = 30
    refill_below: int = 10
    fallback_centre: dict[str, Any] | None = None
    timezone_name: str = "Asia/Ho_Chi_Minh"
    online: bool = False
    centre: dict[str, Any] = field(default_factory=dict)
    public_url: str | None = None
    outbox: Outbox | None = None
    listeners: list[Callable[[bool], None]] = field(default_factory=list)
    _client: httpx.AsyncClient | None = None
    _sync_lock: asyncio.Lock | None = None
    _watch: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.outbox = await Outbox.open(self.data_dir / "kiosk-outbox.sqlite3")
        self._client = httpx.AsyncClient(base_url=self.server_url.rstrip("/"), timeout=TIMEOUT,
                                         headers=self.identity.headers)
        self._sync_lock = asyncio.Lock()
        self._load_cached_centre()
        await self.refresh()
        self._watch = asyncio.create_task(self._watch_link())

    async def stop(self) -> None:
        if self._watch:
            self._watch.cancel()
        if self._client:
            await self._client.aclose()
        if self.outbox:
            await self.outbox.close()

    @property
    def _cache(self) -> Path:
        return self.data_dir / "centre-cache.json"

    def _load_cached_centre(self) -> None:
        try:
            cached = json.loads(self._cache.read_text("utf-8"))
            self.centre, self.public_url = cached["centre"], cached.get("public_url")
        except (OSError, ValueError, KeyError):
            self.centre = self.fallback_centre or {}
        if self.centre.get("public_url") and not self.public_url:
            self.public_url = self.centre["public_url"]

    def _save_cache(self) -> None:
        tmp = self._cache.with_suffix(".tmp")
        tmp.write_text(json.dumps({"centre": self.centre, "public_url": self.public_url}, ensure_ascii=False), "utf-8")
        tmp.replace(self._cache)

    def _set_online(self, online: bool) -> None:
        if online != self.online:
            log.info("centre link %s", "restored" if online else "lost: issuing from leased numbers")
        changed = online != self.online
        self.online = online
        if changed:
            for listener in list(self.listeners):
                try:
                    listener(online)
                except Exception:  # noqa: BLE001 - a UI listener must not stop the network loop
                    log.exception("link listener failed")

    # ------------------------------------------------------------------ link
    async def refresh(self) -> bool:
        """Fetch the centre description, top up leases and sync the outbox; False when unreachable."""
        assert self._client is not None
        try:
            answer = await self._client.get("/api/v1/centre")
            answer.raise_for_status()
        except (httpx.TransportError, httpx.HTTPStatusError) as error:
            log.info("centre not reachable (%s)", type(error).__name__)
            self._set_online(False)
            return False
        self.centre = answer.json()
        self._save_cache()
        self._set_online(True)
        await self.sync()
        await self.top_up()
        return True

    async def _watch_link(self, every: float = 2.0) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                if not self.online:
                    await self.refresh()
                elif self.outbox and await self.outbox.pending():
                    await self.sync()
            except Exception:  # noqa: BLE001 - the watcher must survive anything
                log.exception("link watcher")

    def service_day(self) -> str:
        """The centre's local date now (computed on every use, never cached)."""
        if self.centre.get("day") and self.online:
            return str(self.centre["day"])
        return datetime.now(ZoneInfo(self.timezone_name)).date().isoformat()

    def group(self, code: str) -> dict[str, Any]:
        for group in self.centre.get("groups", []):
            if group["code"] == code:
                return group
        raise KioskError(f"Không có lĩnh vực {code}", f"No procedure group {code}", "group_not_found")

    def counters_of(self, code: str) -> list[int]:
        return [c["number"] for c in self.centre.get("counters", []) if code in c.get("groups", [])]

    # ------------------------------------------------------------------ leases
    async def top_up(self) -> None:
        """Keep at least ``refill_below`` leased numbers per group for today (only while online)."""
        assert self._client is not None and self.outbox is not None
        for group in self.centre.get("groups", []):
            day = self.service_day()
            if await self.outbox.remaining(day, group["code"]) >= self.refill_below:
                continue
            try:
                answer = await self._client.post("/api/v1/leases", json={"group": group["code"], "size": self.lease_size})
            except httpx.TransportError:
                self._set_online(False)
                return
            if answer.status_code != 200:
                log.warning("lease for %s refused: %s", group["code"], answer.text[:200])
                continue
            body = answer.json()
            await self.outbox.add_lease(body["day"], body["group"], body["first"], body["last"])

    # ------------------------------------------------------------------ tickets
    async def issue(self, group: str, priority: str | None = None) -> IssuedTicket:
        """A ticket from the server, or from the leased block when the server cannot be reached."""
        assert self._client is not None and self.outbox is not None
        if self.online:
            try:
                answer = await self._client.post("/api/v1/tickets", json={"group": group, "priority": priority})
            except httpx.TransportError as error:
                log.warning("ticket request failed (%s): issuing offline", type(error).__name__)
                self._set_online(False)
            else:
                if answer.status_code >= 500 and answer.status_code != 503:
                    self._set_online(False)
                else:
                    return await self._online_ticket(answer, group)
        return await self._offline_ticket(group, priority)

    async def outlook(self, group: str) -> dict[str, Any] | None:
        """What a ticket of ``group`` taken now would be told (before issuing), or None when the
        server cannot say (offline, older server): the kiosk then simply issues."""
        if not self.online or self._client is None:
            return None
        try:
            answer = await self._client.get(f"/api/v1/queue/outlook/{group}")
        except httpx.TransportError:
            return None
        return _json(answer) if answer.status_code == 200 else None

    async def issue_return(self, receipt: str) -> IssuedTicket:
        """A results ticket (trả kết quả) for the dossier receipt a citizen scanned (or the code
        typed). Online only: the server reads the receipt and knows the dossier's appointment; a
        kiosk cut off from it says so instead of printing a ticket it cannot tie to the dossier."""
        assert self._client is not None
        if self.online:
            try:
                answer = await self._client.post("/api/v1/tickets/return", json={"receipt": receipt[:1000]})
            except httpx.TransportError as error:
                log.warning("return ticket request failed (%s)", type(error).__name__)
                self._set_online(False)
            else:
                body = _json(answer)
                if answer.status_code == 201:
                    return await self._online_ticket(answer, body.get("group", ""))
                raise KioskError(body.get("message", "Không đọc được biên nhận, xin hỏi cán bộ hướng dẫn."),
                                 body.get("message_en", "The receipt could not be read; please ask at the help desk."),
                                 body.get("error", ""))
        raise KioskError("Mất kết nối máy chủ: xin lấy số thường hoặc hỏi cán bộ hướng dẫn.",
                         "The server cannot be reached: please take an ordinary number or ask at the help desk.", "offline")

    async def _online_ticket(self, answer: httpx.Response, group: str) -> IssuedTicket:
        body = _json(answer)
        if answer.status_code != 201:
            raise KioskError(body.get("message", "Không lấy được số, xin thử lại."),
                             body.get("message_en", "Could not issue a ticket; please retry."), body.get("error", ""))
        url = body["tracking_url"]
        if not self.public_url:
            self.public_url = url.rsplit("/t/", 1)[0]
            self._save_cache()
        assert self.outbox is not None
        await self.outbox.count_issued(self.service_day(), group)
        asyncio.get_running_loop().create_task(self._quiet(self.top_up()))
        return IssuedTicket(
            number=body["number"], group=body["group"], group_name=body["group_name"],
            group_name_en=body["group_name_en"], letter=body["letter"], counters=body["counters"],
            ahead=body["ahead"], wait_minutes=body["wait_minutes"], priority=body["priority"],
            token=body["token"], tracking_url=url, issued_at=datetime.fromisoformat(body["issued_at"]),
            offline=False, server_id=body["id"], wait_text=body.get("wait_text"),
            wait_text_en=body.get("wait_text_en"), after_closing=bool(body.get("after_closing")),
            returns_dossier=body.get("returns_dossier"), appointment=body.get("appointment"))

    async def _offline_ticket(self, group: str, priority: str | None) -> IssuedTicket:
        assert self.outbox is not None
        spec = self.group(group)
        try:
            ticket = await self.outbox.take(self.service_day(), group, priority, datetime.now(timezone.utc))
        except LeaseExhausted:
            raise NO_LEASE from None
        base = self.public_url or self.server_url.rstrip("/")
        return IssuedTicket(
            number=ticket.number, group=group, group_name=spec["name"], group_name_en=spec.get("name_en", ""),
            letter=spec["letter"], counters=self.counters_of(group), ahead=None, wait_minutes=None,
            priority=priority is not None, token=ticket.token, tracking_url=f"{base}/t/{ticket.token}",
            issued_at=datetime.fromisoformat(ticket.issued_at), offline=True)

    async def sync(self) -> int:
        """Hand every offline ticket to the server; return how many were accepted now."""
        assert self._client is not None and self.outbox is not None and self._sync_lock is not None
        accepted = 0
        async with self._sync_lock:
            for ticket in await self.outbox.pending():
                try:
                    answer = await self._client.post("/api/v1/offline-tickets", json=ticket.body())
                except httpx.TransportError:
                    self._set_online(False)
                    break
                if answer.status_code == 200:
                    await self.outbox.mark_synced(ticket.token, _json(answer).get("id", ""), datetime.now(timezone.utc))
                    accepted += 1
                else:
                    log.error("offline ticket %s/%d refused: %s", ticket.group, ticket.number, answer.text[:300])
                    await self.outbox.mark_error(ticket.token, answer.text)
        if accepted:
            log.info("handed over %d offline ticket(s)", accepted)
        return accepted

    async def _quiet(self, coro: Awaitable[Any]) -> None:
        try:
            await coro
        except Exception:  # noqa: BLE001
            log.exception("background task")

    async def check_in(self, typed: str) -> dict[str, Any]:
        """A booking checked in by its typed code, or by what a USB scanner typed from its QR (the
        tracking URL or its token). Returns the server's booking view; raises KioskError."""
        typed = typed.strip()
        key = {"token": typed} if "/t/" in typed or len(typed) > 12 else {"code": typed}
        return await self._post_or_refuse(
            "/api/v1/bookings/check-in", key, 200, "Không xác nhận được số hẹn.",
            KioskError("Đang mất kết nối: xin mời đến quầy hướng dẫn để xác nhận số hẹn.",
                       "Offline: please check in at the help desk.", "unreachable"))

    async def book_appointment(self, group: str, slot: str) -> dict[str, Any]:
        """Book the appointment ``slot`` (ISO, from the outlook's offer) for the citizen at this
        kiosk; the answer has the check-in code, the QR's tracking link and the day and time.
        Online only (the seat is the server's to give); raises KioskError."""
        return await self._post_or_refuse(
            "/api/v1/bookings/kiosk", {"group": group, "slot": slot}, 201, "Không đặt được lịch hẹn.",
            KioskError("Đang mất kết nối: chưa đặt được lịch hẹn. Ông/bà vẫn có thể lấy số.",
                       "Offline: no appointment was booked. You can still take a ticket.", "unreachable"))

    async def _post_or_refuse(self, path: str, body: dict[str, Any], ok: int, refused_vi: str,
                              offline: KioskError) -> dict[str, Any]:
        """POST that only the server can answer (no offline fallback): its answer on ``ok``, else
        the server's refusal as a KioskError, or ``offline`` when it cannot be reached."""
        assert self._client is not None
        try:
            answer = await self._client.post(path, json=body)
        except httpx.TransportError:
            raise offline from None
        data = _json(answer)
        if answer.status_code != ok:
            raise KioskError(data.get("message", refused_vi), data.get("message_en", ""), data.get("error", ""))
        return data

    # ------------------------------------------------------------------ requests over HTTP (MQTT fallback)
    async def post_request(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        """``kind`` "assistance" or "feedback" over HTTP; raises KioskError on refusal."""
        assert self._client is not None
        try:
            answer = await self._client.post(f"/api/v1/{kind}", json=data)
        except httpx.TransportError as error:
            raise KioskError("Không gửi được, xin mời đến quầy hướng dẫn.", f"Could not send ({type(error).__name__}).",
                             "unreachable") from None
        body = _json(answer)
        if answer.status_code != 200:
            raise KioskError(body.get("message", "Không gửi được."), body.get("message_en", ""), body.get("error", ""))
        return body


def stop_networking(mqtt: Any, runner: AsyncRunner, link: CentreLink) -> None:
    """A device app's shutdown: its MQTT client, then its server link on the network thread, then
    that thread (even when the link does not stop cleanly)."""
    if mqtt:
        mqtt.stop()
    try:
        runner.call(link.stop(), timeout=10)
    finally:
        runner.stop()


def _json(answer: httpx.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def new_request_id() -> str:
    return uuid.uuid4().hex


def popular_groups(counts: dict[str, int], groups: list[dict[str, Any]], how_many: int, other: str | None) -> list[str]:
    """The ``how_many`` groups this kiosk issued most (ties and no history: configuration order),
    leaving out ``other`` (shown on its own "Khác" button)."""
    order = {g["code"]: i for i, g in enumerate(groups)}
    codes = [g["code"] for g in groups if g["code"] != other]
    return sorted(codes, key=lambda c: (-counts.get(c, 0), order[c]))[:how_many]


def since_days(days: int) -> date:
    return (datetime.now(timezone.utc) - timedelta(days=days)).date()
