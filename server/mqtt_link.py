"""The server's MQTT adapter: committed events out, device requests in. No queue logic here.

Out: :meth:`MqttLink.publish_committed` is called only *after* the events are in SQLite, so a
device never hears of a ticket the server could lose. Each event goes to its events topic at once; then the
retained state topics are refreshed (at most every ``STATE_INTERVAL``, with everything that changed
meanwhile), so a display that reboots shows the right numbers at once.
On every (re)connect the link announces ``online`` (its last will says ``offline``) and republishes
all retained state, because a broker restarted without persistence has forgotten it.

In: feedback and assistance payloads from devices are validated with :mod:`luot.protocol`; a bad
one is logged with a plain reason, counted in :attr:`MqttLink.rejected` and dropped — nothing a
device sends can raise out of the paho callback. A *retained* request is dropped too: the broker
hands it to every new subscription, so it would come back as new after each restart; a request is
an event, never state, and devices send them not retained. Good ones are handed to the server's coroutine
``on_inbound(kind, device_id, data)`` on the server's event loop (paho runs its own thread).

MQTT 3.1.1 with paho-mqtt 2.x, because the embedded amqtt broker has no MQTT 5. The session is
persistent (clean_session False), so feedback sent while the server restarts waits in the broker.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Iterable, NamedTuple

import paho.mqtt.client as mqtt
from pydantic import BaseModel

from luot.config import CentreConfig
from luot.mqtt_client import QOS, new_client
from luot.protocol import AVAILABILITY_VALUES, PayloadError, Topics, encode, parse_inbound, public_data
from server.engine import Event, QueueEngine, utc_now

log = logging.getLogger("luot.mqtt")

InboundHandler = Callable[[str, str, BaseModel], Awaitable[Any]]
INBOUND_KINDS = ("feedback", "assistance")
CALL_KINDS = frozenset({"ticket.called", "ticket.recalled"})
DAY_KINDS = frozenset({"day.opened", "day.closed"})
STATE_INTERVAL = 0.05
"""Seconds between two refreshes of the retained state topics at most (events are never delayed)."""


REVOKED = "revoked"
"""Retained availability of a device the centre has thrown out (published by the server)."""


class DeviceStatus(NamedTuple):
    """A device's availability as the server last heard it; ``since`` is when it heard it."""

    status: str  # "online", "offline", "revoked" or "unknown" (never heard from)
    since: datetime | None


class MqttLink:
    """One paho client logged in as ``server``; thread-safe to call from the server's loop."""

    def __init__(
        self,
        config: CentreConfig,
        host: str,
        port: int,
        username: str,
        password: str,
        *,
        on_inbound: InboundHandler | None = None,
        engine: QueueEngine | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        clock: Callable[[], datetime] = utc_now,
        keepalive: int = 15,
    ) -> None:
        """``engine``, when given, lets the link republish retained state on its first connect;
        otherwise it learns the engine from the first :meth:`publish_committed`."""
        self.config = config
        self.topics = Topics(config.centre.id)
        self.host = host
        self.port = port
        self.on_inbound = on_inbound
        self.engine = engine
        self.loop = loop
        self.clock = clock
        self.keepalive = keepalive
        self.rejected = 0
        """Inbound payloads refused (bad JSON, wrong version, invalid data, unknown device)."""
        self.accepted = 0
        self._connected = threading.Event()
        # Set when the broker routes our own "offline" back to us: proof it was delivered before
        # we hang up (amqtt acknowledges a message before routing it and may drop it on disconnect).
        self._own_offline_routed = threading.Event()
        self._status_lock = threading.Lock()
        self._status: dict[str, DeviceStatus] = {}
        self._devices = {device.id for device in config.devices}
        self._revoked: set[str] = set()
        # The client id is the username: Mosquitto enforces it (use_username_as_clientid) and the
        # embedded broker refuses anything else.
        client = new_client(username, password, persistent=True, reconnect=(1, 30),
                            will_topic=self.topics.server_availability, tls=config.mqtt.tls, max_inflight=100)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        self._client = client
        # Retained state waiting to go out (see _state_changed): counters whose view changed,
        # whether the recent calls changed, and the time the state is as of.
        self._dirty_counters: set[int] = set()
        self._dirty_calls = False
        self._dirty_now: datetime | None = None
        self._flush_handle: asyncio.TimerHandle | None = None
        self._last_flush = float("-inf")

    # ------------------------------------------------------------------ life cycle
    async def start(self, wait: float = 0.0) -> bool:
        """Connect in the background on the running loop, where inbound requests will be run.

        Never fails because the broker is down: paho retries until it answers (power cuts happen
        and the broker may boot after the server). ``wait`` > 0 waits that long for the first
        connection; the result says whether the link is connected.
        """
        self.loop = self.loop or asyncio.get_running_loop()
        self._client.connect_async(self.host, self.port, self.keepalive)
        self._client.loop_start()
        return await self.wait_connected(wait) if wait > 0 else self.connected

    async def stop(self, timeout: float = 3.0) -> None:
        """Say ``offline`` (retained) and disconnect cleanly, so no last will is needed."""
        if self._flush_handle is not None:  # the last picture goes out before "offline"
            self._flush_handle.cancel()
            self._flush_state()
        await asyncio.to_thread(self._stop, timeout)

    def _stop(self, timeout: float) -> None:
        # Connected as soon as the broker accepted the login (is_connected), even if it has not
        # confirmed the subscriptions yet: "online" went out then, so "offline" must follow.
        if self._connected.is_set() or self._client.is_connected():
            self._own_offline_routed.clear()
            info = self._client.publish(self.topics.server_availability, b"offline", qos=QOS, retain=True)
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError) as error:
                log.warning("could not announce offline before stopping: %s", error)
            else:
                if not self._own_offline_routed.wait(timeout):
                    log.warning("the broker did not confirm routing 'offline' within %.0f s", timeout)
        self._connected.clear()
        self._client.disconnect()
        self._client.loop_stop()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self, timeout: float = 10.0) -> bool:
        """True once the broker has accepted the link and its subscriptions, False after ``timeout`` seconds."""
        return await asyncio.to_thread(self._connected.wait, timeout)

    # ------------------------------------------------------------------ out
    def publish_committed(self, events: list[Event], engine: QueueEngine, now: datetime) -> None:
        """Publish events already committed to SQLite, then refresh the retained state they changed."""
        self.engine = engine
        if not events:
            return
        counters: set[int] = set()
        calls_changed = False
        for event in events:
            payload = encode(event.type, public_data(event.data), id=event.id, at=event.at.isoformat(),
                             centre=self.config.centre.id)
            for topic in self.topics.event_topics(event.type):
                self._publish(topic, payload, retain=False)
            for key in ("counter", "from_counter", "target_counter"):
                number = event.data.get(key)
                if isinstance(number, int) and number in engine.counters:
                    counters.add(number)
            if event.type in DAY_KINDS:
                counters.update(engine.counters)
            calls_changed = calls_changed or event.type in CALL_KINDS or event.type in DAY_KINDS
        self._state_changed(counters, calls_changed, now)

    def _state_changed(self, counters: set[int], calls: bool, now: datetime) -> None:
        """Refresh retained state now, or, if it went out less than ``STATE_INTERVAL`` ago, once
        that interval is over, with everything that changed meanwhile.

        Events (a call, a new ticket) always go out at once; only the retained pictures of the
        hall (queue, counters, recent calls) are throttled. At a busy moment hundreds of commits a
        second would each rebuild and send the whole queue picture, which costs more than the
        commit itself; a display still gets the latest picture within ``STATE_INTERVAL``.
        """
        self._dirty_counters |= counters
        self._dirty_calls = self._dirty_calls or calls
        self._dirty_now = now
        if self._flush_handle is not None:
            return  # a refresh is already due
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside the server's loop (scripts): no timer to wait for
            self._flush_state()
            return
        wait = self._last_flush + STATE_INTERVAL - loop.time()
        if wait <= 0:
            self._flush_state()
        else:
            self._flush_handle = loop.call_later(wait, self._flush_state)

    def _flush_state(self) -> None:
        self._flush_handle = None
        if self.engine is None or self._dirty_now is None:
            return
        try:
            self._last_flush = asyncio.get_running_loop().time()
        except RuntimeError:
            pass
        counters, self._dirty_counters = sorted(self._dirty_counters), set()
        calls, self._dirty_calls = self._dirty_calls, False
        now, self._dirty_now = self._dirty_now, None
        self.publish_state(self.engine, now, counters=counters, calls=calls, notice=False)

    def publish_state(self, engine: QueueEngine, now: datetime, counters: Iterable[int] | None = None,
                      calls: bool = True, notice: bool = True) -> None:
        """Publish retained state: the given counters (all when None), the queue, calls, notice."""
        self.engine = engine
        numbers = list(engine.counters) if counters is None else list(counters)
        for number in numbers:
            self._publish_state(self.topics.counter_state(number), "state.counter", engine.counter_view(number), now)
        snapshot = engine.snapshot(now)
        queue = {
            "day": snapshot["day"],
            "groups": snapshot["groups"],
            "waiting_total": snapshot["waiting_total"],
            "counters": [
                {key: view[key] for key in ("counter", "name", "status", "number", "group")}
                for view in snapshot["counters"]
            ],
        }
        self._publish_state(self.topics.queue_state, "state.queue", queue, now)
        if calls:
            self._publish_state(self.topics.recent_calls_state, "state.calls", {"calls": snapshot["recent_calls"]}, now)
        if notice:
            self.publish_notice(now)

    def publish_notice(self, now: datetime | None = None) -> None:
        centre = self.config.centre
        self._publish_state(self.topics.notice_state, "state.notice",
                            {"vi": centre.notice, "en": centre.notice_en}, now or self.clock())

    def _publish_state(self, topic: str, kind: str, data: dict[str, Any], now: datetime) -> None:
        payload = encode(kind, data, id=uuid.uuid4().hex, at=now.isoformat(), centre=self.config.centre.id)
        self._publish(topic, payload, retain=True)

    def _publish(self, topic: str, payload: bytes, retain: bool) -> None:
        # While disconnected paho keeps QoS 1 messages and sends them on reconnect; retained state
        # is republished on reconnect anyway.
        info = self._client.publish(topic, payload, qos=QOS, retain=retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            log.warning("publish to %s failed: %s", topic, mqtt.error_string(info.rc))

    # ------------------------------------------------------------------ devices
    def set_devices(self, active: set[str], revoked: set[str]) -> None:
        """The devices the registry admits now (server/device_access.py); a revoked one's retained
        availability becomes ``revoked``, and stays so whatever its last will says later."""
        with self._status_lock:
            newly = revoked - self._revoked
            self._devices, self._revoked = set(active), set(revoked)
        for device in sorted(newly):
            self._mark_revoked(device)

    def _mark_revoked(self, device: str) -> None:
        with self._status_lock:
            self._status[device] = DeviceStatus(REVOKED, datetime.now(timezone.utc))
        self._publish(self.topics.device_availability(device), REVOKED.encode(), retain=True)

    def devices_status(self) -> dict[str, DeviceStatus]:
        """Every configured device's availability (``unknown`` until it has been heard from)."""
        with self._status_lock:
            known = dict(self._status)
        result = {device: DeviceStatus("unknown", None) for device in sorted(self._devices)}
        result.update(known)
        return result

    # ------------------------------------------------------------------ paho callbacks (paho's thread)
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            log.error("MQTT broker %s:%s refused the server: %s", self.host, self.port, reason_code)
            return
        log.info("connected to MQTT broker %s:%s", self.host, self.port)
        client.publish(self.topics.server_availability, b"online", qos=QOS, retain=True)
        client.subscribe([(topic, QOS) for topic in (*self.topics.inbound_all, self.topics.device_availability_all,
                                                     self.topics.server_availability)])
        self.publish_notice()
        if self.engine is not None and self.loop is not None:
            # The engine belongs to the loop's thread: read it there, not here.
            try:
                self.loop.call_soon_threadsafe(self._republish)
            except RuntimeError:
                log.warning("event loop closed: retained state not republished")

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reason_codes: Any, properties: Any) -> None:
        # Ready only once the broker confirmed the subscriptions: a pad's rating sent right after
        # "connected" would otherwise be routed before the server listens, and be lost. Last, so
        # whoever waits for the link may publish now, and its state is not published twice.
        self._connected.set()

    def _republish(self) -> None:
        if self.engine is not None:
            self.publish_state(self.engine, self.clock(), notice=False)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        if was_connected and reason_code.is_failure:
            log.warning("lost the MQTT broker (%s); reconnecting", reason_code)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic == self.topics.server_availability:  # our own status, routed back
            if message.payload == b"offline":
                self._own_offline_routed.set()
            return
        try:
            self._handle(message.topic, message.payload, bool(message.retain))
        except Exception:  # a bug here must not kill paho's thread and with it all MQTT traffic
            self.rejected += 1
            log.exception("unexpected error handling a message on %s", message.topic)

    def _handle(self, topic: str, payload: bytes, retained: bool = False) -> None:
        device = self.topics.device_of(topic)
        kind = topic.rsplit("/", 1)[-1]
        if device is None:
            return self._reject(topic, None, "not a device topic of this centre")
        if kind == "availability":
            return self._availability(device, payload)
        if kind not in INBOUND_KINDS:
            return self._reject(topic, device, f"unknown message kind {kind!r}")
        if retained:
            return self._reject(topic, device, "a retained request is a stale one (requests are never retained)")
        if device not in self._devices:
            return self._reject(topic, device, "device is not in the centre configuration")
        try:
            data = parse_inbound(kind, payload)  # type: ignore[arg-type]
        except PayloadError as error:
            return self._reject(topic, device, str(error))
        self.accepted += 1
        if self.on_inbound is None or self.loop is None:
            log.warning("%s from %s accepted but nobody handles it", kind, device)
            return
        try:
            future = asyncio.run_coroutine_threadsafe(self.on_inbound(kind, device, data), self.loop)
        except RuntimeError:
            log.error("%s from %s dropped: the server's event loop is closed", kind, device)
            return
        future.add_done_callback(lambda done: self._report(done, kind, device))

    def _availability(self, device: str, payload: bytes) -> None:
        value = payload.decode("utf-8", errors="replace").strip()
        with self._status_lock:
            revoked = device in self._revoked
        if revoked:
            if value != REVOKED:  # its last will, or a stale "online", arrived after the revocation
                self._mark_revoked(device)
            return
        if value not in AVAILABILITY_VALUES:
            log.warning("availability of %s: expected 'online' or 'offline', got %d bytes", device, len(payload))
            return
        with self._status_lock:
            self._status[device] = DeviceStatus(value, datetime.now(timezone.utc))

    def _reject(self, topic: str, device: str | None, reason: str) -> None:
        # The reason names what is wrong; the payload itself is never logged (it could hold anything).
        self.rejected += 1
        log.warning("rejected message from %s on %s: %s", device or "?", topic, reason)

    @staticmethod
    def _report(done: "asyncio.Future[Any]", kind: str, device: str) -> None:
        if done.cancelled():
            return
        error = done.exception()
        if error is not None:
            log.error("handling %s from %s failed: %s", kind, device, error, exc_info=error)
