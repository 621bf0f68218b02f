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
from tests.helpers.mqtt import BrokerHandle
from tests.test_mqtt_protocol import Inbox, start_link

pytestmark = pytest.mark.asyncio


async def test_a_retained_help_request_is_not_new_after_a_restart(broker: BrokerHandle) -> None:
    kiosk = broker.probe("kiosk-1")
    topic = broker.topics.assistance("kiosk-1")
    kiosk.publish(topic, encode("assistance", {"request_id": "stale", "reason": "help"}), retain=True)
    for _restart in range(2):
        inbox = Inbox()
        link = await start_link(broker, inbox)
        # amqtt may confirm a subscription before it routes to it: a loaded machine lost the one
        # fresh request sent right after "connected", so it is sent again until it gets through
        deadline = time.monotonic() + 30
        while not inbox.items and time.monotonic() < deadline:
            kiosk.publish(topic, encode("assistance", {"request_id": f"fresh-{_restart}", "reason": "help"}))
            with contextlib.suppress(AssertionError):
                await inbox.wait(1, timeout=1.0)
        await asyncio.sleep(0.2)  # the retained one, sent at subscription, would have come first
        assert inbox.items and {data.request_id for _, _, data in inbox.items} == {f"fresh-{_restart}"}, inbox.items
        await link.stop()
