"""MQTT test helpers: brokers on free ports in their own loop, and device clients that record.

Brokers run in their own thread and event loop, so a test may block (paho clients) or await (the
server's MQTT link) without starving them. Fixtures using these live in tests/conftest.py.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Coroutine

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from luot.config import CentreConfig
from luot.credentials import Credentials
from luot.ports import free_port  # noqa: F401 (tests import it from here)
from luot.protocol import Topics
from server.broker import RunningBroker


class LoopThread:
    """An asyncio loop in a daemon thread: runs a broker beside the test's own loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="broker-loop", daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class Probe:
    """A paho MQTT 3.1.1 client logged in as one device, recording what it receives."""

    def __init__(self, broker: "BrokerHandle", user: str, password: str | None = None, *,
                 clean_session: bool = True, will: tuple[str, bytes] | None = None) -> None:
        self.user = user
        self.messages: list[mqtt.MQTTMessage] = []
        self._lock = threading.Lock()
        self.connack: Any = None
        self._connack = threading.Event()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user, clean_session=clean_session,
                             protocol=mqtt.MQTTv311)
        client.username_pw_set(user, password if password is not None else broker.credentials.password(user))
        if will:
            client.will_set(will[0], will[1], qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.max_inflight_messages_set(100)
        self.client = client
        self.host, self.port = broker.host, broker.port

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        self.connack = reason_code
        self._connack.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(message)

    def connect(self, timeout: float = 5.0) -> Any:
        """Connect and return the CONNACK reason code (a failure does not raise)."""
        self._connack.clear()
        self.client.connect(self.host, self.port, keepalive=30)
        self.client.loop_start()
        if not self._connack.wait(timeout):
            raise TimeoutError(f"{self.user}: no CONNACK within {timeout} s")
        if self.connack.is_failure:
            self.client.loop_stop()
        return self.connack

    def subscribe(self, *topics: str, timeout: float = 5.0) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *args: done.set()
        self.client.subscribe([(topic, 1) for topic in topics])
        if not done.wait(timeout):
            raise TimeoutError(f"{self.user}: no SUBACK within {timeout} s")

    def publish(self, topic: str, payload: bytes | str, retain: bool = False, timeout: float = 5.0) -> None:
        """Publish at QoS 1 and wait for the broker's PUBACK (which says nothing about delivery)."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(timeout)

    def received(self, topic: str | None = None) -> list[mqtt.MQTTMessage]:
        with self._lock:
            return [m for m in self.messages if topic is None or m.topic == topic]

    async def wait_for(self, predicate: Callable[[mqtt.MQTTMessage], bool], timeout: float = 5.0,
                       count: int = 1) -> list[mqtt.MQTTMessage]:
        """Await at least ``count`` received messages matching ``predicate``."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                found = [m for m in self.messages if predicate(m)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                seen = sorted({m.topic for m in self.received()})
                raise AssertionError(f"{self.user}: {len(found)}/{count} expected messages after {timeout} s; topics seen: {seen}")
            await asyncio.sleep(0.01)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class BrokerHandle:
    """A running broker plus what a test needs to talk to it."""

    kind: str
    host: str
    port: int
    config: CentreConfig
    credentials: Credentials
    directory: Path
    running: RunningBroker
    probes: list[Probe] = field(default_factory=list)

    @property
    def topics(self) -> Topics:
        return Topics(self.config.centre.id)

    def probe(self, user: str, password: str | None = None, connect: bool = True, **options: Any) -> Probe:
        """A device client; connected (and cleaned up after the test) unless ``connect=False``."""
        probe = Probe(self, user, password, **options)
        self.probes.append(probe)
        if connect:
            reason = probe.connect()
            assert not reason.is_failure, f"{user} could not connect: {reason}"
        return probe
