"""The hall and counter displays as Kivy draws them (SDL offscreen), fed by a real Mosquitto.

Each test runs one display process (Kivy's Window is process-global); the widget tree says which
numbers are shown, the PNG says how (colours where a visitor looks). Screenshots are kept in the
test's directory; docs/img/display-*.png are copies of them.
"""

from __future__ import annotations

import time
from pathlib import Path

from PIL import Image

from luot.protocol import encode
from tests.helpers.display import DisplayProcess
from tests.helpers.mqtt import BrokerHandle

AT = "2026-11-24T02:06:00+00:00"
YELLOW = (255, 214, 0)
RED = (204, 20, 20)


LONG_NOTICE = {"vi": "Trung tâm làm việc từ thứ Hai đến thứ Sáu, sáng 7:30–12:00, chiều 13:00–16:30. "
                      "Công dân ưu tiên xin báo tại quầy hướng dẫn.",
               "en": "Open Monday to Friday, 7:30–12:00 and 13:00–16:30. Priority citizens please tell the help desk."}


def publish_centre_state(broker: BrokerHandle, notice: dict[str, str] | None = None) -> None:
    """A mid-morning hall: four counters open, one closed, people waiting, recent calls."""
    topics, centre = broker.topics, broker.config.centre.id
    server = broker.probe("server")

    def state(topic: str, kind: str, data: dict) -> None:
        server.publish(topic, encode(kind, data, id="s", at=AT, centre=centre), retain=True)

    counters = {1: ("serving", 1012), 2: ("calling", 2007), 3: ("calling", 2008), 4: ("idle", None), 5: ("closed", None)}
    for number, (status, ticket) in counters.items():
        state(topics.counter_state(number), "state.counter",
              {"counter": number, "name": f"Quầy {number}", "status": status, "groups": [], "officer": "cb",
               "number": ticket, "group": None, "ticket_status": None, "ticket_id": None, "last_ticket_id": None})
    waiting = {"ho-tich": 6, "chung-thuc": 3, "dat-dai": 2, "cu-tru": 9, "bao-tro-xa-hoi": 1, "ho-kinh-doanh": 0, "khac": 4}
    state(topics.queue_state, "state.queue", {"day": "2026-11-24", "waiting_total": sum(waiting.values()), "counters": [],
                                              "groups": {g: {"waiting": n, "priority_waiting": 0, "longest_wait_minutes": 1.0}
                                                         for g, n in waiting.items()}})
    calls = [(2008, 3), (2007, 2), (1012, 1), (1011, 2), (3004, 4), (1010, 1)]
    state(topics.recent_calls_state, "state.calls",
          {"calls": [{"number": n, "group": None, "counter": c, "at": AT, "call": 1, "event_id": f"e{i}"}
                     for i, (n, c) in enumerate(calls)]})
    state(topics.notice_state, "state.notice",
          notice or {"vi": "Công dân ưu tiên xin báo tại quầy hướng dẫn.", "en": "Priority citizens please tell the help desk."})
    server.publish(topics.server_availability, b"online", retain=True)


def share(image: Path, box: tuple[float, float, float, float], colour: tuple[int, int, int], tolerance: int = 40) -> float:
    """Fraction of the pixels in ``box`` (fractions of width/height, top-left origin) near ``colour``."""
    with Image.open(image) as img:
        rgb = img.convert("RGB")
        w, h = rgb.size
        crop = rgb.crop((int(box[0] * w), int(box[1] * h), int(box[2] * w), int(box[3] * h)))
        pixels = list(crop.getdata())
    near = sum(1 for p in pixels if all(abs(a - b) <= tolerance for a, b in zip(p, colour)))
    return near / len(pixels)


def test_hall_display_at_1080p_and_720p(tmp_path: Path, mosquitto_broker: BrokerHandle) -> None:
    publish_centre_state(mosquitto_broker)
    display = DisplayProcess(tmp_path / "hall", device="display-hall", secret=mosquitto_broker.credentials.password("display-hall"),
                             host=mosquitto_broker.host, port=mosquitto_broker.port, size=[1920, 1080], voice=False)
    try:
        shown = display.wait_until(lambda s: len(s["tiles"]) == 4 and s["groups"].get("cu-tru") == "9", what="the hall state")
        assert {int(k): v["number"] for k, v in shown["tiles"].items()} == {1: "1012", 2: "2007", 3: "2008", 4: "—"}
        assert shown["tiles"]["3"]["highlight"] and not shown["tiles"]["2"]["highlight"]  # the newest call's counter
        assert (shown["newest"]["number"], shown["newest"]["counter"]) == ("2008", "3")
        assert shown["previous_calls"][:2] == [["2007", "2"], ["1012", "1"]]
        assert "Công dân ưu tiên" in shown["notice"] and shown["badge"] == ""
        assert any("ĐANG PHỤC VỤ" in t for t in shown["texts"]) and any("Hộ tịch" == t for t in shown["texts"])
        assert len(shown["clock"]) == 5 and shown["clock"][2] == ":"
        for size in ((1920, 1080), (1280, 720)):
            png = display.screenshot(tmp_path / f"hall-{size[0]}.png", size)
            with Image.open(png) as img:
                assert img.size == size
            assert share(png, (0.66, 0.20, 0.98, 0.45), YELLOW) > 0.4  # the newest call: a yellow box...
            assert share(png, (0.66, 0.20, 0.98, 0.45), (0, 0, 0), 60) > 0.08  # ...with its big black number
            assert share(png, (0.0, 0.93, 1.0, 1.0), YELLOW, 80) > 0.03  # the notice line is written
            assert share(png, (0.5, 0.13, 1.0, 0.2), RED) == 0  # no badge while all is well

        mosquitto_broker.probes[0].publish(mosquitto_broker.topics.server_availability, b"offline", retain=True)
        shown = display.wait_until(lambda s: s["badge"] != "", what="the server-offline badge")
        assert shown["badge"].startswith("Máy chủ ngừng hoạt động")
        png = display.screenshot(tmp_path / "hall-server-offline.png", (1280, 720))
        assert share(png, (0.5, 0.12, 1.0, 0.2), RED) > 0.05
    finally:
        display.close()


def test_idle_hall_display_draws_nothing_until_something_changes(tmp_path: Path, mosquitto_broker: BrokerHandle) -> None:
    """On a box with no GPU every 1080p frame is drawn in software: a hall at rest must not redraw
    (a scrolling notice once took more than a core). A notice too long for one line is shown a
    still page at a time; a live call flashes, then the screen rests again."""
    publish_centre_state(mosquitto_broker, LONG_NOTICE)
    display = DisplayProcess(tmp_path / "idle", device="display-hall", secret=mosquitto_broker.credentials.password("display-hall"),
                             host=mosquitto_broker.host, port=mosquitto_broker.port, size=[1920, 1080], voice=False)
    try:
        shown = display.wait_until(lambda s: len(s["tiles"]) == 4 and "Trung tâm" in s["notice"], what="the hall state")
        page = shown["notice_page"]
        assert page and page != LONG_NOTICE["vi"] and LONG_NOTICE["vi"].startswith(page)  # a first line, whole words
        assert LONG_NOTICE["vi"][len(page)] == " "
        time.sleep(1.0)  # the frames of the first draw
        before = display.command("frames")["frames"]
        assert before > 0
        time.sleep(6.0)
        idle = display.command("frames")["frames"] - before
        assert idle <= 3, f"{idle} frames drawn in 6 s with nothing new (at most a notice page and the clock)"

        topics, centre = mosquitto_broker.topics, mosquitto_broker.config.centre.id
        mosquitto_broker.probes[0].publish(topics.call_events, encode(
            "ticket.called", {"ticket_id": "t-idle", "number": 2009, "group": "ho-tich", "counter": 4, "call": 1},
            id="idle-call", at=AT, centre=centre))
        display.wait_until(lambda s: s["newest"]["number"] == "2009", what="the live call")
        time.sleep(6.0)  # it flashes for 4 s
        after_call = display.command("frames")["frames"]
        assert after_call - before - idle >= 2  # the call was drawn, and flashed
        time.sleep(6.0)
        assert display.command("frames")["frames"] - after_call <= 3
    finally:
        display.close()


def test_counter_display_landscape_and_portrait(tmp_path: Path, mosquitto_broker: BrokerHandle) -> None:
    publish_centre_state(mosquitto_broker)
    # Offscreen SDL cannot grow its surface after start: start at the largest extent needed.
    display = DisplayProcess(tmp_path / "counter", device="display-counter-1",
                             secret=mosquitto_broker.credentials.password("display-counter-1"),
                             host=mosquitto_broker.host, port=mosquitto_broker.port, size=[1920, 1920], counter=3)
    try:
        shown = display.wait_until(lambda s: s.get("number") == "2008", what="counter 3's number")
        assert shown["mode"] == "counter" and shown["title"] == "QUẦY 3" and shown["badge"] == ""
        assert "Mời công dân  ·  Now calling" in shown["texts"]
        for size in ((1920, 1080), (1280, 720), (720, 1280)):
            png = display.screenshot(tmp_path / f"counter-{size[0]}x{size[1]}.png", size)
            with Image.open(png) as img:
                assert img.size == size
            assert share(png, (0.0, 0.0, 1.0, 0.2), YELLOW) > 0.5  # calling: the counter banner is yellow
            assert share(png, (0.05, 0.3, 0.95, 0.7), YELLOW, 60) > 0.08  # the huge number, in yellow
            assert share(png, (0.0, 0.25, 1.0, 1.0), (0, 0, 0), 10) == 0  # nothing left undrawn
        server = mosquitto_broker.probes[0]
        server.publish(mosquitto_broker.topics.counter_state(3), encode("state.counter", {
            "counter": 3, "name": "Quầy 3", "status": "serving", "groups": [], "officer": "cb", "number": 2008,
            "group": None, "ticket_status": "serving", "ticket_id": None, "last_ticket_id": None}, id="s", at=AT,
            centre=mosquitto_broker.config.centre.id), retain=True)
        shown = display.wait_until(lambda s: "Đang phục vụ  ·  Now serving" in s["texts"], what="serving")
        assert shown["number"] == "2008"
    finally:
        display.close()
