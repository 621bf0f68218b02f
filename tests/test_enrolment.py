"""Devices join with a one-time code and can be thrown out (real Mosquitto, real HTTP, real files).

A kiosk enrols with a code from the manager and then works over MQTT and HTTP with two different
secrets; a used, expired or wrong code is refused in plain words; revoking it (from another
process, ``luot device revoke``) drops its MQTT connection and refuses its HTTP token within 5
seconds, and its retained availability says ``revoked``; a manager-role device reads but changes
nothing; the device's credentials file is readable by its owner only.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from luot.credentials import DEVICE_FILE, DeviceCredentials, DeviceCredentialsError, enrol
from luot.protocol import Topics
from server.devices import CODE_ALPHABET, normalise_code
from tests.helpers.centre import centre_with_broker, device_auth, running_centre, staff_auth
from tests.helpers.mqtt import Probe

pytestmark = pytest.mark.asyncio
ROOT = Path(__file__).resolve().parent.parent


class Watched(Probe):
    """A device client that also records when the broker drops it."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.dropped = threading.Event()
        self.client.on_disconnect = lambda *a: self.dropped.set()


async def until(predicate, timeout: float, what: str) -> float:
    """Poll ``predicate`` (a plain function) until true; return the seconds it took."""
    start = time.monotonic()
    while not await asyncio.to_thread(predicate):
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


async def add_device(centre, http: httpx.AsyncClient, manager: dict, device_id: str, role: str = "kiosk",
                     counter: int | None = None) -> dict:
    answer = await http.post("/api/v1/devices", json={"id": device_id, "role": role, "counter": counter}, headers=manager)
    assert answer.status_code == 200, answer.text
    return answer.json()


def luot(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "luot.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT)})


async def test_a_kiosk_enrols_with_a_code_works_and_is_thrown_out_within_five_seconds(tmp_path):
    async with centre_with_broker(tmp_path, "mosquitto") as (centre, mqtt):
        topics = Topics(centre.config.centre.id)
        async with httpx.AsyncClient(base_url=centre.base_url) as http:
            manager = await staff_auth(centre, "quanly2", "manager")
            added = await add_device(centre, http, manager, "kiosk-9")
            code = added["code"]
            assert len(normalise_code(code)) == 8 and all(c in CODE_ALPHABET for c in normalise_code(code))
            assert added["qr_text"] == f"{centre.base_url} {code}" and added["qr_svg"].lstrip().startswith("<svg")
            assert code not in (tmp_path / "var" / "devices.json").read_text(), "the code is stored hashed"

            # On the kiosk: what `luot kiosk --enrol URL CODE` does first (typed in lower case).
            kiosk_dir = tmp_path / "kiosk"
            identity = await asyncio.to_thread(enrol, centre.base_url, code.lower(), kiosk_dir)
            file = kiosk_dir / DEVICE_FILE
            assert stat.S_IMODE(file.stat().st_mode) == 0o600
            assert DeviceCredentials.load(kiosk_dir) == identity
            assert (identity.device_id, identity.role, identity.mqtt_port) == ("kiosk-9", "kiosk", centre.mqtt_port)
            assert identity.mqtt_password != identity.http_token

            # It issues a ticket over HTTP with its token ...
            kiosk_http = {"Authorization": f"Bearer kiosk-9:{identity.http_token}"}
            ticket = await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=kiosk_http)
            assert ticket.status_code == 201 and ticket.json()["number"] > 0, ticket.text
            # ... and its MQTT password is no key to HTTP, nor its HTTP token to MQTT.
            assert (await http.post("/api/v1/tickets", json={"group": "ho-tich"},
                                    headers={"Authorization": f"Bearer kiosk-9:{identity.mqtt_password}"})).status_code == 401
            wrong = Probe(mqtt, "kiosk-9", identity.http_token)
            assert (await asyncio.to_thread(wrong.connect)).is_failure

            # It connects to MQTT as itself and says it is online (retained), as kiosks do.
            kiosk = Watched(mqtt, identity.mqtt_username, identity.mqtt_password,
                            will=(topics.device_availability("kiosk-9"), b"offline"))
            mqtt.probes.append(kiosk)
            # The broker was told before the enrolment answered; Mosquitto reloads a moment later,
            # and a device's client keeps retrying (paho), as this one does.
            def connected() -> bool:
                return not kiosk.connect().is_failure
            await until(connected, 5.0, "the enrolled kiosk logs in to Mosquitto")
            await asyncio.to_thread(kiosk.publish, topics.device_availability("kiosk-9"), b"online", True)
            other = mqtt.probe("kiosk-2")  # a declared kiosk, which must keep its connection
            other_dropped = threading.Event()
            other.client.on_disconnect = lambda *a: other_dropped.set()

            # The dashboard's list shows it active.
            listed = {d["id"]: d for d in (await http.get("/api/v1/devices", headers=manager)).json()["devices"]}
            assert listed["kiosk-9"]["state"] == "active" and listed["kiosk-9"]["source"] == "enrolled"

            # A stolen kiosk: revoked from another process on the server.
            revoked = await asyncio.to_thread(luot, "device", "revoke", "kiosk-9", "--data", str(tmp_path / "var"))
            assert revoked.returncode == 0, revoked.stderr
            assert json.loads(revoked.stdout)["device"]["state"] == "revoked"
            http_refused = await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=kiosk_http)
            assert http_refused.status_code == 401, "the registry is read on every request"
            took = await until(kiosk.dropped.is_set, 5.0, "Mosquitto dropped the revoked kiosk")
            print(f"revoked kiosk dropped by Mosquitto {took:.2f} s after `luot device revoke` returned")
            assert not other_dropped.is_set(), "only the revoked device is disconnected"
            assert (await asyncio.to_thread(Probe(mqtt, "kiosk-9", identity.mqtt_password).connect)).is_failure

            # Its retained availability says revoked, even after its last will ("offline").
            observer = mqtt.probe("manager-1")
            await asyncio.to_thread(observer.subscribe, topics.device_availability("kiosk-9"))

            def says_revoked() -> bool:
                seen = observer.received(topics.device_availability("kiosk-9"))
                return bool(seen) and seen[-1].payload == b"revoked"
            await until(says_revoked, 5.0, "retained availability 'revoked'")
            listed = {d["id"]: d for d in (await http.get("/api/v1/devices", headers=manager)).json()["devices"]}
            assert listed["kiosk-9"]["state"] == "revoked" and listed["kiosk-9"]["availability"] == "revoked"


async def test_used_expired_wrong_and_guessed_codes_are_refused_in_plain_words(tmp_path):
    async with running_centre(tmp_path, mqtt=True, broker="mosquitto") as centre:
        async with httpx.AsyncClient(base_url=centre.base_url) as http:
            manager = await staff_auth(centre, "quanly2", "manager")
            code = (await add_device(centre, http, manager, "display-9", "display"))["code"]
            first = await http.post("/api/v1/enrol", json={"code": code})
            assert first.status_code == 200
            again = await http.post("/api/v1/enrol", json={"code": code})
            assert again.status_code == 410 and again.json()["error"] == "enrolment_code_used"
            assert "đã được dùng" in again.json()["message"] and "already been used" in again.json()["message_en"]

            # A code made eleven minutes ago has expired (ten minutes).
            registry = centre.registry
            _, old = registry.add("pad-9", "pad", 1, datetime.now(timezone.utc) - timedelta(minutes=11))
            expired = await http.post("/api/v1/enrol", json={"code": old})
            assert expired.status_code == 410 and expired.json()["error"] == "enrolment_code_expired"
            assert "hết hạn" in expired.json()["message"] and "expired" in expired.json()["message_en"]

            # The device side reports the centre's words and writes nothing.
            with pytest.raises(DeviceCredentialsError, match="expired"):
                await asyncio.to_thread(enrol, centre.base_url, old, tmp_path / "pad")
            assert not (tmp_path / "pad" / DEVICE_FILE).exists()
            refused = await asyncio.to_thread(luot, "kiosk", "--enrol", centre.base_url, code, "--data", str(tmp_path / "k"))
            assert refused.returncode == 1 and "đã được dùng" in refused.stderr and "already been used" in refused.stderr

            # Wrong guesses: five per caller a minute, then a plain refusal even for a right code.
            live = (await add_device(centre, http, manager, "kiosk-8"))["code"]
            for _ in range(5):
                wrong = await http.post("/api/v1/enrol", json={"code": "2222-2222"})
                assert wrong.status_code == 400 and wrong.json()["error"] == "enrolment_code_invalid"
            limited = await http.post("/api/v1/enrol", json={"code": live})
            assert limited.status_code == 429 and "quá nhiều" in limited.json()["message"]


async def test_a_manager_screen_reads_but_changes_nothing(tmp_path):
    async with running_centre(tmp_path, mqtt=False) as centre:
        screen = device_auth(centre, "manager-1")
        async with httpx.AsyncClient(base_url=centre.base_url) as http:
            assert (await http.get("/api/v1/events", headers=screen)).status_code == 200
            assert (await http.get("/api/v1/devices", headers=screen)).status_code == 200
            # the tracking page's rating is public: the ticket's unguessable token is the right to rate it
            # so are a citizen's own bookings: the one-time code sent to their phone, or the booking's
            # unguessable token, is the right to make or cancel one
            public = {"/api/v1/login", "/api/v1/logout", "/api/v1/enrol", "/api/v1/track/{token}/feedback",
                      "/api/v1/bookings/code", "/api/v1/bookings", "/api/v1/bookings/by-token/{token}/cancel"}
            checked = []
            # Every route the application documents (OpenAPI), so a route added later is checked too.
            for template, operations in centre.app.openapi()["paths"].items():
                for method in {m.upper() for m in operations} - {"GET", "HEAD", "OPTIONS"}:
                    if template in public:
                        continue
                    path = template
                    for name in re.findall(r"{(\w+)}", template):
                        path = path.replace("{" + name + "}", "open" if name == "action" else "1")
                    answer = await http.request(method, path, json={}, headers=screen)
                    assert answer.status_code in (401, 403), f"{method} {template}: {answer.status_code} {answer.text}"
                    checked.append(f"{method} {template}")
            print("refused to the manager screen:", ", ".join(sorted(checked)))
            assert len(checked) >= 14 and {"POST /api/v1/devices", "POST /api/v1/devices/{device_id}/revoke",
                                           "POST /api/v1/day/close", "POST /api/v1/counters/{number}/{action}"} <= set(checked)
            day = await http.post("/api/v1/day/close", headers=screen)
            assert day.json()["error"] == "read_only_device" and "chỉ được xem" in day.json()["message"]


async def test_mosquitto_reload_drops_exactly_the_clients_whose_user_is_gone(mosquitto_broker):
    """Mosquitto 2.0.11, SIGHUP after the password file lost a user: that client is disconnected at
    once and refused on reconnect; the others keep their connections (server/broker.py apply)."""
    broker = mosquitto_broker
    gone = Watched(broker, "pad-1")
    stays = Watched(broker, "pad-2")
    broker.probes += [gone, stays]
    for probe in (gone, stays):
        assert not (await asyncio.to_thread(probe.connect)).is_failure
    config = broker.config.model_copy(update={"devices": [d for d in broker.config.devices if d.id != "pad-1"]})
    await asyncio.to_thread(asyncio.run, broker.running.apply(config, broker.credentials))
    await until(gone.dropped.is_set, 5.0, "pad-1 disconnected on reload")
    assert not stays.dropped.is_set()
    again = Probe(broker, "pad-1")
    assert (await asyncio.to_thread(again.connect)).is_failure


async def test_amqtt_demo_broker_admits_enrolled_and_refuses_revoked_devices(tmp_path):
    """The embedded broker (demo only) does what it can: a new device logs in, a revoked one can no
    longer log in, publish or receive; it is not disconnected (docs/protocol.md)."""
    async with centre_with_broker(tmp_path, "amqtt") as (centre, mqtt):
        async with httpx.AsyncClient(base_url=centre.base_url, timeout=30) as http:
            manager = await staff_auth(centre, "quanly2", "manager")
            code = (await add_device(centre, http, manager, "kiosk-7"))["code"]
            identity = await asyncio.to_thread(enrol, centre.base_url, code, tmp_path / "kiosk")

            def connects() -> bool:
                probe = Probe(mqtt, "kiosk-7", identity.mqtt_password)
                ok = not probe.connect().is_failure
                probe.close()
                return ok
            await until(connects, 15.0, "the enrolled kiosk logs in to amqtt")
            await http.post("/api/v1/devices/kiosk-7/revoke", headers=manager)
            await until(lambda: not connects(), 15.0, "the revoked kiosk is refused by amqtt")


async def test_luot_display_enrol_joins_runs_and_restarts_without_the_code(tmp_path):
    """The real command: `luot device add` on the server box, `luot display --enrol URL CODE` on the
    screen; the display comes online on MQTT as itself, and starts again later from its saved file."""
    async with centre_with_broker(tmp_path, "mosquitto") as (centre, mqtt):
        topics = Topics(centre.config.centre.id)
        added = await asyncio.to_thread(luot, "device", "add", "display-9", "--role", "display",
                                        "--url", centre.base_url, "--data", str(tmp_path / "var"))
        assert added.returncode == 0, added.stderr
        answer = json.loads(added.stdout)
        assert answer["command"] == f"luot display --enrol {centre.base_url} {answer['code']}"
        observer = mqtt.probe("manager-1")
        await asyncio.to_thread(observer.subscribe, topics.device_availability("display-9"))

        screen_dir = tmp_path / "screen"
        env = {**os.environ, "SDL_VIDEODRIVER": "offscreen", "KIVY_NO_ARGS": "1", "KIVY_NO_FILELOG": "1",
               "KIVY_HOME": str(tmp_path / "kivy"), "PYTHONPATH": str(ROOT)}
        env.pop("DISPLAY", None)

        def start(*extra: str) -> subprocess.Popen:
            return subprocess.Popen([sys.executable, "-m", "luot.cli", "display", "--data", str(screen_dir),
                                     "--no-voice", "--size", "640x360", *extra], cwd=ROOT, env=env,
                                    stdout=subprocess.DEVNULL, stderr=open(tmp_path / "display.log", "ab"))

        def online_since(count: int):
            def online() -> bool:
                seen = observer.received(topics.device_availability("display-9"))
                return len(seen) > count and seen[-1].payload == b"online"
            return online

        for extra in (("--enrol", centre.base_url, answer["code"]), ()):  # then again, from its saved file
            online = online_since(len(observer.received(topics.device_availability("display-9"))))
            display = start(*extra)
            try:
                await until(online, 60.0, f"luot display {' '.join(extra)} online on MQTT")
            finally:
                display.terminate()
                display.wait(20)
        assert stat.S_IMODE((screen_dir / DEVICE_FILE).stat().st_mode) == 0o600
        saved = json.loads((screen_dir / DEVICE_FILE).read_text())
        assert saved["device_id"] == "display-9" and saved["mqtt_port"] == centre.mqtt_port


async def test_luot_kiosk_enrol_leases_numbers_over_http_and_comes_online_on_mqtt(tmp_path):
    """The real `luot kiosk --enrol URL CODE`: with what it received it leases number blocks over
    HTTP (its token) and announces itself on MQTT (its password), both as kiosk-6."""
    async with centre_with_broker(tmp_path, "mosquitto") as (centre, mqtt):
        topics = Topics(centre.config.centre.id)
        async with httpx.AsyncClient(base_url=centre.base_url) as http:
            manager = await staff_auth(centre, "quanly2", "manager")
            code = (await add_device(centre, http, manager, "kiosk-6"))["code"]
            observer = mqtt.probe("manager-1")
            await asyncio.to_thread(observer.subscribe, topics.device_availability("kiosk-6"))
            env = {**os.environ, "SDL_VIDEODRIVER": "offscreen", "KIVY_NO_ARGS": "1", "KIVY_NO_FILELOG": "1",
                   "PYTHONPATH": str(ROOT)}
            env.pop("DISPLAY", None)
            kiosk = subprocess.Popen([sys.executable, "-m", "luot.cli", "kiosk", "--enrol", centre.base_url, code,
                                      "--data", str(tmp_path / "kiosk"), "--no-voice"], cwd=ROOT, env=env,
                                     stdout=subprocess.DEVNULL, stderr=open(tmp_path / "kiosk.log", "ab"))
            try:
                def online() -> bool:
                    seen = observer.received(topics.device_availability("kiosk-6"))
                    return bool(seen) and seen[-1].payload == b"online"
                await until(online, 60.0, "the enrolled kiosk online on MQTT")
                leased: list[dict] = []

                def leases() -> bool:
                    events = httpx.get(f"{centre.base_url}/api/v1/events", headers=manager).json()["events"]
                    leased[:] = [e for e in events if e["type"] == "block.leased"]
                    return bool(leased)
                await until(leases, 60.0, "the enrolled kiosk leased number blocks")
                assert {e["data"]["device"] for e in leased} == {"kiosk-6"}
            finally:
                kiosk.terminate()
                kiosk.wait(20)


async def test_an_enrolled_pad_rates_over_mqtt(tmp_path):
    """The server takes an enrolled pad's rating over MQTT, with its counter from the registry."""
    from luot.protocol import encode

    async with centre_with_broker(tmp_path, "mosquitto") as (centre, mqtt):
        topics = Topics(centre.config.centre.id)
        async with httpx.AsyncClient(base_url=centre.base_url) as http:
            manager = await staff_auth(centre, "quanly2", "manager")
            officer = await staff_auth(centre)
            code = (await add_device(centre, http, manager, "pad-8", "pad", 1))["code"]
            identity = await asyncio.to_thread(enrol, centre.base_url, code, tmp_path / "pad")
            ticket = (await http.post("/api/v1/tickets", json={"group": "ho-tich"},
                                      headers=device_auth(centre, "kiosk-1"))).json()
            for action in ("open", "call-next", "finish"):
                await http.post(f"/api/v1/counters/1/{action}", headers=officer)
            pad = Probe(mqtt, "pad-8", identity.mqtt_password)
            mqtt.probes.append(pad)
            await until(lambda: not pad.connect().is_failure, 5.0, "the enrolled pad logs in")
            await asyncio.to_thread(pad.publish, topics.feedback("pad-8"),
                                    encode("feedback", {"ticket_id": ticket["id"], "rating": 3, "request_id": "p8"}))

            def rated() -> list:
                return httpx.get(f"{centre.base_url}/api/v1/stats/satisfaction", headers=manager).json()["rows"]
            await until(lambda: bool(rated()), 5.0, "the enrolled pad's rating is recorded")
            rows = await asyncio.to_thread(rated)
            assert [(r["counter"], r["ratings"], r["responses"]) for r in rows] == [(1, {"4": 1}, 1)]  # the four-face "hài lòng" (3) is level 4 of 5


CHROMIUM = "/usr/bin/chromium"


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium")
async def test_the_dashboard_adds_a_device_shows_its_code_and_qr_and_revokes_it(tmp_path):
    playwright_api = pytest.importorskip("playwright.async_api")
    expect = playwright_api.expect
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    async with running_centre(tmp_path, mqtt=True, broker="mosquitto") as centre:
        await centre.accounts.add_user("quanly2", "Quản lý", "manager", "matkhau-123")
        async with playwright_api.async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=args)
            page = await (await browser.new_context(viewport={"width": 1366, "height": 768})).new_page()
            page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
            await page.goto(f"{centre.base_url}/dashboard")
            await page.fill("input[name=username]", "quanly2")
            await page.fill("input[name=password]", "matkhau-123")
            await page.click("#login-form button[type=submit]")
            await page.wait_for_selector("#app:not([hidden])")

            await page.fill("#add-id", "pad-9")
            await page.select_option("#add-role", "pad")
            await page.fill("#add-counter", "2")
            await page.click("#add-device button[type=submit]")
            await expect(page.locator("#enrolment")).to_be_visible()
            code = (await page.locator("#enrol-code").inner_text()).strip()
            await expect(page.locator("#enrol-command")).to_have_text(f"luot pad --enrol {centre.base_url} {code}")
            width = await page.locator("#enrol-qr").evaluate("img => img.complete ? img.naturalWidth : 0")
            assert width > 0, "the QR image loads"
            await expect(page.locator("tr[data-device='pad-9']")).to_contain_text("Chờ đăng ký")

            # The code on the screen is the real one: the pad enrols with it.
            identity = await asyncio.to_thread(enrol, centre.base_url, code, tmp_path / "pad")
            assert (identity.device_id, identity.counter) == ("pad-9", 2)
            pad_http = {"Authorization": f"Bearer pad-9:{identity.http_token}"}
            async with httpx.AsyncClient(base_url=centre.base_url) as http:
                assert (await http.get("/api/v1/queue", headers=pad_http)).status_code == 403  # a pad: known, not allowed
                await page.reload()
                await page.wait_for_selector("#app:not([hidden])")
                await page.click("tr[data-device='pad-9'] button.revoke")
                await expect(page.locator("tr[data-device='pad-9']")).to_contain_text("Đã thu hồi")
                assert (await http.get("/api/v1/queue", headers=pad_http)).status_code == 401  # no longer known
            await browser.close()


async def test_codes_registry_and_limits_without_a_server(tmp_path):
    """The registry on its own: code alphabet and typing, a new code voids the old, declared devices
    can be revoked too, the attempt limit forgets after a minute, a damaged file admits nobody."""
    from luot.config import load_config
    from luot.credentials import load_or_create
    from server.devices import AttemptLimiter, DeviceRegistry, RegistryError

    assert len(set(CODE_ALPHABET)) == 32 and not set("ILOU") & set(CODE_ALPHABET)  # 8 symbols = 40 bits
    assert normalise_code(" ab0o-1il2 ") == "AB001112"
    config = load_config()
    credentials = load_or_create(config, tmp_path / "secrets.json")
    registry = DeviceRegistry(config, credentials, tmp_path)
    now = datetime.now(timezone.utc)
    _, first = registry.add("kiosk-5", "kiosk", None, now)
    _, second = registry.add("kiosk-5", "kiosk", None, now)  # asked again: a new code
    with pytest.raises(RegistryError) as refused:
        registry.enrol(first, "a", now)
    assert refused.value.code == "enrolment_code_invalid"
    assert registry.enrol(second.lower(), "a", now).device.state == "active"
    for bad_id, role, counter in (("Kiosk 5", "kiosk", None), ("server", "kiosk", None), ("kiosk-1", "kiosk", None),
                                  ("pad-7", "pad", None), ("pad-7", "pad", 99), ("x", "printer", None)):
        with pytest.raises(RegistryError):
            registry.add(bad_id, role, counter, now)

    assert registry.http_device("kiosk-1", credentials.password("kiosk-1")) is not None
    registry.revoke("kiosk-1", now)
    assert registry.http_device("kiosk-1", credentials.password("kiosk-1")) is None
    assert "kiosk-1" not in {d.id for d in registry.mqtt_config().devices}
    assert "kiosk-5" in {d.id for d in registry.mqtt_config().devices}
    assert stat.S_IMODE((tmp_path / "devices.json").stat().st_mode) == 0o600

    limiter = AttemptLimiter(per_caller=2, total=3)
    for _ in range(2):
        limiter.failed("x", now)
    assert not limiter.allowed("x", now) and limiter.allowed("y", now)
    limiter.failed("y", now)
    assert not limiter.allowed("z", now), "the total limit holds whatever the caller's address"
    assert limiter.allowed("x", now + timedelta(minutes=1))

    (tmp_path / "devices.json").write_text("{not json")
    with pytest.raises(RegistryError) as damaged:
        registry.http_device("kiosk-2", credentials.password("kiosk-2"))
    assert damaged.value.status == 503
