"""Wait estimates that know the centre's previous days (server/wait_history.py, issue 17).

Earlier days in which ho-tich's services took 8 minutes in the morning and 24 after lunch: a
ticket whose turn falls in the afternoon is told a longer wait with that history than without, by
the history's afternoon time; the engine stays pure (the same history and events, the same answers,
whether the history came before the events or after them); and the running server builds the
profile from its own SQLite tickets, at start and at a new day's first command.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from server import estimates
from server.engine import QueueEngine
from server.service import CentreService
from server.storage import Storage
from server.wait_history import History, TicketRecord
from tests.engine_support import HCM, at, make_config, new_engine, replayed

CONFIG = make_config()
MON = 9  # 9 March 2026, a Monday; the history is of the three Mondays before it


def earlier_days() -> list[date]:
    return [date(2026, 3, MON) - timedelta(days=7 * k) for k in (1, 2, 3)]


def moment(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=HCM)


def slow_afternoon_records() -> list[TicketRecord]:
    """Three earlier days: ho-tich served in 8 minutes from 07:30 and in 24 from 13:00, 12 tickets
    a session; one in four a priority ticket, all issued in the morning."""
    records = []
    for day in earlier_days():
        for start, minutes in ((moment(day, 7, 30), 8), (moment(day, 13, 0), 24)):
            for i in range(12):
                called = start + timedelta(minutes=minutes * i)
                records.append(TicketRecord(day, "ho-tich", i % 4 == 0, moment(day, 7, 10), called,
                                            called + timedelta(minutes=minutes)))
    return records


def morning_line(engine: QueueEngine, waiting: int, log: list | None = None, minutes: int = 8) -> str:
    """Counter 1 served ten ho-tich tickets in ``minutes`` each from 07:30; at 09:00 ``waiting``
    more wait (the last one's turn falls after lunch when there are enough). Events into ``log``."""
    log = [] if log is None else log
    log += engine.open_counter(1, "a", at(MON, 7, 30))
    now = at(MON, 7, 30)
    for _ in range(10):
        log += engine.issue("ho-tich", now)[1]
        log += engine.call_next(1, now)[1]
        log += engine.start(1, now)[1]
        now += timedelta(minutes=minutes)
        log += engine.finish(1, now)[1]
    last = ""
    for _ in range(waiting):
        ticket, events = engine.issue("ho-tich", at(MON, 9))
        last, log[len(log):] = ticket.id, events
    return last


def test_the_profile_counts_days_arrivals_and_session_times() -> None:
    history = History.from_records(slow_afternoon_records(), HCM)
    assert history.days == 3
    assert history.handle_minutes("ho-tich", 7 * 60 + 30, 12 * 60) == pytest.approx(8.0)
    assert history.handle_minutes("ho-tich", 13 * 60, 16 * 60 + 30) == pytest.approx(24.0)
    assert sum(history.arrivals["ho-tich"]) == pytest.approx(24.0)  # per day
    assert sum(history.priority["ho-tich"]) == pytest.approx(6.0)
    assert history.handle_minutes("chung-thuc", 0, 24 * 60) is None


def test_a_turn_after_lunch_is_told_the_afternoons_known_pace() -> None:
    without = new_engine(CONFIG)
    ticket = morning_line(without, 40)
    engine = new_engine(CONFIG)
    engine.use_history(History.from_records(slow_afternoon_records(), HCM))
    assert morning_line(engine, 40) == ticket
    now = at(MON, 9)
    plain, known = without.estimates(now, only=ticket)[ticket], engine.estimates(now, only=ticket)[ticket]
    assert plain.after_break and known.after_break
    # the morning pace matches the history's (ratio 1): 40 tickets at 8 minutes fill 09:00-12:00
    # (22 or so) and the rest are served after 13:00 at the history's 24 minutes, not at 8
    bounds, cycles = engine.estimate_model.session_cycles(engine.estimate_model.timeline(now))
    assert cycles["ho-tich"][1] == pytest.approx(3 * cycles["ho-tich"][0], rel=0.05)
    assert known.mean_minutes > plain.mean_minutes + 150, (plain.mean_minutes, known.mean_minutes)


def test_one_earlier_day_tells_the_afternoon_pace_of_every_group_pooled(monkeypatch: pytest.MonkeyPatch) -> None:
    """One earlier day, 12 ho-tich and 12 chung-thuc services a session, each group three times
    slower after lunch: too few per group and session to count alone (20), enough pooled. Each
    group takes its day's mean times the session's factor over both groups (0.5 and 1.5), so a
    ticket whose turn falls after lunch is told the afternoon's pace after one day, not after three."""
    day = earlier_days()[0]
    records = [record for record in slow_afternoon_records() if record.day == day]
    for start, minutes in ((moment(day, 7, 30), 4), (moment(day, 13, 0), 12)):
        for i in range(12):
            called = start + timedelta(minutes=minutes * i)
            records.append(TicketRecord(day, "chung-thuc", False, moment(day, 7, 10), called,
                                        called + timedelta(minutes=minutes)))
    history = History.from_records(records, HCM)
    assert history.days == 1 and history.handle_minutes("ho-tich", 13 * 60, 16 * 60 + 30) is None

    def session_cycles(engine: QueueEngine) -> tuple[float, ...]:
        morning_line(engine, 40)
        model = engine.estimate_model
        return model.session_cycles(model.timeline(at(MON, 9)))[1]["ho-tich"]

    engine = new_engine(CONFIG)
    engine.use_history(history)
    morning, afternoon = session_cycles(engine)
    assert afternoon == pytest.approx(3 * morning, rel=0.05)
    monkeypatch.setattr(estimates, "HISTORY_SESSION_POOLED", False)  # each group alone, as before
    engine = new_engine(CONFIG)
    engine.use_history(history)
    morning, afternoon = session_cycles(engine)
    assert afternoon == pytest.approx(morning)


def test_a_range_that_runs_into_a_slower_afternoon_is_wider() -> None:
    """The history's afternoon takes 3 times the morning's minutes per ticket: a ticket whose turn
    falls after lunch gets a range of twice sigma's width (RANGE_PACE 0.5: 1 + 0.5 x (3 - 1)), one
    served before lunch not."""
    engine = new_engine(CONFIG)
    engine.use_history(History.from_records(slow_afternoon_records(), HCM))
    late = morning_line(engine, 40)
    early = engine.estimate_model  # the model, for its range_pace
    now = at(MON, 9)
    timeline = early.timeline(now)
    known = engine.estimates(now)
    open_now, wait, step = known[late].basis
    assert estimates.RANGE_PACE == 0.5
    assert early.range_pace("ho-tich", timeline, open_now, wait) == pytest.approx(2.0, rel=0.02)
    assert early.range_pace("ho-tich", timeline, open_now, 30.0) == 1.0
    k, cap = estimates.HISTORY_POINT_SHIFT, estimates.history_shift_cap_for(early.history_load(timeline))
    to_break = timeline.next_break_end(open_now) - open_now
    told, lo, hi = estimates.spread_wait(wait, step, k=k, cap=cap, to_break=to_break, scale=2.0)
    plain = estimates.spread_wait(wait, step, k=k, cap=cap, to_break=to_break)
    assert hi - lo > plain[2] - plain[1] + 20 and told == plain[0]
    assert known[late].mean_minutes < known[late].wait_range[1]


def test_before_lunch_a_history_changes_nothing_but_the_priority_arrivals() -> None:
    records = [r for r in slow_afternoon_records() if not r.priority]
    without, engine = new_engine(CONFIG), new_engine(CONFIG)
    ticket = morning_line(without, 5)
    engine.use_history(History.from_records(records, HCM))
    morning_line(engine, 5)
    now = at(MON, 9)
    assert engine.estimates(now, only=ticket)[ticket].mean_minutes == pytest.approx(
        without.estimates(now, only=ticket)[ticket].mean_minutes, abs=0.6)


def test_a_centre_whose_days_usually_outgrow_its_counters_is_promised_later() -> None:
    """The same morning, the same walk: the history of busier days (three times the tickets, no
    priority ones) raises the centre's usual load past HISTORY_LOAD_KNEE and moves the point told
    later, not the walk's mean; its range is wider (HISTORY_RANGE_OVERLOAD: its usual load is 3)."""
    from server import estimates

    quiet = [r for r in slow_afternoon_records() if not r.priority]
    busy = [TicketRecord(r.day, r.group, False, r.issued_at, r.first_called_at, r.finished_at)
            for r in quiet for _ in range(30)]
    told = {}
    for name, records in (("quiet", quiet), ("busy", busy)):
        engine = new_engine(CONFIG)
        engine.use_history(History.from_records(records, HCM))
        ticket = morning_line(engine, 12)
        model = engine.estimate_model
        told[name] = (engine.estimates(at(MON, 9), only=ticket)[ticket], model.history_load(model.timeline(at(MON, 9))))
    (quiet_answer, quiet_load), (busy_answer, busy_load) = told["quiet"], told["busy"]
    assert quiet_load < estimates.HISTORY_LOAD_KNEE < busy_load
    assert busy_answer.mean_minutes == quiet_answer.mean_minutes
    assert busy_answer.wait_minutes > quiet_answer.wait_minutes + 5
    (quiet_lo, quiet_hi), (busy_lo, busy_hi) = quiet_answer.wait_range, busy_answer.wait_range
    assert busy_lo < quiet_lo and busy_hi > quiet_hi


def test_the_point_moves_later_only_once_the_usual_load_outgrows_the_counters(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two regimes of the centre's usual load (issue 17's sixth round): a centre whose days
    usually load its counters 0.9 or 1.0 is promised the same point (the shift's cap stays at
    HISTORY_SHIFT_CAP_BELOW_OVERLOAD while the counters keep up), one usually loaded 1.2, whose
    line outgrows them all day, a later one. The walk is the same in all three; the range of the
    overloaded centre is wider (tenth round: HISTORY_RANGE_OVERLOAD), its point not moved by that."""
    from server import estimates

    quiet = [r for r in slow_afternoon_records() if not r.priority]  # a usual load of 0.1

    def told_with(copies: int) -> estimates.Estimate:
        engine = new_engine(CONFIG)
        engine.use_history(History.from_records([r for r in quiet for _ in range(copies)], HCM))
        ticket = morning_line(engine, 12)
        model = engine.estimate_model
        assert model.history_load(model.timeline(at(MON, 9))) == pytest.approx(copies / 10)
        return engine.estimates(at(MON, 9), only=ticket)[ticket]

    told = {copies: told_with(copies) for copies in (9, 10, 12)}
    assert estimates.wait_spread(told[9].basis[1], told[9].basis[2]) > estimates.HISTORY_SHIFT_CAP_BELOW_OVERLOAD
    assert told[9].mean_minutes == told[10].mean_minutes == told[12].mean_minutes
    assert told[9].wait_range == told[10].wait_range
    assert told[12].wait_range[0] < told[10].wait_range[0] and told[12].wait_range[1] > told[10].wait_range[1]
    assert told[10].wait_minutes == told[9].wait_minutes
    assert told[12].wait_minutes > told[10].wait_minutes + 5
    monkeypatch.setattr(estimates, "HISTORY_RANGE_OVERLOAD", 0.0)
    unwidened = told_with(12)
    assert unwidened.wait_range == told[10].wait_range and unwidened.wait_minutes == told[12].wait_minutes


def test_the_same_history_and_events_give_the_same_answers_whenever_the_history_came() -> None:
    history = History.from_records(slow_afternoon_records(), HCM)
    live = new_engine(CONFIG)
    live.use_history(history)
    log: list = []
    morning_line(live, 40, log, minutes=9)  # slower than the history's mornings today
    now = at(MON, 9)
    answers = {k: v for k, v in live.estimates(now).items()}
    before = QueueEngine(CONFIG)
    before.use_history(history)
    before.replay(log)
    after = replayed(CONFIG, log)
    after.use_history(history)  # given after today's events: today's services are folded in again
    assert before.estimates(now) == answers
    assert after.estimates(now) == answers
    assert replayed(CONFIG, log).estimates(now) != answers


async def _service_day(service: CentreService, clock: list[datetime], day: date, afternoon_minutes: int) -> None:
    """One day on counter 1: ho-tich tickets served in 8 minutes from 07:30 and in
    ``afternoon_minutes`` from 13:00, 12 a session; the day closed at 19:00."""
    for start, minutes in ((moment(day, 7, 30), 8), (moment(day, 13, 0), afternoon_minutes)):
        clock[0] = start
        if start.hour == 7:
            await service.run(lambda e, now: ([], e.open_counter(1, "a", now)))
        for _ in range(12):
            await service.run(lambda e, now: (None, e.issue("ho-tich", now)[1]))
            await service.run(lambda e, now: e.call_next(1, now))
            await service.run(lambda e, now: e.start(1, now))
            clock[0] += timedelta(minutes=minutes)
            await service.run(lambda e, now: e.finish(1, now))
    clock[0] = moment(day, 19)
    await service.run(lambda e, now: (None, e.close_day(now)))


async def _today(path: Path, history_days: list[date]) -> tuple[list, list, CentreService]:
    """A server whose database holds ``history_days``; at 09:00 today 40 tickets wait."""
    clock = [moment(history_days[-1], 7) if history_days else at(MON, 7)]
    storage = await Storage.open(path, HCM)
    service = await CentreService.start(CONFIG, storage, lambda: clock[0])
    for day in history_days:
        await _service_day(service, clock, day, 24)
    today = date(2026, 3, MON)
    clock[0] = moment(today, 7, 30)
    await service.run(lambda e, now: ([], e.open_counter(1, "a", now)))
    for _ in range(10):
        await service.run(lambda e, now: (None, e.issue("ho-tich", now)[1]))
        await service.run(lambda e, now: e.call_next(1, now))
        await service.run(lambda e, now: e.start(1, now))
        clock[0] += timedelta(minutes=8)
        await service.run(lambda e, now: e.finish(1, now))
    clock[0] = moment(today, 9)
    for _ in range(40):
        await service.run(lambda e, now: (None, e.issue("ho-tich", now)[1]))
    live = [e.mean_minutes for e in service.engine.estimates(clock[0]).values()]  # in calling order
    await service.reload()  # a restart: the profile again, then today's log replayed
    again = [e.mean_minutes for e in service.engine.estimates(clock[0]).values()]
    return live, again, service


def test_a_server_with_history_answers_by_its_profile_and_replays_equal(tmp_path: Path) -> None:
    async def scenario() -> None:
        days = sorted(earlier_days())
        with_history, replayed_with, service = await _today(tmp_path / "history.sqlite3", days)
        assert service.history is not None and service.history[1] is not None and service.history[1].days == 3
        profile = service.history[1]
        assert profile.handle_minutes("ho-tich", 13 * 60, 16 * 60 + 30) == pytest.approx(24.0, abs=0.5)
        await service.storage.close()
        without, replayed_without, service = await _today(tmp_path / "empty.sqlite3", [])
        assert service.history == (date(2026, 3, MON), None)
        await service.storage.close()
        assert replayed_with == with_history and replayed_without == without
        # the tickets served after lunch are told the history's 24-minute afternoon
        assert with_history[:10] == pytest.approx(without[:10], abs=0.6)
        assert with_history[-1] > without[-1] + 150, (without[-1], with_history[-1])

    asyncio.run(scenario())


def test_a_command_refused_for_a_wrong_clock_leaves_the_profile_of_the_engines_day(tmp_path: Path) -> None:
    """The clock leaps three days ahead at 10:00: the command is refused (the day stays open), and
    the profile built for that later day must not stay in the engine: its own day's profile does,
    so the answers are still those a replay of the day gives."""
    from server.engine import QueueError

    async def scenario() -> None:
        days = sorted(earlier_days())
        with_history, _, service = await _today(tmp_path / "history.sqlite3", days)
        profile = service.engine.estimate_model.history
        clock = service.clock
        leap = moment(date(2026, 3, MON + 3), 10)
        service.clock = lambda: leap
        with pytest.raises(QueueError):
            await service.run(lambda e, now: (None, e.issue("ho-tich", now)[1]))
        service.clock = clock
        assert service.engine.estimate_model.history is profile
        assert [e.mean_minutes for e in service.engine.estimates(clock()).values()] == with_history
        await service.storage.close()

    asyncio.run(scenario())


def test_a_group_on_lightly_loaded_counters_is_not_promised_the_overloaded_centres_late_point(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 17's eleventh round (HISTORY_COUNTER_LOAD): the history's days brought ho-tich alone
    1.2 times the six counters' minutes, all on counters 1 and 2. A dat-dai ticket, served only at
    counter 4, which carried none of it, is told the point of a centre that keeps up (the
    smaller cap); a ho-tich ticket the overloaded centre's later one, as before. The walk and the
    range are the centre's in both (the range still widens by the centre's load)."""
    quiet = [r for r in slow_afternoon_records() if not r.priority]  # ho-tich only: 0.1 of the centre a copy
    history = History.from_records([r for r in quiet for _ in range(12)], HCM)

    def told(rule: bool) -> tuple[estimates.Estimate, estimates.Estimate]:
        monkeypatch.setattr(estimates, "HISTORY_COUNTER_LOAD", rule)
        engine = new_engine(CONFIG)
        engine.use_history(history)
        ho_tich = morning_line(engine, 12)
        engine.open_counter(4, "d", at(MON, 9))
        dat_dai = ""
        for _ in range(8):
            dat_dai = engine.issue("dat-dai", at(MON, 9))[0].id
        model = engine.estimate_model
        timeline = model.timeline(at(MON, 9))
        assert model.history_load(timeline) == pytest.approx(1.2)
        assert model.history_counter_load("ho-tich", timeline) == pytest.approx(3.6)  # its work on 2 of 6 counters
        assert model.history_counter_load("chung-thuc", timeline) == pytest.approx(1.8)  # counter 2's 3.6 over counters 2 and 3
        assert model.history_counter_load("dat-dai", timeline) == 0.0
        answers = engine.estimates(at(MON, 9))
        return answers[ho_tich], answers[dat_dai]

    (ho_tich, dat_dai), (ho_tich_before, dat_dai_before) = told(True), told(False)
    assert estimates.wait_spread(dat_dai.basis[1], dat_dai.basis[2]) > estimates.HISTORY_POINT_SHIFT_CAP
    assert dat_dai.mean_minutes == dat_dai_before.mean_minutes and dat_dai.wait_range == dat_dai_before.wait_range
    assert dat_dai.wait_minutes < dat_dai_before.wait_minutes - 5
    assert ho_tich == ho_tich_before


def test_priority_arrivals_with_a_history_are_its_arrivals_then_times_the_groups_priority_share() -> None:
    """One earlier day: 30 ho-tich tickets every quarter hour from 07:30, and 10 priority ones all
    between 07:30 and 07:40. A day or a few hold too few priority tickets per hour to count by
    the hour: a wait from 09:00 expects the history's arrivals of its hours times the group's
    priority share (the history's days and today pooled), not none because that one day's priority
    tickets all came early (issue 17's thirteenth round)."""
    day = earlier_days()[0]
    records = [TicketRecord(day, "ho-tich", False, moment(day, 7, 30) + timedelta(minutes=15 * i), None, None)
               for i in range(30)]
    records += [TicketRecord(day, "ho-tich", True, moment(day, 7, 30) + timedelta(minutes=i), None, None)
                for i in range(10)]

    def told(history: History) -> tuple[estimates.EstimateModel, float]:
        engine = new_engine(CONFIG)
        engine.use_history(history)
        ticket = morning_line(engine, 5)
        return engine.estimate_model, engine.estimates(at(MON, 9), only=ticket)[ticket].mean_minutes

    model, with_priority = told(History.from_records(records, HCM))
    # 10 priority tickets of 40 in the history and none of today's 15: 10 / 55
    assert model.priority_share("ho-tich") == pytest.approx(10 / 55)
    _, without_priority = told(History.from_records([dataclasses.replace(r, priority=False) for r in records], HCM))
    assert with_priority > without_priority + 1.0, (with_priority, without_priority)
