"""Live updates for the web pages: after each commit, every open page hears what changed.

The hub is one of ``CentreService.listeners``, so it only ever sees committed events. It fans each
commit out to per-client bounded ``asyncio.Queue`` s with ``put_nowait``: a page that does not read
(a phone gone to sleep, a dead connection) fills its queue and is dropped, never waited for, so one
slow client cannot delay a commit or the other pages. EventSource reconnects by itself and gets a
fresh full state, so a dropped page loses nothing.

Two kinds of subscriber:
- staff (console, dashboard): the queue snapshot plus the commit's events (tracking tokens removed);
- one ticket (the citizen's tracking page): only that ticket's public view, and only when it changed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, AsyncIterator

from server.engine import WAITING, Estimate, Event, Ticket
from server.estimates import wait_view
from server.service import CentreService

log = logging.getLogger("luot.live")

HEARTBEAT_SECONDS = 15.0
QUEUE_SIZE = 32
# Budgets: public streams (anyone holding a QR code) can never use up the staff's share, so the
# console keeps hearing assistance requests while 2,000 streams hammer one ticket. A tracking page
# that is refused falls back to polling (track.js), so a refusal costs the citizen nothing visible.
MAX_PUBLIC_STREAMS = 1000
MAX_STREAMS_PER_TICKET = 4
MAX_STAFF_STREAMS = 200


class StreamsFull(Exception):
    """No room for another stream of this kind; the caller should answer 503 and retry later."""


@dataclass(eq=False)
class Subscriber:
    kind: str  # "staff" or "ticket"
    ticket_id: str | None = None
    queue: asyncio.Queue[str | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    last: str | None = None  # the last ticket view sent, to send only changes
    dossiers: list[dict[str, Any]] = field(default_factory=list)


def public_fields(service: CentreService, ticket: Ticket, estimate: Estimate | None) -> dict[str, Any]:
    """A live ticket's public view: what its QR code holder may see, nothing about anyone else."""
    group = service.config.group(ticket.group)
    return {
        "number": ticket.number, "group_name": group.name, "group_name_en": group.name_en,
        "status": ticket.status, "ahead": estimate.ahead if estimate else 0,
        **wait_view(service.config, estimate, service.now()), "counter": ticket.counter,
        "called_at": ticket.called_at.isoformat() if ticket.called_at else None, "calls": ticket.calls,
        "day": service.engine.day.isoformat() if service.engine.day else "",
        # a waiting ticket an officer sent on: the page says where (keeps its place in line)
        "moved_to": {"counter": ticket.target_counter, "group_name": group.name, "group_name_en": group.name_en}
        if ticket.transfers and ticket.status == "waiting" else None,
    }


def _public_dossiers(dossiers: list[dict[str, Any]], today: date) -> list[dict[str, Any]]:
    """What the citizen's page shows of each dossier: its steps and its appointment date, with the
    days left until it (negative: overdue; None once the result is returned or without a date)."""
    return [{"code": d["code"], "status": d["status"], "timeline": d["timeline"], "appointment": d.get("appointment"),
             "days_left": ((date.fromisoformat(d["appointment"]) - today).days
                           if d.get("appointment") and d["status"] != "returned" else None)} for d in dossiers]


async def public_ticket(service: CentreService, token: str) -> tuple[str | None, dict[str, Any]] | None:
    """(ticket id if it is today's, public view) for a tracking token, or None when unknown.
    Tickets of earlier days are read from the database and have no place in line any more."""
    config = service.config
    ticket = service.engine.ticket_by_token(token)
    if ticket is not None:
        view = public_fields(service, ticket, service.engine.estimates(service.now(), only=ticket.id).get(ticket.id))
        live_id: str | None = ticket.id
        ticket_id = ticket.id
    else:
        row = await service.storage.ticket_by_token(token)
        if row is None:
            return None
        known = {g.code for g in config.groups}
        group = config.group(row["grp"]) if row["grp"] in known else None
        view = {"number": row["number"], "group_name": group.name if group else row["grp"],
                "group_name_en": group.name_en if group else "", "status": row["status"], "ahead": None,
                "wait_minutes": None, "counter": row["counter"], "called_at": row["first_called_at"],
                "calls": row["calls"], "day": row["day"]}
        live_id, ticket_id = None, row["id"]
    dossiers = await service.storage.dossiers_of_ticket(ticket_id)
    if ticket is not None and ticket.returns_dossier:  # a results ticket follows the dossier it came back for
        stored = await service.storage.dossier(ticket.returns_dossier)
        dossiers.append(stored or {"code": ticket.returns_dossier, "status": None, "timeline": [],
                                   "appointment": ticket.appointment.isoformat() if ticket.appointment else None})
    view["dossiers"] = _public_dossiers(dossiers, config.service_day(service.now()))
    return live_id, view


def staff_event(event: Event) -> dict[str, Any]:
    data = {k: v for k, v in event.data.items() if k != "token"}
    return {"id": event.id, "type": event.type, "at": event.at.isoformat(), "data": data}


def sse(kind: str, payload: Any) -> str:
    return f"event: {kind}\ndata: {json.dumps(payload, ensure_ascii=False, separators=(',', ':'))}\n\n"


class LiveHub:
    """Fans committed events out to the pages' Server-Sent Event streams."""

    def __init__(self, service: CentreService, heartbeat: float = HEARTBEAT_SECONDS) -> None:
        self.service = service
        self.heartbeat = heartbeat
        self.subscribers: set[Subscriber] = set()
        self.staff_streams = 0
        self.public_streams = 0
        self.per_ticket: dict[str, int] = {}
        self.dropped = 0
        self.closed = False
        service.listeners.append(self.on_commit)

    # ------------------------------------------------------------------ fan-out
    def on_commit(self, events: list[Event], now: datetime) -> None:
        """Runs inside the commit path: synchronous, no I/O, never blocks on a client."""
        if not self.subscribers:
            return
        engine = self.service.engine
        staff = [s for s in self.subscribers if s.kind == "staff"]
        if staff:
            message = sse("update", {"snapshot": engine.snapshot(now), "events": [staff_event(e) for e in events]})
            for subscriber in staff:
                self._offer(subscriber, message)
        watchers = [s for s in self.subscribers if s.kind == "ticket"]
        if watchers:
            # each watched ticket alone: the estimate model walks the line once and answers the
            # others from that walk, without building an estimate for every waiting ticket
            for subscriber in watchers:
                ticket = engine.tickets.get(subscriber.ticket_id or "")
                if ticket is None:  # a new service day began: the page reconnects and reads the database
                    self._drop(subscriber)
                    continue
                for event in events:
                    if event.type == "dossier.status" and event.data.get("ticket_id") == ticket.id:
                        self._note_dossier(subscriber, event)
                estimate = engine.estimates(now, only=ticket.id).get(ticket.id) if ticket.status == WAITING else None
                view = public_fields(self.service, ticket, estimate)
                view["dossiers"] = subscriber.dossiers
                message = sse("ticket", view)
                if message != subscriber.last:
                    subscriber.last = message
                    self._offer(subscriber, message)

    @staticmethod
    def _note_dossier(subscriber: Subscriber, event: Event) -> None:
        code, status, at = event.data["code"], event.data["status"], event.at.isoformat()
        entry = next((d for d in subscriber.dossiers if d["code"] == code), None)
        if entry is None:
            entry = {"code": code, "status": status, "timeline": []}
            subscriber.dossiers = [*subscriber.dossiers, entry]
        entry["status"] = status
        entry["timeline"] = [*entry["timeline"], {"status": status, "at": at}]

    def _offer(self, subscriber: Subscriber, message: str) -> None:
        try:
            subscriber.queue.put_nowait(message)
        except asyncio.QueueFull:
            log.info("dropping a slow live-update client (%s)", subscriber.kind)
            self._drop(subscriber)

    def _drop(self, subscriber: Subscriber) -> None:
        """End one stream now: empty its queue and leave the end mark."""
        self._remove(subscriber)
        self.dropped += 1
        while not subscriber.queue.empty():
            subscriber.queue.get_nowait()
        subscriber.queue.put_nowait(None)

    def close(self) -> None:
        """Server shutdown: end every stream so the HTTP server can stop."""
        self.closed = True
        for subscriber in list(self.subscribers):
            self._drop(subscriber)

    # ------------------------------------------------------------------ streams
    def has_room(self, kind: str, ticket_id: str | None = None) -> bool:
        """Would :meth:`subscribe` take this stream? Asked first, so a refusal costs no look-up."""
        if kind == "staff":
            return self.staff_streams < MAX_STAFF_STREAMS
        return (self.public_streams < MAX_PUBLIC_STREAMS
                and self.per_ticket.get(ticket_id or "", 0) < MAX_STREAMS_PER_TICKET)

    def subscribe(self, kind: str, ticket_id: str | None = None,
                  dossiers: list[dict[str, Any]] | None = None) -> Subscriber | None:
        """A new stream, or None when shutting down; :class:`StreamsFull` when its budget is spent."""
        if self.closed:
            return None
        if not self.has_room(kind, ticket_id):
            raise StreamsFull(kind)
        if kind == "staff":
            self.staff_streams += 1
        else:
            key = ticket_id or ""
            self.public_streams += 1
            self.per_ticket[key] = self.per_ticket.get(key, 0) + 1
        subscriber = Subscriber(kind, ticket_id, dossiers=dossiers or [])
        self.subscribers.add(subscriber)
        return subscriber

    def _remove(self, subscriber: Subscriber) -> None:
        """Forget a stream once (dropped by the hub, or ended by its client) and free its budget."""
        if subscriber not in self.subscribers:
            return
        self.subscribers.discard(subscriber)
        if subscriber.kind == "staff":
            self.staff_streams -= 1
            return
        self.public_streams -= 1
        key = subscriber.ticket_id or ""
        left = self.per_ticket.get(key, 0) - 1
        if left > 0:
            self.per_ticket[key] = left
        else:
            self.per_ticket.pop(key, None)

    async def stream(self, subscriber: Subscriber | None, first: str) -> AsyncIterator[str]:
        """The SSE body: the current state first, then each change, and a comment as heartbeat."""
        try:
            yield "retry: 3000\n\n" + first
            if subscriber is None:  # nothing live to follow (an earlier day's ticket, or shutting down)
                return
            while True:
                try:
                    message = await asyncio.wait_for(subscriber.queue.get(), timeout=self.heartbeat)
                except asyncio.TimeoutError:
                    yield ": heartbeat\n\n"
                    continue
                if message is None:
                    return
                yield message
        finally:
            if subscriber is not None:
                self._remove(subscriber)
