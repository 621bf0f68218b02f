"""Stateful property test: random days at a centre, checking the queue's promises after every step.

Hypothesis drives every command (issue, counters opening, closing, pausing, calling, recalls,
absences, service, transfers, cancellations, feedback, offline blocks, end of day) while the clock
moves on by random minutes, often across local midnight. After each step the invariants a citizen
relies on must hold: no ticket lost, no number given twice in a day, one ticket per counter and one
counter per ticket, the anti-starvation rule, an estimate for everyone waiting, and a restarted
server (replaying the event log) in exactly the same state. A refused command must change nothing.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta
from typing import Any, Callable

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.engine_support import at, new_engine, replayed, small_config, state_of
from server.engine import (
    BUSY, CALLED, CALLING, CLOSED, DONE, IDLE, OPEN_STATUSES, PAUSED, SERVING, WAITING, Estimate, Event, QueueEngine,
    QueueError,
)

CONFIG = small_config(priority_run_limit=2, max_calls=2)
GROUPS = [g.code for g in CONFIG.groups]
COUNTERS = [c.number for c in CONFIG.counters]
PRIORITIES = [None, None, "elderly", "disabled"]
TERMINAL = {"done", "no_show", "cancelled", "expired"}
STATUS_OF_EVENT = {
    "ticket.issued": WAITING, "ticket.called": CALLED, "ticket.serving": SERVING, "ticket.finished": DONE,
    "ticket.no_show": "no_show", "ticket.transferred": WAITING, "ticket.cancelled": "cancelled",
    "ticket.expired": "expired",
}

counters = st.sampled_from(COUNTERS)
ticket_picks = st.integers(min_value=0, max_value=400)
minutes = st.one_of(st.integers(0, 15), st.sampled_from([45, 120, 300, 600, 900, 1000]))


def plain_estimates(engine: QueueEngine, now: datetime) -> dict[str, Estimate]:
    """The expected-wait simulation written the plain way (every waiting ticket looks at every
    counter, nothing cached or resumed): the engine's faster version must give exactly the same
    answers. The pieces it shares are the model's public ones: when each counter is free (open
    minutes, computed afresh: not what the engine's walk keeps), which groups compete, a group's
    cycle and how a walk's result is told."""
    model = engine.estimate_model
    free_at = model.compute_free_at(engine, now)
    open_now = model.timeline(now).open_minutes(now)
    breaks = model.timeline(now).session_starts[1:]  # open minutes at which a break begins
    compatible = model.compatible(engine)
    seen: dict[str, int] = {}
    result = {}
    for ticket in sorted((t for t in engine.tickets.values() if t.status == WAITING),
                         key=lambda t: (t.priority is None, *t.order_key())):
        options = [n for n in free_at if engine.eligible(ticket, engine.counters[n])]
        if not options:
            options = [c.number for c in engine.counters.values() if engine.eligible(ticket, c)]
            for n in options:
                free_at.setdefault(n, float(math.floor(open_now)))
        ahead = sum(seen.get(g, 0) for g in compatible[ticket.group])
        cycle = model.cycle_minutes(ticket.group)
        if options:
            chosen = min(options, key=lambda n: free_at[n])
            result[ticket.id] = model.describe(engine, ticket, free_at[chosen], ahead, len(options), cycle, now)
            end = free_at[chosen] + cycle
            for begins in breaks:  # a service under way when a break begins ends during the break
                if free_at[chosen] < begins < end:
                    end = begins
                    break
            free_at[chosen] = end
        else:
            result[ticket.id] = Estimate(ahead, None)
        seen[ticket.group] = seen.get(ticket.group, 0) + 1
    return result


class CentreDay(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.engine = new_engine(CONFIG)
        self.now = at(2, 7, 0)
        self.log: list[Event] = []
        # The model, kept from the events alone.
        self.status: dict[str, str] = {}            # every ticket ever issued -> its latest status
        self.day_tickets: set[str] = set()           # tickets of the engine's current service day
        self.numbers: set[tuple[str, int]] = set()   # (service day, number) ever issued or leased
        self.imported: set[tuple[str, int]] = set()  # (service day, number) imported from a lease
        self.run: dict[int, int] = dict.fromkeys(COUNTERS, 0)  # priority calls in a row today
        self.offline_tokens = 0
        self.steps = 0
        self.latest_day: Any = None

    # ------------------------------------------------------------------ plumbing
    def command(self, action: Callable[[], Any]) -> Any:
        """Run one command; a refusal must be a QueueError that leaves the state untouched."""
        before = state_of(self.engine, self.now)
        try:
            result = action()
        except QueueError as error:
            assert error.message and error.message_en and error.code
            assert state_of(self.engine, self.now) == before, f"refused {error.code} but changed state"
            return None
        value, events = (None, result) if isinstance(result, list) else result
        self.log.extend(events)
        for event in events:
            self.observe(event)
        return value, events

    def observe(self, event: Event) -> None:
        data = event.data
        if event.type == "day.opened":
            open_left = [t for t in self.day_tickets if self.status[t] not in TERMINAL]
            assert not open_left, f"tickets vanished at the day change without an ending: {open_left}"
            self.day_tickets = set()
            self.run = dict.fromkeys(COUNTERS, 0)
        elif event.type == "ticket.issued":
            key = (event.day, data["number"])
            if data["offline"]:  # its number was reserved by a lease that day, and is imported once
                assert key in self.numbers and key not in self.imported, f"offline number {key} not leased or twice"
                self.imported.add(key)
            else:
                assert key not in self.numbers, f"number {data['number']} issued twice on {event.day}"
                self.numbers.add(key)
            self.day_tickets.add(data["ticket_id"])
        elif event.type == "ticket.called":
            self.run[data["counter"]] = self.run[data["counter"]] + 1 if data["priority"] else 0
        elif event.type == "block.leased":
            for number in range(data["first"], data["last"] + 1):
                key = (event.day, number)
                assert key not in self.numbers, f"leased number {number} already issued on {event.day}"
                self.numbers.add(key)
        if event.type in STATUS_OF_EVENT:
            self.status[data["ticket_id"]] = STATUS_OF_EVENT[event.type]

    def pick_ticket(self, index: int) -> str:
        ids = sorted(self.engine.tickets)
        return ids[index % len(ids)] if ids else "t-none"

    def eligible_waiting(self, number: int) -> list:
        counter = self.engine.counters[number]
        return [t for t in self.engine.tickets.values() if t.status == WAITING and (
            t.target_counter == number if t.target_counter is not None else t.group in counter.groups)]

    # ------------------------------------------------------------------ time
    @rule(step=minutes)
    def time_passes(self, step: int) -> None:
        self.now += timedelta(minutes=step)

    @rule(step=st.sampled_from([3, 60, 180, 1440]))
    def clock_goes_back(self, step: int) -> None:
        """A clock corrected backwards (or wrong): commands are refused until it catches up or a
        manager confirms it, and no day is ever reopened (the number checks in observe)."""
        self.now -= timedelta(minutes=step)

    @rule()
    def manager_confirms_clock(self) -> None:
        self.command(lambda: self.engine.confirm_clock(self.now))

    @rule(request=st.sampled_from(["r1", "r2", "r3", "r4", "r5", "r6", "r7"]))
    def assistance(self, request: str) -> None:
        seen = ("kiosk-1", request) in self.engine.assistance_ids and self.engine._is_today(self.now)
        outcome = self.command(lambda: self.engine.request_assistance("kiosk-1", request, "help", self.now))
        if seen:
            assert outcome == (None, []), "a repeated request id is recorded once"

    # ------------------------------------------------------------------ kiosk
    @rule(group=st.sampled_from(GROUPS), priority=st.sampled_from(PRIORITIES))
    def issue(self, group: str, priority: str | None) -> None:
        outcome = self.command(lambda: self.engine.issue(group, self.now, priority=priority, source="kiosk-1"))
        if outcome:
            ticket, _ = outcome
            assert ticket.status == WAITING and ticket.group == group and ticket.priority == priority

    @rule(group=st.sampled_from(GROUPS), size=st.integers(1, 4))
    def lease_block(self, group: str, size: int) -> None:
        self.command(lambda: self.engine.lease_block("kiosk-1", group, size, self.now))

    @rule(pick=ticket_picks, back=st.integers(0, 30), priority=st.sampled_from(PRIORITIES))
    def import_offline(self, pick: int, back: int, priority: str | None) -> None:
        leases = self.engine.numbering.leases.get("kiosk-1", [])
        if leases:
            group, first, last, _ = leases[pick % len(leases)]
            number = first + pick % (last - first + 1)
        else:
            group, number = GROUPS[pick % len(GROUPS)], 1001 + pick
        self.offline_tokens += 1
        token = hashlib.sha256(f"offline-{self.offline_tokens}".encode()).hexdigest()[:32]  # 128 bits, hex
        issued = self.now - timedelta(minutes=back)
        self.command(lambda: self.engine.import_offline("kiosk-1", group, number, issued, token, self.now, priority))

    # ------------------------------------------------------------------ counters
    @rule(number=counters, officer=st.sampled_from([None, "an", "binh"]))
    def open_counter(self, number: int, officer: str | None) -> None:
        self.command(lambda: self.engine.open_counter(number, officer, self.now))

    @rule(number=counters)
    def close_counter(self, number: int) -> None:
        self.command(lambda: self.engine.close_counter(number, self.now))

    @rule(number=counters)
    def pause(self, number: int) -> None:
        self.command(lambda: self.engine.pause(number, self.now, reason="nghỉ"))

    @rule(number=counters)
    def resume(self, number: int) -> None:
        self.command(lambda: self.engine.resume(number, self.now))

    @rule(number=counters)
    def call_next(self, number: int) -> None:
        candidates = self.eligible_waiting(number)
        run_before = self.run[number]
        outcome = self.command(lambda: self.engine.call_next(number, self.now))
        if outcome is None:
            return
        ticket, events = outcome
        if any(e.type == "day.opened" for e in events):
            return  # yesterday's queue is gone; nothing from it may be called
        if not candidates:
            assert ticket is None
            return
        assert ticket is not None and ticket in candidates, "a waiting ticket was left while the counter idled"
        priority = [t for t in candidates if t.priority]
        ordinary = [t for t in candidates if not t.priority]
        limit = CONFIG.queue.priority_run_limit
        if ticket.priority:
            assert not ordinary or run_before < limit, (
                f"counter {number} called priority #{run_before + 1} in a row while an ordinary ticket waited")
            expected = min(priority, key=lambda t: t.order_key())
        else:
            assert not priority or run_before >= limit, "a priority ticket was passed over"
            expected = min(ordinary, key=lambda t: t.order_key())
        assert ticket is expected, "tickets of one class must be called in queue order"

    @rule(number=counters, pick=ticket_picks)
    def call_ticket(self, number: int, pick: int) -> None:
        ticket_id = self.pick_ticket(pick)
        self.command(lambda: self.engine.call_ticket(number, ticket_id, self.now))

    @rule(number=counters)
    def recall(self, number: int) -> None:
        self.command(lambda: self.engine.recall(number, self.now))

    @rule(number=counters)
    def no_show(self, number: int) -> None:
        self.command(lambda: self.engine.no_show(number, self.now))

    @rule(number=counters)
    def start(self, number: int) -> None:
        self.command(lambda: self.engine.start(number, self.now))

    @rule(number=counters)
    def finish(self, number: int) -> None:
        self.command(lambda: self.engine.finish(number, self.now))

    @rule(number=counters, group=st.sampled_from([None, *GROUPS]), to_counter=st.sampled_from([None, *COUNTERS]))
    def transfer(self, number: int, group: str | None, to_counter: int | None) -> None:
        self.command(lambda: self.engine.transfer(number, self.now, to_group=group, to_counter=to_counter))

    @rule(pick=ticket_picks)
    def cancel(self, pick: int) -> None:
        ticket_id = self.pick_ticket(pick)
        self.command(lambda: self.engine.cancel(ticket_id, self.now))

    @rule(pick=ticket_picks, rating=st.integers(0, 4), at_counter=st.sampled_from([None, *COUNTERS]))
    def record_feedback(self, pick: int, rating: int, at_counter: int | None) -> None:
        ticket_id = self.pick_ticket(pick)
        self.command(lambda: self.engine.record_feedback(ticket_id, rating, "pad-1", at_counter, self.now))

    @precondition(lambda self: self.engine.day is not None)
    @rule()
    def close_day(self) -> None:
        if self.command(lambda: self.engine.close_day(self.now)) is None:
            return  # refused (a suspect clock): nothing changed, as command() checked
        assert not any(t.status in OPEN_STATUSES for t in self.engine.tickets.values())
        assert all(c.status == CLOSED for c in self.engine.counters.values())

    # ------------------------------------------------------------------ invariants
    @invariant()
    def no_ticket_lost(self) -> None:
        engine = self.engine
        assert set(engine.tickets) == self.day_tickets
        for ticket_id, ticket in engine.tickets.items():
            assert ticket.status == self.status[ticket_id]
            assert engine.by_token_hash[ticket.token_hash] == ticket_id
        snapshot = engine.snapshot(self.now)
        waiting = [t for t in engine.tickets.values() if t.status == WAITING]
        assert snapshot["waiting_total"] == len(waiting) == len(engine.waiting())
        for group, entry in snapshot["groups"].items():
            assert entry["waiting"] == sum(t.group == group for t in waiting)

    @invariant()
    def one_ticket_per_counter_and_one_counter_per_ticket(self) -> None:
        engine = self.engine
        holders: dict[str, int] = {}
        for number, counter in engine.counters.items():
            if counter.ticket_id is None:
                assert counter.status in (CLOSED, IDLE, PAUSED), f"counter {number} {counter.status} holds nothing"
                continue
            assert counter.ticket_id not in holders, "one ticket held by two counters"
            holders[counter.ticket_id] = number
            ticket = engine.tickets[counter.ticket_id]
            assert ticket.counter == number
            assert ticket.status in (CALLED, SERVING)
            expected = CALLING if ticket.status == CALLED else BUSY
            assert counter.status in (expected, PAUSED), f"counter {number} is {counter.status}, ticket {ticket.status}"
        for ticket in engine.tickets.values():
            if ticket.status in (CALLED, SERVING):
                assert holders.get(ticket.id) == ticket.counter, f"ticket {ticket.number} {ticket.status} but no counter holds it"
            if ticket.status == WAITING:
                assert ticket.counter is None

    @invariant()
    def estimates_for_everyone_waiting(self) -> None:
        waiting = {t.id for t in self.engine.tickets.values() if t.status == WAITING}
        # Asked first for the newest ticket alone (as the kiosk does at issue): the walk cached by
        # the previous step resumes past the tickets issued since, and must agree with everything
        # below.
        lone = self.engine.estimates(self.now, only=self.engine.waiting()[-1].id) if waiting else {}
        estimates = self.engine.estimates(self.now)
        assert set(estimates) == waiting
        for estimate in estimates.values():
            assert estimate.ahead >= 0 and estimate.wait_minutes is not None and estimate.wait_minutes >= 0
        model = self.engine.estimate_model
        assert model.free_at(self.engine, self.now) == model.compute_free_at(self.engine, self.now), "the kept free instants differ"
        assert estimates == plain_estimates(self.engine, self.now), "the fast estimate differs from the plain simulation"
        for ticket_id, estimate in lone.items():
            assert estimate == estimates[ticket_id], "the resumed estimate of the newest ticket differs"
        for estimate in estimates.values():
            lo, hi = estimate.wait_range  # type: ignore[misc]
            assert lo <= estimate.wait_minutes <= hi and estimate.expected_at >= self.now

    @invariant()
    def waiting_line_in_calling_order(self) -> None:
        tickets = [t for t in self.engine.tickets.values() if t.status == WAITING]
        expected = sorted(tickets, key=lambda t: (t.priority is None, *t.order_key()))
        assert [t.id for t in self.engine.waiting()] == [t.id for t in expected]
        # the resumed estimate walk reads the line by place (WaitingLine.ticket_at / from_place)
        line, order = self.engine._line, self.engine.waiting()
        assert all(line.ticket_at(i) is t for i, t in enumerate(order))
        assert all(line.from_place(i) == order[i:] for i in range(len(order) + 1))

    @invariant()
    def days_only_move_forward(self) -> None:
        day = self.engine.day
        if day is not None:
            assert self.latest_day is None or day >= self.latest_day, "a service day was reopened"
            self.latest_day = day

    @invariant()
    def replay_gives_the_same_state(self) -> None:
        self.steps += 1
        if self.steps % 4:
            return
        assert state_of(replayed(CONFIG, self.log), self.now) == state_of(self.engine, self.now)

    def teardown(self) -> None:
        assert state_of(replayed(CONFIG, self.log), self.now) == state_of(self.engine, self.now)


CentreDay.TestCase.settings = settings(
    max_examples=150, stateful_step_count=60, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestCentreDay = CentreDay.TestCase
