"""The manager's pages after issue 18, in a real headless Chromium against a real centre: whole
ticks on the "served per hour" chart, the Decision 766 index, refused ratings and early/late
returns on the dashboard; weeks as "Tuần 49 (…)"; a backwards range clears the old results; and
on a phone (390x844) the status pills stay on one line and report columns keep a readable width.
One centre and one browser for the whole module. Screenshots: $LUOT_SCREENSHOT_DIR or tmp."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from tests.helpers.centre import ManualClock, device_auth, running_centre, staff_auth
from tests.test_ratings_refused_and_returns import results_config
from tests.test_web_pages import ARGS, CHROMIUM, DESKTOP, PHONE, shots_dir

playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = pytest.mark.asyncio


async def manager_page(browser, base_url: str, viewport: dict, path: str, slow_first_report: bool = False):
    """A signed-in manager's page; slow_first_report holds the first day report back 1.5 s, so a filter
    changed meanwhile gets its answer first (the order that once drew stale figures over new ones)."""
    page = await (await browser.new_context(viewport=viewport)).new_page()
    if slow_first_report:
        async def hold_back(route) -> None:
            await asyncio.sleep(1.5)
            await route.continue_()
        await page.route(re.compile(r"/api/v1/reports\?.*period=day"), hold_back)
    await page.goto(f"{base_url}{path}")
    await page.fill("input[name=username]", "quanly")
    await page.fill("input[name=password]", "matkhau-123")
    await page.click("#login-form button[type=submit]")
    await playwright_api.expect(page.locator("#app")).to_be_visible()
    return page


async def download(page, selector: str) -> str:
    """The file a download link points at, fetched with the page's own session, as text."""
    data = await page.evaluate("async (s) => Array.from(new Uint8Array(await (await fetch(document.querySelector(s).href)).arrayBuffer()))",
                               selector)
    return bytes(data).decode("utf-8")


async def test_dashboard_and_reports_read_right_on_desktop_and_phone(tmp_path) -> None:
    expect = playwright_api.expect
    clock = ManualClock()
    async with running_centre(tmp_path, config=results_config(), clock=clock) as centre, \
            httpx.AsyncClient(base_url=centre.base_url) as http, playwright_api.async_playwright() as pw:
        kiosk, officer, pad = device_auth(centre, "kiosk-1"), await staff_auth(centre), device_auth(centre, "pad-1")
        await staff_auth(centre, "quanly", "manager")
        await http.post("/api/v1/counters/1/open", headers=officer)
        for n in range(7):  # seven served in one hour: the old axis read 1.8, 3.5, 5.3 ("7.5 lượt" style)
            ticket = (await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=kiosk)).json()
            for step in ("call-next", "start"):
                await http.post(f"/api/v1/counters/1/{step}", headers=officer)
            if n == 0:
                await http.post(f"/api/v1/tickets/{ticket['id']}/dossier", headers=officer,  # scanned: with its mã TTHC
                                json={"code": "maHoSo=H29-000-0100;maTTHC=1.004227", "appointment": clock().date().isoformat()})
            clock.advance(minutes=5)
            await http.post("/api/v1/counters/1/finish", headers=officer)
            await http.post("/api/v1/feedback", headers=pad, json={"ticket_id": ticket["id"], "rating": 2 if n == 1 else 5,
                                                                    "scale": 5, "reasons": ["wait"] if n == 1 else []})
        again = await http.post("/api/v1/feedback", headers=pad, json={"ticket_id": ticket["id"], "rating": 5, "scale": 5})
        assert again.status_code == 409
        late = await http.post("/api/v1/tickets/return", headers=kiosk, json={"receipt": "maHoSo=H29-000-0100;ngayHenTra=01/01/2026"})
        assert late.status_code == 201
        shots = shots_dir(tmp_path)
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await manager_page(chromium, centre.base_url, DESKTOP, "/dashboard")
            await expect(page.locator("#chart-served svg rect")).to_have_count(1)
            ticks = await page.locator("#chart-served svg text").all_text_contents()
            numbers = [t for t in ticks if re.fullmatch(r"[\d.,]+", t)]
            assert numbers and all(re.fullmatch(r"\d+", t) for t in numbers), numbers
            await expect(page.locator("#s-refused")).to_have_text("1")
            await expect(page.locator("#s-766")).to_have_text("100 %")
            await expect(page.locator("#s-returns")).to_have_text("0 / 0 / 1")
            await page.screenshot(path=str(shots / "dashboard-ratings-desktop.png"), full_page=True)

            # the satisfaction report per procedure (the receipt's mã TTHC), and the CSV's separator chosen
            desk = await manager_page(chromium, centre.base_url, DESKTOP, "/reports")
            await desk.select_option("#s766-by", "procedure")
            await expect(desk.locator("#s766")).to_contain_text("1.004227")
            await expect(desk.locator("#s766")).to_contain_text("(không có mã thủ tục)")
            await desk.screenshot(path=str(shots / "reports-procedure-desktop.png"), full_page=True)
            vietnamese = await download(desk, "#s766-csv")  # the default: Vietnamese Excel
            assert vietnamese.startswith("\ufeffĐối tượng;Tên;") and "1.004227;1.004227;1;" in vietnamese, vietnamese[:200]
            await desk.select_option("#csv-sep", "")
            comma = await download(desk, "#s766-csv")
            assert comma.startswith("\ufeffĐối tượng,Tên,") and "excel=vi" not in await desk.locator("#csv").get_attribute("href")
            await desk.reload()
            await expect(desk.locator("#csv-sep")).to_have_value("")  # remembered on this browser
            assert "excel=vi" not in await desk.locator("#s766-csv").get_attribute("href")

            phone = await manager_page(chromium, centre.base_url, PHONE, "/dashboard")
            await expect(phone.locator("#counters .badge").first).to_be_visible()
            overflow = await phone.evaluate("document.documentElement.scrollWidth")
            assert overflow <= PHONE["width"], f"the page scrolls sideways: {overflow}px"
            for pill in await phone.locator("#counters .badge").all():
                box = await pill.bounding_box()
                assert box and box["height"] < 30 and box["x"] + box["width"] <= PHONE["width"], box  # one line, on screen
            await phone.screenshot(path=str(shots / "dashboard-phone.png"), full_page=True)

            report = await manager_page(chromium, centre.base_url, PHONE, "/reports", slow_first_report=True)
            await expect(report.locator("#rows")).to_contain_text("Đang tải")  # the day view is asked for, held back
            async with report.expect_response(lambda r: "period=day" in r.url):
                await report.select_option("#filter select[name=period]", "week")
                await expect(report.locator("#rows tr").first).to_contain_text("Tuần ")
            await report.evaluate("() => new Promise((done) => setTimeout(done, 300))")  # the late day answer is read
            await expect(report.locator("#rows tr").first).to_contain_text("Tuần ")
            assert "-W" not in await report.locator("#rows").inner_text()
            await report.select_option("#s766-by", "month")
            await expect(report.locator("#s766 tr").first).to_contain_text("Tháng ")
            await expect(report.locator("#refused")).to_contain_text("Đánh giá lần thứ hai")
            widths = await report.locator("#rows").evaluate(
                "b => [...b.closest('table').querySelectorAll('thead th')].map(th => th.getBoundingClientRect().width)")
            assert min(widths) >= 60, f"squeezed report columns on a phone: {widths}"
            await report.screenshot(path=str(shots / "reports-phone.png"), full_page=True)
            # a backwards range: the error, and none of the old figures under it
            await report.fill("#filter input[name=from]", clock().date().isoformat())
            await report.fill("#filter input[name=to]", "2020-01-01")
            await report.click("#filter button[type=submit]")
            await expect(report.locator("#error")).to_be_visible()
            assert "Tuần" not in await report.locator("#rows").inner_text()
            assert "Tháng" not in await report.locator("#s766").inner_text()
            await report.screenshot(path=str(shots / "reports-backwards-phone.png"), full_page=True)
        finally:
            await chromium.close()
