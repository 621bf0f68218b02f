"""The centre's Prometheus metrics, read from the engine at scrape time.

Why a custom collector: the queue's truth is the engine's state (the fold of the committed
events). Keeping Prometheus gauges and counters beside it would be a second bookkeeping that could
drift (a restart replays the log into the engine, not into a gauge). So :class:`CentreCollector`
reads the engine, the MQTT link and the live hub when Prometheus asks, and keeps nothing.

The one thing the engine cannot tell afterwards is how long commits took: that is a histogram fed
by :attr:`server.service.CentreService.commit_timer`, the single hook around the awaited commit.

Each app has its own :class:`CollectorRegistry` (never prometheus-client's global one): tests run
several centres in one process, and a centre's /metrics must show that centre only.

Ticket counters (issued, served) count the current service day: they restart at 0 when the day
changes, which Prometheus's ``rate()`` and ``increase()`` treat as a counter reset. No metric carries
personal data: labels are group codes, counter numbers, device ids and roles.
"""

from __future__ import annotations

from collections import Counter as Tally
from datetime import datetime
from typing import Any, Callable, Iterator

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from server.engine import CLOSED, DONE
from server.service import CentreService

PREFIX = "luot"
COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Seconds. A group commit is one fsync (a few ms on an SSD, tens on an SD card); a second means trouble."""


class CentreCollector(Collector):
    """Reads one centre's state when Prometheus scrapes; holds references, never copies."""

    def __init__(self, service: CentreService, link: Any = None, live: Any = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.service = service
        self.link = link
        self.live = live
        self.clock = clock or service.now

    def collect(self) -> Iterator[Any]:
        engine = self.service.engine  # read once: reload() may swap it between two scrapes
        config = self.service.config
        now = self.clock()
        groups = [g.code for g in config.groups]

        waiting = GaugeMetricFamily(f"{PREFIX}_waiting", "People waiting now, per procedure group", labels=["group"])
        longest = GaugeMetricFamily(f"{PREFIX}_longest_wait_seconds",
                                    "How long the longest-waiting ticket of the group has waited (0 when none waits)",
                                    labels=["group"])
        count: Tally[str] = Tally()
        earliest: dict[str, datetime] = {}
        for ticket in engine.waiting():
            count[ticket.group] += 1
            if ticket.group not in earliest or ticket.queue_since < earliest[ticket.group]:
                earliest[ticket.group] = ticket.queue_since
        for group in groups:
            waiting.add_metric([group], count[group])
            since = earliest.get(group)
            longest.add_metric([group], max(0.0, (now - since).total_seconds()) if since else 0.0)
        yield waiting
        yield longest

        issued = CounterMetricFamily(f"{PREFIX}_tickets_issued", "Tickets issued this service day, per group (by the number's group)",
                                     labels=["group"])
        served = CounterMetricFamily(f"{PREFIX}_tickets_served", "Tickets served to the end this service day, per group",
                                     labels=["group"])
        issued_by: Tally[str] = Tally()
        served_by: Tally[str] = Tally()
        for ticket in engine.tickets.values():
            # A transfer changes a ticket's group; the number keeps the group that issued it, so
            # "issued" never goes down when a ticket moves.
            origin = config.group_of_number(ticket.number)
            issued_by[origin.code if origin else ticket.group] += 1
            if ticket.status == DONE:
                served_by[ticket.group] += 1
        for group in groups:
            issued.add_metric([group], issued_by[group])
            served.add_metric([group], served_by[group])
        yield issued
        yield served

        refused = CounterMetricFamily(f"{PREFIX}_ratings_refused",
                                      "Ratings refused this service day (before service, twice, another counter, unknown level...), "
                                      "by refusal code and source (pad or track); none of them is stored as a rating",
                                      labels=["reason", "source"])
        for (code, source), n in sorted(engine.refused_ratings.items()):
            refused.add_metric([code, source], n)
        yield refused

        counters = GaugeMetricFamily(f"{PREFIX}_counters", "Counters (quầy) by status", labels=["status"])
        statuses = Tally(c.status for c in engine.counters.values())
        for status in ("closed", "idle", "calling", "serving", "paused"):
            counters.add_metric([status], statuses[status])
        yield counters
        yield GaugeMetricFamily(f"{PREFIX}_counters_open", "Counters open (any status but closed)",
                                value=sum(1 for c in engine.counters.values() if c.status != CLOSED))

        if self.link is not None and hasattr(self.link, "devices_status"):
            roles = {d.id: d.role for d in config.devices}
            up = GaugeMetricFamily(f"{PREFIX}_device_up",
                                   "1 when the device's retained MQTT availability says online, else 0 (offline or never heard)",
                                   labels=["device", "role"])
            for device, status in sorted(self.link.devices_status().items()):
                up.add_metric([device, roles.get(device, "")], 1.0 if status[0] == "online" else 0.0)
            yield up
            yield CounterMetricFamily(f"{PREFIX}_mqtt_rejected",
                                      "Device messages refused before reaching the queue (bad JSON, wrong version, invalid data, "
                                      "unknown device) since the server started", value=getattr(self.link, "rejected", 0))
            yield GaugeMetricFamily(f"{PREFIX}_mqtt_connected", "1 when the server's MQTT link is connected to the broker",
                                    value=1.0 if getattr(self.link, "connected", False) else 0.0)

        if self.live is not None:
            clients = GaugeMetricFamily(f"{PREFIX}_sse_clients", "Open live-update streams (Server-Sent Events), by kind",
                                        labels=["kind"])
            kinds = Tally(s.kind for s in list(self.live.subscribers))
            for kind in ("staff", "ticket"):
                clients.add_metric([kind], kinds[kind])
            yield clients


class CentreMetrics:
    """One centre's registry: the scrape-time collector plus the commit-latency histogram."""

    def __init__(self, service: CentreService, link: Any = None, live: Any = None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(CentreCollector(service, link, live))
        self.commit_seconds = Histogram(
            f"{PREFIX}_commit_seconds",
            "Time from queuing a command's events to their being on disk (what the caller waits for)",
            buckets=COMMIT_BUCKETS, registry=self.registry)
        service.commit_timer = self.commit_seconds.observe
