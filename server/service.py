"""The one path every change takes: engine command → SQLite commit → events out.

HTTP handlers, MQTT inbound messages and the demo's simulated officers all call :meth:`run`. The
engine command runs synchronously (so it is atomic: no other command can interleave), its events
are queued for the next group commit in the same instant (so commits keep the engine's order),
and the caller gets its answer only once the events are on disk. Subscribers (MQTT, the web
pages' live streams) hear about events only after the commit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from typing import Any, Awaitable, Callable, TypeVar

from luot.config import CentreConfig
from server.engine import Event, QueueEngine, utc_now
from server.estimates import wait_view
from server.storage import Storage

log = logging.getLogger("luot.service")
T = TypeVar("T")
Listener = Callable[[list[Event], datetime], Awaitable[None] | None]


class CentreService:
    """Owns the engine and the storage of one centre."""

    def __init__(self, config: CentreConfig, storage: Storage, clock: Callable[[], datetime] = utc_now) -> None:
        self.config = config
        self.storage = storage
        self.clock = clock
        self.engine = QueueEngine(config)
        self.listeners: list[Listener] = []
        # Told how long each awaited commit took (seconds): the metrics' one hook into the write
        # path (server/metrics.py), so storage itself needs no instrumentation.
        self.commit_timer: Callable[[float], None] | None = None
        storage.after_commit = self._committed
        storage.clock = clock  # which days are closed (and may be summarised) follows the centre's clock

    @classmethod
    async def start(cls, config: CentreConfig, storage: Storage, clock: Callable[[], datetime] = utc_now) -> "CentreService":
        service = cls(config, storage, clock)
        await service.reload()
        return service

    async def reload(self) -> None:
        """Rebuild the engine from the log (start-up, or after a failed commit)."""
        engine = QueueEngine(self.config)
        engine.replay(await self.storage.current_day_events())
        self.engine = engine

    def now(self) -> datetime:
        return self.clock()

    async def run(self, command: Callable[[QueueEngine, datetime], tuple[T, list[Event]]]) -> T:
        """Apply ``command(engine, now)`` and return its result once its events are durable."""
        now = self.now()
        result, events = command(self.engine, now)  # raises QueueError before anything changes
        started = time.perf_counter()
        future = self.storage.submit(events)
        try:
            await future
        except Exception:
            log.error("commit failed; rebuilding the queue from the database")
            await self.reload()
            raise
        if self.commit_timer is not None:
            self.commit_timer(time.perf_counter() - started)
        return result

    async def _committed(self, events: list[Event]) -> None:
        now = self.now()
        for listener in list(self.listeners):
            try:
                result = listener(events, now)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                log.exception("a listener failed on %d events", len(events))

    # ------------------------------------------------------------------ views shared by the adapters
    def ticket_view(self, ticket_id: str) -> dict[str, Any]:
        engine = self.engine
        ticket = engine.ticket(ticket_id)
        group = self.config.group(ticket.group)
        now = self.now()
        estimate = engine.estimates(now, only=ticket.id).get(ticket.id)
        return {
            "id": ticket.id,
            "number": ticket.number,
            "group": ticket.group,
            "group_name": group.name,
            "group_name_en": group.name_en,
            "letter": group.letter,
            "priority": ticket.priority is not None,
            "status": ticket.status,
            "counter": ticket.counter,
            "counters": [c.number for c in self.config.counters if ticket.group in c.groups],
            "ahead": estimate.ahead if estimate else 0,
            **wait_view(self.config, estimate, now),  # wait_minutes, wait_range_minutes, expected_at, wait_text
            "calls": ticket.calls,
            "issued_at": ticket.issued_at.isoformat(),
            "called_at": ticket.called_at.isoformat() if ticket.called_at else None,
            "offline": ticket.offline,
        }

    def tracking_url(self, token: str) -> str:
        return f"{self.config.centre.public_url}/t/{token}"
