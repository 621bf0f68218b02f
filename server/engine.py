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

import hashlib
import math
import re
import secrets
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Mapping

from luot.config import CentreConfig
from luot.protocol import BOOKING_CODE_ALPHABET, BOOKING_CODE_LENGTH, DISSATISFIED_BELOW, REASONS, legacy_rating, level_of
from server.booking_slots import bookable_days, booking_window, checkin_window, slot_starts
from server.estimates import Estimate, EstimateModel, wait_view
from server.wait_history import History
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
# Dossier (hồ sơ) statuses, in the order a dossier normally moves through them
DOSSIER_STATUSES = ("received", "processing", "needs_documents", "ready", "returned")
DOSSIER_CODE = r"^[A-Za-z0-9][A-Za-z0-9._-]{2,39}$"

# Time (docs/architecture.md, "Time and commits"). The engine never reads a clock, but it does judge
# the ``now`` it is given against the last event it knows: a clock that goes back, or that leaps
# into another day while the queue is live, is refused instead of expiring the queue.
CLOCK_BACK_TOLERANCE = timedelta(minutes=2)
"""How far before the last recorded event a command's clock may be (small NTP steps)."""
NEW_DAY_MAX_GAP = timedelta(hours=1)
"""A new service day opens by itself only this soon after the last event of an unclosed day (service
going on across midnight); after a longer gap the day was either closed by a manager or the clock
has jumped, and a manager confirms the clock (:meth:`QueueEngine.confirm_clock`)."""
CLOSING_WINDOW = timedelta(minutes=90)
MORNING_LEAD = timedelta(hours=2)
OVERNIGHT_MAX_GAP = timedelta(days=4)
"""A day left open opens the next one by itself when it looks like a night passed: the open day went
quiet in the final :data:`CLOSING_WINDOW` of its opening hours or after them (the last citizens
served, nobody pressed "close the day"), ``now`` falls in a working day's hours (from
:data:`MORNING_LEAD` before opening to closing), and less than :data:`OVERNIGHT_MAX_GAP` passed (a
weekend and a holiday). A clock that leaps a day at 10:00 (the day went quiet mid-morning), or three
hours past midnight (02:00 is no working hour), still needs a manager to confirm it."""
# Devices (issue 14 part 3)
OFFLINE_TOKEN = re.compile(r"^(?:[A-Za-z0-9_-]{22,64}|[0-9a-f]{32,64})$")
MIN_TOKEN_BITS = 60.0
"""Shannon estimate (length × per-character entropy) an offline token needs. Random 128-bit tokens
score 91 bits on average in base64url (22 characters; the lowest of 200,000 was 72) and 116 in hex
(lowest 91); ``AAAA…`` scores 0 and ``abab…`` 22. The bar sits well below what a random token can
score, because refusing a genuine offline ticket would lose it; it stops chosen and repeated tokens,
not every pattern (a kiosk's own tokens come from :func:`new_token`)."""
KIOSK_CLOCK_TOLERANCE = timedelta(minutes=10)
"""How far a kiosk's own clock may be off the server's when it stamps an offline ticket: refusing a
ticket already printed for a citizen over a slow kiosk clock would lose it, so only times outside
the lease's window by more than this are refused; the ticket's place is kept inside the window."""
ASSISTANCE_WINDOW = timedelta(minutes=1)
REFUSALS_RECORDED_PER_DAY = 200
"""Refused ratings recorded as events per day and per pad (or per ticket, from the tracking page):
enough to show any fault; a pad or a page that keeps sending bad ratings past it is only logged,
so it cannot fill the event log (each recorded refusal is a commit)."""
ASSISTANCE_PER_WINDOW = 5
# Bookings (issue 15, docs/bookings.md)
REMOTE, APPOINTMENT = "remote", "appointment"
BOOKED, CHECKED_IN, LAPSED, BOOKING_CANCELLED, BOOKING_NO_SHOW = "booked", "checked_in", "lapsed", "cancelled", "no_show"
CODE_ALPHABET, CODE_LENGTH = BOOKING_CODE_ALPHABET, BOOKING_CODE_LENGTH
"""Help requests one device may make per minute: a visitor presses a few times, a loop does not."""


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


class RateLimited(QueueError):
    status = 429


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
    token_hash: str
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
    returns_dossier: str | None = None
    """A results-group ticket issued from a dossier receipt: the dossier code it comes back for."""
    appointment: date | None = None
    """That dossier's appointment date (ngày hẹn trả), when the receipt or the stored dossier gives one."""
    booking: str | None = None
    """'remote' or 'appointment' for a ticket that came from a booking (docs/bookings.md)."""
    booking_id: str | None = None
    awaiting: bool = False
    """A remote number not checked in yet: it holds its place in line but is not called."""
    held_since: datetime | None = None
    """When its turn came while it was not checked in (it lapses ``grace_minutes`` later)."""
    token: str | None = field(default=None, compare=False, repr=False)
    """The raw tracking token, known only in the process that issued or imported the ticket, so its
    answer can print it. Never in an event, the database or a replay; the engine never reads it."""

    def order_key(self) -> tuple[datetime, int]:
        return (self.queue_since, self.number)


@dataclass
class Booking:
    """A number taken from a phone ('remote', a ticket in today's line from the start) or an
    appointment (a slot; its ticket is issued at check-in). No phone number here: ``phone_key``
    is a keyed hash (server/phones.py), kept only to apply the limits."""

    id: str
    kind: str
    group: str
    day: date
    slot: datetime | None
    seat: int | None
    phone_key: str
    address_key: str | None
    code_hash: str
    token_hash: str
    made_at: datetime
    status: str = BOOKED
    ticket_id: str | None = None
    checked_in_at: datetime | None = None
    late: bool = False
    code: str | None = field(default=None, compare=False, repr=False)
    """The raw check-in code, known only in the process that made the booking (like Ticket.token)."""
    token: str | None = field(default=None, compare=False, repr=False)
    kiosk: str | None = None
    """The kiosk that booked it for a citizen standing there (no phone: ``phone_key`` is empty and
    the kiosk's daily cap stands in for the per-phone limits)."""


def normalise_code(code: str) -> str:
    """What a citizen types or a scanner sends, as the stored code: capitals, no spaces or dashes."""
    return re.sub(r"[^A-Z0-9]", "", code.upper())


def code_hash(code: str) -> str:
    return hashlib.sha256(("booking-code:" + normalise_code(code)).encode("utf-8")).hexdigest()


def _code_from(token: str) -> str:
    """A check-in code derived from a fresh random token (the engine has no randomness of its own)."""
    value = int.from_bytes(hashlib.sha256(("code:" + token).encode("utf-8")).digest(), "big")
    chars = []
    for _ in range(CODE_LENGTH):
        value, index = divmod(value, len(CODE_ALPHABET))
        chars.append(CODE_ALPHABET[index])
    return "".join(chars)


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
class _Numbering:
    next_number: dict[str, int] = field(default_factory=dict)
    # device -> [(group, first, last, granted_at ISO)]
    leases: dict[str, list[tuple[str, int, int, str]]] = field(default_factory=dict)
    used_offline: set[tuple[str, int]] = field(default_factory=set)


def _new_id() -> str:
    return uuid.uuid4().hex


def new_token() -> str:
    """A tracking token: 128 random bits, URL-safe, carrying nothing about the citizen."""
    return secrets.token_urlsafe(16)


def _is_int(value: object) -> bool:
    """An integer that is not a bool (``isinstance(True, int)`` holds in Python; JSON ``true`` is no number)."""
    return isinstance(value, int) and not isinstance(value, bool)


def token_hash(token: str) -> str:
    """What the log and the database keep of a tracking token: its SHA-256, hex.

    Why no salt or slow hash: a salt and a slow hash defend low-entropy secrets (passwords) against
    guessing. A tracking token is 128 random bits (offline ones are checked for it), so nobody can
    enumerate tokens to match a stolen hash, and an unsalted hash keeps the look-up one indexed
    equality. A stolen database or log therefore opens no citizen's tracking page.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_bits(token: str) -> float:
    """Shannon estimate of the entropy of ``token``: its length times the entropy per character."""
    counts: dict[str, int] = {}
    for char in token:
        counts[char] = counts.get(char, 0) + 1
    n = len(token)
    return -n * sum(c / n * math.log2(c / n) for c in counts.values()) if n else 0.0


def clock_suspect(message: str, message_en: str) -> "QueueError":
    return QueueError("clock_suspect", message, message_en)


class QueueEngine:
    """The state of one centre's queue for the current service day, changed only by events."""

    def __init__(
        self,
        config: CentreConfig,
        new_id: Callable[[], str] = _new_id,
        new_token: Callable[[], str] = new_token,
        used_numbers: Mapping[tuple[str, str], int] | None = None,
    ) -> None:
        """``used_numbers``: the highest number the database holds per (service day ISO, group), read
        at start-up (:meth:`server.storage.Storage.used_numbers`). The replayed log covers only the
        current day; these make any day the engine opens continue after what is already stored, so
        a number can never be given twice, whatever the log looked like before."""
        self.config = config
        self._new_id = new_id
        self._new_token = new_token
        self.used_numbers: dict[tuple[str, str], int] = dict(used_numbers or {})
        self.day: date | None = None
        self.day_closed = False
        self.last_at: datetime | None = None
        """The latest event time the engine has seen (or the time a manager confirmed): every
        command's clock is judged against it (:meth:`_check_clock`)."""
        self.tickets: dict[str, Ticket] = {}
        # The waiting tickets only (kept by the appliers): calling, snapshots and estimates look at
        # these, not at every ticket of the day, so a busy afternoon costs what its queue costs.
        self._line: WaitingLine[Ticket] = WaitingLine()
        self.by_token_hash: dict[str, str] = {}
        self.counters: dict[int, CounterState] = {
            c.number: CounterState(c.number, tuple(c.groups)) for c in config.counters
        }
        self.numbering = _Numbering()
        self.recent_calls: deque[dict[str, Any]] = deque(maxlen=RECENT_CALLS)
        self.service_sum: dict[str, float] = {}
        self.service_count: dict[str, int] = {}
        self.rated_tickets: set[str] = set()
        self.refused_ratings: dict[tuple[str, str], int] = {}
        """Today's refused ratings per (refusal code, source): counted, never stored as ratings."""
        self.refusals_by_sender: dict[str, int] = {}  # today's recorded refusals per pad or tracked ticket
        self.dossiers: dict[str, Dossier] = {}
        self.bookings: dict[str, Booking] = {}
        """Today's bookings and those for later days (carried across day openings: a restarted
        engine gets the later days' from :meth:`server.storage.Storage.carried_booking_events`)."""
        self.bookings_by_code: dict[str, str] = {}
        self.bookings_by_token: dict[str, str] = {}
        # Today's help requests: ids already recorded (per device) and each device's recent times.
        self.assistance_ids: set[tuple[str, str]] = set()
        self.assistance_times: dict[str, deque[datetime]] = {}
        self.last_seq = 0
        # What the day's events say about the centre's pace, and the cached line walk behind every
        # expected wait (server/estimates.py): fed each applied event, so replay rebuilds it too.
        self.estimate_model = EstimateModel(config)

    # ------------------------------------------------------------------ event plumbing
    def _event(self, type_: str, now: datetime, **data: Any) -> Event:
        return Event(self._new_id(), type_, now, self.config.service_day(now).isoformat(), data)

    def _emit(self, events: list[Event], type_: str, now: datetime, **data: Any) -> Event:
        if not events and type_ != "clock.confirmed":
            # The first event of a command, before anything of it is applied: a refusal here
            # changes nothing. Commands that change nothing never get here and need no clock.
            self._check_clock(now)
        event = self._event(type_, now, **data)
        self.apply(event)
        events.append(event)
        return event

    def replay(self, events: Iterable[Event]) -> None:
        for event in events:
            self.apply(event)

    def apply(self, event: Event) -> None:
        """Fold one event into the state. Must stay deterministic: replay depends on it."""
        if event.type == "clock.confirmed" or self.last_at is None or event.at > self.last_at:
            self.last_at = event.at
        handler = getattr(self, "_on_" + event.type.replace(".", "_"), None)
        if handler is not None:  # None: events of later versions, or ones that do not change the queue
            handler(event)
        self.estimate_model.observe(event)

    def _check_clock(self, now: datetime) -> None:
        """Refuse a command whose clock cannot be right (docs/architecture.md, "Time and commits").

        - before the last recorded event (more than :data:`CLOCK_BACK_TOLERANCE`), or on a service
          day before the engine's: the clock went back. Accepting it would reopen a closed day
          (numbering from the first number again) or expire today's queue.
        - on a later service day while the current one is still open, more than
          :data:`NEW_DAY_MAX_GAP` after the last event, unless a night passed as nights do
          (:meth:`_ended_as_days_end`): the clock leapt forward (accepting it would expire everyone
          waiting). A manager looks at the clock and confirms it (:meth:`confirm_clock`).
        """
        if self.last_at is None or self.day is None:
            return  # a new centre: nothing to judge the clock by
        local = self.last_at.astimezone(self.config.zone).strftime("%H:%M %d/%m/%Y")
        today = self.config.service_day(now)
        if now < self.last_at - CLOCK_BACK_TOLERANCE or today < self.day:
            raise clock_suspect(
                f"Đồng hồ máy chủ lùi về trước sự kiện đã ghi lúc {local}: yêu cầu bị từ chối. "
                "Hãy kiểm tra đồng hồ; nếu giờ hiện tại là đúng, quản lý cần xác nhận đồng hồ.",
                f"The server clock is behind the last recorded event ({local}): refused. Check the clock; "
                "if the current time is right, a manager must confirm the clock.")
        if (today > self.day and not self.day_closed and now - self.last_at > NEW_DAY_MAX_GAP
                and not self._ended_as_days_end(now)):
            hours = (now - self.last_at).total_seconds() / 3600
            raise clock_suspect(
                f"Đồng hồ máy chủ đã sang ngày {today:%d/%m/%Y}, {hours:.1f} giờ sau sự kiện cuối lúc {local}, "
                f"trong khi ngày {self.day:%d/%m/%Y} chưa đóng: yêu cầu bị từ chối để không huỷ hàng đợi. "
                "Quản lý cần đóng ngày hoặc xác nhận đồng hồ.",
                f"The server clock moved to {today.isoformat()}, {hours:.1f} h after the last event ({local}), "
                f"while {self.day.isoformat()} is still open: refused so the queue is not expired. "
                "A manager must close the day or confirm the clock.")

    def _ended_as_days_end(self, now: datetime) -> bool:
        """Did the open day go quiet at its closing time, and is ``now`` a working day's hour?"""
        assert self.last_at is not None and self.day is not None
        if now - self.last_at > OVERNIGHT_MAX_GAP:
            return False
        zone = self.config.zone
        local = now.astimezone(zone)
        hours_now = self.config.opening_hours(local.date())
        if hours_now is None:
            return False
        opens, closes = (datetime.combine(local.date(), t, tzinfo=zone) for t in hours_now)
        if not opens - MORNING_LEAD <= local <= closes:
            return False
        hours_then = self.config.opening_hours(self.day)
        if hours_then is None:
            return True  # the open day had no opening hours (overtime on a Sunday): nothing to judge its end by
        return self.last_at >= datetime.combine(self.day, hours_then[1], tzinfo=zone) - CLOSING_WINDOW

    def clock_refusal(self, now: datetime) -> QueueError | None:
        """Why a command at ``now`` would be refused as ``clock_suspect`` (None: the clock is
        accepted). Changes nothing: what ``luot clock status`` and ``GET /api/v1/day/clock`` show
        before a manager decides whether to confirm the clock."""
        try:
            self._check_clock(now)
        except QueueError as error:
            return error
        return None

    def confirm_clock(self, now: datetime) -> list[Event]:
        """A manager says ``now`` is the right time: commands are judged against it from then on.

        On a later service day this also closes the open day and opens the new one (what a manager
        confirms on the first morning after a day left open). It never goes back to an earlier
        service day: that day's numbers and tickets are settled, and reopening it is what repeated
        numbers and expired queues came from."""
        if self.day is not None and self.config.service_day(now) < self.day:
            raise clock_suspect(
                f"Ngày {self.day:%d/%m/%Y} đã mở; không thể quay lại ngày trước. Hãy sửa đồng hồ máy chủ.",
                f"Service day {self.day.isoformat()} is already open; the clock cannot go back to an earlier "
                "day. Correct the server clock.")
        events: list[Event] = []
        self._emit(events, "clock.confirmed", now, previous=self.last_at.isoformat() if self.last_at else None)
        self._ensure_day(now, events)
        return events

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
        self.by_token_hash.clear()
        self.numbering = _Numbering()
        day = event.data["day"]
        for (used_day, group), highest in self.used_numbers.items():
            if used_day == day:
                self.numbering.next_number[group] = highest + 1
        self.assistance_ids.clear()
        self.assistance_times.clear()
        self.recent_calls.clear()
        self.service_sum.clear()
        self.service_count.clear()
        self.rated_tickets.clear()
        self.refused_ratings.clear()
        self.refusals_by_sender.clear()
        self.dossiers.clear()
        opened = date.fromisoformat(day)
        for booking in [b for b in self.bookings.values() if b.day < opened]:
            self._forget_booking(booking)
        for counter in self.counters.values():
            counter.status, counter.officer, counter.ticket_id = CLOSED, None, None
            counter.priority_run, counter.last_ticket_id, counter.paused_reason = 0, None, None
            counter.busy_since, counter.released_at = None, None

    def _on_day_closed(self, event: Event) -> None:
        self.day_closed = True

    def _on_block_leased(self, event: Event) -> None:
        d = event.data
        self.numbering.next_number[d["group"]] = max(self.numbering.next_number.get(d["group"], 0), d["last"] + 1)
        self.numbering.leases.setdefault(d["device"], []).append((d["group"], d["first"], d["last"], event.at.isoformat()))

    def _on_ticket_issued(self, event: Event) -> None:
        d = event.data
        ticket = Ticket(
            id=d["ticket_id"], number=d["number"], group=d["group"],
            token_hash=d.get("token_hash") or token_hash(d["token"]),  # logs before migration 5 held the token
            issued_at=datetime.fromisoformat(d.get("issued_at", event.at.isoformat())),
            queue_since=datetime.fromisoformat(d.get("queue_since") or d.get("issued_at", event.at.isoformat())),
            priority=d.get("priority"), source=d.get("source"), offline=bool(d.get("offline")),
            returns_dossier=d.get("returns_dossier"),
            appointment=date.fromisoformat(d["appointment"]) if d.get("appointment") else None,
            booking=d.get("booking"), booking_id=d.get("booking_id"), awaiting=d.get("booking") == REMOTE,
        )
        self.tickets[ticket.id] = ticket
        self._line.add(ticket)
        self.by_token_hash[ticket.token_hash] = ticket.id
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

    def _release_counter(self, ticket: Ticket, at: datetime | None = None) -> None:
        if ticket.counter is None:
            return
        counter = self.counters[ticket.counter]
        if counter.ticket_id == ticket.id:
            if at is not None:
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
        self._release_counter(ticket, event.at)

    def _on_ticket_no_show(self, event: Event) -> None:
        ticket = self.tickets[event.data["ticket_id"]]
        ticket.status, ticket.finished_at = NO_SHOW, event.at
        self._line.discard(ticket.id)  # a lapsed remote number leaves the line without being called
        self._release_counter(ticket, event.at)
        booking = self.bookings.get(ticket.booking_id or "")
        if booking is not None and booking.status == CHECKED_IN:
            booking.status = BOOKING_NO_SHOW

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
        booking = self.bookings.get(ticket.booking_id or "")
        if booking is not None and booking.status in (BOOKED, CHECKED_IN):
            booking.status = BOOKING_CANCELLED

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

    def _on_feedback_refused(self, event: Event) -> None:
        key = (event.data["code"], event.data.get("source") or "pad")
        self.refused_ratings[key] = self.refused_ratings.get(key, 0) + 1
        sender = _refusal_sender(event.data)
        self.refusals_by_sender[sender] = self.refusals_by_sender.get(sender, 0) + 1

    def _on_assistance_requested(self, event: Event) -> None:
        d = event.data
        self.assistance_ids.add((d["device"], d["request_id"]))
        times = self.assistance_times.setdefault(d["device"], deque(maxlen=ASSISTANCE_PER_WINDOW))
        times.append(event.at)

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
        ticket_id = self.by_token_hash.get(token_hash(token))
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
    def issue(self, group: str, now: datetime, priority: str | None = None, source: str | None = None,
              **returning: Any) -> tuple[Ticket, list[Event]]:
        """Give the next number of ``group`` for today; numbers never repeat within a day.
        ``returning`` (from :meth:`issue_return` only) puts the dossier code and appointment on the event."""
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
        token = self._new_token()
        event = self._emit(events, "ticket.issued", now, ticket_id="t" + self._new_id()[:15], number=number,
                           group=group, token_hash=token_hash(token), priority=priority, source=source,
                           offline=False, issued_at=now.isoformat(), **returning)
        ticket = self.tickets[event.data["ticket_id"]]
        ticket.token = token
        return ticket, events

    def issue_return(self, code: str, appointment: date | None, now: datetime,
                     source: str | None = None) -> tuple[Ticket, list[Event]]:
        """A ticket of the results group (trả kết quả) for a citizen coming back with a dossier's
        receipt. The event carries the dossier code, its appointment date and how many days early
        (negative) or late (positive) the citizen came, so the manager's report counts returns
        against the promise. The caller reads the appointment from the receipt or, failing that,
        from the stored dossier (the engine only knows today's)."""
        group = self.config.centre.results_group
        if group is None:
            raise QueueError("no_results_group", "Trung tâm chưa cấu hình quầy trả kết quả; xin hỏi cán bộ hướng dẫn.",
                             "This centre has no results group configured; please ask at the help desk.")
        if not isinstance(code, str) or not re.match(DOSSIER_CODE, code):
            raise Invalid("dossier_code", "Mã hồ sơ chỉ gồm chữ, số và . _ - (3 đến 40 ký tự).",
                          "A dossier code is 3 to 40 letters, digits or . _ -.")
        if any(t.returns_dossier == code and t.status in OPEN_STATUSES for t in self.tickets.values()):
            raise QueueError("return_waiting", f"Hồ sơ {code} đã có số chờ trả kết quả hôm nay.",
                             f"Dossier {code} already has a ticket waiting for its result today.")
        days = (self.config.service_day(now) - appointment).days if appointment else None
        return self.issue(group, now, source=source, returns_dossier=code,
                          appointment=appointment.isoformat() if appointment else None, return_days=days)

    def lease_block(self, device: str, group: str, size: int, now: datetime) -> tuple[tuple[int, int], list[Event]]:
        """Reserve ``size`` numbers of ``group`` for a kiosk to issue while it is offline."""
        try:
            spec = self.config.group(group)
        except KeyError:
            raise NotFound("group_not_found", f"Không có lĩnh vực '{group}'.", f"There is no procedure group '{group}'.") from None
        if not _is_int(size) or not 1 <= size <= 200:
            raise Invalid("lease_size", "Khối số phải từ 1 đến 200 số.", "A block holds 1 to 200 numbers.")
        limit = self.config.queue.lease_limit
        if self._is_today(now) and self.open_leased(device, group) + size > limit:
            raise QueueError("lease_limit",
                             f"Thiết bị {device} đã giữ {self.open_leased(device, group)} số chưa dùng của lĩnh vực này "
                             f"(tối đa {limit}): hãy gửi các vé đã in trước khi xin thêm.",
                             f"{device} already holds {self.open_leased(device, group)} unused numbers of this group "
                             f"(at most {limit}): hand over the tickets it printed before leasing more.")
        events: list[Event] = []
        self._ensure_day(now, events)
        first = max(self.numbering.next_number.get(group, spec.first_number), spec.first_number)
        last = min(first + size - 1, spec.last_number)
        if first > last:
            raise QueueError("group_full", f"Lĩnh vực {spec.name} đã hết số.", "No numbers left for this group today.")
        self._emit(events, "block.leased", now, device=device, group=group, first=first, last=last)
        return (first, last), events

    def open_leased(self, device: str, group: str) -> int:
        """Numbers of ``group`` leased to ``device`` today and not handed over yet."""
        used = self.numbering.used_offline
        return sum(1 for g, first, last, _ in self.numbering.leases.get(device, ()) if g == group
                   for n in range(first, last + 1) if (g, n) not in used)

    def import_offline(self, device: str, group: str, number: int, issued_at: datetime, token: str,
                       now: datetime, priority: str | None = None) -> tuple[Ticket, list[Event]]:
        """Accept a ticket a kiosk issued offline from its leased block; idempotent per number.

        A kiosk is trusted with nothing but its own block: the number must be in a block leased to
        this kiosk today, the time inside that lease (not before it was granted, not in the
        future), the priority class configured, and the token 128 random bits that no ticket of
        today holds. Everything the database would refuse is refused here, to this kiosk alone:
        a bad ticket in a group commit would otherwise fail every other caller's operation in it.
        """
        leases = self.numbering.leases.get(device, []) if self._is_today(now) else []  # leases last one day
        lease = next((l for l in leases if l[0] == group and l[1] <= number <= l[2]), None)
        if lease is None:
            raise Invalid("not_leased", f"Số {number} không thuộc khối số đã cấp cho {device}.",
                          f"Number {number} is not in a block leased to {device}.")
        if not isinstance(token, str) or not OFFLINE_TOKEN.match(token) or token_bits(token) < MIN_TOKEN_BITS:
            raise Invalid("token_weak", "Mã theo dõi của vé phải là 128 bit ngẫu nhiên (base64url hoặc hex).",
                          "A ticket's tracking token must be 128 random bits (base64url or hex).")
        hashed = token_hash(token)
        events: list[Event] = []
        if (group, number) in self.numbering.used_offline:
            # By number alone: a transfer may have moved the ticket to another group since, and a
            # number names one ticket per day (group number ranges never overlap).
            existing = next(t for t in self.tickets.values() if t.offline and t.number == number)
            if existing.token_hash != hashed:
                raise QueueError("offline_conflict", f"Số {number} đã được nhận với mã theo dõi khác.",
                                 f"Number {number} was already handed over with another tracking token.")
            existing.token = token
            return existing, events
        if hashed in self.by_token_hash:
            raise QueueError("token_taken", "Mã theo dõi này đã dùng cho một vé khác.",
                             "This tracking token already belongs to another ticket.")
        if priority is not None and priority not in {p.code for p in self.config.priority_classes}:
            raise Invalid("priority_unknown", f"Đối tượng ưu tiên '{priority}' không có trong cấu hình.",
                          f"Priority class '{priority}' is not configured.")
        granted = datetime.fromisoformat(lease[3])
        # A kiosk's clock is its own: a few minutes either way are tolerated (KIOSK_CLOCK_TOLERANCE),
        # and its place in line is kept inside the lease's window (no year 0001 at the front).
        if (issued_at.tzinfo is None or issued_at < granted - KIOSK_CLOCK_TOLERANCE
                or issued_at > now + KIOSK_CLOCK_TOLERANCE):
            raise Invalid("issued_at", "Thời điểm in vé nằm ngoài thời gian của khối số đã cấp.",
                          f"issued_at must lie between the lease ({granted.isoformat()}) and now.")
        since = min(max(issued_at, granted), now)
        event = self._emit(events, "ticket.issued", now, ticket_id="t" + self._new_id()[:15], number=number,
                           group=group, token_hash=hashed, priority=priority, source=device, offline=True,
                           issued_at=since.isoformat())
        ticket = self.tickets[event.data["ticket_id"]]
        ticket.token = token
        return ticket, events

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

    def take_over(self, number: int, to: str, by: str, now: datetime) -> list[Event]:
        """A manager (``by``) hands an open counter to ``to`` (themselves or another officer):
        recorded as ``counter.taken_over`` with from/to/by, so the report shows who worked when."""
        counter = self.counter(number)
        self._require_open(counter, now)
        if counter.officer == to:
            return []
        events: list[Event] = []
        self._emit(events, "counter.taken_over", now, counter=number, **{"from": counter.officer}, to=to, by=by)
        return events

    def _on_counter_taken_over(self, event: Event) -> None:
        counter = self.counters[event.data["counter"]]
        counter.officer = event.data["to"]
        if counter.ticket_id is not None:  # the citizen at the counter is now the new officer's work
            self.tickets[counter.ticket_id].officer = counter.officer

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

    def pause(self, number: int, now: datetime, reason: str | None = None, minutes: int | None = None) -> list[Event]:
        """Pause a counter; ``minutes``, when the officer says how long, is when waits expect it back."""
        if minutes is not None and not 1 <= minutes <= 240:
            raise Invalid("pause_minutes", "Thời gian tạm dừng phải từ 1 đến 240 phút.", "A pause lasts 1 to 240 minutes.")
        counter = self.counter(number)
        self._require_open(counter, now)
        if counter.status == PAUSED:
            return []
        events: list[Event] = []
        self._ensure_day(now, events)
        extra = {"minutes": minutes} if minutes is not None else {}
        self._emit(events, "counter.paused", now, counter=number, reason=reason, **extra)
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
            if not self.eligible(ticket, counter) or ticket.awaiting:
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
        self._hold_passed_over(counter, ticket, now, events)
        if ticket is None:
            return None, events
        self._call(ticket, counter, now, events)
        return ticket, events

    def _hold_passed_over(self, counter: CounterState, picked: Ticket | None, now: datetime,
                          events: list[Event]) -> None:
        """Remote numbers not checked in that this counter would have called before ``picked``:
        their turn has come. Each keeps its place for ``booking.grace_minutes`` from now (once).
        With nothing to call, only the first such number's turn has come (one counter is free).
        Walks the line only up to ``picked`` (usually near its front); the applier it triggers sets
        ``held_since`` and leaves the line as it is, so iterating it directly is safe."""
        for ticket in self._line:
            if ticket is picked:
                break
            if not ticket.awaiting or not self.eligible(ticket, counter):
                continue
            if ticket.held_since is None:
                self._emit(events, "booking.turn_reached", now, booking_id=ticket.booking_id, ticket_id=ticket.id,
                           number=ticket.number, group=ticket.group, counter=counter.number,
                           grace_minutes=self.config.booking.grace_minutes)
            if picked is None:
                break

    def call_ticket(self, number: int, ticket_id: str, now: datetime) -> tuple[Ticket, list[Event]]:
        """Call one particular waiting ticket (the officer chose it from the list)."""
        counter = self.counter(number)
        self._require_calling(counter, now)
        ticket = self._ticket_today(ticket_id, now)
        if ticket.status != WAITING or not self.eligible(ticket, counter):
            raise QueueError("ticket_not_callable", f"Quầy {number} không thể gọi số {ticket.number} lúc này.",
                             f"Counter {number} cannot call ticket {ticket.number} now.")
        if ticket.awaiting:
            raise QueueError("not_checked_in", f"Số {ticket.number} (lấy trực tuyến) chưa có mặt: công dân cần xác nhận "
                             "đã đến tại ki-ốt hoặc quầy hướng dẫn.",
                             f"Number {ticket.number} (taken online) has not checked in at the kiosk or help desk.")
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
        for booking in sorted(self.bookings.values(), key=lambda b: (b.made_at, b.id)):
            if booking.day == self.day and booking.status == BOOKED:
                self._lapse(booking, now, events, reason="day_end")
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
        if not _is_int(scale) or scale not in (4, 5):
            raise Invalid("rating_scale", "Thang đánh giá phải là 4 hoặc 5 mức.", "The rating scale is 4 or 5 levels.")
        if not _is_int(rating) or not 1 <= rating <= scale:  # ``True`` is not the rating 1
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

    def refuse_feedback(self, code: str, device: str | None, counter: int | None, now: datetime,
                        source: str = "pad", ticket_id: str | None = None) -> list[Event]:
        """Count a rating :meth:`record_feedback` refused (``code`` is its refusal code): a pad that
        rates before service, twice, for another counter or with an unknown level is a fault the
        manager must see. The event records the refusal only; no rating, reason or ticket is kept,
        so nothing partial is stored. It does not open a service day (a stray message must not)."""
        if not isinstance(code, str) or not re.match(r"^[a-z_]{1,40}$", code):
            raise Invalid("refusal_code", "Mã từ chối không hợp lệ.", "Invalid refusal code.")
        data = {"code": code, "device": device, "counter": counter, "source": source}
        if source == "track":  # the page's own ticket, to cap one page's repeats (no token: never in an event)
            data["ticket_id"] = ticket_id
        if self._is_today(now) and self.refusals_by_sender.get(_refusal_sender(data), 0) >= REFUSALS_RECORDED_PER_DAY:
            raise RateLimited("refusals_capped", "Quá nhiều đánh giá bị từ chối từ thiết bị này hôm nay.",
                              "Too many refused ratings from this sender today; no longer recorded.")
        events: list[Event] = []
        self._emit(events, "feedback.refused", now, **data)
        return events

    def request_assistance(self, device: str, request_id: str, reason: str, now: datetime,
                           counter: int | None = None) -> list[Event]:
        """Call staff to a device. A repeated request id is the same request (MQTT delivers at
        least once; a restarted link may hear it again): recorded once, acknowledged each time.
        More than :data:`ASSISTANCE_PER_WINDOW` a minute from one device is refused."""
        if self._is_today(now) and (device, request_id) in self.assistance_ids:
            return []
        times = self.assistance_times.get(device) if self._is_today(now) else None
        if times is not None and len(times) >= ASSISTANCE_PER_WINDOW and now - times[0] < ASSISTANCE_WINDOW:
            raise RateLimited("assistance_rate", "Thiết bị đã gửi quá nhiều yêu cầu hỗ trợ; xin chờ một phút.",
                              "This device has sent too many help requests; wait a minute.")
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
                   group=ticket.group, counter=ticket.counter, officer=ticket.officer,  # the officer who received it
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

    # ------------------------------------------------------------------ bookings (docs/bookings.md)
    def booking_allowed(self, kind: str, group: str, phone_key: str, now: datetime, slot: datetime | None = None,
                        address_key: str | None = None, recent_no_shows: int = 0) -> tuple[date, int | None]:
        """Would :meth:`make_booking` accept this? Its day and seat, or the refusal it would raise.
        Changes nothing: the booking page asks before it uses up the citizen's one-time code."""
        rules = self.config.booking
        if not rules.enabled:
            raise QueueError("booking_disabled", "Trung tâm chưa nhận lấy số trực tuyến.",
                             "This centre does not take numbers online.")
        if kind not in (REMOTE, APPOINTMENT):
            raise Invalid("booking_kind", "Hãy chọn lấy số ngay hoặc đặt lịch hẹn.", "Kind is 'remote' or 'appointment'.")
        try:
            spec = self.config.group(group)
        except KeyError:
            raise NotFound("group_not_found", f"Không có lĩnh vực '{group}'.", f"There is no procedure group '{group}'.") from None
        if not phone_key:
            raise Invalid("phone_key", "Thiếu số điện thoại đã xác nhận.", "A confirmed phone is required.")
        opens, closes = booking_window(self.config, now)
        today = self.config.service_day(now)
        if not opens <= now < closes:
            raise QueueError("booking_hours", f"Chỉ lấy số trực tuyến từ {rules.open_from} đến {rules.open_until}.",
                             f"Numbers are taken online from {rules.open_from} to {rules.open_until} only.")
        if kind == REMOTE:
            day, seat = today, None
            hours = self.config.opening_hours(today)
            if hours is None or now >= datetime.combine(today, hours[1], tzinfo=self.config.zone):
                raise QueueError("centre_closed", "Hôm nay trung tâm không còn làm việc.", "The centre is not open any more today.")
        else:
            day, seat = self._appointment_seat(group, slot, now)
        mine = [b for b in self.bookings.values() if b.phone_key == phone_key and b.day == day and b.status != BOOKING_CANCELLED]
        if sum(1 for b in mine if b.group == group) >= rules.per_phone_group_day:
            raise QueueError("phone_group_limit", f"Số điện thoại này đã có lịch cho lĩnh vực {spec.name} trong ngày "
                             f"(tối đa {rules.per_phone_group_day}).",
                             f"This phone already holds a booking for this group that day (at most {rules.per_phone_group_day}).")
        if len(mine) >= rules.per_phone_day:
            raise QueueError("phone_day_limit", f"Mỗi số điện thoại chỉ lấy tối đa {rules.per_phone_day} số một ngày.",
                             f"One phone may hold at most {rules.per_phone_day} bookings a day.")
        if address_key is not None:
            from_address = sum(1 for b in self.bookings.values()
                               if b.address_key == address_key and self.config.service_day(b.made_at) == today)
            if from_address >= rules.per_address_day:
                raise RateLimited("address_limit", "Đã có quá nhiều số được lấy từ cùng một địa chỉ mạng hôm nay.",
                                  "Too many bookings were made from this network address today.")
        no_shows = recent_no_shows + sum(1 for b in self.bookings.values()
                                         if b.phone_key == phone_key and b.status in (LAPSED, BOOKING_NO_SHOW))
        if no_shows >= rules.no_show_limit:
            raise QueueError("no_show_limit", f"Số điện thoại này đã {no_shows} lần không đến theo số đã lấy trong "
                             f"{rules.no_show_days} ngày: xin lấy số trực tiếp tại trung tâm.",
                             f"This phone missed {no_shows} bookings in {rules.no_show_days} days: take a number at the centre.")
        return day, seat

    def _appointment_seat(self, group: str, slot: datetime | None, now: datetime) -> tuple[date, int]:
        """The day and free seat of an appointment ``slot`` of ``group``, or the refusal: a slot
        of the centre's table, today or up to ``days_ahead`` days ahead, not begun, not full."""
        rules = self.config.booking
        today = self.config.service_day(now)
        if slot is None or slot.tzinfo is None:
            raise Invalid("slot_invalid", "Hãy chọn một khung giờ hẹn.", "Choose an appointment slot.")
        try:
            day = self.config.service_day(slot)
        except (OverflowError, ValueError):  # year 1 or 9999 in another zone: no slot of ours
            raise Invalid("slot_invalid", "Khung giờ này không có trong lịch của trung tâm.",
                          "That is not one of the centre's appointment slots.") from None
        if not today <= day <= today + timedelta(days=rules.days_ahead) or slot not in slot_starts(self.config, day):
            raise Invalid("slot_invalid", "Khung giờ này không có trong lịch của trung tâm.",
                          "That is not one of the centre's appointment slots.")
        if slot <= now:
            raise Invalid("slot_past", "Khung giờ này đã bắt đầu; hãy chọn khung giờ sau.", "That slot has begun; choose a later one.")
        taken = {b.seat for b in self.bookings.values()
                 if b.kind == APPOINTMENT and b.group == group and b.slot == slot and b.status != BOOKING_CANCELLED}
        capacity = rules.capacity(group)
        seat = next((n for n in range(1, capacity + 1) if n not in taken), None)
        if seat is None:
            raise QueueError("slot_full", "Khung giờ này đã hết chỗ; hãy chọn khung giờ khác.",
                             "That slot is fully booked; choose another.")
        return day, seat

    def next_day_offer(self, group: str, now: datetime) -> dict[str, Any] | None:
        """The earliest appointment slot with a free seat on the next working day (the first day
        after today with opening hours, within ``days_ahead``) for ``group``, as a row of
        :meth:`slot_table` plus its ``day``; None when bookings are off or that day is full. The
        kiosk offers it to a citizen who may not be served before closing today."""
        rules = self.config.booking
        if not rules.enabled or group not in {g.code for g in self.config.groups}:
            return None
        today = self.config.service_day(now)
        later = [day for day in bookable_days(self.config, now) if day > today]
        if not later:
            return None
        row = next((r for r in self.slot_table(later[0], group) if r["left"] > 0), None)
        return {**row, "day": later[0].isoformat()} if row else None

    def kiosk_bookings_today(self, kiosk: str, now: datetime) -> int:
        """Bookings ``kiosk`` made on today's service day (cancelled ones too: the cap is on what
        the kiosk hands out, so booking and cancelling cannot hoard past it)."""
        today = self.config.service_day(now)
        return sum(1 for b in self.bookings.values() if b.kiosk == kiosk and self.config.service_day(b.made_at) == today)

    def kiosk_booking_allowed(self, group: str, kiosk: str, now: datetime, slot: datetime | None) -> tuple[date, int]:
        """Would :meth:`make_kiosk_booking` accept this? Its day and seat, or the refusal. A citizen
        at the kiosk has no phone to key on: the kiosk's daily cap (``booking.per_kiosk_day``)
        replaces the per-phone, per-address and no-show limits, and the online hours do not apply
        (the kiosk offers it late in the day, when a ticket would not be served before closing)."""
        rules = self.config.booking
        if not rules.enabled:
            raise QueueError("booking_disabled", "Trung tâm chưa nhận đặt lịch hẹn.",
                             "This centre does not take appointments.")
        try:
            self.config.group(group)
        except KeyError:
            raise NotFound("group_not_found", f"Không có lĩnh vực '{group}'.", f"There is no procedure group '{group}'.") from None
        if not kiosk:
            raise Invalid("kiosk_unknown", "Chỉ máy lấy số của trung tâm mới đặt lịch hẹn tại chỗ.",
                          "Only a kiosk of the centre can book on the spot.")
        if self.kiosk_bookings_today(kiosk, now) >= rules.per_kiosk_day:
            raise QueueError("kiosk_day_limit", f"Máy lấy số này đã đặt đủ {rules.per_kiosk_day} lịch hẹn hôm nay; "
                             "xin đến quầy hướng dẫn.",
                             f"This kiosk has made its {rules.per_kiosk_day} appointments for today; please ask at the help desk.")
        return self._appointment_seat(group, slot, now)

    def make_kiosk_booking(self, group: str, kiosk: str, now: datetime, slot: datetime | None) -> tuple[Booking, list[Event]]:
        """An appointment booked at the kiosk for the citizen standing there (issue 15 and 17: a
        ticket unlikely to be served before closing is offered the next working day's slot). No
        phone: the citizen keeps the printed slip with its check-in code and QR."""
        day, seat = self.kiosk_booking_allowed(group, kiosk, now, slot)
        return self._record_booking(APPOINTMENT, group, day, seat, slot, "", None, now, kiosk=kiosk)

    def make_booking(self, kind: str, group: str, phone_key: str, now: datetime, slot: datetime | None = None,
                     address_key: str | None = None, recent_no_shows: int = 0) -> tuple[Booking, list[Event]]:
        """Take a number from a phone: ``kind`` 'remote' (a real ticket in today's line now, called
        once checked in) or 'appointment' (a ``slot`` today or up to ``days_ahead`` days ahead).

        ``phone_key``/``address_key`` are keyed hashes (server/phones.py); ``recent_no_shows`` is
        what storage knows of this phone's no-shows on earlier days (the adapter reads it, the
        engine stays pure); today's are counted here. Every limit of ``[booking]`` is refused here,
        before anything is stored, with a reason a citizen can read."""
        day, seat = self.booking_allowed(kind, group, phone_key, now, slot, address_key, recent_no_shows)
        return self._record_booking(kind, group, day, seat, slot if kind == APPOINTMENT else None, phone_key,
                                    address_key, now)

    def _record_booking(self, kind: str, group: str, day: date, seat: int | None, slot: datetime | None,
                        phone_key: str, address_key: str | None, now: datetime,
                        kiosk: str | None = None) -> tuple[Booking, list[Event]]:
        """Emit an allowed booking (and a remote number's ticket): a fresh token and a check-in
        code unique among open bookings."""
        spec = self.config.group(group)
        token = self._new_token()
        code = _code_from(token)
        for _ in range(8):  # a code repeated among open bookings would check in the wrong citizen
            if code_hash(code) not in self.bookings_by_code:
                break
            token = self._new_token()
            code = _code_from(token)
        else:
            raise QueueError("code_exhausted", "Không tạo được mã; xin thử lại.", "Could not make a unique code; try again.")
        if kind == REMOTE and self._is_today(now) and self.numbering.next_number.get(group, 0) > spec.last_number:
            raise QueueError("group_full", f"Lĩnh vực {spec.name} đã hết số trong ngày hôm nay.",
                             f"Group {spec.name_en or spec.code} has used all its numbers today.")
        events: list[Event] = []
        self._ensure_day(now, events)  # after every refusal: a refused booking changes nothing
        booking_id = "b" + self._new_id()[:15]
        data: dict[str, Any] = dict(booking_id=booking_id, kind=kind, group=group, day=day.isoformat(),
                                    slot=slot.isoformat() if slot else None, seat=seat, phone_key=phone_key,
                                    address_key=address_key, code_hash=code_hash(code), token_hash=token_hash(token))
        if kiosk is not None:
            data["kiosk"] = kiosk
        if kind == REMOTE:
            number = max(self.numbering.next_number.get(group, spec.first_number), spec.first_number)
            ticket_id = "t" + self._new_id()[:15]
            self._emit(events, "ticket.issued", now, ticket_id=ticket_id, number=number, group=group,
                       token_hash=token_hash(token), priority=None, source="remote", offline=False,
                       issued_at=now.isoformat(), booking=REMOTE, booking_id=booking_id)
            data.update(ticket_id=ticket_id, number=number)
            self.tickets[ticket_id].token = token
        self._emit(events, "booking.made", now, **data)
        booking = self.bookings[booking_id]
        booking.code, booking.token = code, token
        return booking, events

    def find_booking(self, now: datetime, code: str | None = None, token: str | None = None) -> Booking:
        """A booking by its check-in code or its QR token (a full tracking URL is accepted too)."""
        booking_id = None
        if token:
            booking_id = self.bookings_by_token.get(token_hash(token.rstrip("/").rsplit("/", 1)[-1]))
        elif code:
            booking_id = self.bookings_by_code.get(code_hash(code))
        if booking_id is None:
            raise NotFound("booking_not_found", "Không tìm thấy số hẹn với mã này. Xin kiểm tra lại mã.",
                           "No booking has that code. Check the code and try again.")
        return self.bookings[booking_id]

    def check_in_booking(self, now: datetime, code: str | None = None, token: str | None = None,
                         booking_id: str | None = None) -> tuple[Booking, list[Event]]:
        """The citizen is here (kiosk scan or typed code, or the help desk). A remote number becomes
        callable at the place it took at registration; an appointment gets its ticket, ahead of
        walk-ins issued after its slot began if it came in its window, as an ordinary ticket if late."""
        booking = self.bookings.get(booking_id or "") if booking_id else self.find_booking(now, code, token)
        if booking is None:
            raise NotFound("booking_not_found", "Không tìm thấy số hẹn.", "No such booking.")
        today = self.config.service_day(now)
        if booking.status == CHECKED_IN:
            raise QueueError("already_checked_in", "Số hẹn này đã xác nhận có mặt.", "This booking has already checked in.")
        if booking.status == LAPSED:
            raise QueueError("booking_lapsed", "Số hẹn đã hết hiệu lực vì quá thời gian chờ; xin lấy số mới tại ki-ốt.",
                             "This booking lapsed (its turn passed); take a new number at the kiosk.")
        if booking.status != BOOKED:
            raise QueueError("booking_closed", "Số hẹn này đã huỷ hoặc đã kết thúc.", "This booking was cancelled or has ended.")
        if booking.day != today:
            raise QueueError("booking_other_day", f"Lịch hẹn này là ngày {booking.day:%d/%m/%Y}.",
                             f"This appointment is for {booking.day.isoformat()}.")
        events: list[Event] = []
        if booking.kind == REMOTE:
            self._ensure_day(now, events)
            self._emit(events, "booking.checked_in", now, booking_id=booking.id, ticket_id=booking.ticket_id,
                       kind=booking.kind, group=booking.group, late=False)
            return booking, events
        assert booking.slot is not None
        early, until = checkin_window(self.config, booking.slot)
        if now < early:
            local = early.astimezone(self.config.zone)
            raise QueueError("too_early", f"Lịch hẹn lúc {booking.slot.astimezone(self.config.zone):%H:%M}: xin xác nhận từ {local:%H:%M}.",
                             f"The appointment is at {booking.slot.astimezone(self.config.zone):%H:%M}: check in from {local:%H:%M}.")
        self._ensure_day(now, events)  # the first citizen of the day may be one with an appointment
        spec = self.config.group(booking.group)
        number = max(self.numbering.next_number.get(booking.group, spec.first_number), spec.first_number)
        if number > spec.last_number:
            raise QueueError("group_full", f"Lĩnh vực {spec.name} đã hết số trong ngày hôm nay.",
                             f"Group {spec.name_en or spec.code} has used all its numbers today.")
        late = now > until
        ticket_id = "t" + self._new_id()[:15]
        self._emit(events, "ticket.issued", now, ticket_id=ticket_id, number=number, group=booking.group,
                   token_hash=booking.token_hash, priority=None, source="appointment", offline=False,
                   issued_at=now.isoformat(), queue_since=now.isoformat() if late else booking.slot.isoformat(),
                   booking=APPOINTMENT, booking_id=booking.id)
        self._emit(events, "booking.checked_in", now, booking_id=booking.id, ticket_id=ticket_id, kind=booking.kind,
                   group=booking.group, late=late, number=number)
        return booking, events

    def cancel_booking(self, booking_id: str, now: datetime, reason: str = "citizen") -> tuple[Booking, list[Event]]:
        """Cancel a booking not yet served: its slot seat is freed; a remote number leaves the line."""
        booking = self.bookings.get(booking_id)
        if booking is None:
            raise NotFound("booking_not_found", "Không tìm thấy số hẹn.", "No such booking.")
        if booking.status != BOOKED:
            raise QueueError("booking_closed", "Chỉ huỷ được số hẹn chưa xác nhận có mặt.",
                             "Only a booking that has not checked in can be cancelled.")
        events: list[Event] = []
        self._ensure_day(now, events)
        self._emit(events, "booking.cancelled", now, booking_id=booking.id, kind=booking.kind, group=booking.group,
                   day=booking.day.isoformat(), reason=reason)
        ticket = self.tickets.get(booking.ticket_id or "")
        if ticket is not None and ticket.status == WAITING:
            self._emit(events, "ticket.cancelled", now, ticket_id=ticket.id, number=ticket.number, group=ticket.group,
                       reason="booking_cancelled")
        return booking, events

    def booking_tick(self, now: datetime) -> tuple[list[Booking], list[Event]]:
        """What the clock alone decides (the service calls this periodically): remote numbers whose
        turn came ``grace_minutes`` ago without a check-in lapse and count as no-shows."""
        if not self._is_today(now):
            return [], []
        grace = timedelta(minutes=self.config.booking.grace_minutes)
        due = [t for t in self._line.in_order() if t.awaiting and t.held_since is not None and now >= t.held_since + grace]
        events: list[Event] = []
        lapsed = []
        for ticket in due:
            booking = self.bookings[ticket.booking_id or ""]
            self._lapse(booking, now, events, reason="grace_passed")
            lapsed.append(booking)
        return lapsed, events

    def _lapse(self, booking: Booking, now: datetime, events: list[Event], reason: str) -> None:
        self._emit(events, "booking.lapsed", now, booking_id=booking.id, kind=booking.kind, group=booking.group,
                   ticket_id=booking.ticket_id, reason=reason)
        ticket = self.tickets.get(booking.ticket_id or "")
        if ticket is not None and ticket.status == WAITING:
            self._emit(events, "ticket.no_show", now, ticket_id=ticket.id, number=ticket.number, group=ticket.group,
                       counter=None, officer=None, calls=0, reason="lapsed")

    def _forget_booking(self, booking: Booking) -> None:
        self.bookings.pop(booking.id, None)
        self.bookings_by_code.pop(booking.code_hash, None)
        self.bookings_by_token.pop(booking.token_hash, None)

    def _on_booking_made(self, event: Event) -> None:
        d = event.data
        booking = Booking(
            id=d["booking_id"], kind=d["kind"], group=d["group"], day=date.fromisoformat(d["day"]),
            slot=datetime.fromisoformat(d["slot"]) if d.get("slot") else None, seat=d.get("seat"),
            phone_key=d["phone_key"], address_key=d.get("address_key"), code_hash=d["code_hash"],
            token_hash=d["token_hash"], made_at=event.at, ticket_id=d.get("ticket_id"), kiosk=d.get("kiosk"))
        self.bookings[booking.id] = booking
        self.bookings_by_code[booking.code_hash] = booking.id
        self.bookings_by_token[booking.token_hash] = booking.id

    def _on_booking_checked_in(self, event: Event) -> None:
        d = event.data
        booking = self.bookings[d["booking_id"]]
        booking.status, booking.checked_in_at, booking.late = CHECKED_IN, event.at, bool(d.get("late"))
        booking.ticket_id = d.get("ticket_id") or booking.ticket_id
        self.bookings_by_code.pop(booking.code_hash, None)  # a used code opens nothing more
        ticket = self.tickets.get(booking.ticket_id or "")
        if ticket is not None:
            ticket.awaiting, ticket.held_since = False, None

    def _on_booking_turn_reached(self, event: Event) -> None:
        ticket = self.tickets.get(event.data["ticket_id"])
        if ticket is not None and ticket.held_since is None:
            ticket.held_since = event.at

    def _on_booking_lapsed(self, event: Event) -> None:
        booking = self.bookings.get(event.data["booking_id"])
        if booking is not None:
            booking.status = LAPSED
            self.bookings_by_code.pop(booking.code_hash, None)

    def _on_booking_cancelled(self, event: Event) -> None:
        booking = self.bookings.get(event.data["booking_id"])
        if booking is not None:
            booking.status = BOOKING_CANCELLED
            self.bookings_by_code.pop(booking.code_hash, None)

    def slot_table(self, day: date, group: str | None = None) -> list[dict[str, Any]]:
        """Each slot of ``day`` with its bookings per group and what is left (for the booking page,
        the dashboard and the CLI)."""
        groups = [group] if group else [g.code for g in self.config.groups]
        booked: dict[tuple[str, datetime], int] = {}
        for b in self.bookings.values():
            if b.kind == APPOINTMENT and b.day == day and b.status != BOOKING_CANCELLED and b.slot is not None:
                booked[(b.group, b.slot)] = booked.get((b.group, b.slot), 0) + 1
        rows = []
        for start in slot_starts(self.config, day):
            for code in groups:
                capacity = self.config.booking.capacity(code)
                n = booked.get((code, start), 0)
                rows.append({"group": code, "slot": start.isoformat(),
                             "time": start.astimezone(self.config.zone).strftime("%H:%M"),
                             "booked": n, "capacity": capacity, "left": max(0, capacity - n)})
        return rows

    def booking_view(self, booking: Booking) -> dict[str, Any]:
        ticket = self.tickets.get(booking.ticket_id or "")
        return {
            "id": booking.id, "kind": booking.kind, "group": booking.group, "day": booking.day.isoformat(),
            "slot": booking.slot.isoformat() if booking.slot else None,
            "slot_time": booking.slot.astimezone(self.config.zone).strftime("%H:%M") if booking.slot else None,
            "status": booking.status, "ticket_id": booking.ticket_id,
            "number": ticket.number if ticket else None, "ticket_status": ticket.status if ticket else None,
            "made_at": booking.made_at.isoformat(),
            "checked_in_at": booking.checked_in_at.isoformat() if booking.checked_in_at else None,
            "late": booking.late, "kiosk": booking.kiosk,
            "held_until": (ticket.held_since + timedelta(minutes=self.config.booking.grace_minutes)).isoformat()
            if ticket and ticket.held_since and ticket.awaiting else None,
        }

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

    def use_history(self, history: "History | None") -> None:
        """Estimate waits with a profile of the centre's previous days (server/wait_history.py), or
        without one (None). An input like the centre file, not an event: the service gives the
        same profile again before replaying, so replay gives the same answers."""
        self.estimate_model.use_history(history)

    def cycle_minutes(self, group: str) -> float:
        """What a counter is expected to spend on one ticket of ``group`` (server/estimates.py)."""
        return self.estimate_model.cycle_minutes(group)

    def estimates(self, now: datetime, only: str | None = None) -> dict[str, Estimate]:
        """People ahead and expected wait for every waiting ticket, or for ``only`` alone.

        Worked out by server/estimates.py in the centre's real time (opening hours, breaks, paused
        counters expected back, recent pace, expected priority arrivals), from a walk of the line
        that later new tickets continue instead of repeating.
        """
        return self.estimate_model.estimates(self, now, only)

    def newcomer_estimate(self, group: str, now: datetime, priority: str | None = None) -> Estimate:
        """What a ticket of ``group`` taken now would be told (server/estimates.py), nothing issued."""
        self.config.group(group)  # KeyError for an unknown group
        return self.estimate_model.newcomer(self, group, now, priority)

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
        # What the last in line of each group is told (the tracking page's words): the dashboard's
        # "a newcomer waits", so managers see the same range citizens are given.
        last: dict[str, Ticket] = {}
        for ticket in self._line:
            last[ticket.group] = ticket
        for code, entry in groups.items():  # one walk, resumed: each group's last alone is worded
            estimate = self.estimates(now, only=last[code].id).get(last[code].id) if code in last else None
            view = wait_view(self.config, estimate, now)
            entry.update(wait_text=view["wait_text"], wait_text_en=view["wait_text_en"],
                         wait_range_minutes=view["wait_range_minutes"])
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


def _refusal_sender(data: Mapping[str, Any]) -> str:
    """Who sent a refused rating, for :data:`REFUSALS_RECORDED_PER_DAY`: the pad, or the tracked ticket."""
    return f"pad:{data.get('device')}" if data.get("source") != "track" else f"track:{data.get('ticket_id')}"


def stamp_actor(events: list[Event], actor: str | None) -> None:
    """Write who asked for a command (a username or device id) into each event it caused, as
    ``data["actor"]``, unless the engine named one. Appliers never read it: it is for the log."""
    if actor is None:
        return
    for event in events:
        event.data.setdefault("actor", actor)


def utc_now() -> datetime:
    """The adapters' clock (the engine never reads one)."""
    return datetime.now(timezone.utc)


__all__ = [
    "QueueEngine", "Event", "Ticket", "CounterState", "Estimate", "Dossier", "DOSSIER_STATUSES", "QueueError", "NotFound", "Invalid",
    "RateLimited", "new_token", "token_hash", "utc_now", "Booking", "code_hash", "normalise_code",
]
