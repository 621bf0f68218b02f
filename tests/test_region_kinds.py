"""The province accepts every kind of event a centre writes.

A kind the region does not know is refused at the catch-up and recorded as a rejection on the
province dashboard, so a centre that takes bookings (or whose manager confirms the clock, or whose
pad sends a refused rating) would look like a misbehaving centre. The engine writes its kinds as
string literals; this reads them from its source so a kind added later is checked too."""

from __future__ import annotations

import re
from pathlib import Path

from region.validate import EVENT_KINDS, parse_logged

ENGINE = Path(__file__).resolve().parents[1] / "server" / "engine.py"


def test_every_kind_the_engine_writes_is_a_kind_the_region_stores() -> None:
    written = set(re.findall(r'"([a-z]+\.[a-z_]+)"', ENGINE.read_text("utf-8")))
    assert {"ticket.issued", "booking.made", "feedback.refused"} <= written  # the scan still finds them
    assert written - EVENT_KINDS == set()


def test_a_logged_booking_reaches_the_region_without_its_private_keys() -> None:
    row = {"seq": 7, "id": "ev-7", "type": "booking.made", "at": "2026-12-07T02:00:00+00:00",
           "data": {"booking_id": "b1", "kind": "remote", "group": "ho-tich", "phone_key": "k" * 64,
                    "address_key": "a" * 64, "code_hash": "c" * 64, "token_hash": "t" * 64, "actor": "citizen"}}
    event = parse_logged("hn-cua-nam", row)
    assert event.kind == "booking.made" and event.data["booking_id"] == "b1"
    assert not {"phone_key", "address_key", "code_hash", "token_hash"} & event.data.keys()
