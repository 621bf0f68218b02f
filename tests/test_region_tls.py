"""The province link over TLS, as a real province runs it across a WAN: a throw-away CA signs the
regional broker's certificate (for 127.0.0.1), the regional Mosquitto runs the generated
configuration with its TLS listener, centres run the generated bridge with ``[region] ca_file``, and
the aggregator connects with ``--tls-ca``. All real processes, as in tests/test_region.py."""

from __future__ import annotations

import asyncio
import json
import random
import ssl
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from server.broker_setup import LOG_NAME
from tests.helpers.centre import running_centre
from tests.helpers.region import (Aggregator, RegionalBroker, bridges_up, centre_config, creds_of, free_port, log_ids,
                                  pg_ids, traffic, until, write_centres_toml)
from tests.helpers.tls import issue_server_cert, make_ca


def mqtt_connect(port: int, user: str, password: str, ca: Path | None, timeout: float = 3.0) -> str:
    """Connect a fresh MQTT client (TLS when ``ca`` is given) and say what happened: "accepted",
    "refused: <reason>" (CONNACK with an error) or "no answer" (no CONNACK at all)."""
    outcome: list[str] = []
    done = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv311)
    client.username_pw_set(user, password)
    if ca is not None:
        client.tls_set(ca_certs=str(ca))

    def on_connect(c: mqtt.Client, userdata: object, flags: object, reason: object, properties: object) -> None:
        outcome.append("accepted" if not reason.is_failure else f"refused: {reason}")  # type: ignore[attr-defined]
        done.set()

    def on_disconnect(c: mqtt.Client, userdata: object, flags: object, reason: object, properties: object) -> None:
        done.set()

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    try:
        client.connect("127.0.0.1", port, keepalive=5)
    except (OSError, ssl.SSLError) as error:
        return f"no answer ({type(error).__name__})"
    client.loop_start()
    try:
        done.wait(timeout)
    finally:
        client.disconnect()
        client.loop_stop()
    return outcome[0] if outcome else "no answer"


def bridge_log(runtime: object) -> str:
    broker = getattr(runtime, "broker")
    return (broker.directory / LOG_NAME).read_text("utf-8", errors="replace")


async def test_events_reach_the_region_over_tls_and_only_where_the_ca_says(tmp_path: Path, pg: str) -> None:
    rng = random.Random(11)
    pki = tmp_path / "pki"
    province = make_ca(pki, "province")
    region_cert = issue_server_cert(province, pki, "region")
    impostor = make_ca(pki, "impostor")  # a CA the regional broker's certificate does not come from
    region_port = free_port()
    # hn-a trusts the province CA; hn-b was handed another CA, so to hn-b this broker is an impostor
    a_cfg = centre_config("hn-a", region_port, ca_file=str(province.crt))
    b_cfg = centre_config("hn-b", region_port, ca_file=str(impostor.crt))
    async with running_centre(tmp_path / "a", a_cfg, mqtt=True, broker="mosquitto") as a, \
            running_centre(tmp_path / "b", b_cfg, mqtt=True, broker="mosquitto") as b:
        toml = write_centres_toml(tmp_path / "centres.toml", [("hn-a", a.base_url, creds_of(a)),
                                                              ("hn-b", b.base_url, creds_of(b))])
        broker = RegionalBroker(toml, tmp_path / "region-broker", region_port,
                                tls={"cafile": str(province.crt), "certfile": str(region_cert.crt),
                                     "keyfile": str(region_cert.key)}).start()
        agg = None
        try:
            # catch-up off (0): whatever reaches PostgreSQL came over MQTT, i.e. through the TLS listener
            agg = Aggregator(pg, toml, region_port, tmp_path / "agg.log", catch_up=0, tls_ca=province.crt)
            await asyncio.to_thread(agg.start)
            await until(lambda: bridges_up(pg, "hn-a"), 15, "hn-a's bridge to announce itself over TLS")
            await traffic(a, 6, 3, rng)
            await traffic(b, 6, 3, rng)
            want = await log_ids(a, published_only=True)
            assert len(want) >= 12
            await until(lambda: want <= set(pg_ids(pg, "hn-a")), 15, "hn-a's events in PostgreSQL")
            with psycopg.connect(pg) as conn:
                vias = {r[0] for r in conn.execute("SELECT DISTINCT via FROM events WHERE centre = 'hn-a'")}
            assert vias == {"mqtt"}

            # hn-b's bridge refuses the broker's certificate: nothing leaves, and its broker log says why
            await until(lambda: "certificate verify failed" in bridge_log(b), 10, "hn-b's bridge to refuse the certificate")
            assert pg_ids(pg, "hn-b") == []
            assert not bridges_up(pg, "hn-b")
            assert "unknown ca" in broker.log_text()  # the region saw the handshake fail, not a login

            # the listener speaks nothing but TLS: hn-b's own (good) credentials get no answer over plain
            # TCP, and are accepted over TLS with the province CA
            secret = json.loads(creds_of(b).read_text())["mqtt_password"]
            assert mqtt_connect(region_port, "hn-b", secret, None).startswith("no answer")
            assert mqtt_connect(region_port, "hn-b", secret, province.crt) == "accepted"
        finally:
            if agg is not None:
                agg.stop()
            broker.stop()
