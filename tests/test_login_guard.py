"""The login guard's arithmetic (injected clock) and the hash pool's order (real threads).

The HTTP behaviour is in tests/test_staff.py; here are the rules a slow real-time test cannot
show: waits double up to their cap, are forgiven after a quiet time, a known PC skips the user's
wait, attempts still being checked count in advance; the pool never runs more than its workers
and serves a known PC before the queue of guesses.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from luot.config import StaffSettings
from server.accounts import AccountError, HashPool
from server.login_guard import LoginGuard


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def guard(**settings: float) -> tuple[LoginGuard, Clock]:
    clock = Clock()
    return LoginGuard(StaffSettings(**settings), clock), clock


def test_an_address_waits_twice_as_long_after_each_failure_up_to_its_cap() -> None:
    g, clock = guard(address_free_failures=3, user_free_failures=100, lock_base_seconds=2, address_lock_max_seconds=10)
    waits = []
    for _ in range(7):
        g.failed("lan", "10.0.0.9")
        waits.append(g.wait_seconds("lan", "10.0.0.9"))
    assert waits == [0, 0, 2, 4, 8, 10, 10]
    assert g.wait_seconds("minh", "10.0.0.9") == 10  # the address, whatever name it tries
    assert g.wait_seconds("lan", "10.0.0.8") == 0  # another PC is not held back
    clock.now += 10
    assert g.wait_seconds("lan", "10.0.0.9") == 0
    g.failed("lan", "10.0.0.9")  # not forgiven yet: straight back to the cap
    assert g.wait_seconds("lan", "10.0.0.9") == 10
    clock.now += 10 + 2 * 10 + 1  # quiet for twice the cap: forgiven
    g.failed("lan", "10.0.0.9")
    assert g.wait_seconds("lan", "10.0.0.9") == 0


def test_a_user_locked_from_many_addresses_waits_at_most_the_cap_and_not_at_a_known_pc() -> None:
    g, clock = guard(address_free_failures=50, user_free_failures=3, lock_base_seconds=5, user_lock_max_seconds=60)
    g.succeeded("QuanLy", "10.0.0.2")  # the manager's own PC
    for n in range(40):
        g.failed("quanly", f"10.9.{n}.1")
    assert g.wait_seconds("quanly", "10.0.0.77") == 60  # capped, however many guesses
    assert g.wait_seconds("quanly", "10.0.0.2") == 0  # the known PC is not locked out
    clock.now += 60
    assert g.wait_seconds("quanly", "10.0.0.77") == 0  # the right password after the window works


def test_attempts_being_checked_count_in_advance() -> None:
    g, _ = guard(address_free_failures=2, user_free_failures=100)
    g.begin("lan", "10.0.0.9")
    assert g.wait_seconds("lan", "10.0.0.9") == 0
    g.begin("lan", "10.0.0.9")
    assert g.wait_seconds("lan", "10.0.0.9") == 1  # two in flight would use up both free failures
    g.end("lan", "10.0.0.9")
    g.end("lan", "10.0.0.9")
    assert g.wait_seconds("lan", "10.0.0.9") == 0 and not g.pending_addresses and not g.pending_users


def test_many_made_up_addresses_do_not_grow_memory_without_bound() -> None:
    g, clock = guard(address_free_failures=1, lock_base_seconds=1, address_lock_max_seconds=1)
    for n in range(25_000):
        g.failed(f"name{n}", f"10.{n // 65536}.{n // 256 % 256}.{n % 256}")
        clock.now += 0.01
    assert len(g.addresses.table) <= 10_000 and len(g.users.table) <= 10_000


async def until(condition, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


class Work:
    """Hashing stand-in that blocks until released, recording who ran and how many at once."""

    def __init__(self) -> None:
        self.gate, self.lock = threading.Event(), threading.Lock()
        self.running: list[str] = []
        self.started: list[str] = []
        self.most = 0

    def __call__(self, name: str) -> str:
        with self.lock:
            self.running.append(name)
            self.started.append(name)
            self.most = max(self.most, len(self.running))
        self.gate.wait(10)
        with self.lock:
            self.running.remove(name)
        return name


@pytest.mark.asyncio
async def test_the_pool_never_runs_more_than_its_workers() -> None:
    pool, work = HashPool(workers=2, queue_limit=16), Work()
    tasks = [asyncio.create_task(pool.run(work, f"login{i}")) for i in range(6)]
    await until(lambda: len(work.running) == 2)
    await asyncio.sleep(0.2)
    assert len(work.running) == 2 and pool.pending == 6
    work.gate.set()
    assert sorted(await asyncio.gather(*tasks)) == [f"login{i}" for i in range(6)]
    assert work.most == 2 and pool.pending == 0


@pytest.mark.asyncio
async def test_the_pool_says_busy_past_its_limit_and_serves_a_known_pc_first() -> None:
    pool, work = HashPool(workers=1, queue_limit=3), Work()
    guesses = [asyncio.create_task(pool.run(work, f"guess{i}")) for i in range(3)]
    await until(lambda: work.running == ["guess0"])
    with pytest.raises(AccountError) as busy:
        await pool.run(work, "one-too-many")
    assert busy.value.status == 503 and busy.value.retry_after
    officer = asyncio.create_task(pool.run(work, "officer", urgent=True))  # allowed past the limit
    await until(lambda: pool.pending == 4)
    work.gate.set()
    await asyncio.gather(*guesses, officer)
    assert work.started == ["guess0", "officer", "guess1", "guess2"]


def test_stored_locks_come_back_with_their_time_left_but_never_longer_than_the_cap() -> None:
    """What server/login_store.py writes and reads: wall-clock times, turned back into waits on
    another process's monotonic clock; a wall clock set back a day must not lock anyone for a day."""
    g, _ = guard(address_free_failures=1, user_free_failures=1, lock_base_seconds=8, address_lock_max_seconds=8,
                 user_lock_max_seconds=8)
    g.wall = lambda: 50_000.0
    g.succeeded("lan", "10.0.0.2")
    g.failed("lan", "10.0.0.9")
    stored = g.changes()
    assert {(s.kind, s.failures, s.locked_until, s.expires) for s in stored.strikes} == {
        ("address", 1, 50_008.0, 50_016.0), ("user", 1, 50_008.0, 50_016.0)}
    assert "lan" not in repr(stored) and "10.0.0" not in repr(stored)  # digests only
    assert not g.changes()  # nothing new: nothing to write

    def restarted(wall: float) -> LoginGuard:
        again, clock = guard(address_free_failures=1, user_free_failures=1, lock_base_seconds=8,
                             address_lock_max_seconds=8, user_lock_max_seconds=8)
        clock.now = 7.0  # a new process's monotonic clock
        again.wall = lambda: wall
        for s in stored.strikes:
            again.restore_strikes(s.kind, s.key, s.failures, s.locked_until, s.last)
        for pair, at in stored.known:
            again.restore_known(pair, at)
        return again

    assert restarted(50_003.0).wait_seconds("lan", "10.0.0.9") == 5  # 3 s passed during the restart
    assert restarted(50_003.0).wait_seconds("lan", "10.0.0.2") == 0  # the user's own PC, still known
    assert restarted(50_003.0).wait_seconds("lan", "10.0.0.7") == 5  # the user's lock elsewhere
    assert restarted(50_000.0 - 86_400).wait_seconds("lan", "10.0.0.9") == 8  # clock set back: the cap
    assert restarted(50_009.0).wait_seconds("lan", "10.0.0.9") == 0  # the window has passed
