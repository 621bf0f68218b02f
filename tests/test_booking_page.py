"""The citizen's booking page (/dat-so) in a real headless Chromium at phone size, against a real
centre whose one-time codes go through the notifier into Gammu SMSD's spool: choose a group, take a
number now, confirm the phone with the texted code, get the number, the place in line, the QR and
the tracking link; then an appointment slot, and the refusals in plain words. Screenshots go to
$LUOT_SCREENSHOT_DIR (docs/img/booking-*.png when refreshing the docs)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tests.helpers.centre import ManualClock, device_auth, running_centre
from tests.test_bookings_http import HCM, MONDAY_0830, PHONE, centre_config, code_sent_to
from tests.test_web_pages import ARGS, CHROMIUM, axe_check, shots_dir

playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = [pytest.mark.asyncio, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium")]
PHONE_SIZE = {"width": 390, "height": 844}


async def test_a_citizen_takes_a_number_and_an_appointment_from_the_phone_page(tmp_path: Path) -> None:
    expect = playwright_api.expect
    clock = ManualClock(MONDAY_0830)
    shots = shots_dir(tmp_path)
    seen: dict[Path, str] = {}
    outbox = tmp_path / "gammu" / "spool" / "outbox"
    async with running_centre(tmp_path, centre_config(tmp_path), clock=clock) as centre, \
            httpx.AsyncClient(base_url=centre.base_url) as http, playwright_api.async_playwright() as pw:
        walk_in = (await http.post("/api/v1/tickets", json={"group": "ho-tich"},
                                   headers=device_auth(centre, "kiosk-1"))).json()
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = await browser.new_context(viewport=PHONE_SIZE, device_scale_factor=1, is_mobile=True, has_touch=True)
        page = await context.new_page()
        await page.goto(f"{centre.base_url}/dat-so")
        await expect(page.get_by_role("heading", name="1. Chọn lĩnh vực")).to_be_visible()
        await axe_check(page, "booking page (groups)")
        await page.screenshot(path=str(shots / "booking-1-group.png"), full_page=True)

        await page.get_by_role("button", name="Hộ tịch").click()
        await expect(page.locator("#slots .slot").first).to_contain_text("09:00")  # 08:30 has begun
        await expect(page.locator("#slots .slot").first).to_contain_text("còn 2 chỗ")
        await page.screenshot(path=str(shots / "booking-2-when.png"), full_page=True)

        await page.locator("#now").click()
        await page.fill("#phone", PHONE)
        await page.locator("#send-code").click()
        code = await code_sent_to(outbox, seen)
        await expect(page.locator("#otp")).to_be_visible()
        await page.fill("#otp", "000000" if code != "000000" else "111111")
        await page.locator("#confirm").click()
        await expect(page.locator("#error")).to_contain_text("Mã")  # the wrong code, in the server's words
        await page.screenshot(path=str(shots / "booking-3-wrong-code.png"), full_page=True)
        await page.fill("#otp", code)
        await page.locator("#confirm").click()
        await expect(page.locator("#done-number")).to_have_text(str(walk_in["number"] + 1))
        await expect(page.locator("#done-facts")).to_contain_text("1 người")
        await expect(page.locator("#error")).to_be_hidden()
        await expect(page.locator("#done-code")).to_have_text(re.compile(r"^[A-Z0-9]{4}-[A-Z0-9]{4}$"))
        await page.wait_for_function("document.getElementById('qr').complete && document.getElementById('qr').naturalWidth > 100")
        await axe_check(page, "booking page (done)")
        await page.screenshot(path=str(shots / "booking-4-number.png"), full_page=True)

        # the QR holds the tracking link only, and the kiosk's check-in knows it by the shown code
        token = (await page.get_attribute("#track-link", "href")).rsplit("/", 1)[-1]
        svg = await http.get(f"/dat-so/qr/{token}.svg")
        assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml") and "<path" in svg.text
        assert (await http.get("/dat-so/qr/" + "x" * 22 + ".svg")).status_code == 404
        await page.locator("#track-link").click()
        await expect(page.locator("#number")).to_have_text(str(walk_in["number"] + 1))
        await expect(page.locator("#ahead")).to_have_text("1 người")

        # an appointment tomorrow, with a new code (after the resend gap)
        clock.advance(minutes=2)
        await page.goto(f"{centre.base_url}/dat-so")
        await page.get_by_role("button", name="Chứng thực").click()
        tomorrow = (clock.now + timedelta(days=1)).astimezone(HCM).date()
        await page.locator("#days .day").nth(1).click()
        await expect(page.locator("#days .day").nth(1)).to_have_attribute("aria-pressed", "true")
        await expect(page.locator("#slots .slot").first).to_contain_text("07:30")
        await page.locator("#slots .slot").first.click()
        await expect(page.locator("#chosen-all")).to_contain_text("07:30")
        await page.fill("#phone", PHONE)
        await page.locator("#send-code").click()
        code = await code_sent_to(outbox, seen)
        await page.fill("#otp", code)
        await page.locator("#confirm").click()
        await expect(page.locator("#done-kind")).to_contain_text("Lịch hẹn")
        await expect(page.locator("#done-facts")).to_contain_text(f"{tomorrow.day:02d}/{tomorrow.month:02d}")
        await page.wait_for_function("document.getElementById('qr').naturalWidth > 100")
        await page.screenshot(path=str(shots / "booking-5-appointment.png"), full_page=True)

        # a second number in the same group today: refused in Vietnamese and English, no code used
        clock.advance(minutes=2)
        await page.goto(f"{centre.base_url}/dat-so")
        await page.get_by_role("button", name="Hộ tịch").click()
        await page.locator("#now").click()
        await page.fill("#phone", PHONE)
        await page.locator("#send-code").click()
        code = await code_sent_to(outbox, seen)
        await page.fill("#otp", code)
        await page.locator("#confirm").click()
        await expect(page.locator("#error")).to_contain_text("lĩnh vực")
        await expect(page.locator("#error .en")).not_to_be_empty()
        await expect(page.locator("#step-phone")).to_be_visible()
        await page.screenshot(path=str(shots / "booking-6-refused.png"), full_page=True)
        await browser.close()
