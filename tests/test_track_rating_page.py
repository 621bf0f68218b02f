"""The citizen rates from the phone after service, in a real headless Chromium (issue 18): the
rating appears only once the ticket is served, 'không hài lòng' asks why, the answer reaches the
database once, and a reload says it was already rated."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest

from tests.helpers.centre import device_auth, running_centre, staff_auth
from tests.test_web_pages import ARGS, CHROMIUM, PHONE, axe_check, shots_dir

playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = [pytest.mark.asyncio, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium")]


async def test_tracking_page_offers_the_five_levels_after_service_once(tmp_path):
    expect = playwright_api.expect
    async with running_centre(tmp_path) as centre, httpx.AsyncClient(base_url=centre.base_url) as http, \
            playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        officer = await staff_auth(centre)
        ticket = (await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=device_auth(centre, "kiosk-1"))).json()
        phone = await (await browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)).new_page()
        await phone.goto(f"{centre.base_url}/t/{ticket['token']}")
        await expect(phone.locator("#headline")).to_contain_text("lượt bạn")  # first in line: "Sắp đến lượt bạn"
        assert await phone.locator("#rating").is_hidden(), "no rating before service"
        for step in ("open", "call-next", "start", "finish"):
            assert (await http.post(f"/api/v1/counters/1/{step}", headers=officer)).status_code == 200
        await expect(phone.locator("#headline")).to_contain_text("Đã phục vụ xong")
        await expect(phone.locator("#rating")).to_be_visible()
        await expect(phone.locator("#levels button")).to_have_count(5)
        shots = shots_dir(tmp_path)
        await phone.screenshot(path=str(shots / "track-rating-phone.png"), full_page=True)
        await axe_check(phone, "tracking page (rating)")
        await phone.get_by_role("button", name="Không hài lòng", exact=True).click()
        await expect(phone.locator("#reasons")).to_be_visible()
        await phone.get_by_label("Thời gian chờ đợi").check()
        await phone.screenshot(path=str(shots / "track-rating-reasons-phone.png"), full_page=True)
        await phone.click("#send-rating")
        await expect(phone.locator("#rating-note")).to_contain_text("Cảm ơn")
        await expect(phone.locator("#levels")).to_be_hidden()
        cursor = await centre.service.storage.db.execute("SELECT level, reasons, source, officer FROM feedback")
        assert [tuple(r) for r in await cursor.fetchall()] == [(2, '["wait"]', "track", "canbo1")]
        await phone.reload()
        await expect(phone.locator("#rating-note")).to_contain_text("đã được đánh giá")
        await expect(phone.locator("#levels")).to_be_hidden()
        await browser.close()


async def test_console_reads_a_receipt_qr_typed_by_a_usb_scanner(tmp_path):
    """A USB scanner is a keyboard: it types the QR's text into the dossier field and presses Enter."""
    from tests.test_web_pages import DESKTOP, PASSWORD, sign_in

    expect = playwright_api.expect
    async with running_centre(tmp_path) as centre, httpx.AsyncClient(base_url=centre.base_url) as http, \
            playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        await centre.accounts.add_user("canbo1", "Cán bộ 1", "officer", PASSWORD)
        ticket = (await http.post("/api/v1/tickets", json={"group": "chung-thuc"}, headers=device_auth(centre, "kiosk-1"))).json()
        console = await (await browser.new_context(viewport=DESKTOP)).new_page()
        await console.goto(f"{centre.base_url}/console")
        await sign_in(console, "canbo1")
        await console.select_option("#counter", "3")
        await console.click("#open")
        await expect(console.locator("#counter-status")).to_contain_text("Đang rảnh")  # open before N works
        await expect(console.locator("#waiting")).to_contain_text(str(ticket["number"]))
        await console.locator("body").press("n")
        await expect(console.locator("#current-number")).to_have_text(str(ticket["number"]))
        await console.locator("body").press("d")  # the shortcut puts the cursor in the dossier field
        # the items of Circular 01/2023 (Article 26), one labelled line each: the scanner types each
        # line break as Enter, and the whole QR must reach the server, not its first line
        await console.keyboard.type("Mã hồ sơ: H29-261206-0042\nMã TTHC: 1.001234\nMã định danh: 001085012345\n"
                                    "Ngày hẹn trả kết quả: 20/12/2026\n")
        await expect(console.locator("#dossier-info")).to_contain_text("H29-261206-0042")
        await expect(console.locator("#dossier-info")).to_contain_text("hẹn trả 2026-12-20")
        await expect(console.locator("#dossier-code")).to_have_value("H29-261206-0042")
        await console.locator("#dossier-code").fill("")
        await console.keyboard.type("maHoSo=??;ngayHenTra=x\n")
        await expect(console.locator("#error")).to_contain_text("không có mã hồ sơ hợp lệ")
        stored = await centre.service.storage.dossier("H29-261206-0042")
        assert stored["appointment"] == "2026-12-20" and stored["ticket_id"] == ticket["id"]
        logged = json.dumps(await centre.service.storage.events_after(0, 1000), default=str)
        assert "H29-261206-0042" in logged and "001085012345" not in logged, "the identifier is never stored"
        # the citizen's tracking page follows each dossier to its appointment date; an overdue one in red
        today = centre.service.config.service_day(centre.service.now())
        overdue = (today - timedelta(days=2)).isoformat()
        officer = await staff_auth(centre, "canbo2")
        other = await http.post(f"/api/v1/tickets/{ticket['id']}/dossier", headers=officer,
                                json={"code": "H29-261206-0043", "appointment": overdue})
        assert other.status_code == 200, other.text
        left = (date(2026, 12, 20) - today).days
        words = f"(còn {left} ngày)" if left > 0 else "(hôm nay)" if left == 0 else f"(đã quá hẹn {-left} ngày)"
        phone = await (await browser.new_context(viewport=PHONE, is_mobile=True)).new_page()
        await phone.goto(f"{centre.base_url}/t/{ticket['token']}")
        await expect(phone.locator("#dossier-list .due")).to_have_text([f"Hẹn trả kết quả: 20/12/2026 {words}",
                                                                         f"Hẹn trả kết quả: {today - timedelta(days=2):%d/%m/%Y} (đã quá hẹn 2 ngày)"])
        await expect(phone.locator("#dossier-list .due.late")).to_have_count(1 if left >= 0 else 2)
        await phone.screenshot(path=str(shots_dir(tmp_path) / "track-dossier-appointment-phone.png"), full_page=True)
        await browser.close()
