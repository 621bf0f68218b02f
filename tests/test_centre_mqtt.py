"""A whole centre with its real broker: HTTP actions come out on MQTT, device taps come in."""

from __future__ import annotations

import asyncio
import json
import uuid


import httpx
import pytest

from luot.protocol import Topics, encode
from tests.helpers.centre import centre_with_broker, device_auth, staff_auth

pytestmark = pytest.mark.asyncio


async def off_loop(function, *args):
    """Probes block while they wait for the broker; the embedded broker runs on this loop."""
    return await asyncio.to_thread(function, *args)


def payload(message) -> dict:
    return json.loads(message.payload)


@pytest.mark.parametrize("broker", ["mosquitto", "amqtt"])
async def test_a_call_reaches_displays_and_a_rebooted_display_sees_it_at_once(tmp_path, broker):
    async with centre_with_broker(tmp_path, broker) as (centre, mqtt):
        assert centre.broker.kind == broker
        topics = Topics(centre.config.centre.id)
        hall = await off_loop(mqtt.probe, "display-hall")
        await off_loop(hall.subscribe, topics.call_events, topics.state_all)
        async with httpx.AsyncClient(base_url=centre.base_url) as http:
            officer = await staff_auth(centre)
            ticket = (await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=device_auth(centre, "kiosk-1"))).json()
            await http.post("/api/v1/counters/2/open", headers=officer)
            await http.post("/api/v1/counters/2/call-next", headers=officer)
        [call] = await hall.wait_for(lambda m: m.topic == topics.call_events)
        data = payload(call)
        assert data["kind"] == "ticket.called" and data["data"]["number"] == ticket["number"] and data["data"]["counter"] == 2
        assert ticket["token"] not in call.payload.decode(), "no tracking token on MQTT"
        # The retained picture follows the event within the state interval (50 ms).
        await hall.wait_for(lambda m: m.topic == topics.counter_state(2) and payload(m)["data"]["number"])
        rebooted = await off_loop(mqtt.probe, "display-counter-1")
        await off_loop(rebooted.subscribe, topics.state_all)
        # The retained picture comes first on subscribing; a later republish of the same state may
        # follow it (nobody promised how many), so look at the first one only.
        state = (await rebooted.wait_for(lambda m: m.topic == topics.counter_state(2) and payload(m)["data"]["number"]))[0]
        assert payload(state)["data"]["number"] == ticket["number"] and state.retain


async def test_pad_ratings_and_kiosk_help_requests_come_in_over_mqtt_and_bad_ones_change_nothing(tmp_path):
    async with centre_with_broker(tmp_path) as (centre, mqtt):
        topics = Topics(centre.config.centre.id)
        manager_screen = await off_loop(mqtt.probe, "manager-1")
        await off_loop(manager_screen.subscribe, topics.assistance_events)
        async with httpx.AsyncClient(base_url=centre.base_url) as http:
            officer = await staff_auth(centre)
            manager = await staff_auth(centre, "quanly2", "manager")
            ticket = (await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=device_auth(centre, "kiosk-1"))).json()
            await http.post("/api/v1/counters/1/open", headers=officer)
            await http.post("/api/v1/counters/1/call-next", headers=officer)
            await http.post("/api/v1/counters/1/finish", headers=officer)

            pad = await off_loop(mqtt.probe, "pad-1")
            for bad in (b"not json", b"\xff\xfe", b"{}", b'{"v": 9, "data": {}}', json.dumps({"v": 1, "data": {
                    "ticket_id": ticket["id"], "rating": 5000, "request_id": "r"}}).encode(), b"x" * 20000):
                await off_loop(pad.publish, topics.feedback("pad-1"), bad)
            # a level the form does not have is well-formed data: the engine refuses it and counts it
            await off_loop(pad.publish, topics.feedback("pad-1"), encode("feedback", {
                "ticket_id": ticket["id"], "rating": 9, "scale": 5, "request_id": "r9"}))
            good = encode("feedback", {"ticket_id": ticket["id"], "rating": 4, "request_id": uuid.uuid4().hex})
            await off_loop(pad.publish, topics.feedback("pad-1"), good)
            await off_loop(pad.publish, topics.feedback("pad-1"), good)  # a QoS 1 duplicate: one rating per ticket
            other_pad = await off_loop(mqtt.probe, "pad-2")  # counter 2 did not serve this ticket
            await off_loop(other_pad.publish, topics.feedback("pad-2"), encode("feedback", {"ticket_id": ticket["id"], "rating": 1,
                                                                            "request_id": "x1"}))
            kiosk = await off_loop(mqtt.probe, "kiosk-2")
            await off_loop(kiosk.publish, topics.assistance("kiosk-2"), encode("assistance", {"request_id": "help-1", "reason": "guided"}))
            [help_event] = await manager_screen.wait_for(lambda m: True)
            assert payload(help_event)["data"]["device"] == "kiosk-2"

            for _ in range(100):
                rows = (await http.get("/api/v1/stats/satisfaction", headers=manager)).json()["rows"]
                if rows:
                    break
                await asyncio.sleep(0.05)
            assert rows == [{"counter": 1, "ratings": {"5": 1}, "responses": 1, "index": 100.0}]
            assert centre.link.rejected >= 6
            refused_line = 'luot_ratings_refused_total{reason="rating",source="pad"} 1.0'
            for _ in range(100):  # the pad's messages are handled in the order the broker delivers them
                metrics = (await http.get("/metrics")).text
                if refused_line in metrics:
                    break
                await asyncio.sleep(0.05)
            assert refused_line in metrics, [line for line in metrics.splitlines() if "refused" in line]
            refusals = [e for e in await centre.storage.events_after(0, 1000) if e["type"] == "feedback.refused"]
            assert [(r["data"]["code"], r["data"]["device"]) for r in refusals if r["data"]["code"] == "rating"] == [("rating", "pad-1")]
            still = await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=device_auth(centre, "kiosk-1"))
            assert still.status_code == 201 and still.json()["number"] == ticket["number"] + 1
