"""The centre's Mosquitto is supervised: one that dies comes back on the same port and the hall
display catches up; a server killed with -9 does not leave an orphaned Mosquitto holding the MQTT
port, so it restarts cleanly on the same ports (systemd's Restart=always depends on that)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from display.client import DisplayClient
from luot.protocol import Topics
from server.app import free_port
from server.broker import PID_NAME, find_mosquitto
from tests.helpers.centre import device_auth, running_centre, staff_auth
from tests.helpers.process import ServerProcess

pytestmark = pytest.mark.skipif(find_mosquitto() is None, reason="needs Mosquitto")


class RecordingDisplay:
    """The real display MQTT client, recording (topic, payload, retained) as the display gets them."""

    def __init__(self, centre) -> None:
        self.messages: list[tuple[str, dict, bool]] = []
        self.lock = threading.Lock()
        self.client = DisplayClient(Topics(centre.config.centre.id), "display-hall",
                                    centre.credentials.password("display-hall"), centre.mqtt_host, centre.mqtt_port,
                                    on_message=self._record, on_status=lambda up: None)

    def _record(self, topic: str, payload: bytes, retained: bool) -> None:
        try:
            data = json.loads(payload)
        except ValueError:  # availability topics carry plain "online" / "offline"
            data = {"data": {}, "text": payload.decode()}
        with self.lock:
            self.messages.append((topic, data, retained))

    def seen(self, predicate) -> list[tuple[str, dict, bool]]:
        with self.lock:
            return [m for m in self.messages if predicate(m)]


async def call_next(http: httpx.AsyncClient, officer: dict[str, str]) -> httpx.Response:
    """Serve the ticket at counter 2 (start, finish), then call the next one."""
    for action in ("start", "finish"):
        (await http.post(f"/api/v1/counters/2/{action}", headers=officer)).raise_for_status()
    return await http.post("/api/v1/counters/2/call-next", headers=officer)


async def until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.05)


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.asyncio
async def test_a_killed_mosquitto_comes_back_and_the_display_catches_up(tmp_path):
    async with running_centre(tmp_path, mqtt=True, broker="mosquitto") as centre:
        topics = Topics(centre.config.centre.id)
        display = RecordingDisplay(centre)
        display.client.start()
        try:
            assert await asyncio.to_thread(display.client.wait_subscribed, 15)
            async with httpx.AsyncClient(base_url=centre.base_url) as http:
                officer = await staff_auth(centre)
                kiosk = device_auth(centre, "kiosk-1")
                numbers = [(await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=kiosk)).json()["number"]
                           for _ in range(3)]
                await http.post("/api/v1/counters/2/open", headers=officer)
                await http.post("/api/v1/counters/2/call-next", headers=officer)
                await until(lambda: display.seen(lambda m: m[0] == topics.call_events and m[1]["data"]["number"] == numbers[0]),
                            15, "the first call on the hall display")

                first = centre.broker.process
                first.send_signal(signal.SIGKILL)
                # While the broker is down the officer calls again: the call is committed (HTTP answers).
                await until(lambda: first.poll() is not None, 10, "Mosquitto dead")
                answer = await call_next(http, officer)
                assert answer.status_code == 200, answer.text
                reconnects_before = display.client.connects

                await until(lambda: centre.broker.supervisor.restarts == 1, 30, "Mosquitto started again")
                assert centre.broker.process is not first and centre.broker.process.poll() is None
                assert centre.broker.port == centre.mqtt_port
                await until(lambda: centre.link.connected, 60, "the server's MQTT link reconnected")
                await until(lambda: display.client.connects > reconnects_before and display.client.subscribed, 60,
                            "the display reconnected")
                # Resync: the counter's retained state shows the call made while the broker was down.
                await until(lambda: display.seen(lambda m: m[0] == topics.counter_state(2) and m[1]["data"].get("number") == numbers[1]),
                            30, "counter 2's state with the call made during the outage")

                # A call made after the restart reaches the hall display as an event.
                assert (await call_next(http, officer)).status_code == 200
                await until(lambda: display.seen(lambda m: m[0] == topics.call_events and m[1]["data"]["number"] == numbers[2]),
                            30, "the call made after the restart on the hall display")
        finally:
            await asyncio.to_thread(display.client.stop)


def _mqtt_accepts(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_a_server_killed_with_9_restarts_on_the_same_ports(tmp_path):
    data, mqtt_port = tmp_path / "var", free_port()
    server = ServerProcess(data, extra=["--broker", "mosquitto", "--mqtt-port", str(mqtt_port)])
    pidfile = data / "broker" / "mosquitto" / PID_NAME
    try:
        server.start()
        broker_pid = int(pidfile.read_text())
        assert alive(broker_pid) and _mqtt_accepts(mqtt_port)
        server.kill9()
        # The kernel's parent-death signal ends the orphan: the MQTT port is free again.
        deadline = time.monotonic() + 15
        while alive(broker_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(broker_pid), "the orphaned Mosquitto outlived the killed server"

        server.start()  # same HTTP port, same MQTT port
        assert int(pidfile.read_text()) != broker_pid and _mqtt_accepts(mqtt_port)
        assert httpx.get(server.url + "/health", timeout=5).status_code == 200
    finally:
        server.stop()
    assert not pidfile.exists(), "a clean stop removes the pidfile"


def test_an_orphan_that_escaped_the_death_signal_is_stopped_at_the_next_start(tmp_path):
    """Belt and braces: a Mosquitto of this data directory left running (here started by hand,
    with no parent-death signal) is found by its pidfile and stopped, so the server gets its port."""
    data, mqtt_port = tmp_path / "var", free_port()
    server = ServerProcess(data, extra=["--broker", "mosquitto", "--mqtt-port", str(mqtt_port)])
    directory = data / "broker" / "mosquitto"
    orphan = None
    try:
        server.start()
        server.stop()
        conf = (directory / "mosquitto.conf").resolve()
        orphan = subprocess.Popen([find_mosquitto(), "-c", str(conf)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
        (directory / PID_NAME).write_text(f"{orphan.pid}\n")
        deadline = time.monotonic() + 10
        while not _mqtt_accepts(mqtt_port):
            assert time.monotonic() < deadline and orphan.poll() is None, "the stand-in orphan did not start"
            time.sleep(0.05)

        server.start()
        assert orphan.wait(timeout=15) is not None  # stopped by the new server
        assert int((directory / PID_NAME).read_text()) != orphan.pid and _mqtt_accepts(mqtt_port)
    finally:
        server.stop()
        if orphan is not None and orphan.poll() is None:
            orphan.kill()
            orphan.wait()


def test_a_pidfile_naming_someone_elses_process_is_left_alone(tmp_path):
    from server.broker import stop_stale_mosquitto

    directory = tmp_path / "mosquitto"
    directory.mkdir()
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        (directory / PID_NAME).write_text(f"{bystander.pid}\n")
        assert stop_stale_mosquitto(directory, directory / "mosquitto.conf") is None
        assert bystander.poll() is None and not (directory / PID_NAME).exists()
    finally:
        bystander.kill()
        bystander.wait()
