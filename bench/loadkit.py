"""What the load benchmark and the fault drills share: a centre file for heavy days, a real
Mosquitto, a real ``luot server`` child process, a cheap keep-alive HTTP client, and display
subscribers that timestamp every call they receive.

Nothing here is a mock: the server is the same process a centre runs (``luot server``), the broker
is Mosquitto from broker_config/, and devices log in with their own credentials.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from luot.config import CentreConfig, load_config  # noqa: E402
from luot.credentials import Credentials, load_or_create  # noqa: E402
from luot.protocol import Topics  # noqa: E402
from server.app import free_port  # noqa: E402
from server.broker import RunningBroker, start_broker  # noqa: E402
from tests.helpers.mqtt import LoopThread  # noqa: E402
from tests.helpers.process import ServerProcess  # noqa: E402

SAMPLE = ROOT / "assets" / "centre.sample.toml"


# ---------------------------------------------------------------------------------------- centre
def write_centre(directory: Path, mqtt_port: int, capacity: int = 999) -> Path:
    """The sample centre, pointed at an external broker on ``mqtt_port``; with ``capacity`` > 999
    each group gets a wider number range so a benchmark can issue thousands of tickets a day."""
    text = SAMPLE.read_text("utf-8")
    if capacity != 999:
        def widen(match: re.Match[str]) -> str:
            index = int(match.group(1)) // 1000  # 1001 -> group 1, 7001 -> group 7
            return f"first_number = {(index - 1) * 10_000 + 1}\ncapacity = {capacity}"
        text = re.sub(r"^first_number = (\d+)$", widen, text, flags=re.M)
    text = text.replace("[mqtt]\n", '[mqtt]\nhost = "127.0.0.1"\n', 1)
    text = re.sub(r"^port = 18830$", f"port = {mqtt_port}", text, flags=re.M)
    text = re.sub(r'^bind = "0.0.0.0".*$', 'bind = "127.0.0.1"', text, flags=re.M)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "centre.toml"
    path.write_text(text, "utf-8")
    return path


@dataclass
class Centre:
    """A real Mosquitto (in its own loop thread) and a real ``luot server`` child process."""

    directory: Path
    capacity: int = 999
    config_path: Path = field(init=False)
    config: CentreConfig = field(init=False)
    credentials: Credentials = field(init=False)
    mqtt_port: int = field(init=False)
    broker: RunningBroker | None = None
    server: ServerProcess | None = None
    _loop: LoopThread | None = None

    def __post_init__(self) -> None:
        self.mqtt_port = free_port()
        self.config_path = write_centre(self.directory, self.mqtt_port, self.capacity)
        self.config = load_config(self.config_path)
        self.data = self.directory / "var"
        self.data.mkdir(parents=True, exist_ok=True)
        self.credentials = load_or_create(self.config, self.data / "secrets.json")
        self.topics = Topics(self.config.centre.id)

    # broker
    def start_broker(self) -> None:
        self._loop = self._loop or LoopThread()
        self.broker = self._loop.run(start_broker(self.config, self.credentials, self.directory / "broker",
                                                  self.mqtt_port, kind="mosquitto", bind="127.0.0.1"))

    def stop_broker(self) -> None:
        if self.broker is not None and self._loop is not None:
            self._loop.run(self.broker.stop())
            self.broker = None

    # server
    def start_server(self) -> ServerProcess:
        if self.server is None:
            self.server = ServerProcess(self.data, extra=["--config", str(self.config_path)])
        self.server.start()
        return self.server

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    @property
    def pid(self) -> int:
        assert self.server is not None and self.server.proc is not None
        return self.server.proc.pid

    def device_header(self, device: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {device}:{self.credentials.password(device)}"}

    def manager_password(self) -> str:
        text = (self.data / "first-login.txt").read_text("utf-8")
        return re.search(r"password: (\S+)", text).group(1)  # type: ignore[union-attr]

    async def staff_header(self) -> dict[str, str]:
        """The first manager's session (a manager may open several counters). Its generated
        password is a one-time one: the first call replaces it, as the operator would."""
        async with Http(self.url) as http:
            password = getattr(self, "_manager_password", None) or self.manager_password()
            status, body = await http.request("POST", "/api/v1/login", {"username": "quanly", "password": password})
            assert status == 200, body
            header = {"Authorization": f"Bearer {body['token']}"}
            if body.get("must_change_password"):
                new = password + "-changed"
                status, answer = await http.request("POST", "/api/v1/password",
                                                    {"old_password": password, "new_password": new}, headers=header)
                assert status == 200, answer
                self._manager_password = new
            return header

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
        self.stop_broker()
        if self._loop is not None:
            self._loop.close()
            self._loop = None


# ---------------------------------------------------------------------------------------- HTTP
class Http:
    """A minimal HTTP/1.1 keep-alive JSON client on asyncio streams.

    httpx costs about 1 ms of client CPU per request, which on a 2-core machine steals the
    server's core and hides its real speed; this costs a few tens of microseconds.
    """

    def __init__(self, base_url: str, headers: dict[str, str] | None = None, local_addr: str | None = None) -> None:
        match = re.match(r"http://([^:/]+):(\d+)", base_url)
        assert match, base_url
        self.host, self.port = match.group(1), int(match.group(2))
        self.headers = headers or {}
        self.local_addr = (local_addr, 0) if local_addr else None  # another loopback address: another machine
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> "Http":
        await self.connect()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port, local_addr=self.local_addr)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except (ConnectionError, OSError):
                pass
            self.writer = None

    async def request(self, method: str, path: str, body: Any = None,
                      headers: dict[str, str] | None = None) -> tuple[int, Any]:
        if self.writer is None:
            await self.connect()
        assert self.reader is not None and self.writer is not None
        payload = b"" if body is None else json.dumps(body).encode()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}",
                 f"Content-Length: {len(payload)}"]
        if body is not None:
            lines.append("Content-Type: application/json")
        for key, value in {**self.headers, **(headers or {})}.items():
            lines.append(f"{key}: {value}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            self.writer = None
            raise ConnectionError("server closed the connection")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        length = 0
        for line in header_lines:
            if line.lower().startswith("content-length:"):
                length = int(line.split(":", 1)[1])
        raw = await self.reader.readexactly(length) if length else b""
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = raw.decode("utf-8", "replace")
        return status, data


# ---------------------------------------------------------------------------------------- MQTT
class Display:
    """A display device on MQTT (its own user), recording every call event with its arrival time."""

    def __init__(self, centre: Centre, device: str = "display-hall", clean_session: bool = True) -> None:
        self.topics = centre.topics
        self.calls: dict[str, float] = {}  # ticket_id of a first call -> perf_counter at receipt
        self.event_ids: list[str] = []
        self.state_at: list[float] = []  # perf_counter of each retained/live state message
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self.connects = 0
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device, clean_session=clean_session,
                             protocol=mqtt.MQTTv311)
        client.username_pw_set(device, centre.credentials.password(device))
        client.reconnect_delay_set(min_delay=1, max_delay=1)
        client.max_inflight_messages_set(100)
        client.on_connect = self._on_connect
        client.on_subscribe = lambda *a: self._subscribed.set()
        client.on_message = self._on_message
        self.client = client
        self.host, self.port = "127.0.0.1", centre.mqtt_port

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            return
        self.connects += 1
        client.subscribe([(self.topics.call_events, 1), (self.topics.state_all, 1)])
        self._connected.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        at = time.perf_counter()
        if message.topic == self.topics.call_events:
            body = json.loads(message.payload)
            with self._lock:
                self.event_ids.append(body["id"])
                if body["kind"] == "ticket.called":
                    self.calls.setdefault(body["data"]["ticket_id"], at)
        else:
            with self._lock:
                self.state_at.append(at)

    def start(self, timeout: float = 10.0) -> "Display":
        self.client.connect(self.host, self.port, keepalive=5)
        self.client.loop_start()
        if not (self._connected.wait(timeout) and self._subscribed.wait(timeout)):
            raise TimeoutError("display could not connect and subscribe")
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def received(self, ticket_id: str) -> float | None:
        with self._lock:
            return self.calls.get(ticket_id)


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (nearest rank) of ``values``."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(q * len(ordered) + 0.5)) - 1))
    return ordered[index]
