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

from tests.helpers.centre import ManualClock, device_auth, running_centre, staff_auth
from tests.test_bookings_http import HCM, MONDAY_0830, PHONE, centre_config, code_sent_to
from tests.test_web_pages import ARGS, CHROMIUM, DESKTOP, PASSWORD, axe_check, shots_dir, sign_in

playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = [pytest.mark.asyncio, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium")]
PHONE_SIZE = {"width": 390, "height": 844}


async def confirm_phone(page, outbox: Path, seen: dict[Path, str]) -> None:
    """Type the phone, ask a code, type the code the SMS brought (read from Gammu's outbox), confirm."""
    await page.fill("#phone", PHONE)
    await page.locator("#send-code").click()
    await page.fill("#otp", await code_sent_to(outbox, seen))
    await page.locator("#confirm").click()


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
        remote_code = await page.locator("#done-code").text_content()
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
        await confirm_phone(page, outbox, seen)
        await expect(page.locator("#done-kind")).to_contain_text("Lịch hẹn")
        await expect(page.locator("#done-facts")).to_contain_text(f"{tomorrow.day:02d}/{tomorrow.month:02d}")
        await page.wait_for_function("document.getElementById('qr').naturalWidth > 100")
        await page.screenshot(path=str(shots / "booking-5-appointment.png"), full_page=True)
        await page.locator("#track-link").click()  # no ticket before check-in: the link shows the appointment
        await expect(page.locator(".label")).to_contain_text("Lịch hẹn của bạn")
        await expect(page.locator(".number")).to_have_text("07:30")
        await expect(page.locator(".headline")).to_have_text("Đã đặt lịch")
        await page.screenshot(path=str(shots / "booking-7-appointment-link.png"), full_page=True)

        # a second number in the same group today: refused in Vietnamese and English, no code used
        clock.advance(minutes=2)
        await page.goto(f"{centre.base_url}/dat-so")
        await page.get_by_role("button", name="Hộ tịch").click()
        await page.locator("#now").click()
        await confirm_phone(page, outbox, seen)
        await expect(page.locator("#error")).to_contain_text("lĩnh vực")
        await expect(page.locator("#error .en")).not_to_be_empty()
        await expect(page.locator("#step-phone")).to_be_visible()
        await page.screenshot(path=str(shots / "booking-6-refused.png"), full_page=True)
        await staff_see_the_bookings(centre, http, browser, clock, walk_in, remote_code, shots)

        # after the booking hours the page says so before asking for a phone (the slots stay readable)
        clock.now = MONDAY_0830 + timedelta(hours=8)  # 16:30
        await page.goto(f"{centre.base_url}/dat-so")
        await page.get_by_role("button", name="Hộ tịch").click()
        await expect(page.locator("#now")).to_be_disabled()
        await expect(page.locator("#now-refused")).to_contain_text("16:00")
        await expect(page.locator("#days .day").first).to_be_visible()
        await page.screenshot(path=str(shots / "booking-8-after-hours.png"), full_page=True)
        await browser.close()


async def staff_see_the_bookings(centre, http: httpx.AsyncClient, browser, clock: ManualClock, walk_in: dict,
                                 remote_code: str, shots: Path) -> None:
    """The console marks the remote number and whether it has checked in (and will not call it
    before); the dashboard shows today's appointments per slot and the remote share; the reports
    count each kind with its own mean wait (a booked ticket waits from its check-in)."""
    expect = playwright_api.expect
    remote_number = walk_in["number"] + 1
    officer = await staff_auth(centre)  # canbo1, the console's officer below
    await centre.accounts.add_user("quanly2", "Quản lý", "manager", PASSWORD)
    first_slot = (await http.get("/api/v1/bookings/slots", params={"group": "chung-thuc"})).json()["slots"][0]
    staff_made = await http.post("/api/v1/bookings/staff", headers=officer, json={
        "phone": "0987 654 321", "group": "chung-thuc", "kind": "appointment", "slot": first_slot["slot"]})
    assert staff_made.status_code == 201, staff_made.text

    console = await (await browser.new_context(viewport=DESKTOP)).new_page()
    await console.goto(f"{centre.base_url}/console")
    await console.fill("input[name=username]", "canbo1")
    await console.fill("input[name=password]", PASSWORD)
    await console.select_option("#login-form select[name=counter]", "1")
    await console.click("#login-form button[type=submit]")
    row = console.locator("#waiting tr", has_text=str(remote_number))
    await expect(row.locator(".booking")).to_have_text("☎ Trực tuyến · chưa đến")
    await expect(row.get_by_role("button", name=f"Gọi số {remote_number}")).to_be_disabled()
    walk_in_row = console.locator("#waiting tr", has_text=str(walk_in["number"]))
    await expect(walk_in_row.locator(".booking")).to_have_count(0)

    clock.advance(minutes=3)  # 08:37: the citizen scans the QR at the kiosk
    checked = await http.post("/api/v1/bookings/check-in", json={"code": remote_code}, headers=device_auth(centre, "kiosk-1"))
    assert checked.status_code == 200, checked.text
    await expect(row.locator(".booking")).to_have_text("☎ Trực tuyến · đã đến")
    await expect(row.get_by_role("button", name=f"Gọi số {remote_number}")).to_be_enabled()
    await console.screenshot(path=str(shots / "booking-console-desktop.png"), full_page=True)

    clock.advance(minutes=1)  # the walk-in (issued 08:30) is called at 08:38, the remote number at 08:39
    for step in ("call-next", "start", "finish"):
        assert (await http.post(f"/api/v1/counters/1/{step}", headers=officer)).status_code == 200
    clock.advance(minutes=1)
    called = (await http.post("/api/v1/counters/1/call-next", headers=officer)).json()
    assert called["ticket"]["number"] == remote_number

    manager = await staff_auth(centre, "quanly3", "manager")
    kinds = (await http.get("/api/v1/reports/kinds", headers=manager)).json()
    by_kind = {k["kind"]: k for k in kinds["kinds"]}
    assert kinds["tickets"] == 2 and kinds["remote_share"] == 50.0
    assert (by_kind["walk_in"]["issued"], by_kind["walk_in"]["called"], by_kind["walk_in"]["mean_wait_minutes"]) == (1, 1, 8.0)
    assert (by_kind["remote"]["issued"], by_kind["remote"]["booked"], by_kind["remote"]["checked_in"],
            by_kind["remote"]["mean_wait_minutes"]) == (1, 1, 1, 2.0)  # from check-in, not from home
    assert (by_kind["appointment"]["booked"], by_kind["appointment"]["issued"]) == (1, 0)  # tomorrow's is not today's

    dashboard = await (await browser.new_context(viewport=DESKTOP)).new_page()
    await dashboard.goto(f"{centre.base_url}/dashboard")
    await sign_in(dashboard, "quanly2")
    await expect(dashboard.locator("#s-remote")).to_have_text("50% (1/2)")
    slot_row = dashboard.locator("#slots tr", has_text=first_slot["time"])
    await expect(slot_row).to_contain_text(f"1 / {first_slot['capacity'] * len(centre.config.groups)}")
    await expect(slot_row).to_contain_text("Chứng thực 1")
    await dashboard.screenshot(path=str(shots / "booking-dashboard-desktop.png"), full_page=True)

    reports = await (await browser.new_context(viewport=DESKTOP)).new_page()
    await reports.goto(f"{centre.base_url}/reports")
    await sign_in(reports, "quanly2")
    await expect(reports.locator("#kinds tr[data-kind=remote]")).to_contain_text("Số trực tuyến")
    await expect(reports.locator("#kinds tr[data-kind=remote] td").nth(2)).to_have_text("2")
    await expect(reports.locator("#remote-share")).to_contain_text("50%")
