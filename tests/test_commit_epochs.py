"""A failed group commit fails every command computed on top of it, and the log always replays.

Hypothesis drives a real CentreService over a real SQLite file whose commits fail on demand
(``Storage.fault``, called inside the transaction just before COMMIT). Each step launches several
commands at once (issues, calls, finishes, counters, leases, offline tickets, help requests), each
starting after a random number of loop turns, so commands are computed while earlier commits are
still being written. After every step:

- every acknowledged command's events are in the log (nothing acknowledged is lost);
- the log replays without error into exactly the live engine (no ``ticket.called`` without its
  ``ticket.issued``: the bug where a call of a ticket whose issue had failed was acknowledged);
- a failed batch made the service rebuild its engine once, not once per failed command.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from server.engine import Event, QueueEngine, QueueError
from server.service import CentreService
from server.storage import Storage, StorageError
from tests.engine_support import HCM, at, small_config, state_of

CONFIG = small_config()
GROUPS = [g.code for g in CONFIG.groups]
COUNTERS = [c.number for c in CONFIG.counters]


class DiskFull(OSError):
    """What the fault hook raises: the commit fails as on a full disk."""


command_kinds = st.sampled_from(["issue", "issue", "issue", "call_next", "finish", "open", "close", "lease",
                                 "offline", "assistance", "call_ticket"])
commands = st.lists(st.tuples(command_kinds, st.integers(0, 50), st.integers(0, 3)), min_size=1, max_size=8)


class FailingCommits(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.dir = Path(tempfile.mkdtemp(prefix="luot-epochs-"))
        self.now = at(2, 8, 0)
        self.storage = self.loop.run_until_complete(Storage.open(self.dir / "luot.sqlite3", HCM))
        self.service = self.loop.run_until_complete(CentreService.start(CONFIG, self.storage, lambda: self.now))
        self.commit_ordinal = 0
        self.failing: set[int] = set()
        self.storage.fault = self._fault
        self.acknowledged: list[Event] = []
        self.failures = 0
        self.tokens = 0

    def _fault(self, events: list[Event]) -> None:
        self.commit_ordinal += 1
        if self.commit_ordinal in self.failing:
            raise DiskFull("disk full (injected)")

    # ------------------------------------------------------------------ commands
    def _command(self, kind: str, pick: int) -> Callable[[QueueEngine, datetime], tuple[Any, list[Event]]]:
        counter = COUNTERS[pick % len(COUNTERS)]
        group = GROUPS[pick % len(GROUPS)]
        if kind == "issue":
            return lambda e, now: e.issue(group, now)
        if kind == "call_next":
            return lambda e, now: e.call_next(counter, now)
        if kind == "finish":
            return lambda e, now: e.finish(counter, now)
        if kind == "open":
            return lambda e, now: (None, e.open_counter(counter, None, now))
        if kind == "close":
            return lambda e, now: (None, e.close_counter(counter, now))
        if kind == "lease":
            return lambda e, now: e.lease_block("kiosk-1", group, 2, now)
        if kind == "assistance":
            return lambda e, now: (None, e.request_assistance("kiosk-1", f"r{pick % 7}", "help", now))
        if kind == "call_ticket":
            def call_ticket(e: QueueEngine, now: datetime) -> tuple[Any, list[Event]]:
                waiting = e.waiting()
                ticket_id = waiting[pick % len(waiting)].id if waiting else "t-none"
                return e.call_ticket(counter, ticket_id, now)
            return call_ticket
        self.tokens += 1
        token = hashlib.sha256(f"tok-{self.tokens}".encode()).hexdigest()[:32]

        def offline(e: QueueEngine, now: datetime) -> tuple[Any, list[Event]]:
            leases = e.numbering.leases.get("kiosk-1", [])
            if not leases:
                return e.import_offline("kiosk-1", group, 1, now, token, now)  # refused: nothing leased
            lease_group, first, last, _ = leases[pick % len(leases)]
            return e.import_offline("kiosk-1", lease_group, first + pick % (last - first + 1), now, token, now)
        return offline

    async def _one(self, kind: str, pick: int, delay: int) -> None:
        for _ in range(delay):
            await asyncio.sleep(0)
        produced: list[Event] = []
        command = self._command(kind, pick)

        def recording(engine: QueueEngine, now: datetime) -> tuple[Any, list[Event]]:
            result, events = command(engine, now)
            produced.extend(events)
            return result, events
        try:
            await self.service.run(recording)
        except QueueError:
            return
        except StorageError:
            self.failures += 1
            return
        self.acknowledged.extend(produced)

    @rule(batch=commands, fail=st.sets(st.integers(1, 4), max_size=2), minutes=st.integers(0, 20))
    def commands_at_once(self, batch: list[tuple[str, int, int]], fail: set[int], minutes: int) -> None:
        self.now += timedelta(minutes=minutes)
        self.failing = {self.commit_ordinal + n for n in fail}
        reloads = self.service.reloads
        failures = self.failures

        async def go() -> None:
            await asyncio.gather(*(self._one(kind, pick, delay) for kind, pick, delay in batch))
        self.loop.run_until_complete(go())
        self.failing = set()
        if self.failures > failures:
            assert self.service.reloads > reloads, "a failed commit must rebuild the engine"
            # once per failed commit at most (every failed command of an epoch shares one rebuild)
            assert self.service.reloads - reloads <= len(fail)

    # ------------------------------------------------------------------ invariants
    def _log(self) -> list[Event]:
        return self.loop.run_until_complete(self.storage.current_day_events())

    @invariant()
    def nothing_acknowledged_is_lost(self) -> None:
        async def stored_ids() -> set[str]:
            cursor = await self.storage.db.execute("SELECT id FROM events")
            return {row[0] for row in await cursor.fetchall()}
        stored = self.loop.run_until_complete(stored_ids())
        missing = [e.type for e in self.acknowledged if e.id not in stored]
        assert not missing, f"acknowledged but not in the log: {missing}"

    @invariant()
    def the_log_replays_to_the_live_state(self) -> None:
        fresh = QueueEngine(CONFIG)
        fresh.replay(self._log())  # raises on an event whose cause is missing
        assert state_of(fresh, self.now) == state_of(self.service.engine, self.now)

    def teardown(self) -> None:
        self.loop.run_until_complete(self.storage.close())
        self.loop.close()
        shutil.rmtree(self.dir, ignore_errors=True)


FailingCommits.TestCase.settings = settings(
    max_examples=40, stateful_step_count=12, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestFailingCommits = FailingCommits.TestCase


# ---------------------------------------------------------------- the reported case, step by step
async def _centre(tmp_path: Path, clock: Callable[[], datetime]) -> tuple[Storage, CentreService]:
    storage = await Storage.open(tmp_path / "luot.sqlite3", HCM)
    return storage, await CentreService.start(CONFIG, storage, clock)


def test_a_call_computed_on_a_failed_issue_is_not_acknowledged(tmp_path: Path) -> None:
    """The issue's commit fails while a call of that very ticket waits for the next commit: both
    fail, the engine is rebuilt once, and the log still replays (before: the call was acknowledged
    and the day could not be replayed, so the server could not start again)."""
    import threading

    async def scenario() -> None:
        now = at(2, 8)
        storage, service = await _centre(tmp_path, lambda: now)
        await service.run(lambda e, t: (None, e.open_counter(1, None, t)))
        writing, release = threading.Event(), threading.Event()

        def fault(events: list[Event]) -> None:  # runs in SQLite's thread, inside the transaction
            if any(e.type == "ticket.issued" for e in events):
                writing.set()
                release.wait(10)
                raise DiskFull("disk full (injected)")
        storage.fault = fault
        issue = asyncio.create_task(service.run(lambda e, t: e.issue("ho-tich", t)))
        assert await asyncio.to_thread(writing.wait, 10)  # the issue's commit is being written
        call = asyncio.create_task(service.run(lambda e, t: e.call_next(1, t)))
        for _ in range(5):
            await asyncio.sleep(0)
        assert service.engine.counters[1].ticket_id is not None  # computed on the unsaved ticket
        release.set()
        outcomes = await asyncio.gather(issue, call, return_exceptions=True)
        assert all(isinstance(o, StorageError) for o in outcomes), outcomes
        assert service.reloads == 1
        storage.fault = None
        log = await storage.current_day_events()
        assert [e.type for e in log] == ["day.opened", "counter.opened"]
        fresh = QueueEngine(CONFIG)
        fresh.replay(log)
        assert state_of(fresh, now) == state_of(service.engine, now)
        ticket = await service.run(lambda e, t: e.issue("ho-tich", t))  # and work goes on
        called = await service.run(lambda e, t: e.call_next(1, t))
        assert called is not None and called.id == ticket.id and ticket.number == 1001
        await storage.close()
    asyncio.run(scenario())
