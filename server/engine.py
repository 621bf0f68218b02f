"""The queue engine: pure Python, no I/O, no clock of its own.

Every command takes ``now`` and returns the events it caused; the engine's state is nothing but the
fold of those events (:meth:`QueueEngine.apply`). So the server can persist events before it
acknowledges anything, and a restarted server rebuilds exactly the same state by replaying the
day's events. Because the engine runs in one thread and a command applies its events before it
returns, a number is issued once and a ticket is claimed by one counter: there is no window in
which two callers can see the same "next" ticket.

Ordering rule: priority tickets (elderly, disabled, pregnant, small child, merit) go first, but a
counter may call at most ``priority_run_limit`` priority tickets in a row while an ordinary ticket it
could serve is waiting, so ordinary citizens are never starved. Within a class the earliest
``queue_since`` goes first; a transferred ticket keeps its original ``queue_since`` and so its place.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Callable, Iterable

from luot.config import CentreConfig
from luot.protocol import DISSATISFIED_BELOW, REASONS, legacy_rating, level_of
from server.waiting_line import WaitingLine

# Ticket statuses
WAITING, CALLED, SERVING, DONE, NO_SHOW, CANCELLED, EXPIRED = (
    "waiting", "called", "serving", "done", "no_show", "cancelled", "expired",
)
OPEN_STATUSES = frozenset({WAITING, CALLED, SERVING})
# Counter statuses
CLOSED, IDLE, CALLING, BUSY, PAUSED = "closed", "idle", "calling", "serving", "paused"

RECENT_CALLS = 10
MIN_SERVICE_SAMPLES = 3
SERVICE_SAMPLES = 200  # services per group kept for the residual service time
# Dossier (hồ sơ) statuses, in the order a dossier normally moves through them
DOSSIER_STATUSES = ("received", "processing", "needs_documents", "ready", "returned")
DOSSIER_CODE = r"^[A-Za-z0-9][A-Za-z0-9._-]{2,39}$"


class QueueError(Exception):
    """A command that cannot be carried out; ``message`` is Vietnamese, ``message_en`` English."""

    status = 409

    def __init__(self, code: str, message: str, message_en: str) -> None:
        super().__init__(message_en)
        self.code = code
        self.message = message
        self.message_en = message_en


class NotFound(QueueError):
    status = 404


class Invalid(QueueError):
    status = 400


@dataclass(frozen=True)
class Event:
    """Something that happened. ``id`` makes delivery idempotent; ``day`` is the service day."""

    id: str
    type: str
    at: datetime
    day: str
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "at": self.at.isoformat(), "day": self.day, "data": self.data}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "Event":
        return cls(raw["id"], raw["type"], datetime.fromisoformat(raw["at"]), raw["day"], raw["data"])


@dataclass
class Ticket:
    id: str
    number: int
    group: str
    token: str
    issued_at: datetime
    queue_since: datetime
    priority: str | None = None
    source: str | None = None
    offline: bool = False
    status: str = WAITING
    counter: int | None = None
    officer: str | None = None
    target_counter: int | None = None
    calls: int = 0
    first_called_at: datetime | None = None
    called_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    rated: bool = False
    transfers: int = 0

    def order_key(self) -> tuple[datetime, int]:
        return (self.queue_since, self.number)


@dataclass
class CounterState:
    number: int
    groups: tuple[str, ...]
    status: str = CLOSED
    officer: str | None = None
    ticket_id: str | None = None
    priority_run: int = 0
    last_ticket_id: str | None = None
    paused_reason: str | None = None
    busy_since: datetime | None = None  # when the current ticket was first called here
    released_at: datetime | None = None  # when the counter last let a ticket go


@dataclass
class Dossier:
    """A case file handed in at a counter: its code (printed on the receipt) and where it stands."""

    code: str
    ticket_id: str
    status: str = "received"


@dataclass
class Estimate:
    ahead: int
    wait_minutes: float | None


@dataclass
class _Numbering:
    next_number: dict[str, int] = field(default_factory=dict)
    leases: dict[str, list[tuple[str, int, int]]] = field(default_factory=dict)  # device -> [(group, first, last)]
    used_offline: set[tuple[str, int]] = field(default_factory=set)


def _new_id() -> str:
    return uuid.uuid4().hex


def new_token() -> str:
    """A tracking token: 128 random bits, URL-safe, carrying nothing about the citizen."""
    return secrets.token_urlsafe(16)


class QueueEngine:
    """The state of one centre's queue for the current service day, changed only by events."""

    def __init__(
        self,
        config: CentreConfig,
        new_id: Callable[[], str] = _new_id,
        new_token: Callable[[], str] = new_token,
    ) -> None:
        self.config = config
        self._new_id = new_id
        self._new_token = new_token
        self.day: date | None = None
        self.day_closed = False
        self.tickets: dict[str, Ticket] = {}
        # The waiting tickets only (kept by the appliers): calling, snapshots and estimates look at
        # these, not at every ticket of the day, so a busy afternoon costs what its queue costs.
        self._line: WaitingLine[Ticket] = WaitingLine()
        self.by_token: dict[str, str] = {}
        self.counters: dict[int, CounterState] = {
            c.number: CounterState(c.number, tuple(c.groups)) for c in config.counters
        }
        self.numbering = _Numbering()
        self.recent_calls: deque[dict[str, Any]] = deque(maxlen=RECENT_CALLS)
        self.service_sum: dict[str, float] = {}
        self.service_count: dict[str, int] = {}
        # What a counter really spends on a ticket: from its first call there to its release
        # (walk-up, recalls of absent citizens and the service), and the pause between a release
        # and the next call while citizens were waiting. Both feed the expected waits.
        self.handle_sum: dict[str, float] = {}
        self.handle_count: dict[str, int] = {}
        self.gap_sum = 0.0
        self.gap_count = 0
        # The latest services of each group (minutes), for the busy counters' remaining time: read
        # on every estimate, so bounded, and the latest ones say most about this afternoon.
        self.service_samples: dict[str, deque[float]] = {}
        self.rated_tickets: set[str] = set()
        self.dossiers: dict[str, Dossier] = {}
        self.last_seq = 0

    # ------------------------------------------------------------------ event plumbing
    def _event(self, type_: str, now: datetime, **data: Any) -> Event:
        return Event(self._new_id(), type_, now, self.config.service_day(now).isoformat(), data)

    def _emit(self, events: list[Event], type_: str, now: datetime, **data: Any) -> Event:
        event = self._event(type_, now, **data)
        self.apply(event)
        events.append(event)
        return event

    def replay(self, events: Iterable[Event]) -> None:
        for event in events:
            self.apply(event)

    def apply(self, event: Event) -> None:
        """Fold one event into the state. Must stay deterministic: replay depends on it."""
        handler = getattr(self, "_on_" + event.type.replace(".", "_"), None)
        if handler is None:
            return  # events of later versions, or ones that do not change the queue
        handler(event)

    def _ensure_day(self, now: datetime, events: list[Event]) -> None:
        """Open the service day of ``now``; close the previous one first if it was left open."""
        today = self.config.service_day(now)
        if self.day == today:
            return
        if self.day is not None and (not self.day_closed or self._has_open_business()):
            # Also after an early close_day: tickets issued or counters opened since then must end
            # with events of their own, not vanish when the new day clears the state.
            self._close_day(now, events, reason="new_day")
        self._emit(events, "day.opened", now, day=today.isoformat())

    def _has_open_business(self) -> bool:
        return any(t.status in OPEN_STATUSES for t in self.tickets.values()) or any(
            c.status != CLOSED for c in self.counters.values())

    # ------------------------------------------------------------------ appliers
    def _on_day_opened(self, event: Event) -> None:
        self.day = date.fromisoformat(event.data["day"])
        self.day_closed = False
        self.tickets.clear()
        self._line.clear()
        self.by_token.clear()
        self.numbering = _Numbering()
        self.recent_calls.clear()
        self.service_sum.clear()
        self.service_count.clear()
        self.handle_sum.clear()
        self.handle_count.clear()
        self.gap_sum, self.gap_count = 0.0, 0
        self.service_samples.clear()
        self.rated_tickets.clear()
        self.dossiers.clear()
        for counter in self.counters.values():
            counter.status, counter.officer, counter.ticket_id = CLOSED, None, None
            counter.priority_run, counter.last_ticket_id, counter.paused_reason = 0, None, None
            counter.busy_since, counter.released_at = None, None

    def _on_day_closed(self, event: Event) -> None:
        self.day_closed = True

    def _on_block_leased(self, event: Event) -> None:
        d = event.data
        self.numbering.next_number[d["group"]] = d["last"] + 1
        self.numbering.leases.setdefault(d["device"], []).append((d["group"], d["first"], d["last"]))

    def _on_ticket_issued(self, event: Event) -> None:
        d = event.data
        ticket = Ticket(
            id=d["ticket_id"], number=d["number"], group=d["group"], token=d["token"],
            issued_at=datetime.fromisoformat(d.get("issued_at", event.at.isoformat())),
            queue_since=datetime.fromisoformat(d.get("issued_at", event.at.isoformat())),
            priority=d.get("priority"), source=d.get("source"), offline=bool(d.get("offline")),
        )
        self.tickets[ticket.id] = ticket
        self._line.add(ticket)
        self.by_token[ticket.token] = ticket.id
        if ticket.offline:
            self.numbering.used_offline.add((ticket.group, ticket.number))
        else:
            self.numbering.next_number[ticket.group] = max(
                self.numbering.next_number.get(ticket.group, 0), ticket.number + 1
            )

    def _on_ticket_called(self, event: Event) -> None:
        d = event.data
        ticket = self.tickets[d["ticket_id"]]
        counter = self.counters[d["counter"]]
        ticket.status, ticket.counter, ticket.officer = CALLED, counter.number, counter.officer
        self._line.discard(ticket.id)
        ticket.calls, ticket.called_at, ticket.target_counter = 1, event.at, None
        ticket.first_called_at = ticket.first_called_at or event.at
        if counter.released_at is not None and ticket.queue_since <= counter.released_at and counter.ticket_id is None:
            # the citizen was already waiting when the counter became free: the pause is overhead
            self.gap_sum += max(0.0, (event.at - counter.released_at).total_seconds())
            self.gap_count += 1
        counter.status, counter.ticket_id, counter.last_ticket_id = CALLING, ticket.id, ticket.id
        counter.busy_since = event.at
        counter.priority_run = counter.priority_run + 1 if ticket.priority else 0
        self.recent_calls.appendleft(self._call_record(ticket, event))

    def _on_ticket_recalled(self, event: Event) -> None:
        ticket = self.tickets[event.data["ticket_id"]]
        ticket.calls += 1
        ticket.called_at = event.at
        self.recent_calls.appendleft(self._call_record(ticket, event))

    def _on_ticket_serving(self, event: Event) -> None:
        ticket = self.tickets[event.data["ticket_id"]]
        ticket.status, ticket.started_at = SERVING, event.at
        counter = self.counters[ticket.counter]  # type: ignore[index]
        if counter.status != PAUSED:  # a paused counter stays paused until resumed
            counter.status = BUSY

    def _release_counter(self, ticket: Ticket, at: datetime | None = None, handled: bool = False) -> None:
        if ticket.counter is None:
            return
        counter = self.counters[ticket.counter]
        if counter.ticket_id == ticket.id:
            if at is not None:
                if handled and counter.busy_since is not None:
                    seconds = max(0.0, (at - counter.busy_since).total_seconds())
                    self.handle_sum[ticket.group] = self.handle_sum.get(ticket.group, 0.0) + seconds
                    self.handle_count[ticket.group] = self.handle_count.get(ticket.group, 0) + 1
                counter.released_at = at
            counter.busy_since = None
            counter.ticket_id = None
            if counter.status in (CALLING, BUSY):
                counter.status = IDLE

    def _on_ticket_finished(self, event: Event) -> None:
        ticket = self.tickets[event.data["ticket_id"]]
        ticket.status, ticket.finished_at = DONE, event.at
        seconds = event.data.get("service_seconds")
        if seconds is not None:
            self.service_sum[ticket.group] = self.service_sum.get(ticket.group, 0.0) + seconds
            self.service_count[ticket.group] = self.service_count.get(ticket.group, 0) + 1
            self.service_samples.setdefault(ticket.group, deque(maxlen=SERVICE_SAMPLES)).append(seconds / 60.0)
        self._release_counter(ticket, event.at, handled=True)

    def _on_ticket_no_show(self, event: Event) -> None:
        ticket = self.tickets[event.data["ticket_id"]]
        ticket.status, ticket.finished_at = NO_SHOW, event.at
        self._release_counter(ticket, event.at, handled=True)

    def _on_ticket_transferred(self, event: Event) -> None:
        d = event.data
        ticket = self.tickets[d["ticket_id"]]
        self._release_counter(ticket, event.at)
        ticket.status, ticket.group = WAITING, d["group"]
        self._line.add(ticket)
        ticket.counter, ticket.officer, ticket.calls = None, None, 0
        ticket.target_counter = d.get("target_counter")
        ticket.started_at = None
        ticket.transfers += 1

    def _on_ticket_cancelled(self, event: Event) -> None:
        ticket = self.tickets[event.data["ticket_id"]]
        self._release_counter(ticket)
        self._line.discard(ticket.id)
        ticket.status, ticket.finished_at = CANCELLED, event.at

    def _on_ticket_expired(self, event: Event) -> None:
        ticket = self.tickets[event.data["ticket_id"]]
        self._release_counter(ticket)
        self._line.discard(ticket.id)
        ticket.status, ticket.finished_at = EXPIRED, event.at

    def _on_counter_opened(self, event: Event) -> None:
        counter = self.counters[event.data["counter"]]
        # priority_run is kept: closing and reopening must not restart the anti-starvation count
        # (only a new service day does), or ordinary citizens could be passed over indefinitely.
        counter.status, counter.officer, counter.paused_reason = IDLE, event.data.get("officer"), None

    def _on_counter_closed(self, event: Event) -> None:
        counter = self.counters[event.data["counter"]]
        counter.status, counter.officer, counter.ticket_id, counter.paused_reason = CLOSED, None, None, None

    def _on_counter_paused(self, event: Event) -> None:
        counter = self.counters[event.data["counter"]]
        counter.status, counter.paused_reason = PAUSED, event.data.get("reason")

    def _on_counter_resumed(self, event: Event) -> None:
        counter = self.counters[event.data["counter"]]
        counter.status, counter.paused_reason = (CALLING if counter.ticket_id else IDLE), None
        if counter.ticket_id and self.tickets[counter.ticket_id].status == SERVING:
            counter.status = BUSY

    def _on_feedback_recorded(self, event: Event) -> None:
        ticket_id = event.data["ticket_id"]
        self.rated_tickets.add(ticket_id)
        if ticket_id in self.tickets:
            self.tickets[ticket_id].rated = True

    def _on_dossier_attached(self, event: Event) -> None:
        d = event.data
        self.dossiers[d["code"]] = Dossier(d["code"], d["ticket_id"])

    def _on_dossier_status(self, event: Event) -> None:
        d = event.data
        dossier = self.dossiers.get(d["code"])
        if dossier is None:  # a dossier of an earlier day: the engine only tracks today's
            self.dossiers[d["code"]] = dossier = Dossier(d["code"], d.get("ticket_id") or "")
        dossier.status = d["status"]

    # ------------------------------------------------------------------ lookups
    def ticket(self, ticket_id: str) -> Ticket:
        try:
            return self.tickets[ticket_id]
        except KeyError:
            raise NotFound("ticket_not_found", "Không tìm thấy vé này trong ngày hôm nay.", "No such ticket today.") from None

    def ticket_by_token(self, token: str) -> Ticket | None:
        ticket_id = self.by_token.get(token)
        return self.tickets.get(ticket_id) if ticket_id else None

    def counter(self, number: int) -> CounterState:
        try:
            return self.counters[number]
        except KeyError:
            raise NotFound("counter_not_found", f"Không có quầy số {number}.", f"There is no counter {number}.") from None

    def _is_today(self, now: datetime) -> bool:
        """Whether the engine's state is that of ``now``'s service day.

        After local midnight the state still shows yesterday until a command opens the new day.
        Commands that only act on existing tickets or counters must see the new day (every counter
        closed, no tickets) without opening it, so that a refusal changes nothing.
        """
        return self.day == self.config.service_day(now)

    def _ticket_today(self, ticket_id: str, now: datetime) -> Ticket:
        if not self._is_today(now):
            raise NotFound("ticket_not_found", "Không tìm thấy vé này trong ngày hôm nay.", "No such ticket today.")
        return self.ticket(ticket_id)

    def _current(self, counter: CounterState, now: datetime) -> Ticket:
        if counter.ticket_id is None or not self._is_today(now):
            raise QueueError("counter_idle", f"Quầy {counter.number} chưa gọi số nào.",
                             f"Counter {counter.number} has no current ticket.")
        return self.tickets[counter.ticket_id]

    def _require_open(self, counter: CounterState, now: datetime) -> None:
        if counter.status == CLOSED or not self._is_today(now):
            raise QueueError("counter_closed", f"Quầy {counter.number} chưa mở.", f"Counter {counter.number} is not open.")

    def _require_calling(self, counter: CounterState, now: datetime) -> None:
        """A counter may call a citizen only when it is open and not paused."""
        self._require_open(counter, now)
        if counter.status == PAUSED:
            raise QueueError("counter_paused", f"Quầy {counter.number} đang tạm dừng.", f"Counter {counter.number} is paused.")

    def _call_record(self, ticket: Ticket, event: Event) -> dict[str, Any]:
        return {"number": ticket.number, "group": ticket.group, "counter": ticket.counter,
                "at": event.at.isoformat(), "call": ticket.calls, "event_id": event.id}

    def waiting(self) -> list[Ticket]:
        """Waiting tickets in calling order, ignoring the anti-starvation rule."""
        return self._line.in_order()

    @property
    def waiting_count(self) -> int:
        """How many tickets wait, without copying the line (simulations ask after every event)."""
        return len(self._line)

    def eligible(self, ticket: Ticket, counter: CounterState) -> bool:
        if ticket.target_counter is not None:
            return ticket.target_counter == counter.number
        return ticket.group in counter.groups

    # ------------------------------------------------------------------ commands
    def issue(self, group: str, now: datetime, priority: str | None = None, source: str | None = None) -> tuple[Ticket, list[Event]]:
        """Give the next number of ``group`` for today; numbers never repeat within a day."""
        try:
            spec = self.config.group(group)
        except KeyError:
            raise NotFound("group_not_found", f"Không có lĩnh vực '{group}'.", f"There is no procedure group '{group}'.") from None
        if priority is not None and priority not in {p.code for p in self.config.priority_classes}:
            raise Invalid("priority_unknown", f"Đối tượng ưu tiên '{priority}' không có trong cấu hình.",
                          f"Priority class '{priority}' is not configured.")
        events: list[Event] = []
        self._ensure_day(now, events)
        number = max(self.numbering.next_number.get(group, spec.first_number), spec.first_number)
        if number > spec.last_number:
            raise QueueError("group_full", f"Lĩnh vực {spec.name} đã hết số trong ngày hôm nay.",
                             f"Group {spec.name_en or spec.code} has used all its numbers today.")
        event = self._emit(events, "ticket.issued", now, ticket_id="t" + self._new_id()[:15], number=number,
                           group=group, token=self._new_token(), priority=priority, source=source,
                           offline=False, issued_at=now.isoformat())
        return self.tickets[event.data["ticket_id"]], events

    def lease_block(self, device: str, group: str, size: int, now: datetime) -> tuple[tuple[int, int], list[Event]]:
        """Reserve ``size`` numbers of ``group`` for a kiosk to issue while it is offline."""
        try:
            spec = self.config.group(group)
        except KeyError:
            raise NotFound("group_not_found", f"Không có lĩnh vực '{group}'.", f"There is no procedure group '{group}'.") from None
        if not 1 <= size <= 200:
            raise Invalid("lease_size", "Khối số phải từ 1 đến 200 số.", "A block holds 1 to 200 numbers.")
        events: list[Event] = []
        self._ensure_day(now, events)
        first = max(self.numbering.next_number.get(group, spec.first_number), spec.first_number)
        last = min(first + size - 1, spec.last_number)
        if first > last:
            raise QueueError("group_full", f"Lĩnh vực {spec.name} đã hết số.", "No numbers left for this group today.")
        self._emit(events, "block.leased", now, device=device, group=group, first=first, last=last)
        return (first, last), events

    def import_offline(self, device: str, group: str, number: int, issued_at: datetime, token: str,
                       now: datetime, priority: str | None = None) -> tuple[Ticket, list[Event]]:
        """Accept a ticket a kiosk issued offline from its leased block; idempotent per number."""
        leases = self.numbering.leases.get(device, []) if self._is_today(now) else []  # leases last one day
        if not any(g == group and first <= number <= last for g, first, last in leases):
            raise Invalid("not_leased", f"Số {number} không thuộc khối số đã cấp cho {device}.",
                          f"Number {number} is not in a block leased to {device}.")
        events: list[Event] = []
        if (group, number) in self.numbering.used_offline:
            # By number alone: a transfer may have moved the ticket to another group since, and a
            # number names one ticket per day (group number ranges never overlap).
            existing = next(t for t in self.tickets.values() if t.offline and t.number == number)
            return existing, events
        since = min(issued_at, now)
        event = self._emit(events, "ticket.issued", now, ticket_id="t" + self._new_id()[:15], number=number,
                           group=group, token=token, priority=priority, source=device, offline=True,
                           issued_at=since.isoformat())
        return self.tickets[event.data["ticket_id"]], events

    def open_counter(self, number: int, officer: str | None, now: datetime) -> list[Event]:
        counter = self.counter(number)
        events: list[Event] = []
        self._ensure_day(now, events)
        if counter.status != CLOSED:
            if counter.officer == officer:
                return events
            raise QueueError("counter_taken", f"Quầy {number} đang do {counter.officer or 'người khác'} phụ trách.",
                             f"Counter {number} is already open for {counter.officer or 'someone else'}.")
        self._emit(events, "counter.opened", now, counter=number, officer=officer)
        return events

    def close_counter(self, number: int, now: datetime) -> list[Event]:
        counter = self.counter(number)
        events: list[Event] = []
        self._ensure_day(now, events)
        if counter.status == CLOSED:
            return events
        if counter.ticket_id is not None:
            self._settle_current(counter, now, events)
        self._emit(events, "counter.closed", now, counter=number)
        return events

    def pause(self, number: int, now: datetime, reason: str | None = None) -> list[Event]:
        counter = self.counter(number)
        self._require_open(counter, now)
        if counter.status == PAUSED:
            return []
        events: list[Event] = []
        self._ensure_day(now, events)
        self._emit(events, "counter.paused", now, counter=number, reason=reason)
        return events

    def resume(self, number: int, now: datetime) -> list[Event]:
        counter = self.counter(number)
        if counter.status != PAUSED or not self._is_today(now):
            return []
        events: list[Event] = []
        self._emit(events, "counter.resumed", now, counter=number)
        return events

    def _settle_current(self, counter: CounterState, now: datetime, events: list[Event]) -> None:
        """Before a counter moves on, its current ticket is finished (served) or put back."""
        ticket = self._current(counter, now)
        if ticket.status == SERVING:
            self._finish(ticket, now, events)
        elif ticket.status == CALLED:
            # Called but never came forward: back to the queue at its place, not lost.
            self._emit(events, "ticket.transferred", now, ticket_id=ticket.id, number=ticket.number,
                       from_group=ticket.group, group=ticket.group, from_counter=counter.number,
                       target_counter=None, reason="counter_moved_on")

    def _pick(self, counter: CounterState) -> Ticket | None:
        # The line is in calling order, priority tickets first: the first eligible ticket is the
        # answer unless it is a priority one and this counter has reached its run of priority
        # calls, in which case the first eligible ordinary ticket goes first (if there is one).
        first_priority: Ticket | None = None
        for ticket in self._line:
            if not self.eligible(ticket, counter):
                continue
            if ticket.priority is None:
                return ticket
            if counter.priority_run < self.config.queue.priority_run_limit:
                return ticket
            first_priority = first_priority or ticket
        return first_priority

    def call_next(self, number: int, now: datetime) -> tuple[Ticket | None, list[Event]]:
        """Finish the counter's current service and call the next ticket it may serve."""
        counter = self.counter(number)
        self._require_calling(counter, now)
        events: list[Event] = []
        self._ensure_day(now, events)
        if counter.ticket_id is not None:
            current = self.tickets[counter.ticket_id]
            if current.status == CALLED:
                raise QueueError("ticket_not_started",
                                 f"Số {current.number} đã được gọi: hãy bắt đầu phục vụ, gọi lại hoặc đánh dấu vắng mặt.",
                                 f"Ticket {current.number} was called: start, recall or mark absent first.")
            self._settle_current(counter, now, events)
        ticket = self._pick(counter)
        if ticket is None:
            return None, events
        self._call(ticket, counter, now, events)
        return ticket, events

    def call_ticket(self, number: int, ticket_id: str, now: datetime) -> tuple[Ticket, list[Event]]:
        """Call one particular waiting ticket (the officer chose it from the list)."""
        counter = self.counter(number)
        self._require_calling(counter, now)
        ticket = self._ticket_today(ticket_id, now)
        if ticket.status != WAITING or not self.eligible(ticket, counter):
            raise QueueError("ticket_not_callable", f"Quầy {number} không thể gọi số {ticket.number} lúc này.",
                             f"Counter {number} cannot call ticket {ticket.number} now.")
        if counter.ticket_id is not None and self.tickets[counter.ticket_id].status == CALLED:
            raise QueueError("ticket_not_started", "Hãy xử lý số đang gọi trước.", "Handle the called ticket first.")
        events: list[Event] = []
        self._ensure_day(now, events)
        if counter.ticket_id is not None:
            self._settle_current(counter, now, events)
        self._call(ticket, counter, now, events)
        return ticket, events

    def _call(self, ticket: Ticket, counter: CounterState, now: datetime, events: list[Event]) -> None:
        wait = (now - ticket.queue_since).total_seconds()
        self._emit(events, "ticket.called", now, ticket_id=ticket.id, number=ticket.number, group=ticket.group,
                   counter=counter.number, officer=counter.officer, call=1, wait_seconds=max(0.0, wait),
                   first_call=ticket.first_called_at is None, priority=ticket.priority is not None)

    def recall(self, number: int, now: datetime) -> tuple[Ticket, list[Event]]:
        """Call the current ticket again; past ``max_calls`` calls it is marked absent."""
        counter = self.counter(number)
        ticket = self._current(counter, now)
        if ticket.status != CALLED:
            raise QueueError("not_called", f"Số {ticket.number} đang được phục vụ, không cần gọi lại.",
                             f"Ticket {ticket.number} is already being served.")
        events: list[Event] = []
        if ticket.calls >= self.config.queue.max_calls:
            self._no_show(ticket, now, events)
        else:
            self._emit(events, "ticket.recalled", now, ticket_id=ticket.id, number=ticket.number, group=ticket.group,
                       counter=number, call=ticket.calls + 1)
        return ticket, events

    def no_show(self, number: int, now: datetime) -> tuple[Ticket, list[Event]]:
        counter = self.counter(number)
        ticket = self._current(counter, now)
        if ticket.status != CALLED:
            raise QueueError("not_called", "Chỉ đánh dấu vắng mặt cho số đang gọi.", "Only a called ticket can be marked absent.")
        events: list[Event] = []
        self._no_show(ticket, now, events)
        return ticket, events

    def _no_show(self, ticket: Ticket, now: datetime, events: list[Event]) -> None:
        self._emit(events, "ticket.no_show", now, ticket_id=ticket.id, number=ticket.number, group=ticket.group,
                   counter=ticket.counter, officer=ticket.officer, calls=ticket.calls)

    def start(self, number: int, now: datetime) -> tuple[Ticket, list[Event]]:
        counter = self.counter(number)
        ticket = self._current(counter, now)
        if ticket.status != CALLED:
            raise QueueError("not_called", f"Số {ticket.number} đã đang được phục vụ.", f"Ticket {ticket.number} is already in service.")
        events: list[Event] = []
        self._emit(events, "ticket.serving", now, ticket_id=ticket.id, number=ticket.number, group=ticket.group,
                   counter=number, officer=counter.officer)
        return ticket, events

    def finish(self, number: int, now: datetime) -> tuple[Ticket, list[Event]]:
        counter = self.counter(number)
        ticket = self._current(counter, now)
        events: list[Event] = []
        if ticket.status == CALLED:  # served straight away without pressing "start"
            self._emit(events, "ticket.serving", now, ticket_id=ticket.id, number=ticket.number, group=ticket.group,
                       counter=number, officer=counter.officer)
        self._finish(ticket, now, events)
        return ticket, events

    def _finish(self, ticket: Ticket, now: datetime, events: list[Event]) -> None:
        started = ticket.started_at or now
        self._emit(events, "ticket.finished", now, ticket_id=ticket.id, number=ticket.number, group=ticket.group,
                   counter=ticket.counter, officer=ticket.officer,
                   service_seconds=max(0.0, (now - started).total_seconds()))

    def transfer(self, number: int, now: datetime, to_group: str | None = None,
                 to_counter: int | None = None) -> tuple[Ticket, list[Event]]:
        """Send the current ticket to another group or counter, keeping the citizen's place."""
        counter = self.counter(number)
        ticket = self._current(counter, now)
        group = to_group or ticket.group
        try:
            self.config.group(group)
        except KeyError:
            raise NotFound("group_not_found", f"Không có lĩnh vực '{group}'.", f"There is no group '{group}'.") from None
        if to_counter is not None:
            target = self.counter(to_counter)
            if to_counter == number:
                raise Invalid("same_counter", "Không thể chuyển về chính quầy này.", "Cannot transfer to the same counter.")
            if group not in target.groups and to_group is not None:
                raise Invalid("counter_group", f"Quầy {to_counter} không phục vụ lĩnh vực này.",
                              f"Counter {to_counter} does not serve that group.")
        elif to_group is None:
            raise Invalid("transfer_target", "Hãy chọn lĩnh vực hoặc quầy để chuyển.", "Choose a group or a counter.")
        events: list[Event] = []
        self._emit(events, "ticket.transferred", now, ticket_id=ticket.id, number=ticket.number, from_group=ticket.group,
                   group=group, from_counter=number, target_counter=to_counter, reason="transfer")
        return ticket, events

    def cancel(self, ticket_id: str, now: datetime, reason: str = "citizen") -> tuple[Ticket, list[Event]]:
        ticket = self._ticket_today(ticket_id, now)
        if ticket.status not in (WAITING, CALLED):
            raise QueueError("not_cancellable", f"Số {ticket.number} không thể huỷ lúc này.", f"Ticket {ticket.number} cannot be cancelled now.")
        events: list[Event] = []
        self._emit(events, "ticket.cancelled", now, ticket_id=ticket.id, number=ticket.number, group=ticket.group, reason=reason)
        return ticket, events

    def close_day(self, now: datetime) -> list[Event]:
        """End-of-day: every open ticket expires and counters close. Numbering is kept for the day."""
        events: list[Event] = []
        self._ensure_day(now, events)
        self._close_day(now, events, reason="manager")
        return events

    def _close_day(self, now: datetime, events: list[Event], reason: str) -> None:
        for ticket in sorted(self.tickets.values(), key=Ticket.order_key):
            if ticket.status in OPEN_STATUSES:
                self._emit(events, "ticket.expired", now, ticket_id=ticket.id, number=ticket.number,
                           group=ticket.group, status_before=ticket.status)
        for counter in self.counters.values():
            if counter.status != CLOSED:
                self._emit(events, "counter.closed", now, counter=counter.number)
        self._emit(events, "day.closed", now, day=self.day.isoformat() if self.day else None, reason=reason)

    def record_feedback(self, ticket_id: str, rating: int, device: str | None, counter: int | None,
                        now: datetime, scale: int = 4, reasons: Iterable[str] = (),
                        source: str = "pad") -> list[Event]:
        """One satisfaction rating per finished ticket, from the pad at the counter that served it
        or (``source`` 'track', no counter) from the citizen's tracking page. ``scale`` 4 is the
        four-face pad, 5 the province's five levels; the event carries the five-level ``level``,
        the ``rating`` as a 1..4 value for readers written for the four faces, the reasons, the
        officer, the group (procedure) and the dossier attached to the ticket, if any."""
        if scale not in (4, 5):
            raise Invalid("rating_scale", "Thang đánh giá phải là 4 hoặc 5 mức.", "The rating scale is 4 or 5 levels.")
        if not 1 <= rating <= scale:
            raise Invalid("rating", f"Mức hài lòng phải từ 1 đến {scale}.", f"A rating is 1 to {scale}.")
        level = level_of(rating, scale)
        reasons = list(dict.fromkeys(reasons))
        unknown = [r for r in reasons if r not in REASONS]
        if unknown:
            raise Invalid("rating_reason", "Lý do không hợp lệ.", f"Unknown reason {unknown[0]!r}; expected one of {', '.join(REASONS)}.")
        if reasons and level >= DISSATISFIED_BELOW:
            raise Invalid("rating_reason", "Chỉ hỏi lý do khi ông/bà không hài lòng.",
                          "Reasons are given only with a rating below 'bình thường'.")
        ticket = self._ticket_today(ticket_id, now)
        if ticket.status != DONE:
            raise QueueError("not_finished", "Chỉ đánh giá sau khi được phục vụ xong.", "Rate only after the service ends.")
        if counter is not None and ticket.counter != counter:
            raise Invalid("wrong_counter", "Vé này không được phục vụ tại quầy của thiết bị.", "This ticket was not served at this pad's counter.")
        if ticket_id in self.rated_tickets:
            raise QueueError("already_rated", "Vé này đã được đánh giá.", "This ticket has already been rated.")
        dossier = next((d.code for d in self.dossiers.values() if d.ticket_id == ticket.id), None)
        events: list[Event] = []
        self._emit(events, "feedback.recorded", now, ticket_id=ticket.id, number=ticket.number, group=ticket.group,
                   counter=ticket.counter, officer=ticket.officer, rating=legacy_rating(level), device=device,
                   level=level, scale=scale, reasons=reasons, dossier=dossier, source=source)
        return events

    def request_assistance(self, device: str, request_id: str, reason: str, now: datetime,
                           counter: int | None = None) -> list[Event]:
        events: list[Event] = []
        self._ensure_day(now, events)
        self._emit(events, "assistance.requested", now, device=device, request_id=request_id, reason=reason, counter=counter)
        return events

    def attach_dossier(self, ticket_id: str, code: str, now: datetime,
                       appointment: date | None = None, procedure: str | None = None) -> tuple[Dossier, list[Event]]:
        """Link a dossier code to a ticket being (or just) served; the dossier starts as 'received'.
        ``appointment`` is the date the receipt promises the result (overdue dossiers count
        against the Decision 766 satisfaction index)."""
        code = code.strip()
        if not re.match(DOSSIER_CODE, code):
            raise Invalid("dossier_code", "Mã hồ sơ chỉ gồm chữ, số và . _ - (3 đến 40 ký tự).",
                          "A dossier code is 3 to 40 letters, digits or . _ -.")
        ticket = self.ticket(ticket_id)
        if ticket.status not in (CALLED, SERVING, DONE):
            raise QueueError("dossier_ticket", f"Số {ticket.number} chưa được phục vụ, chưa thể gắn hồ sơ.",
                             f"Ticket {ticket.number} has not been served; a dossier cannot be attached yet.")
        existing = self.dossiers.get(code)
        if existing is not None:
            if existing.ticket_id == ticket.id:
                return existing, []
            raise QueueError("dossier_taken", f"Mã hồ sơ {code} đã gắn với vé khác.", f"Dossier {code} belongs to another ticket.")
        events: list[Event] = []
        self._emit(events, "dossier.attached", now, ticket_id=ticket.id, code=code, number=ticket.number,
                   group=ticket.group, counter=ticket.counter,
                   appointment=appointment.isoformat() if appointment else None, procedure=procedure)
        self._emit(events, "dossier.status", now, code=code, status="received", ticket_id=ticket.id)
        return self.dossiers[code], events

    def set_dossier_status(self, code: str, status: str, now: datetime,
                           known: Dossier | None = None) -> tuple[Dossier, list[Event]]:
        """Move a dossier to ``status``. ``known`` is the stored dossier when it was attached on an
        earlier day (the engine keeps only today's); the caller reads it, the engine stays pure."""
        if status not in DOSSIER_STATUSES:
            raise Invalid("dossier_status", "Trạng thái hồ sơ không hợp lệ.",
                          f"Unknown dossier status; expected one of {', '.join(DOSSIER_STATUSES)}.")
        dossier = self.dossiers.get(code) or known
        if dossier is None:
            raise NotFound("dossier_not_found", f"Không tìm thấy hồ sơ {code}.", f"No dossier {code}.")
        if dossier.status == status:
            return dossier, []
        if dossier.status == "returned":
            raise QueueError("dossier_returned", f"Hồ sơ {code} đã trả kết quả, không thể đổi trạng thái.",
                             f"Dossier {code} has been returned; its status is final.")
        events: list[Event] = []
        self._ensure_day(now, events)
        self._emit(events, "dossier.status", now, code=code, status=status, ticket_id=dossier.ticket_id)
        return self.dossiers[code], events

    # ------------------------------------------------------------------ read models
    def mean_service_minutes(self, group: str) -> float:
        """Today's observed mean service time, blended with the configured one until data exists."""
        return self._blend(self.service_sum.get(group, 0.0), self.service_count.get(group, 0),
                           self.config.group(group).service_minutes)

    def _blend(self, observed_sum: float, count: int, configured: float) -> float:
        """Today's observed mean (minutes, from seconds) blended with the configured one until data exists."""
        if count < MIN_SERVICE_SAMPLES:
            return configured
        observed = observed_sum / count / 60.0
        weight = count / (count + 5)
        return weight * observed + (1 - weight) * configured

    def _gap_minutes(self) -> float:
        """Today's mean pause between a counter's release and its next call while citizens waited."""
        return self.gap_sum / self.gap_count / 60.0 if self.gap_count >= MIN_SERVICE_SAMPLES else 0.0

    def cycle_minutes(self, group: str) -> float:
        """What a counter is expected to spend on one ticket of ``group``: from the call to the
        release (walk-up, recalls, service) plus the usual pause before the next call."""
        configured = self.config.group(group).service_minutes
        handle = self._blend(self.handle_sum.get(group, 0.0), self.handle_count.get(group, 0), configured)
        return handle + self._gap_minutes()

    def _remaining_minutes(self, ticket: Ticket, now: datetime) -> float:
        """Expected time until the counter serving ``ticket`` is free again.

        With enough of today's services of its group, the mean residual service time of those that
        lasted longer than this one so far (long services tend to go on); otherwise the expected
        service minus what has elapsed, never below a tenth of it.
        """
        expected = self.mean_service_minutes(ticket.group)
        elapsed = ((now - ticket.started_at).total_seconds() / 60.0) if ticket.started_at else 0.0
        longer = [s - elapsed for s in self.service_samples.get(ticket.group, ()) if s > elapsed]
        if len(longer) >= 2 * MIN_SERVICE_SAMPLES:
            remaining = sum(longer) / len(longer)
        else:
            remaining = max(expected - elapsed, expected * 0.1)
        return remaining + self._gap_minutes()

    def estimates(self, now: datetime, only: str | None = None) -> dict[str, Estimate]:
        """People ahead and expected wait for every waiting ticket, or for ``only`` alone.

        Simulates the counters: each available counter becomes free when its current ticket is
        expected to be done; tickets are handed in calling order to the earliest-free counter that
        may serve them, each taking the group's cycle (today's observed call-to-release time and the
        pause before the next call, blended with the configured service time until data exists:
        officers spend more than the service on each citizen, and ignoring it made every estimate
        too short, bench/bench_queueing.py). When no open
        counter serves a group, the group's configured counters are assumed to open now (better an
        estimate than a blank on the ticket).
        """
        if not self._line:
            return {}
        free_at: dict[int, float] = {}
        for counter in self.counters.values():
            if counter.status in (CLOSED, PAUSED):
                continue
            free_at[counter.number] = self._remaining_minutes(self.tickets[counter.ticket_id], now) if counter.ticket_id else 0.0
        compatible = self._compatibility()
        cycles = {g.code: self.cycle_minutes(g.code) for g in self.config.groups}
        # Counters a group may go to: the available ones, or else its configured ones, assumed to
        # open now (they then count as available for every group). Worked out once per group, not
        # for every waiting ticket, and again only when an assumed opening changes the picture.
        group_options: dict[str, list[int]] = {}

        def options_for(ticket: Ticket) -> list[int]:
            # A ticket sent to one counter by a transfer, or a group not worked out yet (the loop
            # below reads the cache itself).
            options = ([n for n in free_at if self.eligible(ticket, self.counters[n])]
                       or [c.number for c in self.counters.values() if self.eligible(ticket, c)])
            if any(n not in free_at for n in options):
                for n in options:
                    free_at.setdefault(n, 0.0)
                group_options.clear()
            if ticket.target_counter is None:
                group_options[ticket.group] = options
            return options

        seen_per_group: dict[str, int] = dict.fromkeys(cycles, 0)
        result: dict[str, Estimate] = {}
        everyone = only is None
        # The hot loop of a busy hall (every issued ticket asks for its own estimate, at the end
        # of a line of hundreds): plain local look-ups, no call for the usual one or two counters
        # a group may go to, and the estimate itself built only for the tickets asked about.
        options_of = group_options.get
        for ticket in self._line:
            group = ticket.group
            options = options_of(group) if ticket.target_counter is None else None
            if options is None:
                options = options_for(ticket)
            wait: float | None = None
            if options:
                if len(options) == 1:
                    chosen = options[0]
                elif len(options) == 2:  # the earlier-free of two, the first on a tie (as min() does)
                    first, second = options
                    chosen = second if free_at[second] < free_at[first] else first
                else:
                    chosen = min(options, key=free_at.__getitem__)
                wait = free_at[chosen]
                free_at[chosen] = wait + cycles[group]
            if everyone or ticket.id == only:
                ahead = sum(seen_per_group[g] for g in compatible[group])
                result[ticket.id] = Estimate(ahead, None if wait is None else round(wait, 1))
                if not everyone:
                    break
            seen_per_group[group] += 1
        return result

    def _compatibility(self) -> dict[str, set[str]]:
        """Groups that share at least one counter compete for the same officers."""
        result: dict[str, set[str]] = {g.code: {g.code} for g in self.config.groups}
        for counter in self.counters.values():
            for a in counter.groups:
                result[a].update(counter.groups)
        return result

    def snapshot(self, now: datetime) -> dict[str, Any]:
        """What is true now: queue lengths, longest waits, counters, recent calls."""
        groups: dict[str, dict[str, Any]] = {
            g.code: {"waiting": 0, "priority_waiting": 0, "longest_wait_minutes": 0.0} for g in self.config.groups
        }
        earliest: dict[str, datetime] = {}
        for ticket in self._line:
            entry = groups[ticket.group]
            entry["waiting"] += 1
            if ticket.priority is not None:
                entry["priority_waiting"] += 1
            since = earliest.get(ticket.group)
            if since is None or ticket.queue_since < since:
                earliest[ticket.group] = ticket.queue_since
        for group, since in earliest.items():
            groups[group]["longest_wait_minutes"] = round(max(0.0, (now - since).total_seconds() / 60.0), 1)
        return {
            "day": self.day.isoformat() if self.day else None,
            "at": now.isoformat(),
            "groups": groups,
            "waiting_total": sum(g["waiting"] for g in groups.values()),
            "counters": [self.counter_view(c.number) for c in self.counters.values()],
            "recent_calls": list(self.recent_calls),
        }

    def counter_view(self, number: int) -> dict[str, Any]:
        counter = self.counter(number)
        ticket = self.tickets.get(counter.ticket_id) if counter.ticket_id else None
        return {
            "counter": counter.number,
            "name": self.config.counter(counter.number).label,
            "status": counter.status,
            "groups": list(counter.groups),
            "officer": counter.officer,
            "number": ticket.number if ticket else None,
            "group": ticket.group if ticket else None,
            "ticket_status": ticket.status if ticket else None,
            "ticket_id": ticket.id if ticket else None,
            "last_ticket_id": counter.last_ticket_id,
        }


def utc_now() -> datetime:
    """The adapters' clock (the engine never reads one)."""
    return datetime.now(timezone.utc)


__all__ = [
    "QueueEngine", "Event", "Ticket", "CounterState", "Estimate", "Dossier", "DOSSIER_STATUSES", "QueueError", "NotFound", "Invalid",
    "new_token", "utc_now",
]
