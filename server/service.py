"""The one path every change takes: engine command → SQLite commit → events out.

HTTP handlers, MQTT inbound messages and the demo's simulated officers all call :meth:`run`. The
engine command runs synchronously (so it is atomic: no other command can interleave), its events
are queued for the next group commit in the same instant (so commits keep the engine's order),
and the caller gets its answer only once the events are on disk. Subscribers (MQTT, the web
pages' live streams) hear about events only after the commit.

A failed commit: the engine already holds its events, and commands run since then were computed on
top of them. Every submission carries the engine's *epoch*; when a commit fails, the storage fails
every submission of that epoch still waiting (without writing it), the service rebuilds the engine
from the log once and moves to the next epoch, and commands arriving meanwhile wait for the rebuilt
engine. So no acknowledged answer ever rests on an event that is not on disk, and the log always
replays (docs/architecture.md, "Time and commits").
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import date, datetime, timedelta
from typing import Any, Awaitable, Callable, TypeVar

from luot.config import CentreConfig
from server.engine import Event, QueueEngine, Ticket, stamp_actor, utc_now
from server.estimates import wait_view
from server.storage import Storage, StorageError
from server.wait_history import History

log = logging.getLogger("luot.service")
T = TypeVar("T")
Listener = Callable[[list[Event], datetime], Awaitable[None] | None]
HISTORY_WEEKS = 8
"""The wait estimator's profile of previous days is made of the same weekday's tickets of the last
eight weeks (a Monday is told by Mondays: their arrivals differ from a Thursday's)."""


class CentreService:
    """Owns the engine and the storage of one centre."""

    def __init__(self, config: CentreConfig, storage: Storage, clock: Callable[[], datetime] = utc_now) -> None:
        self.config = config
        self.storage = storage
        self.clock = clock
        self.engine = QueueEngine(config)
        self.listeners: list[Listener] = []
        self.epoch = 0
        """Generation of :attr:`engine`: moves on each time a failed commit makes it rebuild."""
        self.reloads = 0
        self._reloading: asyncio.Future[None] | None = None
        # Told how long each awaited commit took (seconds): the metrics' one hook into the write
        # path (server/metrics.py), so storage itself needs no instrumentation.
        self.commit_timer: Callable[[float], None] | None = None
        self.history: tuple[date, History | None] | None = None
        """The service day the engine's profile of previous days was built for, and the profile."""
        storage.after_commit = self._committed
        storage.clock = clock  # which days are closed (and may be summarised) follows the centre's clock

    @classmethod
    async def start(cls, config: CentreConfig, storage: Storage, clock: Callable[[], datetime] = utc_now) -> "CentreService":
        service = cls(config, storage, clock)
        await service.reload()
        return service

    async def reload(self) -> None:
        """Rebuild the engine from the log (start-up, or after a failed commit).

        The log is replayed from the last ``day.opened``; the highest numbers stored for that day
        and later ones come from the tickets and leases tables, so numbering continues after them
        whatever the log holds (a log written before the clock checks may have reopened a day)."""
        events = await self.storage.current_day_events()
        since = events[0].day if events else "0000-00-00"
        engine = QueueEngine(self.config, used_numbers=await self.storage.used_numbers(since))
        # the profile of the days before the log's day, given before the replay (as it was live)
        day = date.fromisoformat(events[0].day) if events else self.config.service_day(self.now())
        engine.use_history(await self._history_for(day))
        engine.replay(await self.storage.carried_booking_events(since))  # appointments made on earlier days
        engine.replay(events)
        self.engine = engine

    def now(self) -> datetime:
        return self.clock()

    async def _history_for(self, day: date) -> History | None:
        """The profile of ``day``'s weekday in the HISTORY_WEEKS weeks before it (None without any ticket)."""
        if self.history is None or self.history[0] != day:
            records = await self.storage.history_records((day - timedelta(weeks=HISTORY_WEEKS)).isoformat(),
                                                         day.isoformat(), day.weekday())
            self.history = (day, History.from_records(records, self.config.zone) if records else None)
        return self.history[1]

    def _history_of_engine_day(self, kept: tuple[date, History | None] | None) -> None:
        """After a command that did not open the day the profile was built for (a clock judged
        wrong, a day that did not open): the engine goes back to the profile of its own day, so
        its answers stay those a replay of its day gives."""
        day = self.engine.day
        if kept is not None and self.history is not None and day is not None and self.history[0] != day == kept[0]:
            self.history = kept
            self.engine.use_history(kept[1])

    async def _ensure_history(self) -> None:
        """At a new service day, before the command that opens it: the engine gets the profile of
        the days before it (the same profile a restart gives before replaying that day's log)."""
        day = self.config.service_day(self.now())
        if self.history is None or self.history[0] != day:
            history = await self._history_for(day)
            if self.config.service_day(self.now()) == day:  # not crossed midnight meanwhile
                self.engine.use_history(history)

    async def run(self, command: Callable[[QueueEngine, datetime], tuple[T, list[Event]]],
                  actor: str | None = None) -> T:
        """Apply ``command(engine, now)`` and return its result once its events are durable.
        ``actor``: who asked (a username or device id), written into every event it caused.

        Raises QueueError (refused, nothing changed) or StorageError (not saved: this command's
        commit failed, or an earlier one it was computed on top of did)."""
        while self._reloading is not None:  # a failed commit: wait for the engine rebuilt from disk
            await asyncio.shield(self._reloading)
        kept = self.history
        await self._ensure_history()
        while self._reloading is not None:
            await asyncio.shield(self._reloading)
        now = self.now()
        epoch = self.epoch
        try:
            result, events = command(self.engine, now)  # raises QueueError before anything changes
        finally:
            self._history_of_engine_day(kept)
        stamp_actor(events, actor)
        started = time.perf_counter()
        future = self.storage.submit(events, epoch)
        try:
            await future
        except StorageError:
            await self._recover(epoch)
            raise
        if self.commit_timer is not None:
            self.commit_timer(time.perf_counter() - started)
        return result

    async def run_viewed(self, command: Callable[[QueueEngine, datetime], tuple[Ticket, list[Event]]],
                         actor: str | None = None) -> tuple[Ticket, dict[str, Any]]:
        """:meth:`run` for a command that yields a ticket, with the ticket's view as of that command.

        Why not read the view after the commit: by then another command may have opened a new service
        day (the first after midnight), and the ticket, durable and acknowledged, would be looked up
        in a day that no longer has it (seen once in the clock drill: 404 for a stored ticket)."""
        def viewed(engine: QueueEngine, now: datetime) -> tuple[tuple[Ticket, dict[str, Any]], list[Event]]:
            ticket, events = command(engine, now)
            return (ticket, self.ticket_view(ticket.id)), events

        return await self.run(viewed, actor=actor)

    async def _recover(self, epoch: int) -> None:
        """Rebuild the engine once per failed epoch, however many commands failed with it."""
        if epoch != self.epoch:  # another caller of the same epoch is rebuilding, or has
            if self._reloading is not None:
                await asyncio.shield(self._reloading)
            return
        log.error("commit failed; rebuilding the queue from the database")
        self.epoch += 1
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._reloading = done
        try:
            await self.reload()
            self.reloads += 1
        except Exception as error:  # the database cannot even be read: the next failure retries
            log.exception("could not rebuild the queue from the database")
            self.epoch = epoch  # try again on the next failure: the engine still holds lost events
            done.set_exception(StorageError(f"could not rebuild the queue: {error}"))
            done.exception()  # retrieved: the waiters get it through shield
            raise StorageError(f"could not rebuild the queue: {error}") from error
        finally:
            self._reloading = None
            if not done.done():
                done.set_result(None)

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
            "returns_dossier": ticket.returns_dossier,
            "appointment": ticket.appointment.isoformat() if ticket.appointment else None,
            "return_days": (self.config.service_day(ticket.issued_at) - ticket.appointment).days if ticket.appointment else None,
            "booking": ticket.booking,  # "remote", "appointment" or None (walk-in)
            "booking_id": ticket.booking_id,
            "checked_in": not ticket.awaiting,
            "held_until": (ticket.held_since + timedelta(minutes=self.config.booking.grace_minutes)).isoformat()
            if ticket.held_since and ticket.awaiting else None,
        }

    async def booking_contact(self, ticket_id: str) -> str | None:
        """The sealed phone of the booking ``ticket_id`` came from (for "your turn is near"), or None
        for a walk-in ticket or once the phone was deleted (``booking.keep_phone_days``)."""
        return await self.storage.booking_contact(ticket_id)

    def tracking_url(self, token: str) -> str:
        return f"{self.config.centre.public_url}/t/{token}"
