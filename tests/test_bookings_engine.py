"""Remote numbers and appointments in the pure engine: one line for the hall and the phone."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from server.engine import (
    CALLED, CANCELLED, NO_SHOW, WAITING, Event, QueueEngine, QueueError, code_hash,
)
from tests.booking_support import booking_config, full_state, slot_of
from tests.engine_support import at, later, new_engine, recorded, replayed

MON = 2  # 2 March 2026 is a Monday
MONDAY = date(2026, 3, 2)


class Centre:
    """The engine and every event it emitted (as the server would log them)."""

    def __init__(self, **rules: Any) -> None:
        self.config = booking_config(**rules)
        self.engine = new_engine(self.config)
        self.events: list[Event] = []

    def run(self, result: Any) -> Any:
        return recorded(self.events, result)

    def issue(self, when, group="ho-tich"):
        return self.run(self.engine.issue(group, when))

    def remote(self, phone, when, group="ho-tich", **kw):
        return self.run(self.engine.make_booking("remote", group, phone, when, **kw))

    def appointment(self, phone, when, slot, group="ho-tich", **kw):
        return self.run(self.engine.make_booking("appointment", group, phone, when, slot=slot, **kw))

    def call(self, counter, when):
        engine = self.engine
        current = engine.counters[counter].ticket_id
        if current and engine.tickets[current].status == CALLED:
            self.run(engine.start(counter, when))
        return self.run(engine.call_next(counter, when))

    def check_replay(self, now) -> None:
        assert full_state(replayed(self.config, self.events), now) == full_state(self.engine, now)


@pytest.fixture
def centre() -> Centre:
    c = Centre()
    c.run(c.engine.open_counter(1, "an", at(MON, 7, 30)))
    return c


def test_remote_number_takes_its_place_at_registration_and_waits_for_check_in(centre: Centre) -> None:
    first = centre.issue(at(MON, 8, 0))
    booking = centre.remote("phone-a", at(MON, 8, 1))
    after = centre.issue(at(MON, 8, 2))
    remote = centre.engine.tickets[booking.ticket_id]
    assert (first.number, remote.number, after.number) == (1001, 1002, 1003)  # order of registration
    assert remote.source == "remote" and remote.awaiting
    assert centre.call(1, at(MON, 8, 5)).number == 1001
    # 1002's turn has come, but it has not checked in: 1003 is called and 1002 keeps its place
    assert centre.call(1, at(MON, 8, 10)).number == 1003
    assert "booking.turn_reached" in [e.type for e in centre.events]
    view = centre.engine.booking_view(booking)
    assert view["held_until"] == later(at(MON, 8, 10), 15).isoformat()
    centre.run(centre.engine.check_in_booking(at(MON, 8, 20), code=booking.code))
    later_walk_in = centre.issue(at(MON, 8, 21))
    assert centre.call(1, at(MON, 8, 22)).number == 1002  # checked in within its grace: called at its place
    assert later_walk_in.status == WAITING
    centre.check_replay(at(MON, 8, 30))


def test_remote_number_lapses_after_the_grace_period_and_counts_as_no_show(centre: Centre) -> None:
    booking = centre.remote("phone-a", at(MON, 8, 1))
    assert centre.call(1, at(MON, 8, 5)) is None  # nothing callable: its turn has come
    lapsed = centre.run(centre.engine.booking_tick(at(MON, 8, 19)))
    assert lapsed == []  # 14 minutes: still within the 15-minute grace
    lapsed = centre.run(centre.engine.booking_tick(at(MON, 8, 20)))
    assert [b.id for b in lapsed] == [booking.id]
    assert centre.engine.tickets[booking.ticket_id].status == NO_SHOW
    assert centre.engine.waiting_count == 0
    with pytest.raises(QueueError) as refused:
        centre.engine.check_in_booking(at(MON, 8, 25), code=booking.code)
    assert refused.value.code == "booking_not_found"  # a lapsed code opens nothing any more
    with pytest.raises(QueueError) as refused:
        centre.engine.check_in_booking(at(MON, 8, 25), booking_id=booking.id)
    assert refused.value.code == "booking_lapsed"
    # one no-show so far; a second reaches the limit (2): this phone cannot book again
    second = centre.remote("phone-a", at(MON, 8, 26), group="chung-thuc")
    centre.run(centre.engine.close_day(at(MON, 17, 0)))
    assert centre.engine.bookings[second.id].status == "lapsed"
    with pytest.raises(QueueError) as refused:
        centre.engine.make_booking("remote", "dat-dai", "phone-a", at(MON + 1, 8, 0))
    assert refused.value.code == "no_show_limit"
    centre.check_replay(at(MON, 17, 0))


def test_an_officer_cannot_pick_a_remote_number_not_checked_in(centre: Centre) -> None:
    booking = centre.remote("phone-a", at(MON, 8, 1))
    with pytest.raises(QueueError) as refused:
        centre.engine.call_ticket(1, booking.ticket_id, at(MON, 8, 2))
    assert refused.value.code == "not_checked_in" and "chưa" in refused.value.message


def test_appointment_checked_in_in_its_window_goes_ahead_of_walk_ins_issued_after_its_slot_began(centre: Centre) -> None:
    slot = slot_of(centre.config, MONDAY, "09:00")
    booking = centre.appointment("phone-a", at(MON, 8, 0), slot)
    assert booking.ticket_id is None and booking.seat == 1
    before = centre.issue(at(MON, 8, 58))
    after = centre.issue(at(MON, 9, 3))
    with pytest.raises(QueueError) as refused:
        centre.engine.check_in_booking(at(MON, 8, 20), code=booking.code)
    assert refused.value.code == "too_early" and "08:30" in refused.value.message
    centre.run(centre.engine.check_in_booking(at(MON, 9, 10), code=booking.code.lower()))  # typed in lower case
    ticket = centre.engine.tickets[booking.ticket_id]
    assert ticket.number == 1003 and ticket.queue_since == slot
    order = [centre.call(1, at(MON, 9, 11 + i)).number for i in range(3)]
    assert order == [before.number, ticket.number, after.number]
    centre.check_replay(at(MON, 9, 20))


def test_a_late_appointment_becomes_an_ordinary_ticket(centre: Centre) -> None:
    slot = slot_of(centre.config, MONDAY, "09:00")
    booking = centre.appointment("phone-a", at(MON, 8, 0), slot)
    walk_in = centre.issue(at(MON, 9, 5))
    centre.run(centre.engine.check_in_booking(at(MON, 9, 16), code=booking.code))  # grace 15 min passed
    assert booking.late
    assert [centre.call(1, at(MON, 9, 20 + i)).number for i in range(2)] == [walk_in.number, 1002]


def test_slot_capacity_is_never_exceeded_and_a_cancelled_seat_is_free_again(centre: Centre) -> None:
    slot = slot_of(centre.config, MONDAY + timedelta(days=1), "13:30")
    first = centre.appointment("p1", at(MON, 8, 0), slot)
    centre.appointment("p2", at(MON, 8, 1), slot)
    with pytest.raises(QueueError) as refused:
        centre.appointment("p3", at(MON, 8, 2), slot)
    assert refused.value.code == "slot_full"
    centre.appointment("p3", at(MON, 8, 2), slot, group="chung-thuc")  # capacity is per group
    centre.run(centre.engine.cancel_booking(first.id, at(MON, 8, 3)))
    again = centre.appointment("p4", at(MON, 8, 4), slot)
    assert again.seat == first.seat == 1
    centre.check_replay(at(MON, 8, 5))


@pytest.mark.parametrize("when, slot_day, slot_time, code", [
    (at(MON, 7, 59), MONDAY, "13:30", "booking_hours"),
    (at(MON, 16, 0), MONDAY + timedelta(days=1), "08:00", "booking_hours"),
    (at(MON, 8, 0), MONDAY + timedelta(days=7), "08:00", "slot_invalid"),  # beyond days_ahead (6)
    (at(MON, 9, 5), MONDAY, "09:00", "slot_past"),
])
def test_booking_hours_and_slot_refusals(centre: Centre, when, slot_day, slot_time, code) -> None:
    slot = slot_of(centre.config, slot_day, slot_time)
    with pytest.raises(QueueError) as refused:
        centre.engine.make_booking("appointment", "ho-tich", "p", when, slot=slot)
    assert refused.value.code == code and refused.value.message and refused.value.message_en


def test_a_slot_that_is_no_slot_of_the_centre_is_refused(centre: Centre) -> None:
    slot = slot_of(centre.config, MONDAY, "13:30") + timedelta(minutes=7)
    with pytest.raises(QueueError) as refused:
        centre.engine.make_booking("appointment", "ho-tich", "p", at(MON, 8), slot=slot)
    assert refused.value.code == "slot_invalid"


def test_limits_per_phone_per_group_and_per_address(centre: Centre) -> None:
    tuesday = MONDAY + timedelta(days=1)
    centre.appointment("p", at(MON, 8, 0), slot_of(centre.config, tuesday, "08:00"), address_key="a1")
    with pytest.raises(QueueError) as refused:  # 1 a group a day
        centre.appointment("p", at(MON, 8, 1), slot_of(centre.config, tuesday, "09:00"))
    assert refused.value.code == "phone_group_limit"
    centre.appointment("p", at(MON, 8, 1), slot_of(centre.config, tuesday, "09:00"), group="chung-thuc")
    with pytest.raises(QueueError) as refused:  # 2 a day
        centre.appointment("p", at(MON, 8, 2), slot_of(centre.config, tuesday, "10:00"), group="dat-dai")
    assert refused.value.code == "phone_day_limit"
    centre.remote("p", at(MON, 8, 3))  # another day: allowed
    for n in range(9):  # 10 a day from one address
        centre.remote(f"q{n}", at(MON, 8, 4), address_key="a1")
    with pytest.raises(QueueError) as refused:
        centre.remote("q-last", at(MON, 8, 5), address_key="a1")
    assert refused.value.code == "address_limit" and refused.value.status == 429
    with pytest.raises(QueueError) as refused:
        centre.remote("r", at(MON, 8, 5), recent_no_shows=2)
    assert refused.value.code == "no_show_limit"


def test_appointments_for_later_days_survive_the_day_opening_and_a_restart(centre: Centre) -> None:
    tuesday = MONDAY + timedelta(days=1)
    slot = slot_of(centre.config, tuesday, "08:00")
    booking = centre.appointment("p", at(MON, 8, 0), slot)
    today_only = centre.appointment("q", at(MON, 8, 0), slot_of(centre.config, MONDAY, "15:00"))
    centre.run(centre.engine.close_day(at(MON, 17, 0)))
    assert centre.engine.bookings[today_only.id].status == "lapsed"  # never came: a no-show at day end
    centre.issue(at(MON + 1, 7, 45))  # opens Tuesday
    assert booking.id in centre.engine.bookings and today_only.id not in centre.engine.bookings
    # A server restarted on Tuesday replays Monday's booking events of later days, then Tuesday's log.
    opened = max(i for i, e in enumerate(centre.events) if e.type == "day.opened")
    carried = [e for e in centre.events[:opened] if e.type.startswith("booking.") and e.data["booking_id"] == booking.id]
    fresh = QueueEngine(centre.config)
    fresh.replay(carried + centre.events[opened:])
    assert full_state(fresh, at(MON + 1, 8)) == full_state(centre.engine, at(MON + 1, 8))
    fresh.check_in_booking(at(MON + 1, 7, 50), code=booking.code)


def test_cancelling_a_remote_number_takes_it_out_of_the_line(centre: Centre) -> None:
    booking = centre.remote("p", at(MON, 8, 0))
    centre.run(centre.engine.cancel_booking(booking.id, at(MON, 8, 1)))
    assert centre.engine.tickets[booking.ticket_id].status == CANCELLED and centre.engine.waiting_count == 0
    with pytest.raises(QueueError) as refused:
        centre.engine.cancel_booking(booking.id, at(MON, 8, 2))
    assert refused.value.code == "booking_closed"


def test_no_phone_code_or_token_in_any_event(centre: Centre) -> None:
    remote = centre.remote("key-of-phone", at(MON, 8, 0))
    appointment = centre.appointment("key-of-phone", at(MON, 8, 0), slot_of(centre.config, MONDAY, "10:00"),
                                     group="chung-thuc")
    text = repr([e.to_dict() for e in centre.events])
    for secret in (remote.code, remote.token, appointment.code, appointment.token):
        assert secret and secret not in text
    assert code_hash(remote.code) in text  # only the hash, to check in with


def test_refused_booking_changes_nothing(centre: Centre) -> None:
    slot = slot_of(centre.config, MONDAY, "10:00")
    centre.appointment("p1", at(MON, 8, 0), slot)
    centre.appointment("p2", at(MON, 8, 0), slot)
    before = full_state(centre.engine, at(MON, 8, 1))
    with pytest.raises(QueueError):
        centre.appointment("p3", at(MON, 8, 1), slot)
    assert full_state(centre.engine, at(MON, 8, 1)) == before


def test_a_remote_ticket_cancelled_by_staff_cancels_its_booking(centre: Centre) -> None:
    booking = centre.remote("p", at(MON, 8, 0))
    centre.run(centre.engine.cancel(booking.ticket_id, at(MON, 8, 1), reason="staff"))
    assert centre.engine.bookings[booking.id].status == "cancelled"
    with pytest.raises(QueueError) as refused:
        centre.engine.check_in_booking(at(MON, 8, 2), booking_id=booking.id)
    assert refused.value.code == "booking_closed"
    centre.check_replay(at(MON, 8, 3))


def test_booking_allowed_answers_without_changing_anything(centre: Centre) -> None:
    slot = slot_of(centre.config, MONDAY, "10:00")
    before, logged = full_state(centre.engine, at(MON, 8, 0)), len(centre.events)
    assert centre.engine.booking_allowed("appointment", "ho-tich", "p", at(MON, 8, 0), slot) == (MONDAY, 1)
    assert full_state(centre.engine, at(MON, 8, 0)) == before and len(centre.events) == logged


def test_a_full_group_refuses_a_remote_number_and_changes_nothing() -> None:
    c = Centre()
    for _ in range(c.config.group("ho-tich").capacity):
        c.issue(at(MON, 8, 0))
    before, logged = full_state(c.engine, at(MON, 8, 1)), len(c.events)
    with pytest.raises(QueueError) as refused:
        c.engine.make_booking("remote", "ho-tich", "p", at(MON, 8, 1))
    assert refused.value.code == "group_full"
    assert full_state(c.engine, at(MON, 8, 1)) == before and len(c.events) == logged


def test_the_booking_rules_default_to_ihanoi_and_the_sample_file_says_so() -> None:
    """iHanoi's online numbers: taken 08:00-16:00, at most 2 a person a day and 1 a field, today
    or up to 6 days ahead; a centre file without ``[booking]`` gets these."""
    from luot.config import BookingSettings, load_config

    ihanoi = {"open_from": "08:00", "open_until": "16:00", "per_phone_day": 2, "per_phone_group_day": 1, "days_ahead": 6}
    defaults = BookingSettings()
    assert {key: getattr(defaults, key) for key in ihanoi} == ihanoi
    sample = load_config().booking
    assert {key: getattr(sample, key) for key in ihanoi} == ihanoi


def test_priority_citizens_keep_their_rules_among_booked_tickets(centre: Centre) -> None:
    """A checked-in remote number and an appointment in its window are ordinary tickets: priority
    walk-ins who came later are called first, up to the counter's run limit, after which the
    earliest booked ticket goes; then the priority run starts again."""
    limit = centre.config.queue.priority_run_limit
    remote = centre.remote("phone-1", at(MON, 8, 0))
    centre.run(centre.engine.check_in_booking(at(MON, 8, 5), booking_id=remote.id))
    appointment = centre.appointment("phone-2", at(MON, 8, 10), slot_of(centre.config, MONDAY, "08:30"))
    centre.run(centre.engine.check_in_booking(at(MON, 8, 30), booking_id=appointment.id))
    elderly = [centre.run(centre.engine.issue("ho-tich", at(MON, 8, 40), priority="elderly")) for _ in range(limit + 1)]
    called = [centre.call(1, at(MON, 9, n)) for n in range(limit + 3)]
    booked = [centre.engine.tickets[remote.ticket_id], centre.engine.tickets[appointment.ticket_id]]
    assert [t.id for t in called] == [t.id for t in elderly[:limit]] + [booked[0].id, elderly[limit].id, booked[1].id]
    centre.check_replay(at(MON, 9, 10))
