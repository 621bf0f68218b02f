"""A retained help request is never taken for a new one, on a real broker (Mosquitto and amqtt).

A kiosk (buggy, or an old firmware) publishes its help request retained: the broker then hands it
to every new subscription of the server, so each restart would call staff again. The server's link
drops a retained request and still takes the kiosk's next, ordinary one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from luot.protocol import encode
from server.mqtt_link import MqttLink
from tests.helpers.mqtt import BrokerHandle
from tests.test_mqtt_protocol import Inbox, start_link

pytestmark = pytest.mark.asyncio


async def test_a_retained_help_request_is_not_new_after_a_restart(broker: BrokerHandle) -> None:
    kiosk = broker.probe("kiosk-1")
    topic = broker.topics.assistance("kiosk-1")
    kiosk.publish(topic, encode("assistance", {"request_id": "stale", "reason": "help"}), retain=True)
    for _restart in range(2):
        inbox, link = await _link_that_hears(broker, kiosk, topic, f"fresh-{_restart}")
        await asyncio.sleep(0.2)  # the retained one, sent at subscription, would have come first
        assert {data.request_id for _, _, data in inbox.items} == {f"fresh-{_restart}"}, inbox.items
        await link.stop()


async def _link_that_hears(broker: BrokerHandle, kiosk, topic: str, request_id: str) -> tuple[Inbox, MqttLink]:
    """Start the server's link and send a fresh request until it arrives.

    amqtt (the demo broker) has two races a real restart never meets: it may confirm a subscription
    before it routes to it (a loaded machine lost the one request sent right after "connected"), and
    a link started again in the same process can reach it before the last one's DISCONNECT: its
    "take-over" then leaves the subscriptions on the old session and nothing is routed (seen in CI).
    So the request is sent again each second, and a link that hears nothing in 10 s is started anew
    (at most 3 times). The stale retained request must never arrive in any attempt."""
    for _attempt in range(3):
        inbox = Inbox()
        link = await start_link(broker, inbox)
        deadline = time.monotonic() + 10
        while not inbox.items and time.monotonic() < deadline:
            kiosk.publish(topic, encode("assistance", {"request_id": request_id, "reason": "help"}))
            with contextlib.suppress(AssertionError):
                await inbox.wait(1, timeout=1.0)
        assert "stale" not in {data.request_id for _, _, data in inbox.items}, inbox.items
        if inbox.items:
            return inbox, link
        await link.stop()
    raise AssertionError(f"three starts of the server link never heard {request_id}")
