"""Stateful property test: walk-ins, remote numbers and appointments arriving in any mix.

Hypothesis drives walk-ins (some priority), remote numbers, appointments, check-ins, cancellations,
calls and the clock's tick. After every step: no slot holds more bookings than its capacity, a
restarted server (replay of the log) is in exactly the live state, and whatever a counter calls is
the earliest callable ordinary ticket it may serve. Numbers of a group follow the order in which
people registered, whether at the kiosk or from a phone. At the end everyone present is served:
no class of arrival starves.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from server.booking_slots import slot_starts
from server.engine import APPOINTMENT, BOOKED, CALLED, CHECKED_IN, WAITING, QueueError
from tests.booking_support import full_state
from tests.engine_support import at, new_engine, recorded, replayed, small_config

CONFIG = small_config(priority_run_limit=2)
GROUPS = [g.code for g in CONFIG.groups]
COUNTERS = [c.number for c in CONFIG.counters]
START = at(2, 8, 0)  # Monday 2 March 2026, 08:00
LAST_ARRIVAL = at(2, 15, 30)


class MixedArrivals(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.engine = new_engine(CONFIG)
        self.events: list = []
        self.now = START
        self.phones = 0
        for number in COUNTERS:
            self._run(self.engine.open_counter(number, f"officer-{number}", self.now))

    def _run(self, result):
        return recorded(self.events, result)

    def _phone(self, reuse: bool) -> str:
        if not reuse:
            self.phones += 1
        return f"phone-{max(self.phones, 1)}"

    @rule(minutes=st.integers(0, 12))
    def time_passes(self, minutes: int) -> None:
        self.now = min(self.now + timedelta(minutes=minutes), LAST_ARRIVAL)

    @rule(group=st.sampled_from(GROUPS), priority=st.sampled_from([None, None, None, "elderly"]))
    def walk_in(self, group: str, priority: str | None) -> None:
        self._run(self.engine.issue(group, self.now, priority=priority))

    @rule(group=st.sampled_from(GROUPS), reuse=st.booleans())
    def remote_number(self, group: str, reuse: bool) -> None:
        try:
            self._run(self.engine.make_booking("remote", group, self._phone(reuse), self.now, address_key="lan"))
        except QueueError as error:
            assert error.code in {"phone_group_limit", "phone_day_limit", "address_limit", "no_show_limit"}

    @rule(group=st.sampled_from(GROUPS), pick=st.integers(0, 2), tomorrow=st.booleans(), reuse=st.booleans())
    def appointment(self, group: str, pick: int, tomorrow: bool, reuse: bool) -> None:
        day = CONFIG.service_day(self.now) + timedelta(days=int(tomorrow))
        slots = [s for s in slot_starts(CONFIG, day) if s > self.now]
        if not slots:
            return
        try:
            self._run(self.engine.make_booking("appointment", group, self._phone(reuse), self.now,
                                               slot=slots[pick % len(slots)]))
        except QueueError as error:
            assert error.code in {"slot_full", "phone_group_limit", "phone_day_limit", "no_show_limit"}

    @rule(pick=st.integers(0, 200))
    def check_in(self, pick: int) -> None:
        open_ = [b for b in self.engine.bookings.values() if b.status == BOOKED]
        if open_:
            try:
                self._run(self.engine.check_in_booking(self.now, booking_id=open_[pick % len(open_)].id))
            except QueueError as error:
                assert error.code in {"too_early", "booking_other_day"}

    @rule(pick=st.integers(0, 200))
    def cancel(self, pick: int) -> None:
        open_ = [b for b in self.engine.bookings.values() if b.status == BOOKED]
        if open_:
            self._run(self.engine.cancel_booking(open_[pick % len(open_)].id, self.now))

    @rule(counter=st.sampled_from(COUNTERS))
    def call(self, counter: int) -> None:
        self._call(counter)

    @rule()
    def tick(self) -> None:
        self._run(self.engine.booking_tick(self.now))

    def _call(self, counter_number: int):
        engine = self.engine
        counter = engine.counters[counter_number]
        if counter.ticket_id and engine.tickets[counter.ticket_id].status == CALLED:
            self._run(engine.start(counter_number, self.now))
        callable_ = [t for t in engine.waiting() if engine.eligible(t, counter) and not t.awaiting]
        ticket = self._run(engine.call_next(counter_number, self.now))
        if ticket is not None and ticket.priority is None:
            ordinary = [t for t in callable_ if t.priority is None]
            assert ticket.order_key() == min(t.order_key() for t in ordinary)
        assert ticket is not None or not callable_
        return ticket

    @invariant()
    def capacity_never_exceeded(self) -> None:
        seats: dict = {}
        for b in self.engine.bookings.values():
            if b.kind == APPOINTMENT and b.status != "cancelled":
                seats.setdefault((b.group, b.slot), []).append(b.seat)
        for (group, _), taken in seats.items():
            assert len(taken) == len(set(taken)) <= CONFIG.booking.capacity(group)

    @invariant()
    def numbers_follow_the_order_of_registration(self) -> None:
        last: dict[str, int] = {}
        for event in self.events:
            if event.type == "ticket.issued" and event.data.get("booking") != APPOINTMENT:
                group, number = event.data["group"], event.data["number"]
                assert number > last.get(group, 0)
                last[group] = number

    @invariant()
    def replay_equals_live(self) -> None:
        assert full_state(replayed(CONFIG, self.events), self.now) == full_state(self.engine, self.now)

    def teardown(self) -> None:
        """Everyone who comes is served: today's appointments come (on time or late) and are
        served; remote numbers not checked in by now never come, and lapse once their turn has
        passed; so the line empties."""
        engine = self.engine
        today = CONFIG.service_day(self.now)
        for _ in range(400):
            self._run(engine.booking_tick(self.now))
            for booking in [b for b in engine.bookings.values()
                            if b.status == BOOKED and b.day == today and b.kind == APPOINTMENT]:
                try:
                    self._run(engine.check_in_booking(self.now, booking_id=booking.id))
                except QueueError as error:
                    assert error.code == "too_early"
            for number in COUNTERS:
                self._call(number)
            today_open = [b for b in engine.bookings.values()
                          if b.status == BOOKED and b.day == today and b.kind == APPOINTMENT]
            if not engine.waiting_count and not today_open:
                break
            self.now += timedelta(minutes=5)
        assert engine.waiting_count == 0, [t for t in engine.waiting()]
        served = [b for b in engine.bookings.values() if b.day == today and b.status == CHECKED_IN]
        assert all(engine.tickets[b.ticket_id].status != WAITING for b in served)
        assert all(b.status != BOOKED for b in engine.bookings.values() if b.day == today)


MixedArrivals.TestCase.settings = settings(max_examples=40, stateful_step_count=30, deadline=None,
                                           suppress_health_check=[HealthCheck.too_slow])
test_mixed_arrivals = MixedArrivals.TestCase
