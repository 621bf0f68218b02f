"""'Your turn is near' over a real CentreService and SQLite: a ticket whose booking left a phone gets
"còn k người trước bạn" once when k or fewer are ahead and "Mời bạn đến quầy N" once when called;
tickets without a contact get nothing; a restart queues nothing twice."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

from luot.config import NotifySettings, parse_config
from server.notify import Notifier, Outbox
from server.notify.turn import TurnMessages
from server.phones import PhoneVault
from server.service import CentreService
from server.storage import Storage
from tests.engine_support import HCM, at, small_config


class ContactTable:
    """A small real table of ticket -> sealed phone, as the booking side keeps it."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path)
        self.conn.execute("CREATE TABLE IF NOT EXISTS contacts (ticket_id TEXT PRIMARY KEY, sealed TEXT NOT NULL)")

    def add(self, ticket_id: str, sealed: str) -> None:
        self.conn.execute("INSERT INTO contacts VALUES (?, ?)", (ticket_id, sealed))
        self.conn.commit()

    def __call__(self, ticket_id: str) -> str | None:
        row = self.conn.execute("SELECT sealed FROM contacts WHERE ticket_id = ?", (ticket_id,)).fetchone()
        return row[0] if row else None


def _config(near: int):
    data = small_config().model_dump(mode="json", exclude_none=True)
    data["notify"] = {"channels": [], "near_ahead": near}
    return parse_config(data, "test")


async def test_near_and_called_messages_go_once_to_tickets_with_a_contact(tmp_path: Path) -> None:
    config = _config(near=2)
    now = at(2, 9)  # a Monday morning
    storage = await Storage.open(tmp_path / "luot.sqlite3", HCM)
    service = await CentreService.start(config, storage, lambda: now)
    vault = PhoneVault.for_data_dir(tmp_path)
    outbox_path = tmp_path / "notify-outbox.sqlite3"
    notifier = Notifier(Outbox(outbox_path), vault, [], config.notify, clock=lambda: now)
    contacts = ContactTable(tmp_path / "bookings.sqlite3")
    TurnMessages(service, notifier, contacts)
    await service.run(lambda e, t: (None, e.open_counter(1, "canbo1", t)))

    tickets = []
    for n in range(6):
        ticket = await service.run(lambda e, t: e.issue("ho-tich", t))
        tickets.append(ticket)
        if n == 4:  # the fifth in line booked from home and left a phone
            contacts.add(ticket.id, vault.seal("0912345678"))
    booked = tickets[4]

    def messages() -> list[tuple[str, str, str]]:
        rows = notifier.outbox._conn.execute("SELECT dedupe_key, kind, text FROM outbox ORDER BY id").fetchall()
        return [(r[0], r[1], r[2]) for r in rows]

    ahead_seen = []
    for _ in range(4):  # call the four ahead of it, one by one (each is served, then the next called)
        await service.run(lambda e, t: e.call_next(1, t))
        await service.run(lambda e, t: e.start(1, t))
        ahead_seen.append((service.engine.estimates(now, only=booked.id)[booked.id].ahead, len(messages())))
    assert ahead_seen == [(3, 0), (2, 1), (1, 1), (0, 1)]  # queued when 2 were ahead, and only then
    [near] = messages()
    assert near[:2] == (f"near:{booked.id}", "near")
    assert near[2].startswith(f"Còn 2 người trước bạn (số {booked.number}, Hộ tịch)")

    await service.run(lambda e, t: e.call_next(1, t))  # its turn
    await service.run(lambda e, t: e.recall(1, t))  # called again: no second message
    assert [m[:2] for m in messages()] == [(f"near:{booked.id}", "near"), (f"called:{booked.id}", "called")]
    assert messages()[1][2] == f"Mời bạn đến quầy 1 (số {booked.number}). / Please go to counter 1 (no. {booked.number})."
    assert all(vault.open(r[0]) == "+84912345678" for r in notifier.outbox._conn.execute("SELECT sealed_phone FROM outbox"))

    # a restart: a new listener over the same outbox sees the called ticket again and queues nothing
    notifier.close()
    again = Notifier(Outbox(outbox_path), vault, [], config.notify, clock=lambda: now)
    service.listeners.clear()
    TurnMessages(service, again, contacts)
    await service.run(lambda e, t: e.issue("ho-tich", t))
    assert again.outbox.counts() == {"pending": 2, "sent": 0, "failed": 0}
    await storage.close()
