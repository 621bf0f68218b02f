"""The wait a citizen reads, through the real server: the ticket the kiosk gets and the public
tracking view carry the range and the clock time after lunch, and an officer may say how long a
pause lasts. The centre's clock is set to a Monday 11:40 (the sample centre breaks 12:00-13:00)."""

from __future__ import annotations

import math

from datetime import datetime, timedelta

import httpx

from tests.engine_support import HCM
from tests.helpers.centre import device_auth, running_centre, staff_auth


class Clock:
    """A settable clock for the whole centre (the engine takes ``now`` from it)."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


async def test_ticket_and_tracking_views_show_the_range_and_the_time_after_lunch(tmp_path):
    clock = Clock(datetime(2026, 3, 2, 11, 35, tzinfo=HCM))
    async with running_centre(tmp_path, clock=clock) as centre, httpx.AsyncClient(base_url=centre.base_url) as http:
        officer = await staff_auth(centre)
        opened = await http.post("/api/v1/counters/1/open", headers=officer)
        assert opened.status_code == 200, opened.text
        kiosk = device_auth(centre, "kiosk-1")
        tickets = []
        for _ in range(5):
            clock.moment += timedelta(seconds=1)
            answer = await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=kiosk)
            assert answer.status_code == 201, answer.text
            tickets.append(answer.json())
        first, last = tickets[0], tickets[-1]
        assert first["wait_text"] == "dưới 5 phút" and first["wait_minutes"] == 0
        # four ahead at 8 minutes: 25 minutes before noon, 7 after 13:00; told a quarter of the
        # spread later (sqrt(32 x 8) + 0.05 x 32 = 17.6 minutes: 4.4 more)
        assert last["wait_text"] == "sau giờ nghỉ trưa, khoảng 13:11", last
        assert last["wait_text_en"] == "after the lunch break, around 13:11"
        assert last["expected_at"].startswith("2026-03-02T13:11")
        lo, hi = last["wait_range_minutes"]
        assert lo <= last["wait_minutes"] <= hi and last["after_closing"] is False
        token = last["tracking_url"].rsplit("/", 1)[1]
        tracked = (await http.get(f"/api/v1/track/{token}")).json()
        assert tracked["wait_text"] == last["wait_text"] and tracked["wait_range_minutes"] == [lo, hi]

        refused = await http.post("/api/v1/counters/1/pause", json={"minutes": 0}, headers=officer)
        assert refused.status_code in (400, 422)
        paused = await http.post("/api/v1/counters/1/pause", json={"reason": "họp", "minutes": 20}, headers=officer)
        assert paused.status_code == 200, paused.text
        tracked = (await http.get(f"/api/v1/track/{first['tracking_url'].rsplit('/', 1)[1]}")).json()
        # the only counter is back in the 20 minutes its officer said (the walk's mean; told a bit later)
        assert tracked["wait_minutes"] == round(20.0 + 0.25 * (math.sqrt(20.0 * 8) + 0.05 * 20.0), 1)
