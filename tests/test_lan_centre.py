"""The proof: a centre across machines, on a LAN built from network namespaces.

Five boxes on one switch (tests/helpers/lan.py), addresses 10.77.0.0/24 that exist only inside
them, no route out: the server (``luot server``, its Mosquitto on the LAN address), a kiosk (the
real Kivy kiosk, offscreen, tapped), a hall display (the real Kivy display, offscreen, with its
announcer), a counter PC and a phone (headless Chromium each). What a user would notice:

1. the kiosk and the display get their identities and come online;
2. a visitor takes a ticket; the printed ticket's QR code holds a link the phone opens over the LAN;
3. the officer at the counter PC calls it: the phone says "Mời bạn đến quầy 1", the hall screen
   shows it and the announcer renders the call to a WAV;
4. the kiosk's cable is out for a minute: it still issues a ticket (offline); back on the LAN it
   hands it over, once, with a number nobody else has;
5. the display is revoked: within 5 s it is off the broker and cannot come back;
6. the server is killed with -9 and started again: same ports, every acknowledged ticket there.

Each step's wall-clock time is printed (``pytest -s``). Runs as root (CI); skipped otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.helpers.lan import (ROOT, CentreServer, Lan, LineDriver, Timings, centre_file, clean_env,
                               Watch, brokers_of, enrol_device, http, lan_unavailable, revoke_device,
                               wait_for)

CHROMIUM = "/usr/bin/chromium"
HTTP_PORT, MQTT_PORT = 8080, 18830  # fixed: the restarted server must come back on the same ones
PASSWORD = "matkhau-123"
COUNTER = 1  # serves ho-tich, the kiosk's first group
CUT_SECONDS = float(os.environ.get("LUOT_LAN_CUT_SECONDS", "60"))  # the issue asks for a minute; shorter only to debug

why_not = lan_unavailable() or (None if Path(CHROMIUM).exists() else "needs Debian's chromium") \
    or (None if shutil.which("soxi") else "needs sox (soxi)")
# A minute of the drill is the cable cut; on a loaded 2-core machine the rest took up to 3 minutes.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600), pytest.mark.skipif(why_not is not None, reason=why_not or "")]


def qr_link(png: str) -> str:
    """What a phone camera reads from the printed ticket."""
    import zxingcpp
    from PIL import Image

    found = zxingcpp.read_barcodes(Image.open(png))
    assert len(found) == 1, f"{png}: {len(found)} codes"
    return found[0].text


def wav_seconds(path: str) -> float:
    return float(subprocess.run(["soxi", "-D", path], capture_output=True, text=True, check=True).stdout)


def test_a_centre_across_machines(tmp_path: Path) -> None:
    clock = Timings()
    drivers: list[LineDriver] = []
    try:
        with Lan() as lan:
            _drill(lan, tmp_path, clock, drivers)
    finally:
        for driver in drivers:  # already ended by Lan.close(); close() only reaps
            driver.close()
        print("\nLAN centre drill, step timings:\n" + clock.table(), flush=True)


def _drill(lan: Lan, tmp: Path, clock: Timings, drivers: list[LineDriver]) -> None:
    srv, kiosk_box, hall = lan.add_box("srv", 10), lan.add_box("kiosk", 21), lan.add_box("hall", 31)
    counter_pc, phone_box = lan.add_box("counter", 41), lan.add_box("phone", 51)
    for box in (kiosk_box, hall, counter_pc, phone_box):
        assert box.run(["ip", "route", "show", "default"]).stdout.strip() == "", f"{box.name} has a way out"
    clock.step("LAN: switch and 5 boxes")

    config = centre_file(ROOT / "assets" / "centre.sample.toml", tmp / "centre.toml", srv.ip, HTTP_PORT, MQTT_PORT)
    server = CentreServer(srv, config, tmp / "srv", HTTP_PORT, MQTT_PORT).start(new=True)
    assert http(phone_box, "GET", server.url + "/health").json()["mqtt"], "the phone reaches the server"
    clock.step("server up (HTTP and its broker on the LAN address)")
    server.luot("user", "add", "canbo1", "--role", "officer", "--password", PASSWORD, "--permanent",
                "--config", str(config), "--data", str(server.data))  # the first-login change is tested in test_staff
    doctor = srv.run([sys.executable, "-m", "luot.cli", "doctor", "--config", str(config), "--data", str(server.data), "--json"])
    checks = {c["key"]: c for c in json.loads(doctor.stdout)["checks"]}
    failed = {k: c["message_en"] for k, c in checks.items() if c["status"] == "fail"}
    assert doctor.returncode == 0 and not failed, f"luot doctor on the server box: {failed}"
    assert checks["http"]["status"] == "ok" and checks["broker"]["status"] == "ok", checks
    clock.step("luot doctor: no failure (" + ", ".join(f"{k} {c['status']}" for k, c in checks.items()) + ")")

    # ---- 1. enrolment: each device gets its own identity, then starts
    kiosk_id = enrol_device(server, kiosk_box, "kiosk", tmp / "kiosk")
    hall_id = enrol_device(server, hall, "display", tmp / "hall")
    kiosk_data, hall_data = kiosk_id.data, hall_id.data
    clock.step("kiosk and display enrolled")
    kiosk = LineDriver(kiosk_box, "tests.helpers.lan_kiosk",
                       {"server": server.url, "device": kiosk_id.device_id, "secret": kiosk_id.http_secret,
                        "data": str(kiosk_data), "config": str(kiosk_data / "centre.toml")}, tmp / "kiosk.log",
                       env=clean_env(LUOT_KIOSK_WIDTH="540", LUOT_KIOSK_HEIGHT="960"))  # portrait, scaled down
    drivers.append(kiosk)
    display = LineDriver(hall, "tests.helpers.display_driver",
                         {"data_dir": str(hall_data), "config": str(hall_data / "centre.toml"), "device": hall_id.device_id,
                          "secret": hall_id.mqtt_secret, "host": hall_id.mqtt_host, "port": hall_id.mqtt_port,
                          "size": [960, 540]},  # smaller than a TV: llvmpipe draws it on a shared CPU
                         tmp / "hall.log", env=clean_env(SDL_VIDEODRIVER="offscreen", KIVY_NO_ARGS="1",
                                                         KIVY_HOME=str(hall_data / "kivy"), KIVY_NO_FILELOG="1",
                                                         KIVY_LOG_MODE="PYTHON"))
    drivers.append(display)
    phone = LineDriver(phone_box, "tests.helpers.lan_browser", {"viewport": [390, 844], "mobile": True}, tmp / "phone.log")
    officer = LineDriver(counter_pc, "tests.helpers.lan_browser", {"viewport": [1366, 768]}, tmp / "counter.log")
    drivers += [phone, officer]
    kiosk.wait_until("state", lambda s: s["online"], 60, "the kiosk online")
    display.wait_until("describe", lambda s: s["connected"] and s["server_online"], 60, "the display on the broker")
    clock.step("kiosk, display, phone and counter PC programs started")

    # ---- 2. a ticket, its QR code, the phone
    first = kiosk.command("ticket", timeout=60)
    assert not first["offline"] and first["shown"] == str(first["number"]) and first["png"], first
    link = qr_link(first["png"])
    assert link == first["tracking_url"] and link.startswith(server.url + "/t/"), link
    clock.step(f"ticket {first['number']} issued on the kiosk, QR decoded")
    phone.command("goto", url=link)
    phone.wait_until("text", lambda a: a["text"] == str(first["number"]), 15, "the number on the phone", selector="#number")
    clock.step("the phone opened the ticket link over the LAN")

    # ---- 3. the officer calls it
    officer.command("goto", url=server.url + "/console")
    officer.command("fill", selector="input[name=username]", value="canbo1")
    officer.command("fill", selector="input[name=password]", value=PASSWORD)
    officer.command("click", selector="#login-form button[type=submit]")
    officer.command("wait", selector="#app:not([hidden])")
    officer.command("select", selector="#counter", value=str(COUNTER))
    officer.command("click", selector="#open")
    officer.wait_until("text", lambda a: "Đang rảnh" in a["text"], 15, "the counter open", selector="#counter-status")
    officer.wait_until("text", lambda a: str(first["number"]) in a["text"], 15, "the ticket in the waiting list",
                       selector="#waiting")
    pressed = time.monotonic()
    officer.command("click", selector="button[data-action=call-next]")  # waits until the console enables it
    phone.wait_until("text", lambda a: a["text"] == f"Mời bạn đến quầy {COUNTER}", 15, "the call on the phone",
                     selector="#headline")
    clock.step(f"officer called it: phone shows the call ({time.monotonic() - pressed:.2f} s after the click)")
    shown = display.wait_until(
        "describe", lambda s: s["tiles"].get(str(COUNTER), {}).get("number") == str(first["number"])
        and any(a["number"] == first["number"] and a["wav"] for a in s["announced"]), 30, "the call on the hall display")
    spoken = next(a for a in shown["announced"] if a["number"] == first["number"])
    assert f"quầy số {'một'}" in spoken["text"], spoken["text"]
    seconds = wav_seconds(spoken["wav"])
    assert 3.0 < seconds < 15.0, f"{spoken['wav']} lasts {seconds} s"
    clock.step(f"hall display shows it, announcer rendered {seconds:.1f} s of speech")

    # ---- 4. the kiosk's cable is out for a minute
    cut = time.monotonic()
    kiosk_box.cable(False)
    offline = kiosk.command("ticket", timeout=60)
    assert offline["offline"] and offline["offline_notice"], offline
    assert qr_link(offline["png"]) == offline["tracking_url"]
    state = kiosk.command("state")
    assert not state["online"] and state["pending"] == [offline["number"]], state
    clock.step(f"cable out: offline ticket {offline['number']} issued and printed")
    # ---- 5. meanwhile (the cut is a minute of waiting) the manager revokes the hall display
    assert hall.connections(srv.ip, MQTT_PORT) == 1, "the display is on the broker before"
    off = Watch(lambda: hall.connections(srv.ip, MQTT_PORT) == 0)
    revoke_device(server, hall_id.device_id)
    out_after = off.after(30)
    assert out_after <= 5.0, f"the revoked display was still connected {out_after:.1f} s later"
    refused = http(hall, "GET", server.url + "/api/v1/queue", headers=hall_id.headers)
    assert refused.status_code in (401, 403), refused.text
    time.sleep(3.0)  # it keeps trying (1 s back-off, each try refused at once): it must not get back on
    wait_for(lambda: hall.connections(srv.ip, MQTT_PORT) == 0, 5, "the revoked display off the broker, 3 s on")
    display.wait_until("describe", lambda s: s["badge"].startswith("Mất kết nối"), 120, "the connection-lost badge",
                       answer_timeout=60)  # a busy CPU slows the display's redraw, not what it shows
    clock.step(f"display revoked: off the broker {out_after:.1f} s after the command, refused since")
    time.sleep(max(0.0, CUT_SECONDS - (time.monotonic() - cut)))
    kiosk_box.cable(True)
    clock.step(f"cable back after {time.monotonic() - cut:.0f} s")
    kiosk.wait_until("state", lambda s: s["online"] and not s["pending"], 30, "the offline ticket handed over")
    clock.step("kiosk back online, outbox empty")
    after = kiosk.command("ticket", timeout=60)
    assert not after["offline"]
    manager = manager_headers(server, counter_pc)
    issued = issued_numbers(server, counter_pc, manager)
    assert not [n for n, c in Counter(issued).items() if c > 1], f"a number issued twice: {issued}"
    assert sorted(issued) == sorted([first["number"], offline["number"], after["number"]]), issued
    phone.command("goto", url=qr_link(offline["png"]))  # the offline ticket's link works once synced
    phone.wait_until("text", lambda a: a["text"] == str(offline["number"]), 15, "the offline ticket on the phone",
                     selector="#number")
    clock.step("synced: 3 tickets, no duplicate; the offline ticket's link opens")

    # ---- 5. with the display revoked (during the cut), the next call reaches the phone, not it
    officer.command("goto", url=server.url + "/console")  # the officer's session survived the restart
    officer.command("wait", selector="#app:not([hidden])")
    officer.command("select", selector="#counter", value=str(COUNTER))
    officer.wait_until("text", lambda a: str(offline["number"]) in a["text"], 15, "the offline ticket waiting",
                       selector="#waiting")
    officer.command("click", selector="button[data-action=start]")  # serve the first ticket; calling the next finishes it
    officer.command("click", selector="button[data-action=call-next]")
    phone.wait_until("text", lambda a: a["text"] == f"Mời bạn đến quầy {COUNTER}", 15, "the offline ticket called",
                     selector="#headline")
    time.sleep(3.0)  # what the revoked display would have needed to show it
    hall_now = display.command("describe", timeout=60)
    assert not hall_now["connected"] and hall_now["tiles"][str(COUNTER)]["number"] == str(first["number"]), \
        f"a revoked display still follows the calls: {hall_now['tiles'][str(COUNTER)]}"
    clock.step("next call reached the phone, not the revoked display")

    # ---- 6. kill -9 the server
    acknowledged = {t["token"]: t["number"] for t in kiosk.command("state")["issued"]}
    broker = brokers_of(server)
    assert len(broker) == 1, f"one Mosquitto for the server, found {broker}"
    server.kill9()
    killed = time.monotonic()
    wait_for(lambda: not brokers_of(server), 10, "the killed server's Mosquitto gone with it (it would hold the port)")
    server.start()
    health = http(phone_box, "GET", f"http://{srv.ip}:{HTTP_PORT}/health").json()
    assert health["ok"] and health["mqtt"], health
    clock.step(f"kill -9: its broker went with it; back on :{HTTP_PORT} and MQTT :{MQTT_PORT} in "
               f"{time.monotonic() - killed:.1f} s")
    for token, number in acknowledged.items():
        answer = http(counter_pc, "GET", f"{server.url}/api/v1/track/{token}")
        assert answer.status_code == 200 and answer.json()["number"] == number, (number, answer.text)
    assert http(phone_box, "GET", f"{server.url}/api/v1/track/{offline['token']}").json()["status"] == "called"
    kiosk.wait_until("state", lambda s: s["online"], 30, "the kiosk online again")
    last = kiosk.command("ticket", timeout=60)
    assert not last["offline"] and last["number"] not in acknowledged.values()
    issued = issued_numbers(server, counter_pc, manager_headers(server, counter_pc))
    assert sorted(issued) == sorted([*acknowledged.values(), last["number"]]), issued
    clock.step("every acknowledged ticket there, the kiosk issues online again")


def manager_headers(server: CentreServer, box) -> dict[str, str]:
    """The first manager account the server created (its one-time password in first-login.txt,
    replaced at the first sign-in as the technician would)."""
    lines = dict(line.split(": ", 1) for line in (server.data / "first-login.txt").read_text("utf-8").splitlines())
    password = getattr(server, "manager_password", None) or lines["password"]
    answer = http(box, "POST", server.url + "/api/v1/login", json={"username": lines["username"], "password": password})
    assert answer.status_code == 200, answer.text
    headers = {"Authorization": f"Bearer {answer.json()['token']}"}
    if answer.json().get("must_change_password"):
        changed = http(box, "POST", server.url + "/api/v1/password", headers=headers,
                       json={"old_password": password, "new_password": password + "-doi-moi"})
        assert changed.status_code == 200, changed.text
        server.manager_password = password + "-doi-moi"
    return headers


def issued_numbers(server: CentreServer, box, headers: dict[str, str]) -> list[int]:
    """Every number the centre's event log says it issued today (online or handed over)."""
    events = http(box, "GET", server.url + "/api/v1/events", params={"limit": 5000}, headers=headers).json()["events"]
    return [e["data"]["number"] for e in events if e["type"] == "ticket.issued"]
