"""One way to make the MQTT client of a Luot program (server link, kiosk, display, province
aggregator), so every one logs in the same way: its own username as client id (Mosquitto enforces
``use_username_as_clientid``, the embedded broker refuses anything else), MQTT 3.1.1, QoS 1,
a retained "offline" last will where the program announces its availability, paho's own
reconnect with a back-off, and TLS when the broker is on a real network.
"""

from __future__ import annotations

import ssl

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

QOS = 1
"""Every Luot message goes at least once (readers drop an id they have already handled)."""


def new_client(user: str, secret: str, *, persistent: bool, reconnect: tuple[int, int],
               will_topic: str | None = None, tls: bool | ssl.SSLContext = False,
               max_inflight: int | None = None, manual_ack: bool = False) -> mqtt.Client:
    """A paho client logged in as ``user``; the caller sets its callbacks and connects it.

    ``persistent``: the broker keeps the session (subscriptions and QoS 1 messages queued while
    away) for a program that must not miss events, the server and the aggregator; devices start
    clean and rebuild their picture from retained state. ``reconnect``: paho's back-off bounds in
    seconds. ``tls``: True for the system's CAs, or a context that trusts a given CA.
    """
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user, clean_session=not persistent,
                         protocol=mqtt.MQTTv311, manual_ack=manual_ack)
    client.username_pw_set(user, secret)
    if will_topic is not None:
        client.will_set(will_topic, b"offline", qos=QOS, retain=True)
    client.reconnect_delay_set(min_delay=reconnect[0], max_delay=reconnect[1])
    if max_inflight is not None:
        client.max_inflight_messages_set(max_inflight)
    if isinstance(tls, ssl.SSLContext):
        client.tls_set_context(tls)
    elif tls:
        client.tls_set()
    return client
