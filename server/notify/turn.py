""""Your turn is near": messages to people who left a phone number with their booking.

One of ``CentreService.listeners``, so it sees only committed events. After each commit it looks
at the tickets it watches (those with a contact) and queues, each at most once a ticket:
- ``near``: "còn k người trước bạn" once ``[notify] near_ahead`` people or fewer are ahead;
- ``called``: "Mời bạn đến quầy N" at the first call.
Exactly-once queuing comes from the outbox's dedupe keys (``near:<ticket>``, ``called:<ticket>``),
not from memory here, so a restart or a repeated commit cannot queue a message twice.

Which tickets have a contact is the booking side's business: ``contact_for_ticket(ticket_id)``
returns the sealed phone or None. It is asked once per ticket (the answer is remembered for the
day), when the ticket first appears in an event or, after a restart, in the line, so it must be
cheap (an in-memory look-up). :meth:`TurnMessages.watch` asks again (a contact added later).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Callable

from server.engine import CALLED, SERVING, WAITING, Event
from server.notify.notifier import Notifier
from server.service import CentreService

log = logging.getLogger("luot.notify.turn")
ContactLookup = Callable[[str], "str | None"]


def near_text(ahead: int, number: int, group_name: str) -> str:
    if ahead <= 0:
        lead_vi, lead_en = "Bạn là người tiếp theo", "You are next"
    else:
        lead_vi, lead_en = f"Còn {ahead} người trước bạn", f"{ahead} ahead of you"
    return f"{lead_vi} (số {number}, {group_name}). Vui lòng có mặt tại Trung tâm. / {lead_en} (no. {number})."


def called_text(number: int, counter: int) -> str:
    return f"Mời bạn đến quầy {counter} (số {number}). / Please go to counter {counter} (no. {number})."


class TurnMessages:
    def __init__(self, service: CentreService, notifier: Notifier, contact_for_ticket: ContactLookup) -> None:
        self.service = service
        self.notifier = notifier
        self.contact_for_ticket = contact_for_ticket
        self._contacts: dict[str, str | None] = {}
        self._day: str | None = None
        self._looked_at_line = False
        self._queued: set[str] = set()  # dedupe keys queued by this process (the outbox is the real guard)
        service.listeners.append(self.on_commit)

    def watch(self, ticket_id: str) -> None:
        """Ask :attr:`contact_for_ticket` about this ticket again (its booking got a contact later)."""
        self._contacts.pop(ticket_id, None)
        self._contact(ticket_id)

    def _contact(self, ticket_id: str) -> str | None:
        if ticket_id not in self._contacts:
            try:
                self._contacts[ticket_id] = self.contact_for_ticket(ticket_id)
            except Exception:  # a broken look-up must not stop the other messages
                log.exception("contact look-up failed for a ticket")
                return None
        return self._contacts[ticket_id]

    def on_commit(self, events: list[Event], now: datetime) -> None:
        """Runs after each commit: synchronous, only SQLite writes of the outbox (one per new message)."""
        k = self.notifier.settings.near_ahead
        engine = self.service.engine
        day = engine.day.isoformat() if engine.day else None
        if day != self._day:  # a new service day: yesterday's tickets are gone
            self._day, self._contacts, self._looked_at_line, self._queued = day, {}, False, set()
        if not self._looked_at_line:  # after a start or restart: the tickets already in line
            self._looked_at_line = True
            for ticket in engine.waiting():
                self._contact(ticket.id)
        for event in events:
            ticket_id = event.data.get("ticket_id")
            if isinstance(ticket_id, str):
                self._contact(ticket_id)
        watched = [tid for tid, contact in self._contacts.items() if contact]
        for ticket_id in watched:
            ticket = engine.tickets.get(ticket_id)
            if ticket is None:
                continue
            sealed = self._contacts[ticket_id] or ""
            if ticket.status in (CALLED, SERVING) and ticket.counter is not None:
                self._offer(f"called:{ticket_id}", sealed, called_text(ticket.number, ticket.counter), "called")
            elif ticket.status == WAITING and k > 0 and f"near:{ticket_id}" not in self._queued:
                estimate = engine.estimates(now, only=ticket_id).get(ticket_id)
                if estimate is not None and estimate.ahead <= k:
                    group = self.service.config.group(ticket.group)
                    self._offer(f"near:{ticket_id}", sealed, near_text(estimate.ahead, ticket.number, group.name), "near")

    def _offer(self, key: str, sealed: str, text: str, kind: str) -> None:
        if key not in self._queued:
            self.notifier.enqueue(key, sealed, text, kind)
            self._queued.add(key)
