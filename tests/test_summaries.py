"""Stored summaries of closed days: reports give exactly the numbers the rollups gave before, and a
ticket uploaded late for a past day changes that day's report."""

from __future__ import annotations

import asyncio
import random
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest

from luot.config import load_config
from server.engine import CALLED, SERVING, QueueEngine
from server.reports import build_report, periods
from server.storage import Storage, percentile_from_histogram, satisfaction_index

CONFIG = load_config()
FIRST = date(2026, 10, 26)  # a Monday: two whole ISO weeks and a bit of a third
LAST = date(2026, 11, 10)
GROUPS = ["ho-tich", "chung-thuc", "dat-dai", "cu-tru", "khac"]
COUNTERS = {1: "lan", 2: "minh", 3: None, 4: "thu", 5: "hoa", 6: "tuan"}  # counter 3: nobody logged in


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=CONFIG.zone)


async def _history(storage: Storage, seed: int = 11) -> dict[date, QueueEngine]:
    """Simulated days FIRST..LAST (Sundays closed): tickets, calls, services, absences, ratings,
    and tickets still waiting at closing time. One engine per day, kept for late uploads."""
    rng = random.Random(seed)
    engines = {}
    day = FIRST
    while day <= LAST:
        if day.weekday() == 6:
            day += timedelta(days=1)
            continue
        engine = engines[day] = QueueEngine(CONFIG)
        now = _at(day, 7, 30)
        for counter, officer in COUNTERS.items():
            await storage.commit(engine.open_counter(counter, officer, now))
        await storage.commit(engine.lease_block("kiosk-1", "ho-tich", 5, now)[1])
        for _ in range(rng.randint(25, 45)):
            now += timedelta(minutes=rng.uniform(0.5, 14), seconds=rng.random())
            await storage.commit(engine.issue(rng.choice(GROUPS), now)[1])
            for counter in COUNTERS:
                state = engine.counters[counter]
                current = engine.tickets[state.ticket_id].status if state.ticket_id else None
                if current not in (CALLED, SERVING):
                    await storage.commit(engine.call_next(counter, now)[1])
                elif rng.random() < 0.35:
                    ticket, events = engine.finish(counter, now)
                    await storage.commit(events)
                    if rng.random() < 0.6:
                        await storage.commit(engine.record_feedback(ticket.id, rng.randint(1, 4), "pad", None, now))
                elif rng.random() < 0.1:
                    await storage.commit(engine.no_show(counter, now)[1])
        await storage.commit(engine.close_day(_at(day, 17, 30)))
        day += timedelta(days=1)
    return engines


# ---------------------------------------------------------------------- the queries as they were
async def old_waiting_stats(storage: Storage, first: date, last: date, by: str) -> list[dict[str, Any]]:
    """Storage.waiting_stats before day summaries (straight from the rollups)."""
    column = {"group": "grp", "hour": "hour", "counter": "counter", "officer": "officer"}[by]
    span = (first.isoformat(), last.isoformat())
    cursor = await storage.db.execute(
        f"SELECT day, {column} AS k, SUM(issued) issued, SUM(called) called, SUM(wait_sum) wait_sum, "
        f"SUM(served) served, SUM(service_sum) service_sum, SUM(no_show) no_show "
        f"FROM stats_hourly WHERE day BETWEEN ? AND ? GROUP BY day, k ORDER BY day, k", span)
    rows = [dict(r) for r in await cursor.fetchall()]
    p90: dict[tuple[str, Any], float] = {}
    if by != "hour":
        cursor = await storage.db.execute(
            f"SELECT day, {column} AS k, bucket, SUM(n) FROM wait_hist WHERE day BETWEEN ? AND ? "
            f"GROUP BY day, k, bucket ORDER BY day, k, bucket", span)
        hist: dict[tuple[str, Any], list[tuple[int, int]]] = {}
        for day, key, bucket, n in await cursor.fetchall():
            hist.setdefault((day, key), []).append((bucket, n))
        p90 = {key: percentile_from_histogram(buckets, 0.9) for key, buckets in hist.items()}
    result = []
    for row in rows:
        called, served = row["called"], row["served"]
        attended = served + row["no_show"]
        result.append({
            "day": row["day"], by: row["k"], "issued": row["issued"], "called": called, "served": served,
            "no_show": row["no_show"],
            "mean_wait_minutes": round(row["wait_sum"] / called / 60, 2) if called else None,
            "p90_wait_minutes": p90.get((row["day"], row["k"])) if by != "hour" else None,
            "mean_service_minutes": round(row["service_sum"] / served / 60, 2) if served else None,
            "no_show_rate": round(row["no_show"] / attended, 3) if attended else None,
        })
    return result


async def old_build_report(storage: Storage, first: date, last: date, by: str, period: str) -> list[dict[str, Any]]:
    """server.reports.build_report before day summaries (names left out: they do not depend on it)."""
    column = {"group": "grp", "counter": "counter", "officer": "officer"}[by]
    rows: list[dict[str, Any]] = []
    for label, a, b in periods(first, last, period):  # type: ignore[arg-type]
        span = (a.isoformat(), b.isoformat())
        cursor = await storage.db.execute(
            f"SELECT {column} AS k, SUM(issued) issued, SUM(called) called, SUM(wait_sum) wait_sum, "
            f"SUM(served) served, SUM(service_sum) service_sum, SUM(no_show) no_show "
            f"FROM stats_hourly WHERE day BETWEEN ? AND ? GROUP BY k ORDER BY k", span)
        totals = {r["k"]: dict(r) for r in await cursor.fetchall()}
        cursor = await storage.db.execute(
            f"SELECT {column} AS k, bucket, SUM(n) n FROM wait_hist WHERE day BETWEEN ? AND ? GROUP BY k, bucket", span)
        hist: dict[Any, list[tuple[int, int]]] = {}
        for r in await cursor.fetchall():
            hist.setdefault(r["k"], []).append((r["bucket"], r["n"]))
        cursor = await storage.db.execute(
            f"SELECT {column} AS k, rating, SUM(n) n FROM satisfaction_daily WHERE day BETWEEN ? AND ? "
            f"GROUP BY k, rating", span)
        ratings: dict[Any, dict[int, int]] = {}
        for r in await cursor.fetchall():
            ratings.setdefault(r["k"], {})[r["rating"]] = r["n"]
        for key in sorted(set(totals) | set(ratings), key=str):
            t = totals.get(key, {"issued": 0, "called": 0, "wait_sum": 0, "served": 0, "service_sum": 0, "no_show": 0})
            if by != "group" and key in (0, "") and not t["called"]:
                continue
            called, served, no_show = t["called"], t["served"], t["no_show"]
            attended = served + no_show
            counts = ratings.get(key, {})
            rows.append({
                "period": label, "from": a.isoformat(), "to": b.isoformat(), "key": key,
                # per counter or officer, their tickets are the ones they called (issue 18: "0 issued")
                "issued": t["issued"] if by == "group" else called, "called": called, "served": served, "no_show": no_show,
                "mean_wait_minutes": round(t["wait_sum"] / called / 60, 2) if called else None,
                "p90_wait_minutes": percentile_from_histogram(hist[key], 0.9) if key in hist else None,
                "mean_service_minutes": round(t["service_sum"] / served / 60, 2) if served else None,
                "no_show_rate": round(no_show / attended * 100, 1) if attended else None,
                "responses": sum(counts.values()),
                "satisfaction_index": satisfaction_index(counts),
            })
    return rows


async def _report(storage: Storage, first: date, last: date, by: str, period: str, today: date) -> list[dict[str, Any]]:
    rows = await build_report(storage, CONFIG, first, last, by, period, today=today)  # type: ignore[arg-type]
    for row in rows:
        assert row.pop("name")
    return rows


async def _summarised(storage: Storage) -> list[str]:
    cursor = await storage.db.execute("SELECT day FROM summarised_days ORDER BY day")
    return [r[0] for r in await cursor.fetchall()]


WINDOWS = [(FIRST, LAST), (FIRST, FIRST), (date(2026, 11, 2), date(2026, 11, 8)), (date(2026, 10, 28), date(2026, 11, 4)),
           (date(2026, 11, 1), date(2026, 11, 1)), (date(2026, 10, 20), date(2026, 11, 30))]


async def _assert_same_as_before(storage: Storage, today: date) -> None:
    for first, last in WINDOWS:
        for by in ("group", "hour", "counter", "officer"):
            assert await storage.waiting_stats(first, last, by, today=today) == \
                await old_waiting_stats(storage, first, last, by), (first, last, by)
        for by in ("group", "counter", "officer"):
            for period in ("day", "week"):
                assert await _report(storage, first, last, by, period, today) == \
                    await old_build_report(storage, first, last, by, period), (first, last, by, period)


@pytest.mark.asyncio
async def test_reports_from_day_summaries_equal_the_rollups(tmp_path):
    storage = await Storage.open(tmp_path / "luot.sqlite3", CONFIG.zone)
    await _history(storage)
    # the history really has what reports must get right: a 90th percentile per week from
    # several days, unassigned issues (counter 0, officer ''), a counter with no officer, ratings
    week = await old_build_report(storage, date(2026, 11, 2), date(2026, 11, 8), "group", "week")
    assert len(week) == len(GROUPS) and all(r["p90_wait_minutes"] is not None for r in week)
    by_counter = await old_waiting_stats(storage, FIRST, FIRST, "counter")
    assert by_counter[0]["counter"] == 0 and by_counter[0]["issued"] > 0 and by_counter[0]["called"] == 0
    assert any(r["key"] == "" and r["called"] for r in await old_build_report(storage, FIRST, LAST, "officer", "week"))
    assert any(r["responses"] for r in week)

    # today in the middle of the history: days before it are summarised, the rest read live
    today = date(2026, 11, 5)
    await _assert_same_as_before(storage, today)
    closed = [d.isoformat() for d in (date(2026, 10, 20) + timedelta(days=i) for i in range(16))]
    assert await _summarised(storage) == closed  # every closed day asked for, Sundays included
    await _assert_same_as_before(storage, today)  # now read from the stored summaries

    # every day closed
    await _assert_same_as_before(storage, date(2026, 12, 1))
    assert len(await _summarised(storage)) == (date(2026, 11, 30) - date(2026, 10, 20)).days + 1
    # the default "today" is the storage clock's date in the centre's zone
    storage.clock = lambda: _at(date(2026, 11, 3), 0, 30)  # 00:30 in Hanoi, still 2 November in UTC
    assert storage.today() == date(2026, 11, 3)
    assert await storage.waiting_stats(FIRST, LAST, "group") == await old_waiting_stats(storage, FIRST, LAST, "group")
    await storage.close()


@pytest.mark.asyncio
async def test_a_late_offline_ticket_changes_the_past_days_report(tmp_path):
    storage = await Storage.open(tmp_path / "luot.sqlite3", CONFIG.zone)
    engines = await _history(storage)
    today = date(2026, 11, 20)
    day = date(2026, 11, 3)  # a Tuesday of the second week
    week = (date(2026, 11, 2), date(2026, 11, 8))
    before_day = await storage.waiting_stats(day, day, "group", today=today)
    before_week = await _report(storage, *week, "counter", "week", today)
    assert day.isoformat() in await _summarised(storage)

    # the kiosk was offline on 3 November; its ticket reaches the server (with that day) later and
    # is served at counter 1 at 17:50, so it waited more than eight hours
    engine = engines[day]
    late = _at(day, 17, 40)
    ticket, events = engine.import_offline("kiosk-1", "ho-tich", engine.numbering.leases["kiosk-1"][0][1],
                                           _at(day, 9, 15), "Lw3vQ0b7mJf2XkR9pT1sAg", late)  # 128 random bits
    events += engine.open_counter(1, "lan", late)
    events += engine.call_next(1, late + timedelta(minutes=10))[1]
    events += engine.finish(1, late + timedelta(minutes=20))[1]
    assert {e.day for e in events} == {day.isoformat()}
    await storage.commit(events)
    assert day.isoformat() not in await _summarised(storage)  # the trigger dropped the stale summary
    assert date(2026, 11, 4).isoformat() in await _summarised(storage)  # and nothing else

    after_day = await storage.waiting_stats(day, day, "group", today=today)
    assert after_day == await old_waiting_stats(storage, day, day, "group")
    old = next(r for r in before_day if r["group"] == "ho-tich")
    new = next(r for r in after_day if r["group"] == "ho-tich")
    assert (new["issued"], new["called"], new["served"]) == (old["issued"] + 1, old["called"] + 1, old["served"] + 1)
    assert new["mean_wait_minutes"] > old["mean_wait_minutes"]
    assert [r for r in after_day if r["group"] != "ho-tich"] == [r for r in before_day if r["group"] != "ho-tich"]

    after_week = await _report(storage, *week, "counter", "week", today)
    assert after_week == await old_build_report(storage, *week, "counter", "week")
    old_row = next(r for r in before_week if r["key"] == 1)
    new_row = next(r for r in after_week if r["key"] == 1)
    assert (new_row["called"], new_row["served"]) == (old_row["called"] + 1, old_row["served"] + 1)
    assert new_row["p90_wait_minutes"] >= old_row["p90_wait_minutes"]
    assert day.isoformat() in await _summarised(storage)  # summarised again, with the late ticket
    await _assert_same_as_before(storage, today)
    await storage.close()


@pytest.mark.asyncio
async def test_summarising_while_the_queue_commits(tmp_path):
    """Reports that summarise past days while today's tickets are committed: no transaction
    clash, nothing lost, and the figures still equal the rollups."""
    storage = await Storage.open(tmp_path / "luot.sqlite3", CONFIG.zone)
    await _history(storage)
    today = date(2026, 11, 23)
    engine = QueueEngine(CONFIG)
    now = _at(today, 8)
    await storage.commit(engine.open_counter(1, "lan", now))

    async def queue() -> None:
        for i in range(150):
            await storage.commit(engine.issue("ho-tich", now + timedelta(seconds=i))[1])

    async def reports() -> None:
        for _ in range(6):
            await storage.db.execute("DELETE FROM summarised_days")
            await storage.db.execute("DELETE FROM day_summary")
            await asyncio.gather(*(storage.waiting_stats(FIRST, today, by, today=today)
                                   for by in ("group", "hour", "counter", "officer")),
                                 _report(storage, FIRST, today, "officer", "week", today))

    await asyncio.gather(queue(), reports(), queue())
    assert await storage.count_tickets(today.isoformat()) == 300
    await _assert_same_as_before(storage, today)
    await storage.close()


@pytest.mark.asyncio
async def test_reports_still_answer_when_summaries_cannot_be_stored(tmp_path):
    storage = await Storage.open(tmp_path / "luot.sqlite3", CONFIG.zone)
    await _history(storage)
    await storage.db.execute("CREATE TEMP TRIGGER full_disk BEFORE INSERT ON summarised_days "
                             "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")
    today = date(2026, 11, 20)
    await _assert_same_as_before(storage, today)
    assert await _summarised(storage) == []
    cursor = await storage.db.execute("SELECT COUNT(*) FROM day_summary")
    assert (await cursor.fetchone())[0] == 0  # nothing half-stored
    await storage.db.execute("DROP TRIGGER full_disk")
    await _assert_same_as_before(storage, today)
    assert len(await _summarised(storage)) > 20
    await storage.close()
