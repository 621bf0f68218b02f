"""Issue 14: a wrong clock, a misbehaving kiosk or a chatty device is refused to itself alone.

Engine tests with explicit clocks (tests/engine_support.py); the storage and service ones use real
SQLite files. A refusal is a QueueError in Vietnamese and English that changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from luot.protocol import PayloadError, encode, parse_inbound
from server.engine import Event, Invalid, QueueEngine, QueueError, RateLimited, token_hash
from server.service import CentreService
from server.storage import MIGRATIONS, Storage
from tests.engine_support import HCM, TOKENS, at, new_engine, replayed, small_config, state_of

CONFIG = small_config()
MON = 2


def run(engine: QueueEngine, log: list[Event], result):
    """Keep the events of a command (as the service would commit them) and return its value."""
    value, events = (None, result) if isinstance(result, list) else result
    log.extend(events)
    return value


def refused(code: str, engine: QueueEngine, now, action) -> QueueError:
    before = state_of(engine, now)
    with pytest.raises(QueueError) as error:
        action()
    assert error.value.code == code and error.value.message and error.value.message_en
    assert state_of(engine, now) == before, "a refusal changed the state"
    return error.value


# ---------------------------------------------------------------- time
def test_a_clock_that_goes_back_is_refused_and_no_day_is_reopened() -> None:
    engine, log = new_engine(CONFIG), []
    first = run(engine, log, engine.issue("ho-tich", at(MON, 10)))
    run(engine, log, engine.issue("ho-tich", at(MON, 9, 59)))  # within the tolerance (NTP steps)
    error = refused("clock_suspect", engine, at(MON, 9), lambda: engine.issue("ho-tich", at(MON, 9)))
    assert "behind the last recorded event" in error.message_en and "Đồng hồ" in error.message
    refused("clock_suspect", engine, at(MON - 1, 10), lambda: engine.issue("ho-tich", at(MON - 1, 10)))
    assert run(engine, log, engine.issue("ho-tich", at(MON, 10, 1))).number == 1003  # corrected: on it goes
    assert first.status == "waiting"


def test_a_day_left_open_at_closing_time_gives_way_to_the_next_working_morning() -> None:
    """Nobody pressed "close the day" (the usual evening): the next working morning opens a new day
    by itself; a day that went quiet mid-morning, or a clock far ahead, still needs a manager."""
    engine, log = new_engine(CONFIG), []  # sample hours: Mon-Fri 07:30-12:00 and 13:00-16:30, Sat 07:30-11:30
    left = run(engine, log, engine.issue("ho-tich", at(MON, 16, 10)))  # in the last 90 minutes of Monday
    morning = run(engine, log, engine.issue("ho-tich", at(MON + 1, 7, 20)))  # Tuesday, before the doors open
    assert engine.day.isoformat() == "2026-03-03" and morning.number == 1001
    assert state_of(replayed(CONFIG, log), at(MON + 1, 7, 21)) == state_of(engine, at(MON + 1, 7, 21))
    assert left.id not in engine.tickets  # Monday's leftover ended with Monday


def test_a_day_that_went_quiet_mid_morning_or_a_clock_far_ahead_needs_a_manager() -> None:
    quiet, log = new_engine(CONFIG), []
    run(quiet, log, quiet.issue("ho-tich", at(MON, 10)))  # then nothing: a clock leapt to the next morning
    error = refused("clock_suspect", quiet, at(MON + 1, 8), lambda: quiet.issue("ho-tich", at(MON + 1, 8)))
    assert "still open" in error.message_en
    for wrong in (at(MON + 7, 8), at(MON + 1, 2)):  # a week later; 02:00 is no working hour
        late, late_log = new_engine(CONFIG), []
        run(late, late_log, late.issue("ho-tich", at(MON, 16, 20)))
        refused("clock_suspect", late, wrong, lambda: late.issue("ho-tich", wrong))
    weekend, weekend_log = new_engine(CONFIG), []
    run(weekend, weekend_log, weekend.issue("ho-tich", at(MON + 4, 16, 0)))  # Friday afternoon
    monday = run(weekend, weekend_log, weekend.issue("ho-tich", at(MON + 7, 7, 35)))  # Monday morning
    assert monday.number == 1001 and weekend.day.isoformat() == "2026-03-09"


def test_a_clock_a_day_or_three_hours_ahead_does_not_expire_the_queue() -> None:
    engine, log = new_engine(CONFIG), []
    waiting = run(engine, log, engine.issue("ho-tich", at(MON, 22)))
    for wrong in (at(MON + 1, 22), at(MON + 1, 1, 5)):  # +1 day, +3 hours across midnight
        error = refused("clock_suspect", engine, wrong, lambda: engine.issue("ho-tich", wrong))
        assert "is still open" in error.message_en
    assert waiting.status == "waiting" and engine.day.isoformat() == "2026-03-02"
    # the clock corrected: same day, numbering goes on
    assert run(engine, log, engine.issue("ho-tich", at(MON, 22, 6))).number == 1002


def test_service_going_on_across_midnight_opens_the_new_day_by_itself() -> None:
    engine, log = new_engine(CONFIG), []
    run(engine, log, engine.issue("ho-tich", at(MON, 23, 50)))
    assert run(engine, log, engine.issue("ho-tich", at(MON + 1, 0, 10))).number == 1001
    assert engine.day.isoformat() == "2026-03-03"


def test_after_a_managers_end_of_day_the_morning_opens_by_itself() -> None:
    engine, log = new_engine(CONFIG), []
    run(engine, log, engine.issue("ho-tich", at(MON, 10)))
    run(engine, log, engine.close_day(at(MON, 17)))
    assert run(engine, log, engine.issue("ho-tich", at(MON + 3, 7, 30))).number == 1001  # after a weekend


def test_a_manager_confirms_a_clock_and_numbering_continues() -> None:
    engine, log = new_engine(CONFIG), []
    run(engine, log, engine.issue("ho-tich", at(MON, 13)))  # the clock was 3 h ahead
    refused("clock_suspect", engine, at(MON, 10), lambda: engine.issue("ho-tich", at(MON, 10)))
    run(engine, log, engine.confirm_clock(at(MON, 10)))
    assert run(engine, log, engine.issue("ho-tich", at(MON, 10, 1))).number == 1002
    # an earlier day cannot be confirmed: that day is settled
    refused("clock_suspect", engine, at(MON - 1, 10), lambda: engine.confirm_clock(at(MON - 1, 10)))
    # the first morning after a day left open: the manager confirms, yesterday closes, today opens
    refused("clock_suspect", engine, at(MON + 1, 8), lambda: engine.issue("ho-tich", at(MON + 1, 8)))
    confirmed = engine.confirm_clock(at(MON + 1, 8))
    log.extend(confirmed)
    assert [e.type for e in confirmed] == ["clock.confirmed", "ticket.expired", "ticket.expired", "day.closed",
                                           "day.opened"]
    assert run(engine, log, engine.issue("ho-tich", at(MON + 1, 8, 1))).number == 1001
    assert state_of(replayed(CONFIG, log), at(MON + 1, 9)) == state_of(engine, at(MON + 1, 9))


def test_numbering_continues_after_the_numbers_stored_for_the_day() -> None:
    """A log from before the clock checks may have reopened a day; storage's highest numbers keep
    the engine from giving one of them again."""
    engine = QueueEngine(CONFIG, used_numbers={("2026-03-02", "ho-tich"): 1017, ("2026-03-01", "chung-thuc"): 2050})
    assert engine.issue("ho-tich", at(MON, 8))[0].number == 1018
    assert engine.issue("chung-thuc", at(MON, 8))[0].number == 2001
    assert engine.lease_block("kiosk-1", "ho-tich", 3, at(MON, 8, 1))[0] == (1019, 1021)


# ---------------------------------------------------------------- offline tickets
def _leased(size: int = 5) -> tuple[QueueEngine, list[Event]]:
    engine, log = new_engine(CONFIG), []
    run(engine, log, engine.lease_block("kiosk-1", "ho-tich", size, at(MON, 8)))
    return engine, log


@pytest.mark.parametrize("token", ["A" * 22, "ab" * 11, "short", "0" * 32, "x" * 40 + "!"])
def test_weak_or_malformed_offline_tokens_are_refused(token: str) -> None:
    engine, _ = _leased()
    refused("token_weak", engine, at(MON, 9), lambda: engine.import_offline(
        "kiosk-1", "ho-tich", 1001, at(MON, 8, 30), token, at(MON, 9)))


def test_an_offline_ticket_stays_inside_its_own_lease() -> None:
    engine, log = _leased()
    now = at(MON, 9)
    ticket = run(engine, log, engine.import_offline("kiosk-1", "ho-tich", 1001, at(MON, 8, 30), TOKENS[0], now))
    assert ticket.token == TOKENS[0] and engine.ticket_by_token(TOKENS[0]) is ticket
    refused("token_taken", engine, now, lambda: engine.import_offline(
        "kiosk-1", "ho-tich", 1002, at(MON, 8, 30), TOKENS[0], now))
    refused("offline_conflict", engine, now, lambda: engine.import_offline(
        "kiosk-1", "ho-tich", 1001, at(MON, 8, 30), TOKENS[1], now))
    for issued_at in (at(MON, 7, 45), at(MON, 9, 15), at(MON - 1, 9).replace(year=1)):  # before the lease, future, year 1
        refused("issued_at", engine, now, lambda: engine.import_offline(
            "kiosk-1", "ho-tich", 1002, issued_at, TOKENS[1], now))
    slow = run(engine, log, engine.import_offline("kiosk-1", "ho-tich", 1003, at(MON, 7, 55), TOKENS[2], now))
    assert slow.queue_since == at(MON, 8)  # a kiosk clock 5 minutes slow: kept, placed at the lease
    refused("priority_unknown", engine, now, lambda: engine.import_offline(
        "kiosk-1", "ho-tich", 1002, at(MON, 8, 30), TOKENS[1], now, priority="vip"))
    refused("not_leased", engine, now, lambda: engine.import_offline(
        "kiosk-2", "ho-tich", 1002, at(MON, 8, 30), TOKENS[1], now))


def test_a_kiosk_may_hold_only_so_many_unused_numbers() -> None:
    config = small_config(lease_limit=10)
    engine, log = new_engine(config), []
    run(engine, log, engine.lease_block("kiosk-1", "ho-tich", 8, at(MON, 8)))
    refused("lease_limit", engine, at(MON, 8, 1), lambda: engine.lease_block("kiosk-1", "ho-tich", 3, at(MON, 8, 1)))
    run(engine, log, engine.import_offline("kiosk-1", "ho-tich", 1001, at(MON, 8, 1), TOKENS[0], at(MON, 8, 2)))
    assert engine.open_leased("kiosk-1", "ho-tich") == 7
    assert run(engine, log, engine.lease_block("kiosk-1", "ho-tich", 3, at(MON, 8, 3))) == (1009, 1011)
    assert run(engine, log, engine.lease_block("kiosk-2", "ho-tich", 10, at(MON, 8, 4))) == (1012, 1021)


# ---------------------------------------------------------------- assistance
def test_help_requests_are_deduplicated_and_rate_limited_also_after_a_restart() -> None:
    engine, log = new_engine(CONFIG), []
    run(engine, log, engine.request_assistance("kiosk-1", "r1", "help", at(MON, 9)))
    assert engine.request_assistance("kiosk-1", "r1", "help", at(MON, 9, 1)) == []
    restarted = replayed(CONFIG, log)
    assert restarted.request_assistance("kiosk-1", "r1", "help", at(MON, 9, 1)) == []
    for n in range(2, 6):
        run(engine, log, engine.request_assistance("kiosk-1", f"r{n}", "help", at(MON, 9, 0)))
    error = refused("assistance_rate", engine, at(MON, 9, 0), lambda: engine.request_assistance(
        "kiosk-1", "r6", "help", at(MON, 9, 0)))
    assert isinstance(error, RateLimited) and error.status == 429
    run(engine, log, engine.request_assistance("pad-1", "r6", "help", at(MON, 9, 0)))  # other devices are not held up
    run(engine, log, engine.request_assistance("kiosk-1", "r6", "help", at(MON, 9, 1, )))  # a minute later
    assert sum(e.type == "assistance.requested" for e in log) == 7


def test_a_boolean_is_no_rating_whatever_the_adapter() -> None:
    engine, log = new_engine(CONFIG), []
    run(engine, log, engine.open_counter(1, None, at(MON, 8)))
    ticket = run(engine, log, engine.issue("ho-tich", at(MON, 8)))
    run(engine, log, engine.call_next(1, at(MON, 8, 1)))
    run(engine, log, engine.finish(1, at(MON, 8, 2)))
    refused("rating", engine, at(MON, 8, 3), lambda: engine.record_feedback(ticket.id, True, "pad-1", 1, at(MON, 8, 3)))
    refused("lease_size", engine, at(MON, 8, 3), lambda: engine.lease_block("kiosk-1", "ho-tich", True, at(MON, 8, 3)))
    run(engine, log, engine.record_feedback(ticket.id, 1, "pad-1", 1, at(MON, 8, 3)))


def test_inbound_payloads_have_strict_types() -> None:
    good = parse_inbound("feedback", encode("feedback", {"ticket_id": "t1", "rating": 4, "request_id": "r"}))
    assert good.rating == 4  # type: ignore[attr-defined]
    for rating in (True, "4", 4.0):
        with pytest.raises(PayloadError, match="rating"):
            parse_inbound("feedback", encode("feedback", {"ticket_id": "t1", "rating": rating, "request_id": "r"}))
    with pytest.raises(PayloadError, match="request_id"):
        parse_inbound("assistance", encode("assistance", {"request_id": 7}))


# ---------------------------------------------------------------- tracking tokens
def test_tracking_tokens_are_kept_only_as_hashes() -> None:
    engine, log = new_engine(CONFIG), []
    ticket = run(engine, log, engine.issue("ho-tich", at(MON, 8)))
    assert ticket.token and ticket.token not in json.dumps([e.to_dict() for e in log])
    assert log[-1].data["token_hash"] == token_hash(ticket.token)
    fresh = replayed(CONFIG, log)
    assert fresh.ticket_by_token(ticket.token).id == ticket.id and fresh.tickets[ticket.id].token is None


def _version_4_database(path: Path, raw_token: str) -> None:
    """A centre database as the previous release left it: raw tokens in tickets and the log."""
    with sqlite3.connect(path) as db:
        for number, script in enumerate(MIGRATIONS[:4], start=1):
            db.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
        db.execute("INSERT INTO events (id, type, at, day, data) VALUES ('e1', 'day.opened', ?, '2026-03-02', ?)",
                   (at(MON, 8).isoformat(), json.dumps({"day": "2026-03-02"})))
        data = {"ticket_id": "t-old", "number": 1001, "group": "ho-tich", "token": raw_token, "priority": None,
                "source": "kiosk-1", "offline": False, "issued_at": at(MON, 8).isoformat()}
        db.execute("INSERT INTO events (id, type, at, day, data) VALUES ('e2', 'ticket.issued', ?, '2026-03-02', ?)",
                   (at(MON, 8).isoformat(), json.dumps(data)))
        db.execute("INSERT INTO tickets (id, day, number, grp, token, status, issued_at) "
                   "VALUES ('t-old', '2026-03-02', 1001, 'ho-tich', ?, 'waiting', ?)", (raw_token, at(MON, 8).isoformat()))


def test_migration_5_hashes_the_tokens_already_stored(tmp_path: Path) -> None:
    path = tmp_path / "luot.sqlite3"
    _version_4_database(path, TOKENS[3])

    async def check() -> None:
        storage = await Storage.open(path, HCM)
        try:
            assert await storage.schema_version() == len(MIGRATIONS) >= 5
            row = await storage.ticket_by_token(TOKENS[3])
            assert row is not None and row["id"] == "t-old" and row["token_hash"] == token_hash(TOKENS[3])
            service = await CentreService.start(CONFIG, storage, lambda: at(MON, 9))
            assert service.engine.ticket_by_token(TOKENS[3]).id == "t-old"
            assert (await service.run(lambda e, now: e.issue("ho-tich", now))).number == 1002
        finally:
            await storage.close()
    asyncio.run(check())
    with sqlite3.connect(path) as db:
        dump = "\n".join(db.iterdump())
    assert TOKENS[3] not in dump, "the raw token is still somewhere in the database"


def test_a_restart_continues_after_every_number_stored_for_the_day(tmp_path: Path) -> None:
    """The log an old server wrote after a clock jump (day reopened): numbering must not restart."""
    path = tmp_path / "luot.sqlite3"

    async def check() -> None:
        storage = await Storage.open(path, HCM)
        engine = new_engine(CONFIG)
        await storage.commit(engine.issue("ho-tich", at(MON, 9))[1] + engine.issue("ho-tich", at(MON, 9))[1])
        await storage.commit(engine.lease_block("kiosk-1", "ho-tich", 4, at(MON, 9, 1))[1])
        # what the old engine did when the clock came back from tomorrow: reopened the day, empty
        reopened = Event("reopen", "day.opened", at(MON, 10), "2026-03-02", {"day": "2026-03-02"})
        await storage.commit([reopened])
        assert await storage.used_numbers("2026-03-02") == {("2026-03-02", "ho-tich"): 1006}
        service = await CentreService.start(CONFIG, storage, lambda: at(MON, 10, 5))
        assert (await service.run(lambda e, now: e.issue("ho-tich", now))).number == 1007
        await storage.close()
    asyncio.run(check())
