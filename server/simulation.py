"""Simulated citizens and officers for the demo and the benchmarks.

Arrivals are Poisson with a realistic daily profile (a morning peak around 8-10h, a smaller one
after lunch); each officer calls, starts, serves for an exponential time around the group's
expected minutes, sometimes finds nobody (absent after the recalls), and each pad sometimes gets
a rating. Every action goes through :meth:`CentreService.run`, the same path as real devices.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from server.engine import CALLED, QueueError, SERVING
from server.service import CentreService

# relative arrival intensity per local hour (1.0 = the day's mean hourly rate)
HOURLY_PROFILE = {7: 0.9, 8: 1.8, 9: 1.7, 10: 1.3, 11: 0.9, 12: 0.1, 13: 0.9, 14: 1.2, 15: 1.0, 16: 0.6}


class SimClock:
    """Time that runs ``speed`` times faster than the wall clock, from ``start``."""

    def __init__(self, start: datetime, speed: float, wall: Callable[[], float]) -> None:
        self.start, self.speed, self._wall = start, speed, wall
        self._wall_start = wall()

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=(self._wall() - self._wall_start) * self.speed)


@dataclass
class _Officer:
    counter: int
    next_action: datetime
    absent_ticket: str | None = None


@dataclass
class Simulation:
    service: CentreService
    tickets_per_day: int = 260
    seed: int = 7
    no_show_rate: float = 0.05
    rating_rate: float = 0.6
    rng: random.Random = field(init=False)
    officers: list[_Officer] = field(default_factory=list)
    last_step: datetime | None = None
    issued: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    async def open_counters(self) -> None:
        now = self.service.now()
        for counter in self.service.config.counters:
            officer = f"canbo{counter.number}"
            await self.service.run(lambda e, t, n=counter.number, o=officer: (None, e.open_counter(n, o, t)))
            self.officers.append(_Officer(counter.number, now))

    def _arrival_rate_per_minute(self, now: datetime) -> float:
        hour = now.astimezone(self.service.config.zone).hour
        open_hours = sum(HOURLY_PROFILE.values())
        return self.tickets_per_day / open_hours / 60.0 * HOURLY_PROFILE.get(hour, 0.0)

    def _poisson(self, mean: float) -> int:
        limit, k, p = math.exp(-mean), 0, 1.0
        while True:
            p *= self.rng.random()
            if p <= limit:
                return k
            k += 1

    async def step(self) -> None:
        """Advance the simulated centre to the service's current time."""
        now = self.service.now()
        minutes = 0.0 if self.last_step is None else (now - self.last_step).total_seconds() / 60.0
        self.last_step = now
        await self._arrivals(now, minutes)
        for officer in self.officers:
            if officer.next_action <= now:
                await self._act(officer, now)

    async def _arrivals(self, now: datetime, minutes: float) -> None:
        groups = self.service.config.groups
        weights = [1.0 / g.service_minutes + 0.05 for g in groups]  # quick procedures are asked for more
        priorities = [p.code for p in self.service.config.priority_classes]
        for _ in range(self._poisson(self._arrival_rate_per_minute(now) * minutes)):
            group = self.rng.choices(groups, weights)[0].code
            priority = self.rng.choice(priorities) if priorities and self.rng.random() < 0.12 else None
            await self.service.run(lambda e, t: e.issue(group, t, priority=priority, source="demo"))
            self.issued += 1

    async def _act(self, officer: _Officer, now: datetime) -> None:
        engine = self.service.engine
        counter = engine.counters[officer.counter]
        try:
            ticket = engine.tickets.get(counter.ticket_id) if counter.ticket_id else None
            if ticket is None:
                called, _ = await self._run_pair(lambda e, t: e.call_next(officer.counter, t))
                officer.next_action = now + timedelta(minutes=self.rng.uniform(0.3, 1.0) if called else 0.5)
                officer.absent_ticket = called.id if called and self.rng.random() < self.no_show_rate else None
            elif ticket.status == CALLED and officer.absent_ticket == ticket.id:
                await self.service.run(lambda e, t: e.recall(officer.counter, t))
                officer.next_action = now + timedelta(minutes=1)
            elif ticket.status == CALLED:
                await self.service.run(lambda e, t: e.start(officer.counter, t))
                mean = self.service.config.group(ticket.group).service_minutes
                officer.next_action = now + timedelta(minutes=max(0.5, self.rng.expovariate(1.0 / mean)))
            elif ticket.status == SERVING:
                done, _ = await self._run_pair(lambda e, t: e.finish(officer.counter, t))
                if self.rng.random() < self.rating_rate:
                    rating = self.rng.choices([4, 3, 2, 1], [0.55, 0.3, 0.1, 0.05])[0]
                    await self.service.run(lambda e, t: (None, e.record_feedback(done.id, rating, "demo", officer.counter, t)))
                officer.next_action = now + timedelta(minutes=self.rng.uniform(0.2, 0.8))
        except QueueError:
            officer.next_action = now + timedelta(minutes=0.5)

    async def _run_pair(self, command):
        result = await self.service.run(command)
        return result, None
