"""A kiosk's or pad's own MQTT connection: its availability, its requests, its counter's state.

Each device logs in as itself (username = device id, password = its secret), so the broker's ACL
lets it write only ``device/<own id>/...``. Requests (assistance, feedback) go with QoS 1 and count
as sent only when the broker acknowledged them within a short time; otherwise the caller falls back
to HTTP. paho's network thread never touches widgets: state messages are handed to a callback that
the UI wraps with ``Clock.schedule_once``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

import paho.mqtt.client as mqtt

from luot.mqtt_client import QOS, new_client
from luot.protocol import PayloadError, Topics, decode, encode

log = logging.getLogger("luot.kiosk.mqtt")


class DeviceMqtt:
    def __init__(self, centre_id: str, device_id: str, secret: str, host: str, port: int,
                 on_state: Callable[[str, dict[str, Any], bool], None] | None = None,
                 subscriptions: list[str] | None = None) -> None:
        self.topics = Topics(centre_id)
        self.device_id = device_id
        self.host, self.port = host, port
        self.on_state = on_state
        self.subscriptions = subscriptions or []
        self._connected = threading.Event()
        client = new_client(device_id, secret, persistent=False, reconnect=(1, 10),
                            will_topic=self.topics.device_availability(device_id))
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self.client = client

    def start(self) -> None:
        self.client.connect_async(self.host, self.port, keepalive=15)
        self.client.loop_start()

    def stop(self) -> None:
        if self._connected.is_set():
            info = self.client.publish(self.topics.device_availability(self.device_id), b"offline", qos=QOS, retain=True)
            info.wait_for_publish(1.0)
        self.client.disconnect()
        self.client.loop_stop()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            log.warning("MQTT login as %s refused: %s", self.device_id, reason_code)
            return
        self._connected.set()
        client.publish(self.topics.device_availability(self.device_id), b"online", qos=QOS, retain=True)
        for topic in self.subscriptions:
            client.subscribe(topic, qos=QOS)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        self._connected.clear()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            decoded = decode(message.payload)
        except PayloadError as error:
            log.warning("ignored a bad message on %s: %s", message.topic, error)
            return
        if self.on_state:
            try:
                self.on_state(message.topic, decoded, bool(message.retain))
            except Exception:  # noqa: BLE001 - paho's thread must survive a UI bug
                log.exception("state handler failed")

    def send(self, kind: str, data: dict[str, Any], timeout: float = 2.0) -> bool:
        """Publish a request (``assistance``/``feedback``) with QoS 1; True once the broker has it."""
        if not self.connected:
            return False
        topic = self.topics.assistance(self.device_id) if kind == "assistance" else self.topics.feedback(self.device_id)
        info = self.client.publish(topic, encode(kind, data), qos=QOS)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return False
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError):
            return False
        return info.is_published()
