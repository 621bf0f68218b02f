"""The display's MQTT client: its own identity, retained state on every connect, live calls after.

* MQTT 3.1.1 (the embedded amqtt broker has no MQTT 5), paho-mqtt 2.x with
  ``CallbackAPIVersion.VERSION2``.
* Username = client id = the device id (``display-hall``): the broker refuses any other client id,
  and the ACL lets this user write only its own availability topic.
* Last will ``offline`` (retained) on ``device/<id>/availability``; ``online`` (retained) on every
  connect, ``offline`` on a clean stop, so the manager dashboard knows whether the screen is alive.
* Clean session: what a display needs after a gap is the *current* state, which the broker hands
  over as retained messages in the SUBACK's wake; calls missed meanwhile are history, not
  announcements. On every reconnect it subscribes again and so resyncs.
* Reconnects on its own with exponential backoff (paho: 1 s doubling to 30 s), from the first
  connection attempt on, so a display that boots before the broker simply waits.

No Kivy here: callbacks run on paho's thread and the caller hops to its UI thread.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any, Callable

import paho.mqtt.client as mqtt

from luot.mqtt_client import QOS, new_client
from luot.protocol import Topics

log = logging.getLogger(__name__)

MessageHandler = Callable[[str, bytes, bool], None]
"""(topic, payload, retained) on paho's thread."""
StatusHandler = Callable[[bool], None]
"""Called with True once subscribed after each connect, False when the connection is lost."""


class SecretError(RuntimeError):
    """The device has no secret: say where it was looked for."""


def load_secret(data_dir: str | Path, device_id: str) -> str:
    """The device's secret from ``<data>/secrets.json`` (written by the server, mode 0600)."""
    path = Path(data_dir) / "secrets.json"
    try:
        secrets = json.loads(path.read_text("utf-8"))
    except OSError as error:
        raise SecretError(f"{path}: cannot read the device secrets ({error.strerror}); "
                          "enrol the display (--enrol URL CODE) or pass --secret") from None
    except json.JSONDecodeError:
        raise SecretError(f"{path}: not a JSON file of device secrets") from None
    if not isinstance(secrets, dict) or not isinstance(secrets.get(device_id), str):
        raise SecretError(f"{path}: no secret for device {device_id!r}; is it in the centre's [[devices]]?")
    return secrets[device_id]


def subscriptions(topics: Topics) -> list[str]:
    """Exactly what a display may read (amqtt refuses wider filters)."""
    return [topics.state_all, topics.call_events, topics.counter_events, topics.server_availability]


class DisplayClient:
    """One paho client logged in as the display device."""

    def __init__(self, topics: Topics, device_id: str, secret: str, host: str, port: int, *,
                 on_message: MessageHandler, on_status: StatusHandler, keepalive: int = 10,
                 tls: bool = False, min_delay: int = 1, max_delay: int = 30) -> None:
        self.topics = topics
        self.device_id = device_id
        self.host, self.port = host, port
        self.keepalive = keepalive
        self.on_message = on_message
        self.on_status = on_status
        self.connects = 0
        """How many times the broker accepted us (1 on first connect; more after reconnects)."""
        self._subscribed = threading.Event()
        self._sub_mid: int | None = None
        self._availability = topics.device_availability(device_id)
        client = new_client(device_id, secret, persistent=False, reconnect=(min_delay, max_delay),
                            will_topic=self._availability, tls=tls)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self._client = client

    # ------------------------------------------------------------------ life cycle
    def start(self) -> None:
        """Connect in the background; never fails because the broker is down (it keeps trying)."""
        self._client.connect_async(self.host, self.port, self.keepalive)
        self._client.loop_start()

    def stop(self, timeout: float = 2.0) -> None:
        """Say ``offline`` (retained) and disconnect cleanly."""
        if self._client.is_connected():
            info = self._client.publish(self._availability, b"offline", qos=QOS, retain=True)
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError):
                pass
        self._client.disconnect()
        self._client.loop_stop()

    @property
    def subscribed(self) -> bool:
        return self._subscribed.is_set()

    def wait_subscribed(self, timeout: float = 10.0) -> bool:
        return self._subscribed.wait(timeout)

    # ------------------------------------------------------------------ paho callbacks (paho's thread)
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            # paho keeps retrying with backoff; a wrong secret is the usual cause.
            log.error("MQTT broker %s:%s refused %s: %s", self.host, self.port, self.device_id, reason_code)
            return
        self.connects += 1
        log.info("connected to MQTT broker %s:%s as %s", self.host, self.port, self.device_id)
        client.publish(self._availability, b"online", qos=QOS, retain=True)
        result, mid = client.subscribe([(topic, QOS) for topic in subscriptions(self.topics)])
        self._sub_mid = mid

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reason_codes: Any, properties: Any) -> None:
        if mid != self._sub_mid:
            return
        refused = [code for code in reason_codes if code.is_failure]
        if refused:
            log.error("broker refused some display subscriptions: %s", refused)
        self._subscribed.set()
        self._safe(self.on_status, True)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        self._subscribed.clear()
        log.warning("lost the MQTT broker %s:%s (%s); reconnecting", self.host, self.port, reason_code)
        self._safe(self.on_status, False)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._safe(self.on_message, message.topic, message.payload, bool(message.retain))

    @staticmethod
    def _safe(callback: Callable[..., None], *args: Any) -> None:
        try:
            callback(*args)
        except Exception:  # a bug in a handler must not kill paho's thread (and all MQTT with it)
            log.exception("display MQTT handler failed")
