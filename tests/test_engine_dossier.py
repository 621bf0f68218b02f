"""Dossier commands of the pure engine: attach, move on, replay gives the same state."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from luot.config import load_config
from server.engine import Dossier, Invalid, NotFound, QueueEngine, QueueError

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc)  # 09:00 in Hà Nội, a Monday


def _served_ticket(engine: QueueEngine):
    ticket, _ = engine.issue("chung-thuc", T0)
    engine.open_counter(3, "canbo1", T0)
    engine.call_next(3, T0 + timedelta(minutes=1))
    return ticket


def test_attach_then_status_changes_and_replay():
    engine = QueueEngine(load_config())
    log = []
    ticket, events = engine.issue("chung-thuc", T0)
    log += events
    log += engine.open_counter(3, "canbo1", T0)
    log += engine.call_next(3, T0)[1]
    dossier, events = engine.attach_dossier(ticket.id, " HS-001 ", T0)
    log += events
    assert dossier.code == "HS-001" and dossier.status == "received"
    assert [e.type for e in events] == ["dossier.attached", "dossier.status"]
    log += engine.set_dossier_status("HS-001", "processing", T0)[1]
    _, none = engine.set_dossier_status("HS-001", "processing", T0)
    assert none == []
    copy = QueueEngine(load_config())
    copy.replay(log)
    assert copy.dossiers == engine.dossiers == {"HS-001": Dossier("HS-001", ticket.id, "processing")}


def test_refusals():
    engine = QueueEngine(load_config())
    waiting, _ = engine.issue("ho-tich", T0)
    ticket = _served_ticket(engine)
    with pytest.raises(Invalid):
        engine.attach_dossier(ticket.id, "a b", T0)
    with pytest.raises(QueueError, match="not been served"):
        engine.attach_dossier(waiting.id, "HS-2", T0)
    with pytest.raises(NotFound):
        engine.attach_dossier("nope", "HS-2", T0)
    engine.attach_dossier(ticket.id, "HS-2", T0)
    other = _served_ticket_two(engine)
    with pytest.raises(QueueError, match="another ticket"):
        engine.attach_dossier(other.id, "HS-2", T0)
    with pytest.raises(Invalid):
        engine.set_dossier_status("HS-2", "lost", T0)
    with pytest.raises(NotFound):
        engine.set_dossier_status("HS-404", "ready", T0)
    engine.set_dossier_status("HS-2", "returned", T0)
    with pytest.raises(QueueError, match="final"):
        engine.set_dossier_status("HS-2", "processing", T0)


def _served_ticket_two(engine: QueueEngine):
    ticket, _ = engine.issue("ho-tich", T0)
    engine.open_counter(1, "canbo2", T0)
    engine.call_next(1, T0)
    return engine.tickets[engine.counters[1].ticket_id]


def test_a_dossier_of_an_earlier_day_moves_on_with_what_storage_knows():
    engine = QueueEngine(load_config())
    engine.issue("khac", T0)
    engine.close_day(T0)
    known = Dossier("HS-OLD", "t-earlier", "processing")
    dossier, events = engine.set_dossier_status("HS-OLD", "ready", T0 + timedelta(days=1), known=known)
    assert dossier.status == "ready" and events[-1].data == {"code": "HS-OLD", "status": "ready", "ticket_id": "t-earlier"}
