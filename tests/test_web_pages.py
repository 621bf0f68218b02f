"""The web pages in a real headless Chromium against a real centre (SQLite file, uvicorn, live SSE).

What a user notices: an officer presses N in the console and, within a second, the citizen's phone
says "Mời bạn đến quầy 3" and the manager's dashboard shows counter 3 calling that number; the
reports page downloads CSV and XLSX files holding the right numbers; no page has a serious or
critical axe-core violation; an unknown ticket link is a plain 404.
Screenshots go to $LUOT_SCREENSHOT_DIR (docs/img when refreshing the ones in the docs).
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

import httpx
import pytest
from openpyxl import load_workbook

from tests.helpers.centre import ManualClock, device_auth, running_centre

playwright_api = pytest.importorskip("playwright.async_api")
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 768}
PASSWORD = "matkhau-123"

pytestmark = [pytest.mark.asyncio, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium")]


def shots_dir(tmp_path: Path) -> Path:
    path = Path(os.environ.get("LUOT_SCREENSHOT_DIR") or tmp_path / "shots")
    path.mkdir(parents=True, exist_ok=True)
    return path


async def sign_in(page, username: str) -> None:
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("#login-form button[type=submit]")
    await page.wait_for_selector("#app:not([hidden])")


async def axe_check(page, name: str) -> None:
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(page)
    bad = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
           for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert not bad, f"{name}: {bad}"


@pytest.fixture
async def browser():
    async with playwright_api.async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        await chromium.close()


async def test_call_next_reaches_phone_and_dashboard_within_a_second(tmp_path, browser):
    expect = playwright_api.expect
    async with running_centre(tmp_path) as centre, httpx.AsyncClient(base_url=centre.base_url) as http:
        await centre.accounts.add_user("canbo1", "Cán bộ 1", "officer", PASSWORD)
        await centre.accounts.add_user("quanly2", "Quản lý", "manager", PASSWORD)
        kiosk = device_auth(centre, "kiosk-1")
        ahead = (await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=kiosk)).json()
        ticket = (await http.post("/api/v1/tickets", json={"group": "chung-thuc"}, headers=kiosk)).json()
        shots = shots_dir(tmp_path)

        phone = await browser.new_context(viewport=PHONE, device_scale_factor=1, is_mobile=True, has_touch=True)
        track = await phone.new_page()
        await track.goto(f"{centre.base_url}/t/{ticket['token']}")
        await expect(track.locator("#number")).to_have_text(str(ticket["number"]))
        await expect(track.locator("#headline")).to_contain_text("chờ")
        await expect(track.locator("#ahead")).to_have_text("1 người")  # ho-tich shares counter 2 with chung-thuc
        # the wait as the server words it: a range in minutes, or a clock time outside opening hours
        await expect(track.locator("#wait")).to_have_text(re.compile(r"^(dưới 5 phút|khoảng \d+-\d+ phút|.*\d\d:\d\d.*)$"))
        await track.screenshot(path=str(shots / "track-waiting-phone.png"))
        await axe_check(track, "tracking page (waiting)")

        officer_ctx = await browser.new_context(viewport=DESKTOP)
        console = await officer_ctx.new_page()
        await console.goto(f"{centre.base_url}/console")
        await sign_in(console, "canbo1")
        await console.select_option("#counter", "3")
        await console.click("#open")
        await expect(console.locator("#counter-status")).to_contain_text("Đang rảnh")
        await expect(console.locator("#waiting")).to_contain_text(str(ticket["number"]))
        assert str(ahead["number"]) not in await console.locator("#waiting").inner_text(), "counter 3 does not serve ho-tich"

        manager_ctx = await browser.new_context(viewport=DESKTOP)
        dashboard = await manager_ctx.new_page()
        await dashboard.goto(f"{centre.base_url}/dashboard")
        await sign_in(dashboard, "quanly2")
        await expect(dashboard.locator("#s-waiting")).to_have_text("2")

        # the officer presses N: the citizen's phone and the dashboard follow within a second
        await console.locator("body").press("n")
        await expect(track.locator("#headline")).to_have_text("Mời bạn đến quầy 3", timeout=1000)
        await expect(dashboard.locator("tr[data-counter='3'] .serving-number")).to_have_text(str(ticket["number"]), timeout=1000)
        await expect(dashboard.locator("tr[data-counter='3']")).to_contain_text("Đang gọi")
        await expect(console.locator("#current-number")).to_have_text(str(ticket["number"]))
        await track.screenshot(path=str(shots / "track-called-phone.png"))
        await axe_check(track, "tracking page (called)")

        # buttons and shortcuts: start by click, attach a dossier, finish with F
        await console.click("button[data-action=start]")
        await expect(track.locator("#headline")).to_contain_text("Đang được phục vụ tại quầy 3")
        await console.fill("#dossier-code", "a b")
        await console.click("#dossier-attach")
        await expect(console.locator("#error")).to_contain_text("Mã hồ sơ chỉ gồm chữ, số")
        await console.fill("#dossier-code", "H26-250101-0001")
        await console.click("#dossier-attach")
        await expect(console.locator("#dossier-info")).to_contain_text("Đã tiếp nhận")
        await expect(track.locator("#dossiers")).to_contain_text("H26-250101-0001")
        await console.locator("body").press("f")
        await expect(track.locator("#headline")).to_contain_text("Đã phục vụ xong")
        await console.select_option("#dossier-status", "ready")
        await console.click("#dossier-update")
        await expect(track.locator("#dossier-list li")).to_have_count(2)
        await expect(track.locator("#dossier-list li.now")).to_contain_text("mời bạn đến nhận")
        await track.screenshot(path=str(shots / "track-dossier-phone.png"), full_page=True)

        # an assistance request pops up in the console
        answer = await http.post("/api/v1/assistance", json={"request_id": "r1", "reason": "guided"}, headers=kiosk)
        assert answer.status_code == 200
        await expect(console.locator("#assist")).to_be_visible(timeout=2000)
        await expect(console.locator("#assist-text")).to_contain_text("kiosk-1")
        await console.screenshot(path=str(shots / "console-desktop.png"))
        await axe_check(console, "console")
        await console.click("#assist-ok")

        # pause with P: the call-next button is refused while paused
        await console.locator("body").press("p")
        await expect(console.locator("#counter-status")).to_contain_text("Tạm dừng")
        await expect(console.locator("button[data-action=call-next]")).to_be_disabled()
        await expect(dashboard.locator("tr[data-counter='3']")).to_contain_text("Tạm dừng")
        await dashboard.screenshot(path=str(shots / "dashboard-desktop.png"), full_page=True)
        await axe_check(dashboard, "dashboard")

        console_phone = await (await browser.new_context(viewport=PHONE, is_mobile=True, storage_state=await officer_ctx.storage_state())).new_page()
        await console_phone.goto(f"{centre.base_url}/console")
        await expect(console_phone.locator("#current-number")).to_be_visible()
        await console_phone.screenshot(path=str(shots / "console-phone.png"))


async def test_reports_page_downloads_csv_and_xlsx_with_the_right_numbers(tmp_path, browser):
    clock = ManualClock()
    async with running_centre(tmp_path, clock=clock) as centre, httpx.AsyncClient(base_url=centre.base_url) as http:
        await centre.accounts.add_user("quanly2", "Quản lý", "manager", PASSWORD)
        await centre.accounts.add_user("canbo1", "Cán bộ 1", "officer", PASSWORD)
        login = await http.post("/api/v1/login", json={"username": "canbo1", "password": PASSWORD})
        officer = {"Authorization": "Bearer " + login.json()["token"]}
        kiosk = device_auth(centre, "kiosk-1")
        for group in ("ho-tich", "ho-tich", "dat-dai"):
            await http.post("/api/v1/tickets", json={"group": group}, headers=kiosk)
        await http.post("/api/v1/counters/1/open", headers=officer)
        clock.advance(minutes=6)
        await http.post("/api/v1/counters/1/call-next", headers=officer)
        await http.post("/api/v1/counters/1/start", headers=officer)
        clock.advance(minutes=9)
        await http.post("/api/v1/counters/1/finish", headers=officer)
        shots = shots_dir(tmp_path)

        context = await browser.new_context(viewport=DESKTOP, accept_downloads=True)
        page = await context.new_page()
        await page.goto(f"{centre.base_url}/reports")
        await sign_in(page, "quanly2")
        await playwright_api.expect(page.locator("#rows")).to_contain_text("Hộ tịch")
        row = page.locator("#rows tr", has_text="Hộ tịch")
        await playwright_api.expect(row).to_contain_text("6")
        await page.screenshot(path=str(shots / "reports-desktop.png"))
        await axe_check(page, "reports")

        async with page.expect_download() as info:
            await page.click("#csv")
        download = await info.value
        raw = Path(await download.path()).read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf"), "UTF-8 BOM so Excel reads Vietnamese"
        # the page's CSV is for Excel on a Vietnamese Windows: ';' between fields, ',' in decimals (docs/ratings.md)
        table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
        assert table[0][:6] == ["Kỳ", "Từ ngày", "Đến ngày", "Đối tượng", "Tên", "Số vé cấp"]
        ho_tich = next(r for r in table[1:] if r[3] == "ho-tich")
        dat_dai = next(r for r in table[1:] if r[3] == "dat-dai")
        decimal = lambda text: float(text.replace(",", "."))  # noqa: E731
        assert ho_tich[5:8] == ["2", "1", "1"] and ho_tich[9] == "6,0" and decimal(ho_tich[11]) == pytest.approx(9)
        assert dat_dai[5:8] == ["1", "0", "0"]

        await page.select_option("select[name=by]", "officer")
        await playwright_api.expect(page.locator("#rows")).to_contain_text("canbo1")
        async with page.expect_download() as info:
            await page.click("#xlsx")
        download = await info.value
        assert download.suggested_filename.endswith(".xlsx")
        sheet = load_workbook(io.BytesIO(Path(await download.path()).read_bytes())).active
        values = list(sheet.iter_rows(values_only=True))
        assert values[1][5] == "Số vé cấp"
        officer_row = next(r for r in values[3:] if r[3] == "canbo1")
        assert officer_row[6:9] == (1, 1, 0) and officer_row[9] == pytest.approx(6) and officer_row[11] == pytest.approx(9)

        phone = await (await browser.new_context(viewport=PHONE, is_mobile=True, storage_state=await context.storage_state())).new_page()
        await phone.goto(f"{centre.base_url}/dashboard")
        await playwright_api.expect(phone.locator("#s-served")).to_have_text("1")
        await phone.screenshot(path=str(shots / "dashboard-phone.png"))
        await axe_check(phone, "dashboard (phone)")


async def test_unknown_ticket_page_is_a_plain_404_that_reveals_nothing(tmp_path, browser):
    async with running_centre(tmp_path) as centre, httpx.AsyncClient(base_url=centre.base_url) as http:
        real = (await http.post("/api/v1/tickets", json={"group": "cu-tru"}, headers=device_auth(centre, "kiosk-1"))).json()
        page = await (await browser.new_context(viewport=PHONE, is_mobile=True)).new_page()
        texts = set()
        for token in ("nothing-here", real["token"][:-3] + "xyz", "Z" * 22):
            response = await page.goto(f"{centre.base_url}/t/{token}")
            assert response.status == 404
            texts.add(await page.content())
            body = await page.locator("body").inner_text()
            assert "Không tìm thấy vé" in body and token not in body and str(real["number"]) not in body
        assert len(texts) == 1
        await page.screenshot(path=str(shots_dir(tmp_path) / "track-unknown-phone.png"))
        await axe_check(page, "unknown ticket page")
        sizes = 0
        for path in ("/t/" + real["token"], "/static/track.css", "/static/track.js"):
            sizes += len((await http.get(path)).content)
        assert sizes < 30_000, f"tracking page is {sizes} bytes"
