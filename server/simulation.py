"""Simulated citizens and officers for the demo, its what-if comparisons and the benchmarks.

The simulated centre lives like a real one, day after day: officers arrive in the morning and open
their counters, pause for lunch, keep serving the people already holding a ticket for a while after
closing time, close their counters, and the manager closes the day (the engine then expires whoever
is still waiting: visible in the day's summary). Closed days (the ``[hours]`` of the centre file)
are skipped; nobody arrives while the centre is closed.

Every random draw comes from a ``random.Random`` seeded from ``seed`` and the day, split in two
streams: what the citizens bring (arrival times, group, priority, service time, whether they walk
away, their rating) and what each officer does (arrival jitter, walk-up and gap times). A what-if
run with one more counter or a longer lunch therefore meets exactly the same citizens (common
random numbers), and the difference in waits is the change's, not the dice's.

Every action goes through :meth:`CentreService.run`, the same path as real devices.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Callable, Iterable

from luot.config import WEEKDAYS, CentreConfig, parse_config
from server.engine import CALLED, CLOSED, PAUSED, SERVING, Event, QueueError
from server.service import CentreService

# relative arrival intensity per local hour (1.0 = the day's mean hourly rate)
HOURLY_PROFILE = {7: 0.9, 8: 1.8, 9: 1.7, 10: 1.3, 11: 0.9, 12: 0.1, 13: 0.9, 14: 1.2, 15: 1.0, 16: 0.6}
OVERTIME_MINUTES = 30.0
"""After the last session ends, officers keep serving the people already waiting this long; then the
counters close and the manager closes the day (what is still waiting expires)."""
IDLE_POLL_MINUTES = 0.5
MAX_CATCH_UP = 50
"""Actions one officer may take in one step: a live step that lags (a fast --speed on a loaded
machine) catches up on what was due instead of slowing every officer down."""


class SimClock:
    """Time that runs ``speed`` times faster than the wall clock, from ``start`` (live demo)."""

    def __init__(self, start: datetime, speed: float, wall: Callable[[], float]) -> None:
        self.start, self.speed, self._wall = start, speed, wall
        self._wall_start = wall()

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=(self._wall() - self._wall_start) * self.speed)


class StepClock:
    """Time that moves only when the simulation moves it: days run as fast as the machine can."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance_to(self, moment: datetime) -> None:
        if moment > self.now:
            self.now = moment


# ------------------------------------------------------------------------------ the centre's days
def sessions(config: CentreConfig, day: date) -> list[tuple[datetime, datetime]]:
    """The opening sessions of ``day`` as UTC instants, in order (empty on a closed day)."""
    result = []
    for text in config.hours.get(WEEKDAYS[day.weekday()], []):
        start, end = (time.fromisoformat(part) for part in text.split("-"))
        result.append((datetime.combine(day, start, tzinfo=config.zone).astimezone(timezone.utc),
                       datetime.combine(day, end, tzinfo=config.zone).astimezone(timezone.utc)))
    return sorted(result)


def open_days(config: CentreConfig, first: date, count: int | None = None) -> Iterable[date]:
    """The centre's open days from ``first`` on (``count`` of them, or endlessly)."""
    if not any(config.hours.get(d) for d in WEEKDAYS):
        raise ValueError("the centre file gives no opening hours ([hours]): the demo has no day to simulate")
    day, found = first, 0
    while count is None or found < count:
        if sessions(config, day):
            found += 1
            yield day
        day += timedelta(days=1)


# ------------------------------------------------------------------------------ citizens
@dataclass(frozen=True)
class Visitor:
    """One citizen of the simulated day and everything random about them, drawn in advance."""

    at: datetime
    group: str
    priority: str | None
    service_minutes: float
    walks_away: bool  # does not answer the calls (marked absent after the recalls)
    mood: float | None
    """None: does not rate. Else a uniform draw that :func:`five_level` turns into a level once the
    wait is known, so dissatisfaction rises with the wait the visitor actually had."""
    by_phone: bool = False  # rates on the tracking page after leaving, not on the pad
    reason_draw: float = 0.0


DISSATISFIED_FLOOR = 0.04
"""Share of visitors dissatisfied even with no wait (attitude, documents asked, guidance...)."""


def five_level(mood: float, wait_minutes: float, reason_draw: float = 0.0) -> tuple[int, list[str]]:
    """The province's five levels (5 rất hài lòng … 1 rất không hài lòng) and reasons for a
    visitor of ``mood`` who waited ``wait_minutes``. The share below 'bình thường' climbs from
    :data:`DISSATISFIED_FLOOR` towards 55 % as the wait passes 10 minutes (half-way at about 30
    minutes more); a dissatisfied visitor who waited over 15 minutes names the wait, others one
    of the other reasons. Deterministic in its inputs."""
    dissatisfied = DISSATISFIED_FLOOR + 0.51 * (1 - math.exp(-max(0.0, wait_minutes - 10) / 30))
    if mood < dissatisfied:
        level = 1 if mood < dissatisfied * 0.35 else 2
        others = ["attitude", "guidance", "documents", "other"]
        reasons = ["wait"] if wait_minutes > 15 else []
        if not reasons or reason_draw < 0.3:
            reasons.append(others[int(reason_draw * len(others)) % len(others)])
        return level, reasons
    rest = (mood - dissatisfied) / (1 - dissatisfied)
    return (3 if rest < 0.15 else 4 if rest < 0.5 else 5), []


def _poisson(rng: random.Random, mean: float) -> int:
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _profile_weight(config: CentreConfig, day: date) -> float:
    """Sum of the hourly profile over the open minutes of ``day``."""
    total = 0.0
    for start, end in sessions(config, day):
        minute = start
        while minute < end:
            total += HOURLY_PROFILE.get(minute.astimezone(config.zone).hour, 0.0)
            minute += timedelta(minutes=1)
    return total


def day_visitors(config: CentreConfig, day: date, tickets_per_day: float, seed: int,
                 no_show_rate: float = 0.05, rating_rate: float = 0.6) -> list[Visitor]:
    """The citizens who come on ``day``: Poisson arrivals during the open minutes only.

    ``tickets_per_day`` is the mean of the centre's fullest week day; a half day (Saturday morning)
    gets its share by the profile. The stream depends on the seed, the day and the centre's groups
    and hours only, never on the counters, so a what-if run sees the same people.
    """
    rng = random.Random(f"luot-demo:{seed}:{day.isoformat()}:citizens")
    fullest = max(_profile_weight(config, day + timedelta(days=k)) for k in range(7))
    per_unit = tickets_per_day / fullest if fullest else 0.0
    groups = config.groups
    weights = [1.0 / g.service_minutes + 0.05 for g in groups]  # quick procedures are asked for more
    priorities = [p.code for p in config.priority_classes]
    visitors: list[Visitor] = []
    for start, end in sessions(config, day):
        minute = start
        while minute < end:
            rate = per_unit * HOURLY_PROFILE.get(minute.astimezone(config.zone).hour, 0.0)
            for _ in range(_poisson(rng, rate)):
                group = rng.choices(groups, weights)[0]
                priority = rng.choice(priorities) if priorities and rng.random() < 0.12 else None
                visitors.append(Visitor(
                    at=minute + timedelta(seconds=rng.uniform(0, 60)),
                    group=group.code,
                    priority=priority,
                    service_minutes=max(0.5, rng.expovariate(1.0 / group.service_minutes)),
                    walks_away=rng.random() < no_show_rate,
                    mood=rng.random() if rng.random() < rating_rate else None,
                    by_phone=rng.random() < 0.3, reason_draw=rng.random(),
                ))
            minute += timedelta(minutes=1)
    visitors.sort(key=lambda v: v.at)
    return visitors


# ------------------------------------------------------------------------------ what a day looked like
@dataclass
class _Tally:
    issued: int = 0
    served: int = 0
    no_shows: int = 0
    expired: int = 0
    waits: list[float] = field(default_factory=list)
    ratings: list[int] = field(default_factory=list)

    def absorb(self, other: "_Tally") -> None:
        self.issued += other.issued
        self.served += other.served
        self.no_shows += other.no_shows
        self.expired += other.expired
        self.waits += other.waits
        self.ratings += other.ratings


def _percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile (P90 = the wait 90 % of the called people did not exceed)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


class DayLedger:
    """Per-day figures read from the committed events (what the engine really did)."""

    def __init__(self) -> None:
        self.days: dict[str, dict[str, _Tally]] = {}

    def __call__(self, events: list[Event], _now: datetime) -> None:
        for event in events:
            groups = self.days.setdefault(event.day, {})
            code = event.data.get("group")
            if code is None:
                continue
            tally = groups.setdefault(code, _Tally())
            if event.type == "ticket.issued":
                tally.issued += 1
            elif event.type == "ticket.called" and event.data.get("first_call"):
                tally.waits.append(event.data["wait_seconds"] / 60.0)
            elif event.type == "ticket.finished":
                tally.served += 1
            elif event.type == "ticket.no_show":
                tally.no_shows += 1
            elif event.type == "ticket.expired":
                tally.expired += 1
            elif event.type == "feedback.recorded":  # five levels; a four-face event keeps its words
                tally.ratings.append(int(event.data.get("level") or int(event.data["rating"]) + 1))

    @staticmethod
    def _figures(tally: _Tally) -> dict[str, Any]:
        waits, ratings = tally.waits, tally.ratings
        return {
            "issued": tally.issued,
            "served": tally.served,
            "no_shows": tally.no_shows,
            "expired_at_closing": tally.expired,
            "mean_wait_minutes": _round(sum(waits) / len(waits)) if waits else None,
            "p90_wait_minutes": _round(_percentile(waits, 0.9)),
            "longest_wait_minutes": _round(max(waits)) if waits else None,
            "satisfaction": {
                "ratings": len(ratings),
                "mean": round(sum(ratings) / len(ratings), 2) if ratings else None,
                "satisfied_share": round(sum(1 for r in ratings if r >= 4) / len(ratings), 3) if ratings else None,
            },
        }

    def summary(self, day: date) -> dict[str, Any]:
        """One day: issued, served, no-shows, expired at closing, mean/P90/longest wait, satisfaction,
        and the same per group. Waits are from issue to first call, of the people who were called."""
        return {"day": day.isoformat(), "weekday": WEEKDAYS[day.weekday()], **self.period([day])}

    def period(self, days: Iterable[date]) -> dict[str, Any]:
        """The figures of several days together (a what-if compares whole periods too)."""
        groups: dict[str, _Tally] = {}
        for day in days:
            for code, tally in self.days.get(day.isoformat(), {}).items():
                groups.setdefault(code, _Tally()).absorb(tally)
        total = _Tally()
        for tally in groups.values():
            total.absorb(tally)
        return {**self._figures(total), "groups": {code: self._figures(t) for code, t in sorted(groups.items())}}


# ------------------------------------------------------------------------------ officers
@dataclass
class _Officer:
    counter: int
    groups: tuple[str, ...]
    rng: random.Random
    next_action: datetime
    late_minutes: float = 0.0  # how long after a session start this officer is at the counter
    absent_ticket: str | None = None
    visitor: Visitor | None = None


@dataclass
class Simulation:
    """Drives one centre through its days. ``step()`` acts on everything due by the service's clock.

    The day change lives in :meth:`_change_day` alone (close the old day, plan the next open one).
    """

    service: CentreService
    tickets_per_day: int = 260
    seed: int = 7
    no_show_rate: float = 0.05
    rating_rate: float = 0.6
    lunch_extra_minutes: float = 0.0
    overtime_minutes: float = OVERTIME_MINUTES
    first_day: date | None = None
    days: int | None = None
    ledger: DayLedger = field(default_factory=DayLedger, init=False)
    issued: int = field(default=0, init=False)
    day: date | None = field(default=None, init=False)
    finished_days: list[date] = field(default_factory=list, init=False)
    _calendar: Any = field(default=None, init=False)
    _sessions: list[tuple[datetime, datetime]] = field(default_factory=list, init=False)
    _visitors: list[Visitor] = field(default_factory=list, init=False)
    _next_visitor: int = field(default=0, init=False)
    _officers: list[_Officer] = field(default_factory=list, init=False)
    _by_ticket: dict[str, Visitor] = field(default_factory=dict, init=False)
    _dossiers: list[tuple[date, str, str]] = field(default_factory=list, init=False)
    """(day it is returned, code, ticket id) of the simulated dossiers not yet returned."""
    _returned_for: date | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.service.listeners.append(self.ledger)
        first = self.first_day or self.service.config.service_day(self.service.now())
        self._calendar = iter(open_days(self.service.config, first, self.days))
        self._plan(next(self._calendar, None))

    # -- the calendar ------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        """Every day asked for has been simulated and closed."""
        return self.day is None

    @property
    def closing(self) -> datetime:
        """When the manager closes the current day: the last session's end plus the overtime."""
        return self._sessions[-1][1] + timedelta(minutes=self.overtime_minutes + 1)

    def _plan(self, day: date | None) -> None:
        self.day = day
        if day is None:
            self._sessions, self._visitors, self._officers = [], [], []
            return
        config = self.service.config
        self._sessions = sessions(config, day)
        self._visitors = day_visitors(config, day, self.tickets_per_day, self.seed, self.no_show_rate, self.rating_rate)
        self._next_visitor = 0
        self._by_ticket = {}
        self._officers = []
        for counter in config.counters:
            rng = random.Random(f"luot-demo:{self.seed}:{day.isoformat()}:officer:{counter.number}")
            late = rng.uniform(0.0, 4.0)
            self._officers.append(_Officer(counter.number, tuple(counter.groups), rng,
                                           self._sessions[0][0] + timedelta(minutes=late), late))

    async def _change_day(self, now: datetime) -> None:
        """Close the finished day the way a manager does, then plan the next open day.

        The one place where the simulation moves from a day to the next (the engine judges clocks
        across days: a closed day lets the next morning's first command open the new one)."""
        try:
            await self.service.run(lambda e, t: (None, e.close_day(t)))
        except QueueError:
            pass  # nothing to close (the day never opened): the summary shows zeros
        if self.day is not None:
            self.finished_days.append(self.day)
        self._plan(next(self._calendar, None))

    def next_due(self) -> datetime | None:
        """The earliest moment something happens (the fast mode jumps there)."""
        if self.day is None:
            return None
        moments = [self.closing] + [o.next_action for o in self._officers]
        if self._next_visitor < len(self._visitors):
            moments.append(self._visitors[self._next_visitor].at)
        return min(moments)

    # -- one step ----------------------------------------------------------------------------
    async def step(self) -> None:
        """Advance the simulated centre to the service's current time."""
        now = self.service.now()
        while self.day is not None and now >= self.closing:
            await self._arrivals(self.closing)  # a live step may span the closing time
            await self._change_day(now)
        if self.day is None:
            return
        if self._returned_for != self.day and now >= self._sessions[0][0]:
            await self._return_results(now)
        await self._arrivals(now)
        for officer in self._officers:
            for _ in range(MAX_CATCH_UP):
                if officer.next_action > now:
                    break
                await self._act(officer, now)

    async def _receive_dossier(self, ticket: Any) -> None:
        await _attach_and_plan(self, ticket)

    async def _return_results(self, now: datetime) -> None:
        """At the day's opening: the dossiers planned for return by today are returned (marked
        'returned'), so the Decision 766 index sees on-time and late returns."""
        from server.engine import Dossier

        self._returned_for = self.day
        assert self.day is not None
        due = [d for d in self._dossiers if d[0] <= self.day]
        self._dossiers = [d for d in self._dossiers if d[0] > self.day]
        for _, code, ticket_id in due:
            known = Dossier(code, ticket_id, "received")
            await self.service.run(lambda e, t: e.set_dossier_status(code, "returned", t, known=known))

    async def _arrivals(self, now: datetime) -> None:
        while self._next_visitor < len(self._visitors) and self._visitors[self._next_visitor].at <= now:
            visitor = self._visitors[self._next_visitor]
            self._next_visitor += 1
            try:
                ticket = await self.service.run(
                    lambda e, t, v=visitor: e.issue(v.group, t, priority=v.priority, source="demo"))
            except QueueError:
                continue  # e.g. the group's numbers for the day are used up: the kiosk refuses
            self._by_ticket[ticket.id] = visitor
            self.issued += 1

    # -- officers ----------------------------------------------------------------------------
    def _where(self, officer: _Officer, now: datetime) -> tuple[str, datetime | None]:
        """Where the officer's day is at ``now``: ("before", next start), ("working", None),
        ("lunch", back at), ("overtime", None) or ("gone", None)."""
        for index, (start, end) in enumerate(self._sessions):
            extra = self.lunch_extra_minutes if index > 0 else 0.0
            arrive = start + timedelta(minutes=officer.late_minutes + extra)
            if now < arrive:
                return ("before" if index == 0 else "lunch"), arrive
            if now < end:
                return "working", None
        if now < self._sessions[-1][1] + timedelta(minutes=self.overtime_minutes):
            return "overtime", None
        return "gone", None

    def _someone_waits_for(self, officer: _Officer) -> bool:
        return any(t.group in officer.groups for t in self.service.engine.waiting())

    async def _act(self, officer: _Officer, now: datetime) -> None:
        engine = self.service.engine
        counter = engine.counters[officer.counter]
        today = engine.day == self.day
        ticket = engine.tickets.get(counter.ticket_id) if today and counter.ticket_id else None
        try:
            if ticket is not None and ticket.status in (CALLED, SERVING):
                await self._serve(officer, ticket, now)
                return
            phase, until = self._where(officer, now)
            status = counter.status if today else CLOSED
            if phase == "before":
                officer.next_action = until
            elif phase == "lunch":
                if status not in (CLOSED, PAUSED):
                    await self.service.run(lambda e, t: (None, e.pause(officer.counter, t, reason="lunch")))
                officer.next_action = until
            elif phase == "working" or (phase == "overtime" and status != CLOSED and self._someone_waits_for(officer)):
                if status == CLOSED:
                    await self.service.run(lambda e, t: (None, e.open_counter(officer.counter, f"canbo{officer.counter}", t)))
                elif status == PAUSED:
                    await self.service.run(lambda e, t: (None, e.resume(officer.counter, t)))
                called = await self.service.run(lambda e, t: e.call_next(officer.counter, t))
                if called is None:
                    officer.next_action = now + timedelta(minutes=IDLE_POLL_MINUTES)
                else:
                    due = min(officer.next_action, now)
                    officer.visitor = self._by_ticket.get(called.id)
                    officer.absent_ticket = called.id if officer.visitor and officer.visitor.walks_away else None
                    officer.next_action = due + timedelta(minutes=officer.rng.uniform(0.3, 1.0))
            else:  # overtime with nobody left for this counter, or gone home
                if status != CLOSED:
                    await self.service.run(lambda e, t: (None, e.close_counter(officer.counter, t)))
                officer.next_action = self.closing
        except QueueError:
            officer.next_action = now + timedelta(minutes=IDLE_POLL_MINUTES)

    async def _serve(self, officer: _Officer, ticket: Any, now: datetime) -> None:
        # The officer's own schedule runs from when the action was due, not from when the step
        # noticed it: in the fast mode the two are equal; live, a late step does not stretch a service.
        due = min(officer.next_action, now)
        if ticket.status == CALLED and officer.absent_ticket == ticket.id:
            await self.service.run(lambda e, t: e.recall(officer.counter, t))
            officer.next_action = due + timedelta(minutes=1)
        elif ticket.status == CALLED:
            await self.service.run(lambda e, t: e.start(officer.counter, t))
            await self._receive_dossier(ticket)
            visitor = officer.visitor
            minutes = visitor.service_minutes if visitor else self.service.config.group(ticket.group).service_minutes
            officer.next_action = due + timedelta(minutes=minutes)
        else:  # SERVING
            done = await self.service.run(lambda e, t: e.finish(officer.counter, t))
            visitor = self._by_ticket.get(done.id)
            if visitor is not None and visitor.mood is not None:
                await _rate_once(self.service, done, visitor, officer.counter)
            officer.next_action = due + timedelta(minutes=officer.rng.uniform(0.2, 0.8))


DOSSIER_LATE_SHARE = 0.12
"""Share of simulated dossiers returned after their appointment (1-3 days late)."""


async def _attach_and_plan(sim: "Simulation", ticket: Any) -> None:
    """A procedure with a legal time (``legal_days`` > 0) hands in a dossier: attached with its
    appointment (today + legal days), and a return day planned, most on or before it."""
    group = sim.service.config.group(ticket.group)
    if not group.legal_days or sim.day is None:
        return
    code = f"{sim.service.config.centre.id[:12]}-{sim.day:%y%m%d}-{ticket.number}"
    appointment = sim.day + timedelta(days=group.legal_days)
    await sim.service.run(lambda e, t: e.attach_dossier(ticket.id, code, t, appointment=appointment))
    rng = random.Random(f"luot-demo:{sim.seed}:{code}")
    late = rng.random() < DOSSIER_LATE_SHARE
    sim._dossiers.append((appointment + timedelta(days=rng.randint(1, 3)) if late
                          else appointment - timedelta(days=rng.randint(0, min(1, group.legal_days - 1))), code, ticket.id))


async def _rate_once(service: Any, ticket: Any, visitor: Visitor, counter: int) -> None:
    """One visitor's rating, through the same way in as the pad and the phone (server/ratings.py):
    five levels with reasons from the wait the visitor had. A pad tapped twice (one in 40) sends
    the rating again, which is refused and counted like any double tap."""
    from server.ratings import rate

    wait = (ticket.first_called_at - ticket.issued_at).total_seconds() / 60 if ticket.first_called_at else 0.0
    level, reasons = five_level(visitor.mood, wait, visitor.reason_draw)
    source, device, at_counter = ("track", None, None) if visitor.by_phone else ("pad", "demo", counter)
    await rate(service, ticket.id, level, device=device, counter=at_counter, scale=5, reasons=reasons,
               source=source, actor=device or "citizen")
    if source == "pad" and visitor.reason_draw > 0.975:
        try:
            await rate(service, ticket.id, level, device=device, counter=at_counter, scale=5, reasons=reasons,
                       source=source, actor=device or "citizen")
        except QueueError:
            pass  # refused and counted: what the month's report shows under refused ratings


async def run_fast(sim: Simulation, clock: StepClock, stop: Callable[[], bool] = lambda: False) -> None:
    """Run ``sim`` to the end of its days as fast as possible: jump the clock to whatever is due next
    (through nights and closed days in one step, since each day is closed before the next opens)."""
    while not sim.done and not stop():
        due = sim.next_due()
        if due is not None:
            clock.advance_to(due)
        await sim.step()


# ------------------------------------------------------------------------------ what-if changes
@dataclass(frozen=True)
class WhatIf:
    """A change a manager would consider, applied to the centre file and the officers' day."""

    add_counters: tuple[str, ...] = ()          # one more counter for each group named
    moves: tuple[tuple[str, int], ...] = ()     # (group, counter): the group is served there only
    lunch_extra_minutes: float = 0.0

    @classmethod
    def parse(cls, items: Iterable[str]) -> "WhatIf":
        """``add-counter:GROUP``, ``move:GROUP:COUNTER``, ``lunch:+MINUTES`` (repeatable)."""
        add, moves, lunch = [], [], 0.0
        for item in items:
            kind, _, rest = item.partition(":")
            try:
                if kind == "add-counter" and rest:
                    add.append(rest)
                elif kind == "move" and rest.count(":") == 1:
                    group, counter = rest.split(":")
                    moves.append((group, int(counter)))
                elif kind == "lunch" and rest:
                    lunch += float(rest)
                else:
                    raise ValueError
            except ValueError:
                raise ValueError(f"--what-if {item!r} not understood; expected add-counter:GROUP, "
                                 "move:GROUP:COUNTER or lunch:+MINUTES") from None
        if lunch < 0 or lunch > 240:
            raise ValueError("--what-if lunch: the extra lunch must be 0 to 240 minutes")
        return cls(tuple(add), tuple(moves), lunch)

    def describe(self) -> list[str]:
        notes = [f"one more counter for {g}" for g in self.add_counters]
        notes += [f"{g} moved to counter {c}" for g, c in self.moves]
        if self.lunch_extra_minutes:
            notes.append(f"lunch {self.lunch_extra_minutes:g} minutes longer")
        return notes

    def apply(self, config: CentreConfig) -> tuple[CentreConfig, list[str]]:
        """The centre file with the change; notes say what else it implied (a counter left empty)."""
        data = config.model_dump(mode="json")
        codes = {g.code for g in config.groups}
        notes: list[str] = []
        for group, number in self.moves:
            if group not in codes:
                raise ValueError(f"--what-if move: {group!r} is not a group; known: {', '.join(sorted(codes))}")
            target = next((c for c in data["counters"] if c["number"] == number), None)
            if target is None:
                raise ValueError(f"--what-if move: there is no counter {number}")
            for counter in data["counters"]:
                if group in counter["groups"] and counter is not target:
                    counter["groups"].remove(group)
            if group not in target["groups"]:
                target["groups"].append(group)
        for counter in [c for c in data["counters"] if not c["groups"]]:
            data["counters"].remove(counter)
            notes.append(f"counter {counter['number']} has no group left and stays closed")
        for group in self.add_counters:
            if group not in codes:
                raise ValueError(f"--what-if add-counter: {group!r} is not a group; known: {', '.join(sorted(codes))}")
            number = max(c["number"] for c in data["counters"]) + 1
            data["counters"].append({"number": number, "name": f"Quầy {number} (thêm)", "groups": [group]})
            notes.append(f"counter {number} added for {group}")
        return parse_config(data, "what-if"), notes


# ------------------------------------------------------------------------------ whole runs
async def simulate_days(config: CentreConfig, first: date, days: int, *, seed: int = 7, tickets_per_day: int = 260,
                        lunch_extra_minutes: float = 0.0, db_path: str = ":memory:") -> dict[str, Any]:
    """Run ``days`` open days of the centre from ``first`` as fast as possible: ``{"days": [one
    summary per day], "period": the days together}``. The engine and a real SQLite database (in memory unless ``db_path``) do the
    work; no server, broker or screen."""
    from server.storage import Storage

    days_wanted = list(open_days(config, first, days))
    clock = StepClock(sessions(config, days_wanted[0])[0][0] - timedelta(minutes=10))
    storage = await Storage.open(db_path, config.zone)
    try:
        service = await CentreService.start(config, storage, clock)
        sim = Simulation(service, tickets_per_day=tickets_per_day, seed=seed, first_day=days_wanted[0], days=days,
                         lunch_extra_minutes=lunch_extra_minutes)
        await run_fast(sim, clock)
    finally:
        await storage.close()
    return {"days": [sim.ledger.summary(day) for day in sim.finished_days],
            "period": sim.ledger.period(sim.finished_days)}


async def compare(config: CentreConfig, change: WhatIf, first: date, days: int, *, seed: int = 7,
                  tickets_per_day: int = 260) -> dict[str, Any]:
    """The same simulated days (same seed: same citizens, same service times) without and with
    ``change``; the figures side by side and the difference (what-if minus baseline)."""
    changed, notes = change.apply(config)
    runs = {}
    for name, centre, lunch in (("baseline", config, 0.0), ("what_if", changed, change.lunch_extra_minutes)):
        runs[name] = await simulate_days(centre, first, days, seed=seed, tickets_per_day=tickets_per_day,
                                         lunch_extra_minutes=lunch)
    return {
        "seed": seed,
        "tickets_per_day": tickets_per_day,
        "changes": change.describe(),
        "notes": notes,
        "baseline": runs["baseline"],
        "what_if": runs["what_if"],
        "difference": {
            "days": [_difference(a, b) | {"day": a["day"]} for a, b in zip(runs["baseline"]["days"], runs["what_if"]["days"])],
            "period": _difference(runs["baseline"]["period"], runs["what_if"]["period"]),
            "groups": {code: _difference(figures, runs["what_if"]["period"]["groups"].get(code, {}))
                       for code, figures in runs["baseline"]["period"]["groups"].items()},
        },
    }


COMPARED = ("served", "expired_at_closing", "mean_wait_minutes", "p90_wait_minutes", "longest_wait_minutes")


def _difference(baseline: dict[str, Any], what_if: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key in COMPARED:
        a, b = baseline.get(key), what_if.get(key)
        result[key] = None if a is None or b is None else round(b - a, 1)
    return result
