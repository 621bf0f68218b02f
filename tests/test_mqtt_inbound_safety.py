"""A retained help request is never taken for a new one, on a real broker (Mosquitto and amqtt).

A kiosk (buggy, or an old firmware) publishes its help request retained: the broker then hands it
to every new subscription of the server, so each restart would call staff again. The server's link
drops a retained request and still takes the kiosk's next, ordinary one.
"""

from __future__ import annotations

import asyncio

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
        kiosk.publish(topic, encode("assistance", {"request_id": f"fresh-{_restart}", "reason": "help"}))
        await inbox.wait(1, timeout=30)  # generous: a loaded machine
        await asyncio.sleep(0.2)  # the retained one, sent at subscription, would have come first
        assert [data.request_id for _, _, data in inbox.items] == [f"fresh-{_restart}"]
        await link.stop()
