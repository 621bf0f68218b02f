"""Unit tests of the pure queue engine: each command, with explicit times, as a centre would see it."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from tests.engine_support import TOKENS, at, later, make_config, new_engine, recorded, replayed, state_of
from server import estimates
from server.engine import (
    BUSY, CALLED, CALLING, CANCELLED, CLOSED, DONE, EXPIRED, IDLE, NO_SHOW, PAUSED, SERVING, WAITING,
    Invalid, NotFound, QueueEngine, QueueError, Ticket,
)

VIETNAMESE = re.compile(r"[àáảãạăằắẳẵặâầấẩẫậđèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵ]", re.I)


class Centre:
    """The engine plus the log of every event it emitted, as the server would persist it."""

    def __init__(self, **queue_rules: Any) -> None:
        self.config = make_config(**queue_rules)
        self.engine = new_engine(self.config)
        self.events: list = []

    def __getattr__(self, name: str):
        command = getattr(self.engine, name)

        def run(*args: Any, **kwargs: Any) -> Any:
            return recorded(self.events, command(*args, **kwargs))

        return run

    def issue_many(self, group: str, start, count: int, every: float = 1.0, priority: str | None = None) -> list[Ticket]:
        return [self.issue(group, later(start, i * every), priority=priority) for i in range(count)]

    def types(self) -> list[str]:
        return [e.type for e in self.events]


@pytest.fixture
def centre() -> Centre:
    return Centre()


MON = 2  # 2 March 2026 is a Monday


# ---------------------------------------------------------------- issue and numbering
def test_numbers_start_at_first_number_and_count_up_per_group(centre: Centre) -> None:
    a = centre.issue_many("ho-tich", at(MON, 8), 3)
    b = centre.issue("chung-thuc", at(MON, 8, 5))
    assert [t.number for t in a] == [1001, 1002, 1003]
    assert b.number == 2001
    assert all(t.status == WAITING and t.queue_since == t.issued_at for t in a + [b])
    assert len({t.id for t in a + [b]}) == 4 and len({t.token for t in a + [b]}) == 4
    assert centre.engine.ticket_by_token(b.token) is b
    assert centre.types() == ["day.opened"] + ["ticket.issued"] * 4


def test_new_service_day_starts_at_local_midnight_which_is_17_utc(centre: Centre) -> None:
    before = at(MON, 23, 59)
    assert (before.hour, before.minute) == (16, 59)  # UTC
    first = centre.issue_many("ho-tich", at(MON, 23, 50), 2, every=5)
    assert [t.number for t in first] == [1001, 1002]
    after = at(MON + 1, 0, 0)
    assert after.hour == 17 and after.date() == before.date()  # still the same UTC date
    renewed = centre.issue("ho-tich", after)
    assert renewed.number == 1001
    assert centre.engine.day.isoformat() == "2026-03-03"
    assert centre.engine.day_closed is False
    expired = [e for e in centre.events if e.type == "ticket.expired"]
    assert {e.data["ticket_id"] for e in expired} == {t.id for t in first}
    closed = [e for e in centre.events if e.type == "day.closed"]
    assert closed[-1].data == {"day": "2026-03-02", "reason": "new_day"}


def test_same_local_day_across_utc_midnight_keeps_numbering(centre: Centre) -> None:
    early = centre.issue("ho-tich", at(MON, 6, 30))  # 23:30 UTC on 1 March
    assert early.issued_at.day == 1
    late = centre.issue("ho-tich", at(MON, 16, 0))  # 09:00 UTC on 2 March
    assert (early.number, late.number) == (1001, 1002)


def test_early_close_day_does_not_reset_numbering(centre: Centre) -> None:
    first = centre.issue("ho-tich", at(MON, 8))
    centre.close_day(at(MON, 10))
    assert first.status == EXPIRED
    again = centre.issue("ho-tich", at(MON, 10, 5))
    assert again.number == 1002
    block, _ = centre.engine.lease_block("kiosk-1", "ho-tich", 3, at(MON, 10, 6))
    assert block == (1003, 1005)


def test_issue_refusals(centre: Centre) -> None:
    with pytest.raises(NotFound) as missing:
        centre.issue("khong-co", at(MON, 8))
    assert missing.value.code == "group_not_found"
    with pytest.raises(Invalid) as unknown:
        centre.issue("ho-tich", at(MON, 8), priority="vip")
    assert unknown.value.code == "priority_unknown"
    assert centre.events == []


def test_group_full_after_capacity() -> None:
    data_centre = Centre()
    config = data_centre.config
    groups = [g.model_copy(update={"capacity": 2}) if g.code == "ho-tich" else g for g in config.groups]
    engine = new_engine(config.model_copy(update={"groups": groups}))
    assert [engine.issue("ho-tich", at(MON, 8, i))[0].number for i in range(2)] == [1001, 1002]
    before = state_of(engine, at(MON, 8, 5))
    with pytest.raises(QueueError) as full:
        engine.issue("ho-tich", at(MON, 8, 5))
    assert full.value.code == "group_full"
    assert state_of(engine, at(MON, 8, 5)) == before


# ---------------------------------------------------------------- calling order
def test_priority_ticket_goes_first(centre: Centre) -> None:
    centre.open_counter(1, "an", at(MON, 7, 30))
    ordinary = centre.issue("ho-tich", at(MON, 8))
    elderly = centre.issue("ho-tich", at(MON, 8, 10), priority="elderly")
    assert centre.call_next(1, at(MON, 8, 20)) is elderly
    assert elderly.status == CALLED and elderly.counter == 1 and elderly.officer == "an"
    centre.finish(1, at(MON, 8, 25))
    assert centre.call_next(1, at(MON, 8, 30)) is ordinary


def test_anti_starvation_at_most_three_priority_in_a_row(centre: Centre) -> None:
    assert centre.config.queue.priority_run_limit == 3
    centre.open_counter(1, "an", at(MON, 7, 30))
    ordinary = centre.issue_many("ho-tich", at(MON, 8), 2)
    priority = centre.issue_many("ho-tich", at(MON, 8, 5), 5, priority="disabled")
    called = []
    for i in range(7):
        ticket = centre.call_next(1, at(MON, 9, i))
        called.append(ticket)
        centre.finish(1, at(MON, 9, i) + timedelta(seconds=30))
    assert called == priority[:3] + ordinary[:1] + priority[3:] + ordinary[1:]


def test_reopening_a_counter_does_not_restart_the_priority_run(centre: Centre) -> None:
    centre.open_counter(1, "an", at(MON, 7, 30))
    ordinary = centre.issue("ho-tich", at(MON, 8))
    priority = centre.issue_many("ho-tich", at(MON, 8, 1), 4, priority="elderly")
    for i in range(3):
        assert centre.call_next(1, at(MON, 9, 2 * i)) is priority[i]
        centre.finish(1, at(MON, 9, 2 * i + 1))
    centre.close_counter(1, at(MON, 9, 10))
    centre.open_counter(1, "binh", at(MON, 9, 11))  # shift change
    assert centre.call_next(1, at(MON, 9, 12)) is ordinary


def test_priority_runs_on_when_no_ordinary_ticket_waits() -> None:
    centre = Centre(priority_run_limit=1)
    centre.open_counter(1, None, at(MON, 7, 30))
    priority = centre.issue_many("ho-tich", at(MON, 8), 3, priority="pregnant")
    called = []
    for i in range(3):
        called.append(centre.call_next(1, at(MON, 9, 2 * i)))
        centre.finish(1, at(MON, 9, 2 * i + 1))
    assert called == priority
    ordinary = centre.issue("ho-tich", at(MON, 9, 10))
    late_priority = centre.issue("ho-tich", at(MON, 9, 11), priority="merit")
    assert centre.call_next(1, at(MON, 9, 12)) is ordinary  # the run limit of 1 is already used up
    centre.finish(1, at(MON, 9, 13))
    assert centre.call_next(1, at(MON, 9, 14)) is late_priority


def test_ordinary_ticket_at_another_counter_does_not_stop_priority(centre: Centre) -> None:
    """Anti-starvation counts only ordinary tickets this counter could serve."""
    centre.open_counter(1, None, at(MON, 7, 30))
    centre.issue("chung-thuc", at(MON, 8))  # counter 1 does not serve it
    priority = centre.issue_many("ho-tich", at(MON, 8, 1), 5, priority="elderly")
    called = []
    for i in range(5):
        called.append(centre.call_next(1, at(MON, 9, 2 * i)))
        centre.finish(1, at(MON, 9, 2 * i + 1))
    assert called == priority


def test_call_next_across_groups_in_queue_order(centre: Centre) -> None:
    centre.open_counter(2, "binh", at(MON, 7, 30))
    centre.issue("dat-dai", at(MON, 7, 59))  # counter 2 does not serve it
    b1 = centre.issue("chung-thuc", at(MON, 8, 0))
    a1 = centre.issue("ho-tich", at(MON, 8, 1))
    b2 = centre.issue("chung-thuc", at(MON, 8, 2))
    called = []
    for i in range(4):
        called.append(centre.call_next(2, at(MON, 9, 2 * i)))
        if called[-1] is not None:
            centre.finish(2, at(MON, 9, 2 * i + 1))
    assert called == [b1, a1, b2, None]


def test_call_next_refused_while_a_called_ticket_is_unanswered(centre: Centre) -> None:
    centre.open_counter(1, None, at(MON, 7, 30))
    first, second = centre.issue_many("ho-tich", at(MON, 8), 2)
    centre.call_next(1, at(MON, 8, 5))
    with pytest.raises(QueueError) as refused:
        centre.call_next(1, at(MON, 8, 6))
    assert refused.value.code == "ticket_not_started"
    centre.start(1, at(MON, 8, 7))
    assert centre.call_next(1, at(MON, 8, 15)) is second  # the served ticket is finished first
    assert first.status == DONE and first.finished_at == at(MON, 8, 15)


def test_call_next_on_closed_or_unknown_counter(centre: Centre) -> None:
    centre.issue("ho-tich", at(MON, 8))
    with pytest.raises(QueueError) as closed:
        centre.call_next(1, at(MON, 8, 1))
    assert closed.value.code == "counter_closed"
    with pytest.raises(NotFound):
        centre.call_next(99, at(MON, 8, 1))


def test_call_ticket_chooses_a_particular_ticket(centre: Centre) -> None:
    centre.open_counter(2, None, at(MON, 7, 30))
    first, second = centre.issue_many("ho-tich", at(MON, 8), 2)
    land = centre.issue("dat-dai", at(MON, 8, 3))
    assert centre.call_ticket(2, second.id, at(MON, 8, 10)) is second
    with pytest.raises(QueueError) as busy:
        centre.call_ticket(2, first.id, at(MON, 8, 11))
    assert busy.value.code == "ticket_not_started"
    centre.start(2, at(MON, 8, 12))
    with pytest.raises(QueueError) as other_group:
        centre.call_ticket(2, land.id, at(MON, 8, 13))
    assert other_group.value.code == "ticket_not_callable"
    assert centre.call_ticket(2, first.id, at(MON, 8, 20)) is first
    assert second.status == DONE


# ---------------------------------------------------------------- at the counter
def test_recall_counts_calls_and_past_max_calls_marks_absent(centre: Centre) -> None:
    assert centre.config.queue.max_calls == 3
    centre.open_counter(1, None, at(MON, 7, 30))
    ticket = centre.issue("ho-tich", at(MON, 8))
    centre.call_next(1, at(MON, 8, 1))
    assert ticket.calls == 1
    centre.recall(1, at(MON, 8, 2))
    centre.recall(1, at(MON, 8, 3))
    assert ticket.calls == 3 and ticket.status == CALLED and ticket.called_at == at(MON, 8, 3)
    assert [c["call"] for c in centre.engine.recent_calls] == [3, 2, 1]
    centre.recall(1, at(MON, 8, 4))
    assert ticket.status == NO_SHOW and ticket.finished_at == at(MON, 8, 4)
    assert centre.engine.counters[1].status == IDLE and centre.engine.counters[1].ticket_id is None
    assert centre.events[-1].type == "ticket.no_show" and centre.events[-1].data["calls"] == 3
    with pytest.raises(QueueError) as idle:
        centre.recall(1, at(MON, 8, 5))
    assert idle.value.code == "counter_idle"


def test_recall_refused_once_serving(centre: Centre) -> None:
    centre.open_counter(1, None, at(MON, 7, 30))
    centre.issue("ho-tich", at(MON, 8))
    centre.call_next(1, at(MON, 8, 1))
    centre.start(1, at(MON, 8, 2))
    with pytest.raises(QueueError) as refused:
        centre.recall(1, at(MON, 8, 3))
    assert refused.value.code == "not_called"


def test_no_show(centre: Centre) -> None:
    centre.open_counter(1, None, at(MON, 7, 30))
    absent, present = centre.issue_many("ho-tich", at(MON, 8), 2)
    centre.call_next(1, at(MON, 8, 1))
    assert centre.no_show(1, at(MON, 8, 3)) is absent
    assert absent.status == NO_SHOW and centre.engine.counters[1].status == IDLE
    assert centre.call_next(1, at(MON, 8, 4)) is present
    centre.start(1, at(MON, 8, 5))
    with pytest.raises(QueueError) as refused:
        centre.no_show(1, at(MON, 8, 6))
    assert refused.value.code == "not_called"


def test_start_then_finish_records_service_time(centre: Centre) -> None:
    centre.open_counter(1, "an", at(MON, 7, 30))
    ticket = centre.issue("ho-tich", at(MON, 8))
    centre.call_next(1, at(MON, 8, 1))
    assert centre.engine.counters[1].status == CALLING
    centre.start(1, at(MON, 8, 2))
    assert ticket.status == SERVING and ticket.started_at == at(MON, 8, 2)
    assert centre.engine.counters[1].status == BUSY
    with pytest.raises(QueueError) as again:
        centre.start(1, at(MON, 8, 3))
    assert again.value.code == "not_called"
    centre.finish(1, at(MON, 8, 12))
    assert ticket.status == DONE and ticket.finished_at == at(MON, 8, 12)
    assert centre.events[-1].data["service_seconds"] == 600.0
    counter = centre.engine.counters[1]
    assert (counter.status, counter.ticket_id, counter.last_ticket_id) == (IDLE, None, ticket.id)


def test_finish_without_start_serves_and_finishes_at_once(centre: Centre) -> None:
    centre.open_counter(1, None, at(MON, 7, 30))
    ticket = centre.issue("ho-tich", at(MON, 8))
    centre.call_next(1, at(MON, 8, 1))
    centre.finish(1, at(MON, 8, 4))
    assert centre.types()[-2:] == ["ticket.serving", "ticket.finished"]
    assert ticket.status == DONE and ticket.started_at == at(MON, 8, 4)
    assert centre.events[-1].data["service_seconds"] == 0.0
    with pytest.raises(QueueError) as idle:
        centre.finish(1, at(MON, 8, 5))
    assert idle.value.code == "counter_idle"


def test_observed_service_times_feed_the_mean(centre: Centre) -> None:
    centre.open_counter(1, None, at(MON, 7, 30))
    centre.issue_many("chung-thuc", at(MON, 8), 1)
    assert centre.engine.mean_service_minutes("ho-tich") == 8
    for i in range(3):
        centre.issue("ho-tich", at(MON, 8, i))
    for i in range(3):
        centre.call_next(1, at(MON, 9, 20 * i))
        centre.start(1, at(MON, 9, 20 * i))
        centre.finish(1, at(MON, 9, 20 * i + 16))  # 16 minutes each
    mean = centre.engine.mean_service_minutes("ho-tich")
    assert mean == pytest.approx(3 / 8 * 16 + 5 / 8 * 8)


# ---------------------------------------------------------------- transfers
def test_transfer_to_group_keeps_the_citizens_place(centre: Centre) -> None:
    centre.open_counter(1, "an", at(MON, 7, 30))
    centre.open_counter(3, "chi", at(MON, 7, 30))
    b1 = centre.issue("chung-thuc", at(MON, 8, 0))
    a1 = centre.issue("ho-tich", at(MON, 8, 5))
    b2 = centre.issue("chung-thuc", at(MON, 8, 10))
    assert centre.call_next(3, at(MON, 8, 15)) is b1
    centre.start(3, at(MON, 8, 15))
    assert centre.call_next(1, at(MON, 8, 16)) is a1
    centre.start(1, at(MON, 8, 17))
    assert centre.transfer(1, at(MON, 8, 20), to_group="chung-thuc") is a1
    assert (a1.status, a1.group, a1.counter, a1.calls, a1.transfers) == (WAITING, "chung-thuc", None, 0, 1)
    assert a1.queue_since == at(MON, 8, 5) and a1.number == 1001 and a1.started_at is None
    assert centre.engine.counters[1].status == IDLE and centre.engine.counters[1].ticket_id is None
    b3 = centre.issue("chung-thuc", at(MON, 8, 25))
    order = []
    for i in range(3):
        order.append(centre.call_next(3, at(MON, 9, 2 * i)))
        centre.finish(3, at(MON, 9, 2 * i + 1))
    assert order == [a1, b2, b3]


def test_transfer_to_counter_keeps_place_and_only_that_counter_calls_it(centre: Centre) -> None:
    centre.open_counter(1, None, at(MON, 7, 30))
    centre.open_counter(2, None, at(MON, 7, 30))
    a1 = centre.issue("ho-tich", at(MON, 8, 0))
    centre.call_next(1, at(MON, 8, 1))
    centre.transfer(1, at(MON, 8, 5), to_counter=4)
    assert (a1.status, a1.group, a1.target_counter) == (WAITING, "ho-tich", 4)
    assert centre.call_next(2, at(MON, 8, 6)) is None  # counter 2 serves ho-tich but it was sent to 4
    land = centre.issue("dat-dai", at(MON, 8, 7))
    assert centre.engine.estimates(at(MON, 8, 8))[a1.id].wait_minutes is not None
    centre.open_counter(4, "dung", at(MON, 8, 10))
    assert centre.call_next(4, at(MON, 8, 11)) is a1
    assert a1.target_counter is None and a1.counter == 4
    centre.finish(4, at(MON, 8, 20))
    assert centre.call_next(4, at(MON, 8, 21)) is land


def test_transfer_refusals(centre: Centre) -> None:
    centre.open_counter(1, None, at(MON, 7, 30))
    centre.issue("ho-tich", at(MON, 8, 0))
    with pytest.raises(QueueError) as idle:
        centre.transfer(1, at(MON, 8, 1), to_group="chung-thuc")
    assert idle.value.code == "counter_idle"
    centre.call_next(1, at(MON, 8, 1))
    refusals = {
        "same_counter": dict(to_counter=1),
        "counter_group": dict(to_group="dat-dai", to_counter=2),
        "transfer_target": dict(),
        "group_not_found": dict(to_group="khong-co"),
        "counter_not_found": dict(to_counter=42),
    }
    before = state_of(centre.engine, at(MON, 8, 2))
    for code, kwargs in refusals.items():
        with pytest.raises(QueueError) as refused:
            centre.transfer(1, at(MON, 8, 2), **kwargs)
        assert refused.value.code == code
    assert state_of(centre.engine, at(MON, 8, 2)) == before


def test_close_counter_puts_a_called_ticket_back_in_its_place(centre: Centre) -> None:
    centre.open_counter(1, None, at(MON, 7, 30))
    first, second = centre.issue_many("ho-tich", at(MON, 8), 2)
    centre.call_next(1, at(MON, 8, 5))
    centre.close_counter(1, at(MON, 8, 6))
    assert first.status == WAITING and first.queue_since == at(MON, 8)
    assert centre.engine.counters[1].status == CLOSED
    centre.open_counter(2, None, at(MON, 8, 7))
    assert centre.call_next(2, at(MON, 8, 8)) is first


# ---------------------------------------------------------------- pause, cancel, close day
def test_pause_blocks_calling_and_resume_restores(centre: Centre) -> None:
    centre.open_counter(1, None, at(MON, 7, 30))
    ticket = centre.issue("ho-tich", at(MON, 8))
    centre.pause(1, at(MON, 8, 1), reason="nghỉ trưa")
    assert centre.engine.counters[1].status == PAUSED
    assert centre.pause(1, at(MON, 8, 2)) == []
    with pytest.raises(QueueError) as paused:
        centre.call_next(1, at(MON, 8, 3))
    assert paused.value.code == "counter_paused"
    with pytest.raises(QueueError) as paused_choice:
        centre.call_ticket(1, ticket.id, at(MON, 8, 3))
    assert paused_choice.value.code == "counter_paused"
    assert ticket.status == WAITING
    centre.resume(1, at(MON, 8, 4))
    assert centre.engine.counters[1].status == IDLE
    assert centre.resume(1, at(MON, 8, 4)) == []
    assert centre.call_next(1, at(MON, 8, 5)) is ticket


def test_pause_during_service_survives_start_and_finish(centre: Centre) -> None:
    centre.open_counter(1, None, at(MON, 7, 30))
    centre.issue_many("ho-tich", at(MON, 8), 2)
    centre.call_next(1, at(MON, 8, 1))
    centre.pause(1, at(MON, 8, 2), reason="hỏi ý kiến")
    centre.start(1, at(MON, 8, 3))
    assert centre.engine.counters[1].status == PAUSED
    with pytest.raises(QueueError):
        centre.call_next(1, at(MON, 8, 4))
    centre.resume(1, at(MON, 8, 5))
    assert centre.engine.counters[1].status == BUSY
    centre.finish(1, at(MON, 8, 6))
    assert centre.engine.counters[1].status == IDLE


def test_pause_closed_counter_refused(centre: Centre) -> None:
    with pytest.raises(QueueError) as closed:
        centre.pause(1, at(MON, 8))
    assert closed.value.code == "counter_closed"


def test_cancel(centre: Centre) -> None:
    centre.open_counter(1, None, at(MON, 7, 30))
    centre.open_counter(2, None, at(MON, 7, 30))
    waiting, called, serving = centre.issue_many("ho-tich", at(MON, 8), 3)
    assert centre.cancel(waiting.id, at(MON, 8, 5)) is waiting and waiting.status == CANCELLED
    centre.call_next(1, at(MON, 8, 6))
    centre.cancel(called.id, at(MON, 8, 7), reason="left")
    assert called.status == CANCELLED and centre.engine.counters[1].ticket_id is None
    assert centre.engine.counters[1].status == IDLE
    centre.call_next(2, at(MON, 8, 8))
    centre.start(2, at(MON, 8, 9))
    for ticket in (serving, waiting):
        with pytest.raises(QueueError) as refused:
            centre.cancel(ticket.id, at(MON, 8, 10))
        assert refused.value.code == "not_cancellable"
    with pytest.raises(NotFound):
        centre.cancel("t-unknown", at(MON, 8, 10))


def test_close_day_expires_open_tickets_and_closes_counters(centre: Centre) -> None:
    for n in (1, 2, 3):
        centre.open_counter(n, None, at(MON, 7, 30))
    done, serving, called, waiting = centre.issue_many("ho-tich", at(MON, 8), 4)
    centre.call_next(1, at(MON, 8, 5))
    centre.finish(1, at(MON, 8, 6))
    centre.call_next(1, at(MON, 8, 7))
    centre.start(1, at(MON, 8, 8))
    centre.call_next(2, at(MON, 8, 9))
    centre.pause(3, at(MON, 8, 10))
    centre.close_day(at(MON, 17))
    assert done.status == DONE
    assert all(t.status == EXPIRED and t.finished_at == at(MON, 17) for t in (serving, called, waiting))
    assert all(c.status == CLOSED and c.ticket_id is None for c in centre.engine.counters.values())
    assert centre.engine.day_closed
    expired = {e.data["ticket_id"]: e.data["status_before"] for e in centre.events if e.type == "ticket.expired"}
    assert expired == {serving.id: SERVING, called.id: CALLED, waiting.id: WAITING}
    assert centre.engine.snapshot(at(MON, 17))["waiting_total"] == 0


def test_tickets_issued_after_close_day_expire_when_the_next_day_opens(centre: Centre) -> None:
    centre.close_day(at(MON, 12))
    late = centre.issue("ho-tich", at(MON, 12, 30))
    centre.open_counter(1, None, at(MON, 12, 31))
    centre.issue("ho-tich", at(MON + 1, 8))
    expired = [e.data["ticket_id"] for e in centre.events if e.type == "ticket.expired"]
    assert expired == [late.id]
    closes = [e for e in centre.events if e.type == "counter.closed"]
    assert [e.data["counter"] for e in closes] == [1]


def test_after_local_midnight_yesterdays_counters_and_tickets_are_gone(centre: Centre) -> None:
    """Commands on yesterday's state are refused as on the new day, and a refusal changes nothing."""
    centre.open_counter(1, None, at(MON, 16))
    centre.open_counter(2, None, at(MON, 16))
    done, called, serving, waiting = centre.issue_many("ho-tich", at(MON, 16), 4)
    centre.call_next(1, at(MON, 16, 5))
    centre.finish(1, at(MON, 16, 6))
    centre.call_next(1, at(MON, 16, 7))
    centre.call_next(2, at(MON, 16, 8))
    centre.start(2, at(MON, 16, 9))
    night = at(MON + 1, 0, 5)
    before = state_of(centre.engine, night)
    attempts = {
        "call_ticket": lambda: centre.call_ticket(1, waiting.id, night),
        "call_next": lambda: centre.call_next(1, night),
        "recall": lambda: centre.recall(1, night),
        "no_show": lambda: centre.no_show(1, night),
        "start": lambda: centre.start(1, night),
        "finish": lambda: centre.finish(2, night),
        "transfer": lambda: centre.transfer(1, night, to_group="chung-thuc"),
        "pause": lambda: centre.pause(2, night),
        "cancel": lambda: centre.cancel(waiting.id, night),
        "feedback": lambda: centre.record_feedback(done.id, 4, None, 1, night),
    }
    for name, attempt in attempts.items():
        with pytest.raises(QueueError):
            attempt()
        assert state_of(centre.engine, night) == before, name
    assert centre.resume(1, night) == []
    # 7.9 hours after the last event, the day still open: the clock may have leapt, so the new day
    # waits for a manager (an early close or a confirmed clock), and the refusal changes nothing
    with pytest.raises(QueueError) as suspect:
        centre.issue("ho-tich", night)
    assert suspect.value.code == "clock_suspect" and "2026-03-02 is still open" in suspect.value.message_en
    assert state_of(centre.engine, night) == before
    centre.confirm_clock(night)
    assert centre.issue("ho-tich", night).number == 1001
    assert (called.status, serving.status, waiting.status, done.status) == (EXPIRED, EXPIRED, EXPIRED, DONE)
    fresh = replayed(centre.config, centre.events)
    assert state_of(fresh, night) == state_of(centre.engine, night)


# ---------------------------------------------------------------- feedback
def test_record_feedback_once_after_service_at_the_right_counter(centre: Centre) -> None:
    centre.open_counter(1, None, at(MON, 7, 30))
    ticket = centre.issue("ho-tich", at(MON, 8))
    centre.call_next(1, at(MON, 8, 1))
    with pytest.raises(QueueError) as early:
        centre.record_feedback(ticket.id, 4, "pad-1", 1, at(MON, 8, 2))
    assert early.value.code == "not_finished"
    centre.finish(1, at(MON, 8, 5))
    with pytest.raises(Invalid) as wrong:
        centre.record_feedback(ticket.id, 4, "pad-2", 2, at(MON, 8, 6))
    assert wrong.value.code == "wrong_counter"
    for rating in (0, 5):
        with pytest.raises(Invalid):
            centre.record_feedback(ticket.id, rating, "pad-1", 1, at(MON, 8, 6))
    events = centre.record_feedback(ticket.id, 3, "pad-1", 1, at(MON, 8, 6))
    assert events[0].data["rating"] == 3 and events[0].data["counter"] == 1
    assert ticket.rated
    with pytest.raises(QueueError) as twice:
        centre.record_feedback(ticket.id, 4, None, None, at(MON, 8, 7))
    assert twice.value.code == "already_rated"
    with pytest.raises(NotFound):
        centre.record_feedback("t-nope", 4, None, None, at(MON, 8, 7))


# ---------------------------------------------------------------- offline kiosks
def test_lease_block_and_import_offline(centre: Centre) -> None:
    centre.issue_many("ho-tich", at(MON, 8), 2)
    assert centre.lease_block("kiosk-1", "ho-tich", 5, at(MON, 8, 5)) == (1003, 1007)
    assert centre.issue("ho-tich", at(MON, 8, 6)).number == 1008  # the block is never issued online
    offline = centre.import_offline("kiosk-1", "ho-tich", 1004, at(MON, 8, 7), TOKENS[0],
                                    at(MON, 9), priority="elderly")
    assert (offline.number, offline.offline, offline.source, offline.priority) == (1004, True, "kiosk-1", "elderly")
    assert offline.queue_since == at(MON, 8, 7)  # its place is when the citizen got it
    assert centre.engine.ticket_by_token(TOKENS[0]) is offline
    count = len(centre.events)
    again = centre.engine.import_offline("kiosk-1", "ho-tich", 1004, at(MON, 8, 7), TOKENS[0], at(MON, 9, 1))
    assert again == (offline, [])
    assert len(centre.events) == count and len(centre.engine.tickets) == 4
    future = centre.import_offline("kiosk-1", "ho-tich", 1005, at(MON, 9, 3), TOKENS[1], at(MON, 9, 2))
    assert future.queue_since == at(MON, 9, 2)  # a kiosk clock a little ahead cannot jump the queue
    for device, number in (("kiosk-1", 1008), ("kiosk-1", 1002), ("kiosk-2", 1006)):
        with pytest.raises(Invalid) as refused:
            centre.import_offline(device, "ho-tich", number, at(MON, 8), "t", at(MON, 9, 3))
        assert refused.value.code == "not_leased"
    with pytest.raises(Invalid):
        centre.lease_block("kiosk-1", "ho-tich", 0, at(MON, 9))
    with pytest.raises(NotFound) as missing:
        centre.lease_block("kiosk-1", "khong-co", 5, at(MON, 9))
    assert missing.value.code == "group_not_found"


def test_lease_from_yesterday_is_refused_today(centre: Centre) -> None:
    centre.lease_block("kiosk-1", "ho-tich", 5, at(MON, 16))
    before = state_of(centre.engine, at(MON + 1, 8))
    with pytest.raises(Invalid) as refused:
        centre.engine.import_offline("kiosk-1", "ho-tich", 1002, at(MON, 16, 10), "tok", at(MON + 1, 8))
    assert refused.value.code == "not_leased"
    assert state_of(centre.engine, at(MON + 1, 8)) == before  # a refusal changes nothing


def test_import_offline_stays_idempotent_after_the_ticket_moved_group(centre: Centre) -> None:
    centre.lease_block("kiosk-1", "ho-tich", 3, at(MON, 8))
    ticket = centre.import_offline("kiosk-1", "ho-tich", 1002, at(MON, 8, 1), TOKENS[0], at(MON, 8, 2))
    centre.open_counter(1, None, at(MON, 8, 3))
    centre.call_next(1, at(MON, 8, 4))
    centre.transfer(1, at(MON, 8, 5), to_group="chung-thuc")
    again, events = centre.engine.import_offline("kiosk-1", "ho-tich", 1002, at(MON, 8, 1), TOKENS[0], at(MON, 8, 6))
    assert again is ticket and events == []


# ---------------------------------------------------------------- errors speak both languages
def test_refusals_are_queue_errors_in_vietnamese_and_english(centre: Centre) -> None:
    centre.open_counter(1, None, at(MON, 7, 30))
    ticket = centre.issue("ho-tich", at(MON, 8))
    attempts = [
        lambda: centre.issue("khong-co", at(MON, 8)),
        lambda: centre.call_next(5, at(MON, 8)),
        lambda: centre.call_next(77, at(MON, 8)),
        lambda: centre.recall(1, at(MON, 8)),
        lambda: centre.start(1, at(MON, 8)),
        lambda: centre.finish(1, at(MON, 8)),
        lambda: centre.no_show(1, at(MON, 8)),
        lambda: centre.record_feedback(ticket.id, 4, None, None, at(MON, 8)),
        lambda: centre.record_feedback(ticket.id, 9, None, None, at(MON, 8)),
        lambda: centre.cancel("missing", at(MON, 8)),
        lambda: centre.import_offline("kiosk-1", "ho-tich", 1500, at(MON, 8), "x", at(MON, 8)),
        lambda: centre.lease_block("kiosk-1", "ho-tich", 500, at(MON, 8)),
        lambda: centre.pause(4, at(MON, 8)),
        lambda: centre.open_counter(1, "someone-else", at(MON, 8)),
    ]
    for attempt in attempts:
        with pytest.raises(QueueError) as error:
            attempt()
        err = error.value
        assert VIETNAMESE.search(err.message), err.message
        assert err.message_en.isascii() and err.message_en != err.message and str(err) == err.message_en
        assert err.status in (400, 404, 409) and err.code


# ---------------------------------------------------------------- estimates
def test_estimates_grow_along_the_queue_and_use_open_counters(centre: Centre) -> None:
    centre.open_counter(1, None, at(MON, 7, 30))
    tickets = centre.issue_many("ho-tich", at(MON, 8), 5)
    one = centre.engine.estimates(at(MON, 8, 10))
    assert [one[t.id].ahead for t in tickets] == [0, 1, 2, 3, 4]
    assert [one[t.id].mean_minutes for t in tickets] == [0, 8, 16, 24, 32]
    centre.open_counter(2, None, at(MON, 8, 10))
    two = centre.engine.estimates(at(MON, 8, 10))
    assert [two[t.id].mean_minutes for t in tickets] == [0, 0, 8, 8, 16]
    centre.pause(2, at(MON, 8, 11))
    paused = centre.engine.estimates(at(MON, 8, 11))
    # a paused counter is expected back (after the default 15 minutes while none of today's pauses
    # has ended), not gone: its first ticket waits for its return, the rest share both counters
    assert [paused[t.id].mean_minutes for t in tickets] == [0, 8, 15, 16, 23]


def test_estimate_counts_the_current_service(centre: Centre) -> None:
    centre.open_counter(1, None, at(MON, 7, 30))
    first, second, third = centre.issue_many("ho-tich", at(MON, 8), 3)
    centre.call_next(1, at(MON, 8, 1))
    centre.start(1, at(MON, 8, 2))
    est = centre.engine.estimates(at(MON, 8, 5))
    assert first.id not in est
    assert (est[second.id].ahead, est[second.id].mean_minutes) == (0, 5.0)
    assert est[third.id].mean_minutes == 13.0


def test_estimates_exist_with_no_counter_open_and_are_none_when_no_counter_serves(centre: Centre) -> None:
    ticket = centre.issue("dat-dai", at(MON, 8))
    est = centre.engine.estimates(at(MON, 8, 1))
    assert est[ticket.id].mean_minutes == 0.0
    config = centre.config
    unserved = config.model_copy(update={"counters": [c for c in config.counters if c.number != 4]})
    engine = new_engine(unserved)
    orphan, _ = engine.issue("dat-dai", at(MON, 8))
    served, _ = engine.issue("ho-tich", at(MON, 8))
    est = engine.estimates(at(MON, 8, 1))
    assert est[orphan.id].wait_minutes is None
    assert est[served.id].wait_minutes is not None


def test_estimates_count_compatible_groups_ahead(centre: Centre) -> None:
    centre.open_counter(2, None, at(MON, 7, 30))
    b = centre.issue("chung-thuc", at(MON, 8))
    a = centre.issue("ho-tich", at(MON, 8, 1))
    est = centre.engine.estimates(at(MON, 8, 2))
    assert est[b.id].ahead == 0 and est[a.id].ahead == 1
    assert est[a.id].mean_minutes == 4.0



def test_estimates_use_the_observed_cycle_not_only_the_service(centre: Centre) -> None:
    """Officers spend more than the service on each citizen (walk-up, the pause before the next
    call): the wait predictor counts today's observed call-to-release time and that pause."""
    centre.open_counter(1, None, at(MON, 7, 30))
    tickets = centre.issue_many("ho-tich", at(MON, 8), 7, every=0)
    for i in range(4):  # call, 2 minutes to come forward, 8 minutes of service, 1 minute before the next call
        centre.call_next(1, at(MON, 8, 11 * i))
        centre.start(1, at(MON, 8, 11 * i + 2))
        centre.finish(1, at(MON, 8, 11 * i + 10))
    assert centre.engine.mean_service_minutes("ho-tich") == 8  # the service itself did not change
    # observed handling (10 minutes) blended with the configured 8 scaled by the centre's recent pace
    # (10/8, itself blended with 1 as if the file were 25 services: estimates.PACE_PRIOR_SPREAD),
    # each by its precision (the group's weight from how far the groups' means lie off their
    # priors beyond their noise, here one group and the prior's two: estimates.GROUP_PRIOR_SPREAD),
    # plus the pause
    pace = 4 / 29 * 10 / 8 + 25 / 29
    noise = 1 / estimates.effective_samples(4, estimates.RECENT_WEIGHT)
    spread = max(0.05 ** 2, ((10 / (8 * pace) - 1) ** 2 - noise + 2 * 0.3 ** 2) / 3)  # (its floor, here)
    weight = spread / (spread + noise)
    cycle = weight * 10 + (1 - weight) * 8 * pace + 1
    assert centre.engine.cycle_minutes("ho-tich") == pytest.approx(cycle)
    est = centre.engine.estimates(at(MON, 8, 43))
    assert [est[t.id].mean_minutes for t in tickets[4:]] == [0.0, round(cycle, 1), round(2 * cycle, 1)]
    # Asked for one ticket (its own tracking page, the kiosk at issue), the same answer for it alone.
    assert centre.engine.estimates(at(MON, 8, 43), only=tickets[5].id) == {tickets[5].id: est[tickets[5].id]}

# ---------------------------------------------------------------- replay
def test_replay_rebuilds_exactly_the_same_state(centre: Centre) -> None:
    for n in (1, 2, 3, 4):
        centre.open_counter(n, f"officer-{n}", at(MON, 7, 30))
    tickets = centre.issue_many("ho-tich", at(MON, 8), 4)
    centre.issue_many("chung-thuc", at(MON, 8, 1), 3, priority="elderly")
    centre.lease_block("kiosk-1", "dat-dai", 4, at(MON, 8, 2))
    centre.import_offline("kiosk-1", "dat-dai", 3002, at(MON, 8, 2), TOKENS[2], at(MON, 8, 3))
    centre.call_next(1, at(MON, 8, 10))
    centre.recall(1, at(MON, 8, 11))
    centre.start(1, at(MON, 8, 12))
    centre.call_next(2, at(MON, 8, 12))
    centre.transfer(2, at(MON, 8, 13), to_counter=4)
    centre.call_next(4, at(MON, 8, 14))
    centre.finish(4, at(MON, 8, 15))
    centre.call_next(3, at(MON, 8, 15))
    centre.no_show(3, at(MON, 8, 16))
    centre.pause(3, at(MON, 8, 17), reason="họp")
    centre.cancel(tickets[3].id, at(MON, 8, 18))
    centre.finish(1, at(MON, 8, 20))
    centre.record_feedback(tickets[0].id, 4, "pad-1", 1, at(MON, 8, 21))
    centre.call_next(1, at(MON, 8, 25))
    centre.close_counter(1, at(MON, 8, 26))
    centre.request_assistance("kiosk-1", "r1", "wheelchair", at(MON, 8, 27))
    now = at(MON, 9)
    assert state_of(replayed(centre.config, centre.events), now) == state_of(centre.engine, now)
    centre.close_day(at(MON, 17))
    centre.issue("ho-tich", at(MON + 1, 7, 40))
    centre.open_counter(1, None, at(MON + 1, 7, 41))
    centre.call_next(1, at(MON + 1, 7, 42))
    now = at(MON + 1, 8)
    fresh = replayed(centre.config, centre.events)
    assert state_of(fresh, now) == state_of(centre.engine, now)
    assert fresh.issue("ho-tich", now)[0].number == centre.engine.issue("ho-tich", now)[0].number == 1002


def test_engine_has_no_clock_of_its_own() -> None:
    """Two engines fed the same commands at the same explicit times agree, whatever the real time."""
    config = make_config()
    one, two = new_engine(config), new_engine(config)
    for engine in (one, two):
        engine.open_counter(1, None, at(MON, 8))
        engine.issue("ho-tich", at(MON, 8, 1))
        engine.call_next(1, at(MON, 8, 2))
    assert state_of(one, at(MON, 9)) == state_of(two, at(MON, 9))
    assert isinstance(one, QueueEngine)
