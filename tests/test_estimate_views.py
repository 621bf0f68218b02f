"""The wait a citizen reads, through the real server: the ticket the kiosk gets and the public
tracking view carry the range and the clock time after lunch, and an officer may say how long a
pause lasts. The centre's clock is set to a Monday 11:40 (the sample centre breaks 12:00-13:00)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

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
        # four ahead at 8 minutes, called at 11:35, 11:43, 11:51 and 11:59: that service runs into
        # the break and ends during it, so this one is called at 13:00, 25 open minutes from now;
        # told 1.1 spreads later (sqrt(25 x 8) + 0.05 x 25 = 15.4 minutes, under the cap of 16)
        assert last["wait_text"] == "sau giờ nghỉ trưa, khoảng 13:16", last
        assert last["wait_text_en"] == "after the lunch break, around 13:16"
        assert last["expected_at"].startswith("2026-03-02T13:16")
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
        # the only counter is back in the 20 minutes its officer said (11:55); the wait told is 1.1
        # spreads later (sqrt(20 x 8) + 0.05 x 20 = 13.6 minutes, under the cap of 16), which falls
        # past noon: after the lunch break, at 13:10
        shift = 1.1 * min(math.sqrt(20.0 * 8) + 0.05 * 20.0, 16.0)
        assert tracked["wait_minutes"] == round(20.0 + 60.0 + shift, 1) == 95.0
        assert tracked["wait_text"] == "sau giờ nghỉ trưa, khoảng 13:10"


async def test_the_outlook_warns_before_issuing_when_the_call_would_fall_after_closing(tmp_path):
    """What the kiosk asks before issuing: a ticket taken at 16:20 behind eight others at one
    counter would be called after 16:30; nothing is issued by asking."""
    clock = Clock(datetime(2026, 3, 2, 16, 20, tzinfo=HCM))
    async with running_centre(tmp_path, clock=clock) as centre, httpx.AsyncClient(base_url=centre.base_url) as http:
        officer = await staff_auth(centre)
        kiosk = device_auth(centre, "kiosk-1")
        assert (await http.post("/api/v1/counters/1/open", headers=officer)).status_code == 200
        quiet = (await http.get("/api/v1/queue/outlook/ho-tich", headers=kiosk)).json()
        assert quiet["after_closing"] is False and quiet["wait_text"] == "dưới 5 phút"
        for _ in range(8):
            assert (await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=kiosk)).status_code == 201
        outlook = (await http.get("/api/v1/queue/outlook/ho-tich", headers=kiosk)).json()
        assert outlook["after_closing"] is True and outlook["booking_available"] is True  # Tuesday's first slot
        assert (outlook["booking"]["day"], outlook["booking"]["time"]) == ("2026-03-03", "07:30")
        assert outlook["wait_text"].startswith("có thể không kịp trong giờ làm việc hôm nay")
        issued = (await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=kiosk)).json()
        assert issued["after_closing"] is True and issued["wait_text"] == outlook["wait_text"], "asking issued nothing"
        missing = await http.get("/api/v1/queue/outlook/khong-co", headers=kiosk)
        assert missing.status_code == 404 and missing.json()["message_en"] == "There is no procedure group 'khong-co'."
        assert (await http.get("/api/v1/queue/outlook/ho-tich")).status_code == 401


async def test_console_and_dashboard_show_the_tracking_pages_words(tmp_path):
    """The officer's waiting list and the manager's dashboard say what the citizen's phone says."""
    playwright_api = pytest.importorskip("playwright.async_api")
    from tests.test_staff_pages import sign_in
    from tests.test_web_pages import ARGS, CHROMIUM, DESKTOP, shots_dir

    if not Path(CHROMIUM).exists():
        pytest.skip("needs Debian chromium")
    clock = Clock(datetime(2026, 3, 2, 11, 35, tzinfo=HCM))
    async with running_centre(tmp_path, clock=clock) as centre, httpx.AsyncClient(base_url=centre.base_url) as http:
        officer = await staff_auth(centre)
        await centre.accounts.add_user("quanly", "Quản lý", "manager", "matkhau-123")
        kiosk = device_auth(centre, "kiosk-1")
        assert (await http.post("/api/v1/counters/1/open", headers=officer)).status_code == 200
        tickets = []
        for group in ("ho-tich",) * 5 + ("chung-thuc",) * 2:
            clock.moment += timedelta(seconds=1)
            tickets.append((await http.post("/api/v1/tickets", json={"group": group}, headers=kiosk)).json())
        tracked = [(await http.get(f"/api/v1/track/{t['tracking_url'].rsplit('/', 1)[1]}")).json() for t in tickets]
        async with playwright_api.async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            shots = shots_dir(tmp_path)
            page = await (await browser.new_context(viewport=DESKTOP)).new_page()
            await page.goto(f"{centre.base_url}/console")
            await sign_in(page, "canbo1", "matkhau-123", counter="1")
            rows = page.locator("#waiting tr")
            await playwright_api.expect(rows).to_have_count(5)
            words = [await rows.nth(i).locator("td.wait-range").inner_text() for i in range(5)]
            assert words == [t["wait_text"] for t in tracked[:5]]
            assert words[-1].startswith("sau giờ nghỉ trưa, khoảng 13:")
            await page.locator("section[aria-labelledby=waiting-title]").screenshot(
                path=str(shots / "console-wait-range-desktop.png"))

            board = await (await browser.new_context(viewport=DESKTOP)).new_page()
            await board.goto(f"{centre.base_url}/dashboard")
            await sign_in(board, "quanly", "matkhau-123")
            groups = board.locator("#groups tr")
            await playwright_api.expect(groups.first).to_be_visible()
            shown = {await groups.nth(i).locator("th").inner_text(): await groups.nth(i).locator("td.wait-range").inner_text()
                     for i in range(await groups.count())}
            assert shown["Hộ tịch"] == tracked[4]["wait_text"] and shown["Chứng thực"] == tracked[6]["wait_text"]
            assert shown["Đất đai"] == "–"
            await board.screenshot(path=str(shots / "dashboard-wait-range-desktop.png"))
            await browser.close()

