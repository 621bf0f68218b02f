"""The staff rules as people see them, in a real headless Chromium against a real centre.

An officer with a one-time password signs in at counter 1, must choose a new password, and lands
at counter 1; pressing N says what happened ("Đã gọi số 1001"); a transfer says where the ticket
went, and the citizen's phone says the number was moved; a counter held by another officer shows
who holds it and refuses the buttons; a manager takes it over with one click.
Screenshots go to $LUOT_SCREENSHOT_DIR (docs/img when refreshing the ones in the docs).
"""

from __future__ import annotations

import re

import httpx
import pytest

from tests.helpers.centre import device_auth, running_centre
from tests.test_web_pages import ARGS, CHROMIUM, DESKTOP, PHONE, axe_check, shots_dir

playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = pytest.mark.asyncio
PASSWORD = "matkhau-123"


@pytest.fixture
async def browser():
    async with playwright_api.async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        await chromium.close()


async def sign_in(page, username: str, password: str, counter: str | None = None) -> None:
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", password)
    if counter is not None:
        await page.select_option("#login-form select[name=counter]", counter)
    await page.click("#login-form button[type=submit]")


async def test_sign_in_at_a_counter_say_what_happened_and_respect_the_holder(tmp_path, browser):
    expect = playwright_api.expect
    async with running_centre(tmp_path) as centre, httpx.AsyncClient(base_url=centre.base_url) as http:
        await centre.accounts.add_user("canbo1", "Cán bộ 1", "officer", "mot-lan-thoi-1", must_change=True)
        await centre.accounts.add_user("canbo2", "Cán bộ 2", "officer", PASSWORD)
        await centre.accounts.add_user("quanly2", "Quản lý", "manager", PASSWORD)
        kiosk = device_auth(centre, "kiosk-1")
        ticket = (await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=kiosk)).json()
        other = (await http.post("/api/v1/login", json={"username": "canbo2", "password": PASSWORD, "counter": 2})).json()
        assert other["counter"] == 2
        shots = shots_dir(tmp_path)

        console = await (await browser.new_context(viewport=DESKTOP)).new_page()
        await console.goto(f"{centre.base_url}/console")
        await expect(console.locator("#login-counter")).to_be_visible()
        await sign_in(console, "canbo1", "mot-lan-thoi-1", counter="1")
        # a one-time password: the change form, nothing else
        await expect(console.locator("#pwchange")).to_be_visible()
        await expect(console.locator("#app")).to_be_hidden()
        await console.screenshot(path=str(shots / "staff-console-password-change-desktop.png"))
        await console.fill("#pw-form input[name=old]", "mot-lan-thoi-1")
        await console.fill("#pw-form input[name=new]", "canbo1")
        await console.fill("#pw-form input[name=again]", "canbo1")
        await console.click("#pw-form button[type=submit]")
        await expect(console.locator("#pw-error")).to_contain_text("ít nhất 10 ký tự")
        for field in ("new", "again"):
            await console.fill(f"#pw-form input[name={field}]", "mat-khau-moi-2")
        await console.click("#pw-form button[type=submit]")
        await expect(console.locator("#app")).to_be_visible()
        # ...and lands at the counter chosen at sign-in, open for them
        await expect(console.locator("#counter")).to_have_value("1")
        await expect(console.locator("#counter-status")).to_contain_text("Đang rảnh")
        await expect(console.locator("#counter-status")).to_contain_text("canbo1")

        await console.locator("body").press("n")
        await expect(console.locator("#last-action")).to_contain_text(f"Đã gọi số {ticket['number']} (Hộ tịch)")
        await console.select_option("#to-counter", "2")
        await console.click("#transfer")
        await expect(console.locator("#last-action")).to_contain_text(f"Đã chuyển số {ticket['number']} sang quầy 2.")
        await console.screenshot(path=str(shots / "staff-console-desktop.png"))
        await axe_check(console, "console")

        phone = await (await browser.new_context(viewport=PHONE, is_mobile=True)).new_page()
        await phone.goto(f"{centre.base_url}/t/{ticket['token']}")
        await expect(phone.locator("#detail")).to_contain_text("Số của bạn đã được chuyển sang quầy 2")
        await phone.screenshot(path=str(shots / "staff-track-moved-phone.png"))

        # counter 2 is canbo2's: whose it is, and no buttons for canbo1
        await console.select_option("#counter", "2")
        await expect(console.locator("#holder")).to_contain_text("Quầy 2 đang do canbo2 phụ trách")
        await expect(console.locator("button[data-action=call-next]")).to_be_disabled()
        await expect(console.locator("#take-over")).to_be_hidden()
        await console.screenshot(path=str(shots / "staff-console-held-desktop.png"))

        manager = await (await browser.new_context(viewport=DESKTOP)).new_page()
        await manager.goto(f"{centre.base_url}/console")
        await sign_in(manager, "quanly2", PASSWORD)
        await expect(manager.locator("#app")).to_be_visible()
        await expect(manager.locator("#counter")).to_have_value("")  # no counter held before: none chosen
        await manager.select_option("#counter", "2")
        await expect(manager.locator("#take-over")).to_be_visible()
        await manager.click("#take-over")
        await expect(manager.locator("#last-action")).to_contain_text("Bạn đã nhận quầy 2.")
        await expect(manager.locator("#holder")).to_be_hidden()
        await expect(console.locator("#holder")).to_contain_text("Quầy 2 đang do quanly2 phụ trách")
        await expect(console.locator("#last-action")).to_contain_text("quanly2 đã giao quầy 2 cho quanly2")


async def test_a_manager_resets_a_password_from_the_dashboard_after_confirming(tmp_path, browser):
    """The dashboard lists the accounts; "Đặt lại mật khẩu" asks first (cancelling changes nothing),
    then shows the one-time password once: the old password and the person's session stop working,
    the one-time one signs in and must be changed. A manager cannot reset their own password here."""
    expect = playwright_api.expect
    async with running_centre(tmp_path) as centre, httpx.AsyncClient(base_url=centre.base_url) as http:
        await centre.accounts.add_user("canbo1", "Cán bộ 1", "officer", PASSWORD)
        await centre.accounts.add_user("quanly2", "Quản lý", "manager", PASSWORD)
        officer = (await http.post("/api/v1/login", json={"username": "canbo1", "password": PASSWORD})).json()
        session = {"Authorization": "Bearer " + officer["token"]}
        http.cookies.clear()
        shots = shots_dir(tmp_path)

        context = await browser.new_context(viewport=DESKTOP)
        page = await context.new_page()
        await page.goto(f"{centre.base_url}/dashboard")
        await sign_in(page, "quanly2", PASSWORD)
        row = page.locator("#staff tr[data-user=canbo1]")
        await expect(row).to_contain_text("Cán bộ 1")
        await expect(row).to_contain_text("Đã đặt")
        await expect(page.locator("#staff tr[data-user=quanly2] button.reset")).to_be_disabled()  # one's own: change it

        await row.locator("button.reset").click()
        await expect(page.locator("#reset-confirm")).to_contain_text("Đặt lại mật khẩu của canbo1 (Cán bộ 1)?")
        resets: list[str] = []
        page.on("request", lambda request: resets.append(request.url) if "reset-password" in request.url else None)
        await page.click("#reset-no")  # cancelled: nothing is sent
        await expect(page.locator("#reset-confirm")).to_be_hidden()
        await page.wait_for_timeout(500)  # a request the click made would have left by now
        assert resets == [] and (await http.get("/api/v1/me", headers=session)).status_code == 200

        await row.locator("button.reset").click()
        await page.click("#reset-yes")
        await expect(page.locator("#reset-result")).to_be_visible()
        await expect(page.locator("#reset-user")).to_have_text("canbo1")
        one_time = (await page.locator("#reset-password").text_content() or "").strip()
        assert re.fullmatch(r"[a-hjkmnp-z2-9]{4}(-[a-hjkmnp-z2-9]{4}){2}", one_time)  # no look-alikes, see accounts
        await expect(row).to_contain_text("Dùng một lần, chờ đổi")
        await page.locator("#reset-result").scroll_into_view_if_needed()
        await page.screenshot(path=str(shots / "staff-dashboard-reset-desktop.png"))
        await axe_check(page, "dashboard with a reset password")

        assert (await http.get("/api/v1/me", headers=session)).status_code == 401  # their session ended
        assert (await http.post("/api/v1/login", json={"username": "canbo1", "password": PASSWORD})).status_code == 401
        again = await http.post("/api/v1/login", json={"username": "canbo1", "password": one_time})
        assert again.status_code == 200 and again.json()["must_change_password"] is True
        http.cookies.clear()  # the tests carry no session cookie (a cookie POST needs the page's origin)

        phone = await (await browser.new_context(viewport=PHONE, is_mobile=True,
                                                 storage_state=await context.storage_state())).new_page()
        await phone.goto(f"{centre.base_url}/dashboard")
        await phone.locator("#staff tr[data-user=canbo1] button.reset").click()
        await expect(phone.locator("#reset-confirm")).to_be_visible()
        await phone.locator("#staff-title").scroll_into_view_if_needed()
        await phone.screenshot(path=str(shots / "staff-dashboard-reset-confirm-phone.png"))
        await phone.click("#reset-yes")
        await expect(phone.locator("#reset-result")).to_be_visible()
        await phone.locator("#reset-result").scroll_into_view_if_needed()
        await phone.screenshot(path=str(shots / "staff-dashboard-reset-phone.png"))
        second = (await phone.locator("#reset-password").text_content() or "").strip()
        assert second != one_time
        last = await http.post("/api/v1/login", json={"username": "canbo1", "password": second})
        assert last.status_code == 200, last.text


async def test_a_suspect_clock_shows_on_the_console_and_a_manager_confirms_it_on_the_dashboard(tmp_path, browser):
    """When the server clock is put back 3 hours after a ticket (docs/architecture.md, "Time and
    commits"), a refused console command shows the refusal at once, read-only ("Báo quản lý");
    the dashboard shows it on load with the server time and the last event, asks first ("Huỷ"
    sends nothing), then confirms: the warning goes and the kiosk issues tickets again."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from tests.helpers.centre import ManualClock

    expect = playwright_api.expect
    clock = ManualClock()
    async with running_centre(tmp_path, clock=clock) as centre, httpx.AsyncClient(base_url=centre.base_url) as http:
        await centre.accounts.add_user("canbo1", "Cán bộ 1", "officer", PASSWORD)
        await centre.accounts.add_user("quanly2", "Quản lý", "manager", PASSWORD)
        kiosk = device_auth(centre, "kiosk-1")
        shots = shots_dir(tmp_path)
        console = await (await browser.new_context(viewport=DESKTOP)).new_page()
        await console.goto(f"{centre.base_url}/console")
        await sign_in(console, "canbo1", PASSWORD)
        await expect(console.locator("#counter-status")).to_be_visible()
        await expect(console.locator("#clock")).to_be_hidden()  # a right clock: no warning

        clock.advance(hours=3)
        assert (await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=kiosk)).status_code == 201
        last = clock.now
        clock.now -= timedelta(hours=3)  # the clock was 3 hours fast and has been put right
        assert (await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=kiosk)).status_code == 409
        zone = ZoneInfo("Asia/Ho_Chi_Minh")
        shown = lambda t: t.astimezone(zone).strftime("%H:%M:%S %d/%m/%Y")  # noqa: E731

        # a refused command: the console says why at once (not at its next 30 s check), read-only
        await console.select_option("#counter", "1")
        await console.click("#open")
        banner = console.locator("#clock")
        await expect(banner).to_contain_text("Đồng hồ máy chủ lùi về trước sự kiện đã ghi")
        await expect(banner).to_contain_text("Báo quản lý xác nhận đồng hồ")
        await expect(banner).to_contain_text("Ask a manager to confirm the clock")
        await expect(banner.locator("[data-clock=last]")).to_have_text(shown(last))
        assert await banner.locator("button").count() == 0
        await expect(console.locator("#error")).to_be_hidden()  # said once, in the clock warning
        await console.screenshot(path=str(shots / "staff-console-clock-desktop.png"))

        page = await (await browser.new_context(viewport=DESKTOP)).new_page()
        await page.goto(f"{centre.base_url}/dashboard")
        await sign_in(page, "quanly2", PASSWORD)
        banner = page.locator("#clock")
        await expect(banner).to_contain_text("Đồng hồ máy chủ lùi về trước sự kiện đã ghi")
        await expect(banner.locator("[data-clock=now]")).to_have_text(shown(clock.now))
        await expect(banner.locator("[data-clock=last]")).to_have_text(shown(last))
        confirms: list[str] = []
        page.on("request", lambda request: confirms.append(request.url) if "confirm-clock" in request.url else None)
        await banner.locator("button.clock-confirm").click()
        await expect(banner.locator(".clock-question")).to_contain_text("với một đồng hồ thật")
        await page.screenshot(path=str(shots / "staff-dashboard-clock-desktop.png"))
        await axe_check(page, "dashboard with a suspect clock")
        await banner.locator("button.clock-no").click()  # cancelled: nothing is sent
        await expect(banner.locator(".clock-question")).to_be_hidden()
        assert confirms == []
        assert (await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=kiosk)).status_code == 409

        await banner.locator("button.clock-confirm").click()
        await banner.locator("button.clock-yes").click()
        await expect(banner).to_be_hidden()
        assert len(confirms) == 1
        # the officer's console hears the confirmation on its live stream: its warning goes at once,
        # not at its next 30-second check
        await expect(console.locator("#clock")).to_be_hidden(timeout=10_000)
        assert (await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=kiosk)).status_code == 201
