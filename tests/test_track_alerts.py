"""The tracking page's own alerts in a real headless Chromium: after the citizen opts in, the page
shows a browser notification and plays a WebAudio sound once when k or fewer are ahead, and again
when the number is called. The init script records what the page asks of the browser (its
Notification, oscillator and vibration calls), the real objects still run. On a plain-http LAN
address (not a secure context) the page says why there are no notifications, and still beeps."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.helpers.centre import device_auth, running_centre, staff_auth
from tests.test_web_pages import ARGS, CHROMIUM, PHONE, shots_dir

playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = [pytest.mark.asyncio, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium")]

RECORD = """
window.__shown = []; window.__beeps = 0; window.__buzzes = 0;
(function () {
  var vibrate = navigator.vibrate;
  navigator.vibrate = function () { window.__buzzes += 1; return vibrate.apply(navigator, arguments); };
  var Real = window.Notification;
  function Recorded(title, options) { window.__shown.push({ title: title, body: (options || {}).body }); return new Real(title, options); }
  Object.defineProperty(Recorded, "permission", { get: function () { return Real.permission; } });
  Recorded.requestPermission = function () { return Real.requestPermission.apply(Real, arguments); };
  window.Notification = Recorded;
  var make = AudioContext.prototype.createOscillator;
  AudioContext.prototype.createOscillator = function () { window.__beeps += 1; return make.apply(this, arguments); };
})();
"""


async def test_the_page_alerts_once_when_near_and_when_called(tmp_path: Path) -> None:
    expect = playwright_api.expect
    async with running_centre(tmp_path) as centre, httpx.AsyncClient(base_url=centre.base_url) as http, \
            playwright_api.async_playwright() as pw:
        near = centre.config.notify.near_ahead  # 3 in the sample centre
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        officer = await staff_auth(centre)
        kiosk = device_auth(centre, "kiosk-1")
        tickets = [(await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=kiosk)).json() for _ in range(near + 2)]
        mine = tickets[-1]  # near + 1 people ahead
        context = await browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
        await context.grant_permissions(["notifications"], origin=centre.base_url)
        await context.add_init_script(RECORD)
        phone = await context.new_page()
        await phone.goto(f"{centre.base_url}/t/{mine['token']}")
        await expect(phone.locator("#ahead")).to_have_text(f"{near + 1} người")
        await phone.get_by_role("button", name="Báo cho tôi khi sắp đến lượt").click()
        await expect(phone.locator("#alert-note")).to_contain_text(f"còn {near} người")
        assert await phone.evaluate("window.__shown.length") == 0

        assert (await http.post("/api/v1/counters/1/open", headers=officer)).status_code == 200
        for step in ("call-next", "start"):  # the first in line is called: `near` people are ahead now
            assert (await http.post(f"/api/v1/counters/1/{step}", headers=officer)).status_code == 200
        await expect(phone.locator("#ahead")).to_have_text(f"{near} người")
        await phone.wait_for_function("window.__shown.length === 1")
        shown = await phone.evaluate("window.__shown")
        assert shown[0]["title"] == "Sắp đến lượt bạn" and f"Còn {near} người trước bạn (số {mine['number']})" in shown[0]["body"]
        beeps_after_near = await phone.evaluate("window.__beeps")
        assert beeps_after_near == 3

        for _ in range(near - 1):  # fewer ahead still: no second "near" alert
            for step in ("call-next", "start"):
                assert (await http.post(f"/api/v1/counters/1/{step}", headers=officer)).status_code == 200
        await expect(phone.locator("#ahead")).to_have_text("1 người")
        assert (await http.post("/api/v1/counters/1/call-next", headers=officer)).status_code == 200
        assert (await http.post("/api/v1/counters/1/start", headers=officer)).status_code == 200
        await expect(phone.locator("#ahead")).to_have_text("0 người")
        assert (await http.post("/api/v1/counters/1/call-next", headers=officer)).status_code == 200  # its turn
        await expect(phone.locator("#headline")).to_have_text("Mời bạn đến quầy 1")
        await phone.wait_for_function("window.__shown.length === 2")
        shown = await phone.evaluate("window.__shown")
        assert [s["title"] for s in shown] == ["Sắp đến lượt bạn", "Mời bạn đến quầy 1"]
        assert await phone.evaluate("window.__beeps") == beeps_after_near + 3
        await phone.screenshot(path=str(shots_dir(tmp_path) / "track-alert-called-phone.png"), full_page=True)
        await browser.close()


LAN_NAME = "luot-centre.lan"
"""A name for the centre as a phone on its LAN would reach it: plain http to a host that is not this
computer, so not a secure context (Chromium resolves it to the test server, 127.0.0.1)."""


async def test_on_a_plain_http_lan_page_it_says_notifications_need_https_and_still_beeps(tmp_path: Path) -> None:
    expect = playwright_api.expect
    async with running_centre(tmp_path) as centre, httpx.AsyncClient(base_url=centre.base_url) as http, \
            playwright_api.async_playwright() as pw:
        near = centre.config.notify.near_ahead
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, f"--host-resolver-rules=MAP {LAN_NAME} 127.0.0.1"])
        officer = await staff_auth(centre)
        kiosk = device_auth(centre, "kiosk-1")
        tickets = [(await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=kiosk)).json() for _ in range(near + 2)]
        mine = tickets[-1]  # near + 1 people ahead
        lan_url = f"http://{LAN_NAME}:{centre.http_port}"
        context = await browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
        # (Chromium refuses even to grant the notification permission to such a page: "Permission can't be granted in current context".)
        await context.add_init_script(RECORD)
        phone = await context.new_page()
        await phone.goto(f"{lan_url}/t/{mine['token']}")
        assert await phone.evaluate("window.isSecureContext") is False
        await expect(phone.locator("#ahead")).to_have_text(f"{near + 1} người")
        await phone.get_by_role("button", name="Báo cho tôi khi sắp đến lượt").click()
        note = phone.locator("#alert-note")
        await expect(note).to_contain_text("kết nối bảo mật (https)")
        await expect(note).to_contain_text("âm báo và rung vẫn hoạt động")
        await expect(note).to_contain_text("Notifications need a secure https page")
        assert "chặn" not in await note.inner_text() and "blocked" not in await note.inner_text()

        assert (await http.post("/api/v1/counters/1/open", headers=officer)).status_code == 200
        for step in ("call-next", "start"):  # `near` people ahead now: the page beeps and vibrates
            assert (await http.post(f"/api/v1/counters/1/{step}", headers=officer)).status_code == 200
        await expect(phone.locator("#ahead")).to_have_text(f"{near} người")
        await phone.wait_for_function("window.__beeps === 3 && window.__buzzes === 1")
        assert await phone.evaluate("window.__shown.length") == 0
        await phone.screenshot(path=str(shots_dir(tmp_path) / "track-alert-plain-http-phone.png"), full_page=True)
        await browser.close()
