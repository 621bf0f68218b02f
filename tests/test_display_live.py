"""End to end: a real centre (SQLite, HTTP, Mosquitto) and the real hall display (Kivy, offscreen).

An officer calls the next ticket over HTTP; the number appears on the hall screen and is spoken
(rendered to a WAV: this machine has no sound card), a recall again; the broker restarts, the screen shows "Mất kết nối", keeps its numbers, resyncs from the
retained state and says nothing twice.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from server.broker import start_broker
from tests.helpers.centre import device_auth, running_centre, staff_auth
from tests.helpers.display import DisplayProcess
from tests.soxstat import sox_stat

pytestmark = pytest.mark.asyncio

SILENCE_RMS = 0.01


async def test_officer_call_reaches_the_hall_screen_and_voice_and_survives_a_broker_restart(tmp_path) -> None:
    async with running_centre(tmp_path, mqtt=True, broker="mosquitto") as centre, \
            httpx.AsyncClient(base_url=centre.base_url) as http:
        kiosk, officer = device_auth(centre, "kiosk-1"), await staff_auth(centre)
        for group in ("chung-thuc", "chung-thuc", "ho-tich"):
            assert (await http.post("/api/v1/tickets", json={"group": group}, headers=kiosk)).status_code == 201
        other = await staff_auth(centre, "canbo2")  # an officer holds one counter at a time
        await http.post("/api/v1/counters/3/open", headers=officer)
        await http.post("/api/v1/counters/1/open", headers=other)
        await http.post("/api/v1/counters/1/call-next", headers=other)  # before the display starts: history

        secret = json.loads((tmp_path / "var" / "secrets.json").read_text())["display-hall"]  # as `luot display --data`
        display = DisplayProcess(tmp_path / "hall", device="display-hall", secret=secret, host="127.0.0.1",
                                 port=centre.mqtt_port, size=[1280, 720])
        wait = lambda predicate, what, timeout=15.0: asyncio.to_thread(display.wait_until, predicate, timeout, what)  # noqa: E731
        try:
            shown = await wait(lambda s: s["tiles"].get("1", {}).get("number") == "1001", "counter 1 from retained state")
            assert shown["tiles"]["3"]["number"] == "—" and shown["submitted"] == []  # history is not announced

            called = (await http.post("/api/v1/counters/3/call-next", headers=officer)).json()
            assert called["ticket"]["number"] == 2001
            shown = await wait(lambda s: s["tiles"]["3"]["number"] == "2001" and s["announced"], "the call, shown and spoken")
            assert shown["newest"]["number"] == "2001" and shown["newest"]["counter"] == "3"
            assert shown["tiles"]["3"]["highlight"]
            spoken = shown["announced"][0]
            assert spoken["text"] == "Mời công dân có số thứ tự hai nghìn không trăm linh một đến quầy số ba"
            assert spoken["played"] is False  # no sound card: rendered and logged
            stats = sox_stat(spoken["wav"])
            assert 4.0 < stats["length"] < 12.0 and stats["rms"] > SILENCE_RMS
            assert sox_stat(spoken["wav"], start=1.6)["rms"] > SILENCE_RMS  # the voice after the chime

            # A recall is a new event: spoken again. (A duplicate delivery of one event is spoken once:
            # tests/test_display_mqtt.py, where the test itself may publish as the server.)
            call_event = shown["newest"]["event_id"]
            await http.post("/api/v1/counters/3/recall", headers=officer)
            shown = await wait(lambda s: len(s["announced"]) == 2, "the recall, spoken again", 20)
            assert shown["announced"][1]["number"] == 2001 and shown["announced"][1]["event_id"] != call_event

            # The broker goes away: badge, last numbers kept; it comes back: resync, nothing said twice.
            connects = shown["connects"]
            await centre.broker.stop()
            shown = await wait(lambda s: s["badge"].startswith("Mất kết nối"), "the connection-lost badge")
            assert shown["tiles"]["3"]["number"] == "2001" and shown["tiles"]["1"]["number"] == "1001"
            centre.broker = await start_broker(centre.config, centre.credentials, tmp_path / "var" / "broker",
                                               centre.mqtt_port, kind="mosquitto", bind=centre.config.mqtt.bind)
            shown = await wait(lambda s: s["connects"] > connects and s["badge"] == "", "reconnect", 30)
            await asyncio.sleep(1.0)  # retained replay and the server's own republish
            shown = display.describe()
            assert shown["tiles"]["3"]["number"] == "2001" and len(shown["announced"]) == 2
            assert len(shown["submitted"]) == 2

            # Live again: the next call after the restart is shown and spoken.
            assert await centre.link.wait_connected(20)
            await http.post("/api/v1/counters/3/finish", headers=officer)
            await http.post("/api/v1/counters/3/call-next", headers=officer)
            shown = await wait(lambda s: s["tiles"]["3"]["number"] == "2002" and len(s["announced"]) == 3, "the next call", 20)
            assert [a["number"] for a in shown["announced"]] == [2001, 2001, 2002]
        finally:
            await asyncio.to_thread(display.close)
