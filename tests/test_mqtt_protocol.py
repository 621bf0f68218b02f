"""The MQTT protocol end to end, on real brokers: what a display, a pad or a kiosk would notice.

Delivery, retained state and the last will run on both Mosquitto and the embedded amqtt broker.
ACL tests run on both too; a forbidden message is "not delivered", which is proved by sending an
allowed message from the same client afterwards: MQTT keeps one client's messages in order, so
once the allowed one has arrived, a forbidden one sent earlier would have arrived before it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from luot.cli import main as luot_main
from luot.config import load_config
from luot.credentials import load_or_create
from luot.protocol import FeedbackData, encode
from server.broker import find_mosquitto, start_broker
from server.broker_setup import generate
from server.engine import QueueEngine
from server.mqtt_link import MqttLink
from tests.helpers.mqtt import BrokerHandle, LoopThread, free_port

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=timezone.utc)  # Tuesday 09:00 in Hà Nội


def payload(message: Any) -> dict[str, Any]:
    return json.loads(message.payload)


class Inbox:
    """The server's on_inbound callback, recording what reached it."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, Any]] = []

    async def __call__(self, kind: str, device: str, data: Any) -> None:
        self.items.append((kind, device, data))

    async def wait(self, count: int = 1, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.items) < count:
            assert time.monotonic() < deadline, f"on_inbound got {len(self.items)}/{count}: {self.items}"
            await asyncio.sleep(0.01)


async def start_link(broker: BrokerHandle, inbox: Inbox | None = None, **options: Any) -> MqttLink:
    link = MqttLink(broker.config, broker.host, broker.port, "server", broker.credentials.password("server"),
                    on_inbound=inbox, **options)
    assert await link.start(wait=10), "the server link did not connect"
    return link


def busy_morning(engine: QueueEngine) -> tuple[Any, list]:
    """Counter 3 opens, an elderly citizen takes a certification ticket at kiosk-1, counter 3 calls it."""
    events = engine.open_counter(3, "can-bo-3", NOW)
    ticket, issued = engine.issue("chung-thuc", NOW + timedelta(minutes=1), priority="elderly", source="kiosk-1")
    _, called = engine.call_next(3, NOW + timedelta(minutes=2))
    return ticket, events + issued + called


# ------------------------------------------------------------------------------ delivery
async def test_committed_events_reach_display_without_private_fields(broker: BrokerHandle) -> None:
    topics = broker.topics
    display = broker.probe("display-hall")
    display.subscribe(topics.call_events, topics.counter_events)
    manager = broker.probe("manager-1")
    manager.subscribe(f"luot/{broker.config.centre.id}/#")
    link = await start_link(broker)
    engine = QueueEngine(broker.config)
    ticket, events = busy_morning(engine)

    link.publish_committed(events, engine, NOW + timedelta(minutes=2))

    [call] = await display.wait_for(lambda m: m.topic == topics.call_events)
    message = payload(call)
    assert message["v"] == 1 and message["kind"] == "ticket.called" and message["centre"] == "hn-cua-nam"
    assert message["data"]["number"] == 2001 and message["data"]["counter"] == 3
    assert message["data"]["priority"] is True
    assert message["id"] == events[-1].id
    [opened] = await display.wait_for(lambda m: m.topic == topics.counter_events)
    assert payload(opened)["kind"] == "counter.opened"
    issued = payload((await manager.wait_for(lambda m: m.topic == topics.ticket_events, count=2))[0])
    assert issued["kind"] == "ticket.issued" and issued["data"]["priority"] is True
    await manager.wait_for(lambda m: m.topic == topics.recent_calls_state)
    # The tracking token, the kiosk and the priority class never leave the server.
    for seen in manager.received():
        text = seen.payload.decode()
        assert ticket.token not in text and "elderly" not in text and '"source"' not in text, seen.topic
    await link.stop()


async def test_display_that_reboots_gets_current_state_at_once(broker: BrokerHandle) -> None:
    topics = broker.topics
    link = await start_link(broker)
    engine = QueueEngine(broker.config)
    _, events = busy_morning(engine)
    _, more = engine.issue("ho-tich", NOW + timedelta(minutes=3))
    link.publish_committed(events + more, engine, NOW + timedelta(minutes=3))
    # A publisher's messages arrive in order: once the manager sees the last one, all are retained.
    watcher = broker.probe("manager-1")
    watcher.subscribe(topics.queue_state)
    await watcher.wait_for(lambda m: payload(m)["data"]["waiting_total"] == 1)

    display = broker.probe("display-hall")  # switched on after everything happened
    display.subscribe(topics.state_all)
    [counter] = await display.wait_for(lambda m: m.topic == topics.counter_state(3))
    assert counter.retain
    view = payload(counter)["data"]
    assert (view["counter"], view["number"], view["status"]) == (3, 2001, "calling")
    [queue] = await display.wait_for(lambda m: m.topic == topics.queue_state)
    assert payload(queue)["data"]["groups"]["ho-tich"]["waiting"] == 1
    [calls] = await display.wait_for(lambda m: m.topic == topics.recent_calls_state)
    assert [(c["number"], c["counter"]) for c in payload(calls)["data"]["calls"]] == [(2001, 3)]
    [notice] = await display.wait_for(lambda m: m.topic == topics.notice_state)
    assert payload(notice)["data"]["vi"].startswith("Trung tâm làm việc")
    await link.stop()


async def test_last_will_then_reconnect_and_republish(broker: BrokerHandle) -> None:
    topics = broker.topics
    kiosk = broker.probe("kiosk-1")
    kiosk.subscribe(topics.server_availability, topics.counter_state(3))
    engine = QueueEngine(broker.config)
    _, events = busy_morning(engine)
    link = await start_link(broker)  # learns the engine from its first publish_committed
    link.publish_committed(events, engine, NOW)
    await kiosk.wait_for(lambda m: m.topic == topics.server_availability and m.payload == b"online")
    await kiosk.wait_for(lambda m: m.topic == topics.counter_state(3))
    await asyncio.sleep(0.2)
    before = len(kiosk.received(topics.counter_state(3)))
    assert before == 1, "state was published twice"

    link._client.socket().shutdown(socket.SHUT_RDWR)  # the server's network dies: no DISCONNECT sent

    statuses = lambda: [m.payload for m in kiosk.received(topics.server_availability)]  # noqa: E731
    await kiosk.wait_for(lambda m: m.topic == topics.server_availability and m.payload == b"offline", timeout=15)
    # paho reconnects by itself, says online again and republishes the retained state.
    await kiosk.wait_for(lambda m: m.topic == topics.server_availability and m.payload == b"online", count=2,
                          timeout=15)  # paho waits a second or more before reconnecting; the machine may be busy
    assert statuses()[-3:] == [b"online", b"offline", b"online"]
    await kiosk.wait_for(lambda m: m.topic == topics.counter_state(3), count=before + 1, timeout=15)
    assert payload(kiosk.received(topics.counter_state(3))[-1])["data"]["number"] == 2001

    await link.stop()  # a clean stop says offline itself
    await kiosk.wait_for(lambda m: m.topic == topics.server_availability and m.payload == b"offline", count=2,
                          timeout=15)


async def test_device_availability_reaches_dashboard(broker: BrokerHandle) -> None:
    link = await start_link(broker)
    assert link.devices_status()["pad-1"].status == "unknown"
    pad = broker.probe("pad-1", will=(broker.topics.device_availability("pad-1"), b"offline"))
    pad.publish(broker.topics.device_availability("pad-1"), b"online", retain=True)
    await _until(lambda: link.devices_status()["pad-1"].status == "online")
    pad.client.socket().shutdown(socket.SHUT_RDWR)  # the pad loses power
    await _until(lambda: link.devices_status()["pad-1"].status == "offline")
    assert link.devices_status()["pad-1"].since is not None
    await link.stop()


async def _until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


# ------------------------------------------------------------------------------ ACL
async def test_kiosk_cannot_publish_calls_or_state(broker: BrokerHandle) -> None:
    topics = broker.topics
    manager = broker.probe("manager-1")
    manager.subscribe(f"luot/{broker.config.centre.id}/#")
    kiosk = broker.probe("kiosk-1")
    forged = encode("ticket.called", {"number": 1001, "counter": 1})
    for topic in (topics.call_events, topics.ticket_events, topics.queue_state, topics.counter_state(1),
                  topics.server_availability, topics.feedback("kiosk-1")):
        kiosk.publish(topic, forged)
    kiosk.publish(topics.assistance("kiosk-1"), b"marker")

    await manager.wait_for(lambda m: m.topic == topics.assistance("kiosk-1"))
    assert [m.topic for m in manager.received()] == [topics.assistance("kiosk-1")]


async def test_display_may_only_say_it_is_online(broker: BrokerHandle) -> None:
    topics = broker.topics
    manager = broker.probe("manager-1")
    manager.subscribe(f"luot/{broker.config.centre.id}/#")
    display = broker.probe("display-hall")
    for topic in (topics.call_events, topics.counter_state(1), topics.feedback("display-hall"),
                  topics.assistance("display-hall"), topics.device_availability("kiosk-1")):
        display.publish(topic, b"forged")
    display.publish(topics.device_availability("display-hall"), b"online")

    await manager.wait_for(lambda m: m.topic == topics.device_availability("display-hall"))
    assert [m.topic for m in manager.received()] == [topics.device_availability("display-hall")]


async def test_kiosk_cannot_speak_as_another_kiosk(broker: BrokerHandle) -> None:
    inbox = Inbox()
    link = await start_link(broker, inbox)
    kiosk = broker.probe("kiosk-1")
    kiosk.publish(broker.topics.assistance("kiosk-2"), encode("assistance", {"request_id": "forged"}))
    kiosk.publish(broker.topics.assistance("kiosk-1"), encode("assistance", {"request_id": "real", "reason": "guided"}))

    await inbox.wait(1)
    await asyncio.sleep(0.2)
    assert [(kind, device, data.request_id) for kind, device, data in inbox.items] == [("assistance", "kiosk-1", "real")]
    await link.stop()


async def test_pad_reads_only_its_own_counter(broker: BrokerHandle) -> None:
    topics = broker.topics
    server = broker.probe("server")
    display = broker.probe("display-hall")  # holds a wide filter (amqtt used to replay it to everyone)
    display.subscribe(topics.state_all)
    for number in (2, 1):
        server.publish(topics.counter_state(number), encode("state.counter", {"counter": number}), retain=True)
    pad = broker.probe("pad-1")  # pad-1 stands at counter 1
    # Mosquitto accepts the wide filter and filters delivery; amqtt refuses it (SUBACK 0x80).
    pad.subscribe(topics.counter_state(1), topics.counter_state_all, topics.state_all, topics.queue_state)
    server.publish(topics.counter_state(2), encode("state.counter", {"counter": 2, "live": True}), retain=True)
    server.publish(topics.queue_state, encode("state.queue", {"live": True}), retain=True)
    server.publish(topics.counter_state(1), encode("state.counter", {"counter": 1, "live": True}), retain=True)

    await pad.wait_for(lambda m: m.topic == topics.counter_state(1) and payload(m)["data"].get("live"))
    assert {m.topic for m in pad.received()} == {topics.counter_state(1)}


async def test_device_cannot_plant_a_last_will_on_state(broker: BrokerHandle) -> None:
    topics = broker.topics
    manager = broker.probe("manager-1")
    manager.subscribe(topics.queue_state, topics.device_availability("kiosk-2"))
    evil = broker.probe("kiosk-1", connect=False, will=(topics.queue_state, b"forged"))
    reason = evil.connect()
    if not reason.is_failure:  # Mosquitto accepts the CONNECT and drops the will when it fires
        evil.client.socket().shutdown(socket.SHUT_RDWR)
    honest = broker.probe("kiosk-2", will=(topics.device_availability("kiosk-2"), b"offline"))
    honest.client.socket().shutdown(socket.SHUT_RDWR)

    await manager.wait_for(lambda m: m.topic == topics.device_availability("kiosk-2"))
    await asyncio.sleep(0.3)
    assert manager.received(topics.queue_state) == []


async def test_wrong_password_is_refused(broker: BrokerHandle) -> None:
    reason = broker.probe("kiosk-1", password="not-the-secret", connect=False).connect()
    assert reason.is_failure
    unknown = broker.probe("kiosk-99", password="whatever", connect=False).connect()
    assert unknown.is_failure


# ------------------------------------------------------------------------------ inbound validation
BAD_FEEDBACK: list[tuple[bytes, str]] = [
    (b"rat hai long", "not JSON"),
    (encode("feedback", {"ticket_id": "t1", "rating": 4, "request_id": "r"}).replace(b'"v":1', b'"v":2'),
     "unsupported protocol version"),
    (encode("feedback", {"ticket_id": "t1", "request_id": "r"}), "data.rating: Field required"),
    (encode("feedback", {"ticket_id": "t1", "rating": 5000, "request_id": "r"}), "data.rating"),  # 9 is the engine's to refuse
    (b'{"v":1,"kind":"feedback","data":"' + b"x" * 100_000 + b'"}', "larger than"),
    (b'{"v":1,"data":{"ticket_id":"\xff\xfe"}}', "not UTF-8"),
    (b"[1,2,3]", "must be a JSON object"),
    (encode("feedback", {"ticket_id": "t1", "rating": 3, "request_id": "r", "name": "Nguyễn Văn A"}), "data.name"),
    (b'{"v":1,"kind":"feedback"}', "needs a 'data' object"),
    (b"", "not JSON"),
]


async def test_malformed_feedback_is_rejected_and_link_keeps_working(
        broker: BrokerHandle, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="luot.mqtt")
    inbox = Inbox()
    link = await start_link(broker, inbox)
    pad = broker.probe("pad-1")
    topic = broker.topics.feedback("pad-1")
    for index in range(50):
        pad.publish(topic, BAD_FEEDBACK[index % len(BAD_FEEDBACK)][0])
    pad.publish(topic, encode("feedback", {"ticket_id": "t0123", "rating": 4, "request_id": "r-51"}))

    await inbox.wait(1, timeout=10)
    assert inbox.items == [("feedback", "pad-1", FeedbackData(ticket_id="t0123", rating=4, request_id="r-51"))]
    assert link.rejected == 50 and link.accepted == 1
    reasons = [r.getMessage() for r in caplog.records if "rejected message from pad-1" in r.getMessage()]
    assert len(reasons) == 50
    for _, expected in BAD_FEEDBACK:
        assert any(expected in reason for reason in reasons), f"no logged reason mentions {expected!r}"
    assert not any("Nguyễn" in r.getMessage() for r in caplog.records), "payload content must not be logged"
    assert link.connected
    await link.stop()


# ------------------------------------------------------------------------------ broker_config
def test_generated_config_starts_mosquitto_and_every_user_logs_in(tmp_path: Path) -> None:
    mosquitto = find_mosquitto()
    assert mosquitto, "mosquitto is not installed"
    config = load_config()
    credentials = load_or_create(config, tmp_path / "secrets.json")
    port = free_port()
    conf = generate(config, credentials, tmp_path / "mq", port, run_as_root=True)
    acl = (tmp_path / "mq" / "acl").read_text()
    assert "user pad-1\ntopic write luot/hn-cua-nam/device/pad-1/availability" in acl
    assert (tmp_path / "mq" / "passwd").stat().st_mode & 0o077 == 0
    process = subprocess.Popen([mosquitto, "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        deadline = time.monotonic() + 5
        for user in credentials.users():
            client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv311)
            client.username_pw_set(user, credentials.password(user))
            while True:
                try:
                    client.connect("127.0.0.1", port)
                    break
                except ConnectionRefusedError:
                    assert process.poll() is None and time.monotonic() < deadline, "mosquitto did not start"
                    time.sleep(0.02)
            results: list[Any] = []
            client.on_connect = lambda c, u, f, rc, p: results.append(rc)
            while not results:
                client.loop(0.1)
            assert not results[0].is_failure, f"{user}: {results[0]}"
            client.disconnect()
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0].decode()
    assert "Error" not in output, output
    assert (tmp_path / "mq" / "persistence" / "mosquitto.db").exists()


def test_broker_config_command_prints_files_not_secrets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = luot_main(["broker-config", "--out", str(tmp_path / "out"), "--secrets", str(tmp_path / "s.json"),
                      "--port", "18999"])
    printed = capsys.readouterr().out
    assert code == 0
    result = json.loads(printed)
    assert Path(result["conf"]).read_text().count("listener 18999 127.0.0.1") == 1
    assert result["users"][:3] == ["server", "kiosk-1", "kiosk-2"] and "pad-2" in result["users"]
    for secret in json.loads((tmp_path / "s.json").read_text()).values():
        assert secret not in printed


async def test_offline_queue_keeps_a_5000_message_burst(mosquitto_broker: BrokerHandle) -> None:
    topic = mosquitto_broker.topics.ticket_events
    manager = mosquitto_broker.probe("manager-1", clean_session=False)
    manager.subscribe(topic)
    manager.close()  # away, with a persistent session
    server = mosquitto_broker.probe("server")
    infos = [server.client.publish(topic, str(i).encode(), qos=1) for i in range(5000)]
    for info in infos:
        info.wait_for_publish(20)

    back = mosquitto_broker.probe("manager-1", clean_session=False)
    received = await back.wait_for(lambda m: m.topic == topic, count=5000, timeout=30)
    assert sorted(int(m.payload) for m in received) == list(range(5000))


def test_luot_broker_env_forces_amqtt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUOT_BROKER", "amqtt")
    config = load_config()
    credentials = load_or_create(config, tmp_path / "secrets.json")
    loop = LoopThread()
    try:
        running = loop.run(start_broker(config, credentials, tmp_path, free_port()))
        assert running.kind == "amqtt" and running.host == "127.0.0.1"
        assert (tmp_path / "amqtt" / "passwd").read_text().count("$argon2") == len(credentials.users())
        loop.run(running.stop())
    finally:
        loop.close()
