"""Storage: the log, the state tables and the rollups agree, and reopening keeps everything."""

from __future__ import annotations

import math
import random
import statistics
from datetime import datetime, timedelta, timezone

import pytest

from luot.config import load_config
from server.engine import QueueEngine
from server.storage import MIGRATIONS, Storage, percentile_from_histogram, satisfaction_index



async def _simulated_day(storage: Storage, engine: QueueEngine, seed: int = 3) -> list[dict]:
    """Run a small day through engine and storage; return what each served ticket really waited."""
    rng = random.Random(seed)
    now = datetime(2026, 11, 23, 1, 0, tzinfo=timezone.utc)  # 08:00 in Hanoi
    truth = []
    await storage.commit(engine.open_counter(2, "lan", now) + engine.open_counter(4, "minh", now))
    for _ in range(60):
        now += timedelta(minutes=rng.uniform(0.5, 3))
        _, events = engine.issue(rng.choice(["ho-tich", "chung-thuc", "dat-dai"]), now)
        await storage.commit(events)
        for counter in (2, 4):
            state = engine.counters[counter]
            if state.ticket_id is None:
                ticket, events = engine.call_next(counter, now)
                await storage.commit(events)
                if ticket:
                    truth.append({"group": ticket.group, "wait": events[-1].data["wait_seconds"], "counter": counter})
            elif rng.random() < 0.5:
                ticket, events = engine.finish(counter, now)
                await storage.commit(events)
                await storage.commit(engine.record_feedback(ticket.id, rng.randint(1, 4), "pad", None, now))
    return truth


@pytest.mark.asyncio
async def test_rollups_match_the_truth_and_survive_reopening(tmp_path):
    config = load_config()
    path = tmp_path / "luot.sqlite3"
    storage = await Storage.open(path, config.zone)
    engine = QueueEngine(config)
    truth = await _simulated_day(storage, engine)
    day = engine.day
    rows = await storage.waiting_stats(day, day, "group")
    for group in ("ho-tich", "chung-thuc", "dat-dai"):
        waits = [t["wait"] / 60 for t in truth if t["group"] == group]
        row = next((r for r in rows if r["group"] == group), None)
        if not waits:
            continue
        assert row["called"] == len(waits)
        assert row["mean_wait_minutes"] == pytest.approx(statistics.mean(waits), abs=0.01)
        ordered = sorted(waits)
        true_p90 = ordered[math.ceil(0.9 * len(ordered)) - 1]  # nearest rank
        assert abs(row["p90_wait_minutes"] - true_p90) <= 1.0  # one-minute histogram buckets
    issued_total = sum(r["issued"] for r in rows)
    assert issued_total == 60 == await storage.count_tickets(day.isoformat())
    before = await storage.satisfaction(day, day, "counter")
    await storage.close()

    reopened = await Storage.open(path, config.zone)
    assert await reopened.schema_version() == len(MIGRATIONS)
    assert await reopened.waiting_stats(day, day, "group") == rows
    assert await reopened.satisfaction(day, day, "counter") == before
    replayed = QueueEngine(config)
    replayed.replay(await reopened.current_day_events())
    assert replayed.snapshot(datetime(2026, 11, 23, 5, tzinfo=timezone.utc)) == engine.snapshot(
        datetime(2026, 11, 23, 5, tzinfo=timezone.utc))
    await reopened.close()


@pytest.mark.asyncio
async def test_failed_commit_acknowledges_nothing(tmp_path):
    config = load_config()
    storage = await Storage.open(tmp_path / "db.sqlite3", config.zone)
    engine = QueueEngine(config)
    now = datetime(2026, 11, 23, 1, 0, tzinfo=timezone.utc)
    _, events = engine.issue("ho-tich", now)
    await storage.commit(events)
    with pytest.raises(Exception):
        await storage.commit(events)  # the same event ids again: the UNIQUE constraint refuses the batch
    assert await storage.count_tickets() == 1
    assert len(await storage.events_after(0)) == 2  # day.opened + ticket.issued, nothing half-written
    await storage.close()


def test_percentile_and_index_helpers():
    assert percentile_from_histogram([(0, 5), (10, 5)], 0.5) == pytest.approx(1.0)
    assert percentile_from_histogram([(0, 5), (10, 5)], 0.9) == pytest.approx(10.8)
    assert percentile_from_histogram([], 0.9) == 0.0
    assert satisfaction_index({5: 1}) == 100.0 and satisfaction_index({1: 3}) == 0.0 and satisfaction_index({4: 1, 2: 1}) == 50.0
    assert satisfaction_index({5: 1, 1: 1}) == 50.0 and satisfaction_index({}) is None


@pytest.mark.asyncio
async def test_concurrent_operations_share_one_commit_on_one_sqlite_thread(tmp_path):
    """Operations submitted at the same moment go to disk in one transaction (group commit), every
    caller is answered, and all SQL runs on the storage's one thread, never on the event loop's."""
    import asyncio
    import threading

    config = load_config()
    storage = await Storage.open(tmp_path / "db.sqlite3", config.zone)
    engine = QueueEngine(config)
    now = datetime(2026, 11, 23, 1, 0, tzinfo=timezone.utc)
    await storage.commit(engine.issue("ho-tich", now)[1])
    before = storage.commits
    futures = [storage.submit(engine.issue("ho-tich", now + timedelta(seconds=i))[1]) for i in range(1, 21)]
    await asyncio.gather(*futures)
    assert storage.commits - before == 1
    assert await storage.count_tickets() == 21
    threads = {await storage.in_sqlite_thread(lambda db: threading.get_ident()) for _ in range(5)}
    assert len(threads) == 1 and threading.get_ident() not in threads
    await storage.close()
    reopened = await Storage.open(tmp_path / "db.sqlite3", config.zone)
    assert await reopened.count_tickets() == 21
    await reopened.close()
