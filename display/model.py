"""What a hall or counter display shows, folded from MQTT messages. Pure Python: no Kivy, no I/O.

Why it is a separate model:

* The screen is drawn from the retained ``state/#`` topics only (docs/protocol.md: "a device must
  never rebuild state by replaying events"), so a display that (re)connects shows the right numbers
  at once and an event it missed changes nothing but history.
* ``events/call`` is what makes the hall *speak* and *flash*. Only a live event does: the model
  returns the calls to announce from :meth:`DisplayModel.apply`, and a call id it has already seen
  (a QoS 1 duplicate, or a call it first learnt from the retained ``state/calls`` replay after a
  reconnect) is never returned twice. A recall is a new event with a new id and is announced again.
* Bad payloads (malformed JSON, another protocol version, wrong types) are counted and ignored:
  the screen keeps its last good state.

The Kivy view (display/app.py) only reads this model; tests drive it directly.
"""

from __future__ import annotations

import collections
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from luot.config import CentreConfig
from luot.protocol import PayloadError, Topics, decode

log = logging.getLogger(__name__)

CALL_KINDS = ("ticket.called", "ticket.recalled")
RECENT_SHOWN = 6
"""Calls listed on the hall screen (the newest highlighted); state/calls carries 10."""
FLASH_SECONDS = 4.0
"""How long the newest call flashes after a live call: long enough to make heads turn."""
REMEMBERED_IDS = 2000

STATUS_TEXT = {
    "calling": ("Đang mời", "Calling"),
    "serving": ("Đang phục vụ", "Serving"),
    "idle": ("Sẵn sàng", "Ready"),
    "paused": ("Tạm dừng", "Paused"),
    "closed": ("Đóng", "Closed"),
}


@dataclass
class CounterView:
    """One counter as the screen shows it; ``number`` is the ticket it calls or serves now."""

    counter: int
    name: str
    status: str = "closed"
    number: int | None = None
    group: str | None = None

    @property
    def is_open(self) -> bool:
        return self.status != "closed"

    @property
    def status_vi(self) -> str:
        return STATUS_TEXT.get(self.status, (self.status, self.status))[0]

    @property
    def status_en(self) -> str:
        return STATUS_TEXT.get(self.status, (self.status, self.status))[1]


@dataclass(frozen=True)
class Call:
    """One call of a ticket to a counter (``call`` 1 = first call, 2.. = recalls)."""

    event_id: str
    number: int
    counter: int
    group: str | None = None
    call: int = 1
    at: str = ""


@dataclass
class GroupWaiting:
    code: str
    name: str
    name_en: str
    waiting: int = 0


@dataclass
class Update:
    """What one message changed: ``changed`` (redraw), ``announce`` (live calls to speak, in order)."""

    changed: bool = False
    announce: list[Call] = field(default_factory=list)


class DisplayModel:
    """Folds the protocol's messages into the screen's content. Call from one thread only."""

    def __init__(self, config: CentreConfig, counter: int | None = None) -> None:
        self.config = config
        self.topics = Topics(config.centre.id)
        self.counter_mode = counter
        """None: hall display; a number: the display of that one counter."""
        self.counters: dict[int, CounterView] = {
            c.number: CounterView(c.number, c.label) for c in config.counters
        }
        self.groups: dict[str, GroupWaiting] = {
            g.code: GroupWaiting(g.code, g.name, g.name_en) for g in config.groups
        }
        self.waiting_total = 0
        self.calls: list[Call] = []
        self.notice_vi = config.centre.notice
        self.notice_en = config.centre.notice_en
        self.connected = False
        self.server_online: bool | None = None  # None: not heard yet
        self.has_state = False
        self.flash_until = 0.0  # monotonic time until which the newest call flashes
        self.rejected = 0
        self.revision = 0
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()

    # ------------------------------------------------------------------ reading
    @property
    def open_counters(self) -> list[CounterView]:
        return [view for number, view in sorted(self.counters.items()) if view.is_open]

    @property
    def recent_calls(self) -> list[Call]:
        return self.calls[:RECENT_SHOWN]

    @property
    def newest_call(self) -> Call | None:
        return self.calls[0] if self.calls else None

    def flashing(self, now_monotonic: float) -> bool:
        return now_monotonic < self.flash_until

    @property
    def own_counter(self) -> CounterView | None:
        return self.counters.get(self.counter_mode) if self.counter_mode is not None else None

    @property
    def badge(self) -> tuple[str, str] | None:
        """The discreet status badge (Vietnamese, English), or None when all is well."""
        if not self.connected:
            return ("Mất kết nối", "Connection lost")
        if self.server_online is False:
            return ("Máy chủ ngừng hoạt động – tạm dừng gọi số", "Server offline – calls paused")
        return None

    def group_name(self, code: str | None) -> str:
        group = self.groups.get(code or "")
        return group.name if group else (code or "")

    def local_time(self, now: datetime | None = None) -> datetime:
        """The centre's local time, computed on every call (never cached)."""
        return (now or datetime.now(timezone.utc)).astimezone(self.config.zone)

    def clock_text(self, now: datetime | None = None) -> tuple[str, str]:
        """("14:05", "Thứ Hai, 24/11/2026") in the centre's time zone."""
        local = self.local_time(now)
        weekday = ("Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ Nhật")[local.weekday()]
        return local.strftime("%H:%M"), f"{weekday}, {local:%d/%m/%Y}"

    # ------------------------------------------------------------------ writing
    def set_connected(self, connected: bool) -> Update:
        if connected == self.connected:
            return Update()
        self.connected = connected
        return self._changed()

    def apply(self, topic: str, payload: bytes, retained: bool = False, now_monotonic: float = 0.0) -> Update:
        """Fold one MQTT message in. ``retained``: delivered from the broker's retained store (a
        replay on subscribe), which is never announced. Never raises on bad input."""
        try:
            if topic == self.topics.server_availability:
                return self._server_availability(payload)
            message = decode(payload)
            kind, data = message.get("kind"), message["data"]
            if topic == self.topics.call_events and kind in CALL_KINDS:
                return self._live_call(message, data, retained, now_monotonic)
            if topic.startswith(self.topics.base + "/state/counter/") and kind == "state.counter":
                return self._counter_state(data)
            if topic == self.topics.queue_state and kind == "state.queue":
                return self._queue_state(data)
            if topic == self.topics.recent_calls_state and kind == "state.calls":
                return self._calls_state(data, retained)
            if topic == self.topics.notice_state and kind == "state.notice":
                return self._notice(data)
            return Update()  # unknown kinds and topics are ignored (protocol: forward compatible)
        except (PayloadError, KeyError, TypeError, ValueError, AttributeError) as error:
            self.rejected += 1
            log.warning("ignored a bad message on %s: %s", topic, error)
            return Update()

    # ------------------------------------------------------------------ folding
    def _changed(self, announce: list[Call] | None = None) -> Update:
        self.revision += 1
        return Update(True, announce or [])

    def _remember(self, event_id: str) -> bool:
        """True if the id is new (and now remembered)."""
        if event_id in self._seen:
            self._seen.move_to_end(event_id)
            return False
        self._seen[event_id] = None
        while len(self._seen) > REMEMBERED_IDS:
            self._seen.popitem(last=False)
        return True

    def _server_availability(self, payload: bytes) -> Update:
        value = payload.decode("utf-8", errors="replace").strip()
        if value not in ("online", "offline"):
            raise ValueError(f"availability must be 'online' or 'offline', got {len(payload)} bytes")
        online = value == "online"
        if online == self.server_online:
            return Update()
        self.server_online = online
        return self._changed()

    def _live_call(self, message: dict[str, Any], data: dict[str, Any], retained: bool, now: float) -> Update:
        event_id = str(message["id"])
        call = Call(event_id, _int(data["number"]), _int(data["counter"]), data.get("group"),
                    _int(data.get("call", 1)), str(message.get("at", "")))
        if not self._remember(event_id):
            return Update()  # a QoS 1 duplicate, or a call already known from retained state
        if call.counter in self.counters:
            # Events come before the state refresh: show the call at once, state confirms it.
            view = self.counters[call.counter]
            view.number, view.group = call.number, call.group
            view.status = "calling"
        self.calls = [call, *[c for c in self.calls if c.event_id != event_id]][:10]
        if retained:  # never happens on a events topic, but a replay must never speak
            return self._changed()
        self.flash_until = now + FLASH_SECONDS
        return self._changed([call])

    def _counter_state(self, data: dict[str, Any]) -> Update:
        number = _int(data["counter"])
        view = self.counters.get(number)
        if view is None:
            view = self.counters[number] = CounterView(number, str(data.get("name") or f"Quầy {number}"))
        view.name = str(data.get("name") or view.name)
        view.status = str(data["status"])
        view.number = _optional_int(data.get("number"))
        view.group = data.get("group")
        self.has_state = True
        return self._changed()

    def _queue_state(self, data: dict[str, Any]) -> Update:
        groups = data["groups"]
        if not isinstance(groups, dict):
            raise TypeError("state.queue: groups must be an object")
        for code, info in groups.items():
            group = self.groups.get(code) or self.groups.setdefault(code, GroupWaiting(code, code, code))
            group.waiting = _int(info.get("waiting", 0))
        self.waiting_total = _int(data.get("waiting_total", sum(g.waiting for g in self.groups.values())))
        for item in data.get("counters", []):
            number = _int(item["counter"])
            view = self.counters.setdefault(number, CounterView(number, str(item.get("name") or f"Quầy {number}")))
            view.status = str(item["status"])
            view.number = _optional_int(item.get("number"))
            view.group = item.get("group")
        self.has_state = True
        return self._changed()

    def _calls_state(self, data: dict[str, Any], retained: bool) -> Update:
        calls = [
            Call(str(item.get("event_id") or f"{item['number']}-{item['counter']}-{item.get('at', '')}"),
                 _int(item["number"]), _int(item["counter"]), item.get("group"), _int(item.get("call", 1)),
                 str(item.get("at", "")))
            for item in data["calls"]
        ]
        if retained:
            # The replay after a (re)connect: these calls are history. Remember their ids so a late
            # copy of the same event is not announced.
            for call in calls:
                self._remember(call.event_id)
        self.calls = calls
        return self._changed()

    def _notice(self, data: dict[str, Any]) -> Update:
        self.notice_vi = str(data.get("vi") or "")
        self.notice_en = str(data.get("en") or "")
        return self._changed()


def notice_pages(texts: list[str], fits: Callable[[str], bool]) -> list[str]:
    """The notice cut into still pages, each one line that ``fits`` the screen, never mixing the
    Vietnamese and the English text. Words are kept whole; a word too long for a line alone gets
    a page of its own (the label shortens it). Why pages and not a scrolling ticker: a ticker
    redraws the whole screen every frame, and on a box without a GPU (Mesa llvmpipe at 1920x1080)
    that alone took more than a core; a page turn is one frame every few seconds."""
    pages: list[str] = []
    for text in texts:
        line = ""
        for word in text.split():
            candidate = f"{line} {word}" if line else word
            if line and not fits(candidate):
                pages.append(line)
                line = word
            else:
                line = candidate
        if line:
            pages.append(line)
    return pages


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected a whole number, got {type(value).__name__}")
    return value


def _optional_int(value: Any) -> int | None:
    return None if value is None else _int(value)
