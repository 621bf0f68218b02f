"""The aggregator's intake: the regional broker (live) and each centre's event log (catch-up).

MQTT: one paho client logged in as ``aggregator`` with a persistent session (clean session off,
QoS 1) and **manual acknowledgement**: a message is acknowledged only after the transaction that
stored it has committed. A kill -9 between the two leaves it unacknowledged, the broker sends it
again, and the id ledger (:mod:`region.store`) turns the repeat into a no-op: nothing lost, nothing
twice.

HTTP catch-up: a bridge queue can overflow during a long outage, so every ``catch_up_seconds`` the
aggregator reads ``GET /api/v1/events?after=<high-water seq>`` from each centre with the centre's
``region`` manager credential, stores the events and the new high-water seq in one transaction.
Events already received over MQTT are skipped by the same ledger. So a gap of any length is filled.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import httpx
import paho.mqtt.client as mqtt

from luot.mqtt_client import QOS, new_client
from luot.protocol import ROOT
from region.live import ChangeSignal
from region.settings import AGGREGATOR_USER, Region
from region.store import Store
from region.tls import client_context, diagnose
from region.validate import Availability, RegionEvent, Rejected, parse_logged, parse_mqtt

log = logging.getLogger("luot.region")

BATCH_MAX = 500
BATCH_WAIT = 0.05
PAGE = 2000
PRUNE_EVERY = 600.0
"""Seconds between deletions of the maintained rows no dashboard reads any more (Store.prune)."""
COMPLAIN_EVERY = 300.0
"""While the aggregator cannot connect, the reason is logged at most this often (seconds)."""


def subscriptions() -> list[str]:
    """Everything the region reads. ``events/call`` repeats ``events/ticket`` calls: not needed."""
    return [f"{ROOT}/+/events/ticket", f"{ROOT}/+/events/counter", f"{ROOT}/+/events/assistance",
            f"{ROOT}/+/server/availability", f"{ROOT}/+/bridge/availability", f"{ROOT}/+/device/+/availability"]


@dataclass
class _Item:
    mid: int
    qos: int
    generation: int
    value: RegionEvent | Availability | None
    reason: str | None = None
    topic: str = ""
    at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))


@dataclass
class Counters:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    caught_up: int = 0


class Ingest:
    """Threads: paho's network loop, one writer, one catch-up reader. ``start()`` / ``stop()``."""

    def __init__(self, region: Region, dsn: str, mqtt_host: str, mqtt_port: int, *,
                 catch_up_seconds: float | None = None, tls_ca: str | None = None) -> None:
        self.region = region
        self.dsn = dsn
        self.centres = frozenset(region.centres)
        self.catch_up_seconds = catch_up_seconds if catch_up_seconds is not None else region.info.catch_up_seconds
        self.counters = Counters()
        self._queue: queue.Queue[_Item] = queue.Queue(maxsize=20_000)
        self._stop = threading.Event()
        self._generation = 0
        self._lock = threading.Lock()
        self.changed = ChangeSignal()
        """Moved after each commit that stored something: the dashboard's snapshot and live streams."""
        self.tls_ca = tls_ca
        client = new_client(AGGREGATOR_USER, region.secrets[AGGREGATOR_USER], persistent=True, reconnect=(1, 10),
                            tls=client_context(tls_ca) if tls_ca else False, max_inflight=100, manual_ack=True)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._connect_failed
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self.client = client
        self.mqtt_host, self.mqtt_port = mqtt_host, mqtt_port
        self._threads: list[threading.Thread] = []
        self.connected = threading.Event()
        self._next_complaint = 0.0

    # ------------------------------------------------------------------ life cycle
    def start(self) -> None:
        store = Store.connect(self.dsn, self.region.zone)
        try:
            store.create_schema()
            store.register_centres((c.id, c.name, c.ward) for c in self.region.centres.values())
        finally:
            store.close()
        self._threads = [threading.Thread(target=self._writer, name="region-writer", daemon=True)]
        if self.catch_up_seconds > 0:  # 0 turns the HTTP catch-up off (benchmarks without centre servers)
            self._threads.append(threading.Thread(target=self._catch_up_loop, name="region-catch-up", daemon=True))
        for thread in self._threads:
            thread.start()
        self.client.connect_async(self.mqtt_host, self.mqtt_port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        self._stop.set()
        self.client.disconnect()
        self.client.loop_stop()
        for thread in self._threads:
            thread.join(10)

    # ------------------------------------------------------------------ MQTT (paho's thread)
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            log.error("regional broker refused the aggregator: %s", reason)
            return
        with self._lock:
            self._generation += 1
        client.subscribe([(topic, QOS) for topic in subscriptions()])
        self.connected.set()
        self._next_complaint = 0.0  # the next failure is news again
        log.info("connected to the regional broker %s:%s", self.mqtt_host, self.mqtt_port)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        was_connected = self.connected.is_set()
        self.connected.clear()
        with self._lock:
            self._generation += 1  # acknowledgements of the old connection's messages must not be sent
        if self._stop.is_set():
            return
        if was_connected:
            log.warning("lost the regional broker (%s); paho reconnects", reason)
        else:  # closed before the broker answered: e.g. plain MQTT sent to its TLS listener
            self._connect_failed(client, userdata)

    def _connect_failed(self, client: mqtt.Client, userdata: Any) -> None:
        """paho retries on its own, silently; say once (then every few minutes) why it does not get in."""
        now = time.monotonic()
        if self._stop.is_set() or now < self._next_complaint:
            return
        self._next_complaint = now + COMPLAIN_EVERY
        log.error("cannot connect to the regional broker %s:%s (retrying): %s", self.mqtt_host, self.mqtt_port,
                  diagnose(self.mqtt_host, self.mqtt_port, self.tls_ca))

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            generation = self._generation
        try:
            value: RegionEvent | Availability | None = parse_mqtt(message.topic, message.payload, self.centres)
            reason = None
        except Rejected as error:
            value, reason = None, str(error)
        except Exception as error:  # noqa: BLE001 - nothing a centre sends may stop the intake
            value, reason = None, f"{message.topic[:80]}: unreadable ({type(error).__name__})"
        self.counters.received += 1
        self._queue.put(_Item(message.mid, message.qos, generation, value, reason, message.topic))

    # ------------------------------------------------------------------ writer thread
    def _writer(self) -> None:
        store: Store | None = None
        next_prune = time.monotonic() + PRUNE_EVERY
        while not self._stop.is_set():
            if store is not None and time.monotonic() > next_prune:
                next_prune = time.monotonic() + PRUNE_EVERY
                try:
                    store.prune()
                except Exception as error:  # noqa: BLE001 - only housekeeping: try again later
                    log.warning("could not prune the maintained tables: %s", error)
            batch = self._next_batch()
            if not batch:
                continue
            while not self._stop.is_set():
                try:
                    store = store or Store.connect(self.dsn, self.region.zone)
                    self._write(store, batch)
                    break
                except Exception as error:  # noqa: BLE001 - PostgreSQL down: keep the batch, retry
                    log.error("could not store %d message(s), retrying: %s", len(batch), error)
                    if store is not None:
                        try:
                            store.close()
                        except Exception:  # noqa: BLE001
                            pass
                    store = None
                    time.sleep(1)
        if store is not None:
            store.close()

    def _next_batch(self) -> list[_Item]:
        try:
            batch = [self._queue.get(timeout=0.2)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + BATCH_WAIT
        while len(batch) < BATCH_MAX:
            remaining = deadline - time.monotonic()
            try:
                batch.append(self._queue.get(timeout=max(remaining, 0)) if remaining > 0 else self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _write(self, store: Store, batch: list[_Item]) -> None:
        events = [i.value for i in batch if isinstance(i.value, RegionEvent)]
        availability = [(i.value, i.at) for i in batch if isinstance(i.value, Availability)]
        rejected = [("mqtt", i.reason) for i in batch if i.reason]
        for item in batch:
            if item.reason:
                log.warning("rejected: %s", item.reason)
        new = store.store_batch(events, availability, rejected)
        self.counters.stored += new
        self.counters.duplicates += len(events) - new
        self.counters.rejected += len(rejected)
        with self._lock:
            current = self._generation
        for item in batch:  # only now, after the commit, may the broker forget them
            if item.qos > 0 and item.generation == current:
                self.client.ack(item.mid, item.qos)
        if new or availability:
            self.changed.set()

    # ------------------------------------------------------------------ catch-up thread
    def _catch_up_loop(self) -> None:
        store: Store | None = None
        known_groups: set[str] = set()
        with httpx.Client(timeout=10.0) as http:
            while not self._stop.is_set():
                for centre in self.region.centres.values():
                    if self._stop.is_set():
                        break
                    try:
                        store = store or Store.connect(self.dsn, self.region.zone)
                        if centre.id not in known_groups:
                            answer = http.get(f"{centre.api}/api/v1/centre")
                            answer.raise_for_status()
                            store.set_groups(centre.id, answer.json().get("groups", []))
                            known_groups.add(centre.id)
                        self.catch_up(store, http, centre.id)
                    except (httpx.HTTPError, ValueError) as error:
                        reason = f"{type(error).__name__}: {error}"[:200]
                        log.warning("catch-up from %s failed: %s", centre.id, reason)
                        try:
                            if store is not None:
                                store.catch_up_failed(centre.id, reason)
                        except Exception:  # noqa: BLE001
                            store = None
                    except Exception as error:  # noqa: BLE001 - PostgreSQL trouble: try again next round
                        log.error("catch-up from %s: %s", centre.id, error)
                        store = None
                self._stop.wait(self.catch_up_seconds)
        if store is not None:
            store.close()

    def catch_up(self, store: Store, http: httpx.Client, centre_id: str) -> int:
        """Read the centre's log after its high-water seq until the end; return new events."""
        centre = self.region.centres[centre_id]
        total = 0
        after = store.high_water(centre_id)
        while not self._stop.is_set():
            answer = http.get(f"{centre.api}/api/v1/events", params={"after": after, "limit": PAGE},
                              headers=centre.api_auth)
            answer.raise_for_status()
            rows = answer.json().get("events", [])
            if not rows:
                break
            events: list[RegionEvent] = []
            rejected = []
            top = after
            for row in rows:
                seq = row.get("seq")
                if isinstance(seq, int):
                    top = max(top, seq)
                try:
                    events.append(parse_logged(centre_id, row))
                except Rejected as error:
                    rejected.append(("http", str(error)))
                    log.warning("rejected: %s", error)
            new = store.store_logged(centre_id, events, top)
            if rejected:
                store.store_batch([], [], rejected)
                self.counters.rejected += len(rejected)
            total += new
            self.counters.caught_up += new
            if new:
                self.changed.set()
            if top <= after or len(rows) < PAGE:
                break
            after = top
        if total:
            log.info("caught up %d event(s) from %s's log", total, centre_id)
        return total
