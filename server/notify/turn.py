""""Your turn is near": messages to people who left a phone number with their booking.

One of ``CentreService.listeners``, so it sees only committed events. After each commit it looks
at the tickets it watches (those with a contact) and queues, each at most once a ticket:
- ``near``: "còn k người trước bạn" once ``[notify] near_ahead`` people or fewer are ahead;
- ``called``: "Mời bạn đến quầy N" at the first call;
- ``turn``: a remote number whose turn came before it checked in (``booking.turn_reached``):
  "Đã đến lượt bạn: xin đến Trung tâm và xác nhận tại máy lấy số trong N phút" (N the grace).
Exactly-once queuing comes from the outbox's dedupe keys (``near:<ticket>``, ``called:<ticket>``,
``turn:<ticket>``),
not from memory here, so a restart or a repeated commit cannot queue a message twice.

Which tickets have a contact is the booking side's business: ``contact_for_ticket(ticket_id)``
returns the sealed phone or None. A found contact is remembered for the day; a ticket without one
is asked about again only while it could need a message (named in the commit's events, or among
the first ``near_ahead + 1`` of its group, since a ticket with k or fewer ahead is always there),
so a contact stored just after its ticket's commit is still found, and a commit costs at most a
few look-ups (it must be cheap: an in-memory or indexed look-up).
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


def turn_text(number: int, group_name: str, minutes: int) -> str:
    """The turn of a remote number came while the citizen is not here yet: it is held ``minutes``."""
    return (f"Đã đến lượt bạn (số {number}, {group_name}): xin đến Trung tâm và xác nhận tại máy lấy số trong "
            f"{minutes} phút. / It is your turn (no. {number}): come to the centre and check in at the kiosk "
            f"within {minutes} minutes.")


def called_text(number: int, counter: int) -> str:
    return f"Mời bạn đến quầy {counter} (số {number}). / Please go to counter {counter} (no. {number})."


class TurnMessages:
    def __init__(self, service: CentreService, notifier: Notifier, contact_for_ticket: ContactLookup) -> None:
        self.service = service
        self.notifier = notifier
        self.contact_for_ticket = contact_for_ticket
        self._contacts: dict[str, str | None] = {}
        self._day: str | None = None
        self._queued: set[str] = set()  # dedupe keys queued by this process (the outbox is the real guard)
        service.listeners.append(self.on_commit)

    def watch(self, ticket_id: str) -> None:
        """Ask :attr:`contact_for_ticket` about this ticket again now (e.g. a contact added later)."""
        self._contacts.pop(ticket_id, None)
        self._contact(ticket_id)

    def _contact(self, ticket_id: str) -> str | None:
        known = self._contacts.get(ticket_id)
        if known:
            return known
        try:
            found = self.contact_for_ticket(ticket_id)
        except Exception:  # a broken look-up must not stop the other messages
            log.exception("contact look-up failed for a ticket")
            return None
        if found:
            self._contacts[ticket_id] = found
        return found

    def _front_of_line(self, per_group: int) -> list[str]:
        """The first ``per_group`` waiting tickets of each group, in calling order. Runs after every
        commit, so the walk stops once every group has its ``per_group`` (on a busy day, near the front)."""
        seen: dict[str, int] = {}
        front = []
        unfilled = {g.code for g in self.service.config.groups}
        for ticket in self.service.engine.waiting():
            taken = seen.get(ticket.group, 0)
            if taken < per_group:
                seen[ticket.group] = taken + 1
                front.append(ticket.id)
                if taken + 1 == per_group:
                    unfilled.discard(ticket.group)
                    if not unfilled:
                        break
        return front

    def on_commit(self, events: list[Event], now: datetime) -> None:
        """Runs after each commit: synchronous, only SQLite writes of the outbox (one per new message)."""
        k = self.notifier.settings.near_ahead
        engine = self.service.engine
        day = engine.day.isoformat() if engine.day else None
        if day != self._day:  # a new service day: yesterday's tickets are gone
            self._day, self._contacts, self._queued = day, {}, set()
        candidates = [e.data["ticket_id"] for e in events if isinstance(e.data.get("ticket_id"), str)]
        if k > 0:
            candidates += self._front_of_line(k + 1)
        for ticket_id in dict.fromkeys(candidates):
            self._contact(ticket_id)
        for event in events:
            if event.type == "booking.turn_reached":
                self._turn_reached(event)
        watched = [tid for tid, contact in self._contacts.items() if contact]
        for ticket_id in watched:
            ticket = engine.tickets.get(ticket_id)
            if ticket is None or ticket.status not in (WAITING, CALLED, SERVING):
                self._contacts.pop(ticket_id, None)  # finished, absent or cancelled: nothing more to say
                continue
            sealed = self._contacts[ticket_id] or ""
            if ticket.status in (CALLED, SERVING) and ticket.counter is not None:
                self._offer(f"called:{ticket_id}", sealed, called_text(ticket.number, ticket.counter), "called")
            elif ticket.status == WAITING and k > 0 and not {f"near:{ticket_id}", f"turn:{ticket_id}"} & self._queued:
                estimate = engine.estimates(now, only=ticket_id).get(ticket_id)
                if estimate is not None and estimate.ahead <= k:
                    group = self.service.config.group(ticket.group)
                    self._offer(f"near:{ticket_id}", sealed, near_text(estimate.ahead, ticket.number, group.name), "near")

    def _turn_reached(self, event: Event) -> None:
        """The line reached a remote number not checked in: tell its phone to come and check in
        within the grace period (once: ``turn:<ticket>``). Its "near" message is then redundant."""
        ticket_id = event.data.get("ticket_id")
        if not isinstance(ticket_id, str):
            return
        sealed = self._contact(ticket_id)
        if not sealed:
            return
        try:
            group = self.service.config.group(str(event.data.get("group"))).name
        except KeyError:
            group = str(event.data.get("group"))
        minutes = int(event.data.get("grace_minutes") or self.service.config.booking.grace_minutes)
        self._offer(f"turn:{ticket_id}", sealed, turn_text(int(event.data["number"]), group, minutes), "turn")

    def _offer(self, key: str, sealed: str, text: str, kind: str) -> None:
        if key not in self._queued:
            self.notifier.enqueue(key, sealed, text, kind)
            self._queued.add(key)
