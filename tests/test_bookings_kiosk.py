"""Tomorrow's appointment booked at the kiosk (issues 15 and 17): the engine offers the next
working day's earliest free slot, books it without a phone, and caps each kiosk per day."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from server.engine import QueueError
from tests.booking_support import full_state, slot_of
from tests.engine_support import at
from tests.test_bookings_engine import MON, MONDAY, Centre

TUESDAY = MONDAY + timedelta(days=1)


def test_the_offer_is_the_next_working_days_earliest_free_slot() -> None:
    c = Centre(slot_capacity=1)
    offer = c.engine.next_day_offer("ho-tich", at(MON, 16, 20))
    assert offer is not None and (offer["day"], offer["time"], offer["left"]) == (TUESDAY.isoformat(), "07:30", 1)
    c.appointment("p1", at(MON, 9), slot_of(c.config, TUESDAY, "07:30"))  # a phone took it
    assert c.engine.next_day_offer("ho-tich", at(MON, 16, 20))["time"] == "08:00"
    # Saturday afternoon: the next working day is Monday (Sunday has no hours)
    saturday = date(2026, 3, 7)
    assert c.engine.next_day_offer("ho-tich", at(7, 11, 0))["day"] == (saturday + timedelta(days=2)).isoformat()
    assert Centre(enabled=False).engine.next_day_offer("ho-tich", at(MON, 16)) is None
    assert Centre(days_ahead=0).engine.next_day_offer("ho-tich", at(MON, 16)) is None
    assert c.engine.next_day_offer("no-such-group", at(MON, 16)) is None


def test_every_slot_of_the_next_day_taken_means_no_offer() -> None:
    c = Centre(slot_capacity=1)
    saturday = date(2026, 3, 7)
    for n, row in enumerate(c.engine.slot_table(saturday, "ho-tich")):
        c.run(c.engine.make_kiosk_booking("ho-tich", f"kiosk-{n}", at(6, 15), datetime.fromisoformat(row["slot"])))
    assert c.engine.next_day_offer("ho-tich", at(6, 15)) is None


def test_a_kiosk_books_without_a_phone_after_the_online_hours_and_checks_in_next_day() -> None:
    c = Centre(per_kiosk_day=2)
    slot = slot_of(c.config, TUESDAY, "07:30")
    booking = c.run(c.engine.make_kiosk_booking("ho-tich", "kiosk-1", at(MON, 16, 20), slot))  # online closes 16:00
    assert (booking.kiosk, booking.phone_key, booking.kind, booking.seat, booking.day) == ("kiosk-1", "", "appointment", 1, TUESDAY)
    made = [e for e in c.events if e.type == "booking.made"][-1]
    assert made.data["kiosk"] == "kiosk-1" and made.data["phone_key"] == ""
    assert c.engine.booking_view(booking)["kiosk"] == "kiosk-1"
    c.check_replay(at(MON, 16, 21))
    c.run(c.engine.close_day(at(MON, 17)))
    checked, _ = c.engine.check_in_booking(at(MON + 1, 7, 20), code=booking.code)
    assert checked.status == "checked_in" and c.engine.tickets[checked.ticket_id].queue_since == slot


def test_the_kiosk_daily_cap_replaces_the_phone_limits_and_refuses_in_plain_words() -> None:
    c = Centre(per_kiosk_day=2, slot_capacity=5)
    slot = slot_of(c.config, TUESDAY, "07:30")
    c.run(c.engine.make_kiosk_booking("ho-tich", "kiosk-1", at(MON, 16), slot))
    c.run(c.engine.make_kiosk_booking("ho-tich", "kiosk-1", at(MON, 16), slot))  # same group, same day: no phone limit
    before, logged = full_state(c.engine, at(MON, 16, 1)), len(c.events)
    with pytest.raises(QueueError) as refused:
        c.engine.make_kiosk_booking("ho-tich", "kiosk-1", at(MON, 16, 1), slot)
    assert refused.value.code == "kiosk_day_limit" and "quầy hướng dẫn" in refused.value.message
    assert "help desk" in refused.value.message_en
    assert full_state(c.engine, at(MON, 16, 1)) == before and len(c.events) == logged  # nothing changed
    c.run(c.engine.make_kiosk_booking("ho-tich", "kiosk-2", at(MON, 16, 1), slot))  # the cap is per kiosk
    assert c.engine.kiosk_bookings_today("kiosk-1", at(MON + 1, 8)) == 0  # and per day
    for kiosk, slot_arg, code in [("", slot, "kiosk_unknown"), ("kiosk-3", None, "slot_invalid"),
                                  ("kiosk-3", slot_of(c.config, MONDAY, "08:00"), "slot_past")]:
        with pytest.raises(QueueError) as refused:
            c.engine.make_kiosk_booking("ho-tich", kiosk, at(MON, 16, 1), slot_arg)
        assert refused.value.code == code and refused.value.message and refused.value.message_en
    with pytest.raises(QueueError) as refused:
        Centre(enabled=False).engine.make_kiosk_booking("ho-tich", "kiosk-1", at(MON, 16), slot)
    assert refused.value.code == "booking_disabled"


async def test_the_outlook_offers_it_and_only_a_kiosk_books_it_over_http(tmp_path) -> None:
    """On a real centre at 16:20 on a Monday: the outlook offers Tuesday 07:30; kiosk-1 books it
    (the row is stored without a phone, the event names the kiosk); its cap of one is then reached,
    so its outlook offers nothing and a second booking is refused; an officer cannot use the route."""
    import httpx

    from tests.helpers.centre import ManualClock, device_auth, running_centre, staff_auth
    from tests.test_bookings_http import centre_config

    config = centre_config(tmp_path, per_kiosk_day=1)
    async with running_centre(tmp_path, config, clock=ManualClock(at(MON, 16, 20))) as runtime:
        kiosk, other = device_auth(runtime, "kiosk-1"), device_auth(runtime, "kiosk-2")
        officer = await staff_auth(runtime)
        async with httpx.AsyncClient(base_url=runtime.base_url) as http:
            outlook = (await http.get("/api/v1/queue/outlook/ho-tich", headers=kiosk)).json()
            assert outlook["booking_available"] is True
            offer = outlook["booking"]
            assert (offer["day"], offer["time"], offer["group"]) == ("2026-03-03", "07:30", "ho-tich")
            refused = await http.post("/api/v1/bookings/kiosk", json={"group": "ho-tich", "slot": offer["slot"]}, headers=officer)
            assert refused.status_code == 403
            made = await http.post("/api/v1/bookings/kiosk", json={"group": "ho-tich", "slot": offer["slot"]}, headers=kiosk)
            assert made.status_code == 201, made.text
            slip = made.json()
            assert slip["kiosk"] == "kiosk-1" and slip["slot_time"] == "07:30" and slip["day"] == "2026-03-03"
            assert slip["checkin_from"] == "07:00"
            assert len(slip["code"]) == 8 and slip["tracking_url"].endswith("/t/" + slip["token"])
            assert (await http.get("/api/v1/queue/outlook/ho-tich", headers=kiosk)).json()["booking_available"] is False
            assert (await http.get("/api/v1/queue/outlook/ho-tich", headers=other)).json()["booking_available"] is True
            again = await http.post("/api/v1/bookings/kiosk", json={"group": "ho-tich", "slot": offer["slot"]}, headers=kiosk)
            assert again.status_code == 409 and again.json()["error"] == "kiosk_day_limit"
            assert again.json()["message"] and again.json()["message_en"]
            public = (await http.get(f"/api/v1/bookings/by-token/{slip['token']}")).json()
            assert public["status"] == "booked" and public["kiosk"] == "kiosk-1"
        rows = await runtime.storage.bookings_of_day("2026-03-03")
        assert [(r["id"], r["status"]) for r in rows] == [(slip["id"], "booked")]
        made_events = [e for e in await runtime.storage.events_after(0, 1000) if e["type"] == "booking.made"]
        assert [(e["data"]["actor"], e["data"]["kiosk"], e["data"]["phone_key"]) for e in made_events] == [("kiosk-1", "kiosk-1", "")]
