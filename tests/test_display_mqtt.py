"""The display's MQTT client, model and real announcer against a real Mosquitto (no Kivy here).

What a citizen would notice: the screen state arrives from retained topics, a call is heard once
even when QoS 1 delivers it twice, a recall is heard again, a broker restart shows "Mất kết nối",
then the screen resyncs and nothing is said twice.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Callable

import pytest

from display.announcer import Announcer
from display.client import DisplayClient, SecretError, load_secret
from display.controller import DisplayController
from display.model import DisplayModel
from luot.config import VoiceSettings
from luot.protocol import encode
from server.broker import start_broker
from tests.helpers.mqtt import BrokerHandle
from tests.soxstat import sox_stat

SILENCE_RMS = 0.01


class LiveDisplay:
    """Client + controller + model + announcer, serialised by a lock (the Kivy app uses its main
    thread instead)."""

    def __init__(self, broker: BrokerHandle, tmp_path: Path, device: str = "display-hall",
                 secret: str | None = None, voice: bool = True) -> None:
        self.lock = threading.Lock()
        self.retained_seen: list[str] = []
        self.model = DisplayModel(broker.config)
        self.announcer = Announcer(VoiceSettings(), tmp_path / "announcements", player=lambda wav: False) if voice else None
        self.controller = DisplayController(self.model, self.announcer)
        self.client = DisplayClient(broker.topics, device, secret or broker.credentials.password(device),
                                    broker.host, broker.port, on_message=self._message, on_status=self._status,
                                    keepalive=5)

    def _message(self, topic: str, payload: bytes, retained: bool) -> None:
        with self.lock:
            if retained:
                self.retained_seen.append(topic)
            self.controller.handle(topic, payload, retained)

    def _status(self, connected: bool) -> None:
        with self.lock:
            self.controller.connection(connected)

    def wait(self, predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, f"not seen within {timeout} s: {what}"
            time.sleep(0.02)

    def close(self) -> None:
        self.client.stop()
        if self.announcer is not None:
            self.announcer.close()


def call_payload(broker: BrokerHandle, event_id: str, number: int, counter: int, recall: int = 0) -> bytes:
    kind = "ticket.recalled" if recall else "ticket.called"
    return encode(kind, {"ticket_id": f"t{number}", "number": number, "group": "chung-thuc", "counter": counter,
                         "call": recall or 1}, id=event_id, at="2026-11-24T02:06:00+00:00", centre=broker.config.centre.id)


def counter_payload(broker: BrokerHandle, counter: int, number: int) -> bytes:
    return encode("state.counter", {"counter": counter, "name": f"Quầy {counter}", "status": "calling", "groups": [],
                                    "officer": "cb", "number": number, "group": "chung-thuc", "ticket_status": "called",
                                    "ticket_id": f"t{number}", "last_ticket_id": f"t{number}"},
                  id="s1", at="2026-11-24T02:06:00+00:00", centre=broker.config.centre.id)


def calls_payload(broker: BrokerHandle, *calls: tuple[str, int, int]) -> bytes:
    return encode("state.calls", {"calls": [{"number": n, "group": "chung-thuc", "counter": c, "call": 1,
                                             "at": "2026-11-24T02:06:00+00:00", "event_id": e} for e, n, c in calls]},
                  id="s2", at="2026-11-24T02:06:00+00:00", centre=broker.config.centre.id)


def test_secret_comes_from_the_servers_secrets_file(tmp_path: Path, mosquitto_broker: BrokerHandle) -> None:
    secrets_dir = mosquitto_broker.credentials.path.parent
    assert load_secret(secrets_dir, "display-hall") == mosquitto_broker.credentials.password("display-hall")
    with pytest.raises(SecretError, match="no secret for device 'display-nowhere'"):
        load_secret(secrets_dir, "display-nowhere")
    with pytest.raises(SecretError, match="cannot read"):
        load_secret(tmp_path / "missing", "display-hall")


def test_wrong_secret_never_gets_the_screen(tmp_path: Path, mosquitto_broker: BrokerHandle) -> None:
    display = LiveDisplay(mosquitto_broker, tmp_path, secret="not-the-secret", voice=False)
    display.client.start()
    try:
        assert not display.client.wait_subscribed(2.0)
        assert display.model.badge == ("Mất kết nối", "Connection lost")
    finally:
        display.close()


def test_availability_online_then_offline_and_retained_state_on_connect(tmp_path: Path, broker: BrokerHandle) -> None:
    topics = broker.topics
    server = broker.probe("server")
    server.publish(topics.counter_state(3), counter_payload(broker, 3, 2001), retain=True)
    server.publish(topics.recent_calls_state, calls_payload(broker, ("old", 2001, 3)), retain=True)
    server.publish(topics.server_availability, b"online", retain=True)
    watcher = broker.probe("manager-1")
    watcher.subscribe(topics.device_availability("display-hall"))
    display = LiveDisplay(broker, tmp_path)
    display.client.start()
    try:
        display.wait(lambda: display.model.counters[3].number == 2001, what="retained counter state")
        display.wait(lambda: display.model.newest_call is not None)
        # Retained messages of different topics may come in any order (amqtt replays them so).
        display.wait(lambda: display.model.server_online is True, what="retained server availability")
        assert display.model.badge is None
        assert display.controller.announced == []  # the retained replay is history: nothing spoken
        asyncio.run(watcher.wait_for(lambda m: m.payload == b"online" and m.retain is False))
    finally:
        display.close()
    asyncio.run(watcher.wait_for(lambda m: m.payload == b"offline"))  # a clean stop says so itself


def test_duplicate_delivery_is_heard_once_and_a_recall_again(tmp_path: Path, broker: BrokerHandle) -> None:
    topics = broker.topics
    server = broker.probe("server")
    display = LiveDisplay(broker, tmp_path)
    display.client.start()
    try:
        assert display.client.wait_subscribed(5)
        first = call_payload(broker, "ev-1", 1023, 3)
        server.publish(topics.call_events, first)
        server.publish(topics.call_events, first)  # what a QoS 1 redelivery looks like to the display
        server.publish(topics.call_events, call_payload(broker, "ev-2", 1023, 3, recall=2))
        display.wait(lambda: len(display.controller.announced) == 2, what="two announcements")
        assert display.announcer is not None and display.announcer.wait_idle(30)
        heard = display.announcer.history
        assert [(a.event_id, a.number, a.counter) for a in heard] == [("ev-1", 1023, 3), ("ev-2", 1023, 3)]
        assert heard[0].text == "Mời công dân có số thứ tự một nghìn không trăm hai mươi ba đến quầy số ba"
        assert heard[0].finished <= heard[1].started  # one after the other, never on top
        stats = sox_stat(heard[0].wav)
        assert 4.0 < stats["length"] < 12.0  # chime (1.2 s) + the spoken sentence
        assert stats["rms"] > SILENCE_RMS
        speech = sox_stat(heard[0].wav, start=1.6)  # after the chime: the voice itself is audible
        assert speech["rms"] > SILENCE_RMS
    finally:
        display.close()


def test_broker_restart_shows_the_badge_resyncs_and_says_nothing_twice(tmp_path: Path, mosquitto_broker: BrokerHandle) -> None:
    broker, topics = mosquitto_broker, mosquitto_broker.topics
    server = broker.probe("server")
    server.publish(topics.counter_state(2), counter_payload(broker, 2, 1004), retain=True)
    display = LiveDisplay(broker, tmp_path)
    display.client.start()
    try:
        assert display.client.wait_subscribed(5)
        server.publish(topics.call_events, call_payload(broker, "ev-9", 1005, 2))
        server.publish(topics.counter_state(2), counter_payload(broker, 2, 1005), retain=True)
        server.publish(topics.recent_calls_state, calls_payload(broker, ("ev-9", 1005, 2)), retain=True)
        display.wait(lambda: len(display.controller.announced) == 1, what="the live call")
        server.close()
        broker.probes.remove(server)

        asyncio.run(broker.running.stop())  # SIGTERM: Mosquitto saves its persistence and exits
        display.wait(lambda: display.model.badge == ("Mất kết nối", "Connection lost"), what="the badge")
        assert display.model.counters[2].number == 1005  # the last state stays on screen
        connects, seen_before = display.client.connects, len(display.retained_seen)
        restarted = asyncio.run(start_broker(broker.config, broker.credentials, broker.directory.parent, broker.port,
                                             kind="mosquitto"))
        try:
            display.wait(lambda: display.client.connects > connects and display.model.badge is None, timeout=20,
                         what="reconnect")
            # resynced from the broker's persisted retained state, not from memory
            display.wait(lambda: {topics.counter_state(2), topics.recent_calls_state}
                         <= set(display.retained_seen[seen_before:]), what="the retained replay")
            assert display.model.counters[2].number == 1005 and display.model.newest_call.event_id == "ev-9"
            assert [c.event_id for c in display.controller.announced] == ["ev-9"]
            assert display.announcer is not None and display.announcer.wait_idle(30)
            assert [a.event_id for a in display.announcer.history] == ["ev-9"]
        finally:
            asyncio.run(restarted.stop())
    finally:
        display.close()
