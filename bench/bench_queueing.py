"""Queueing truth: the engine against Erlang C, and the expected-wait predictor against a baseline.

Part 1 drives the pure engine (explicit times, no I/O) with Poisson arrivals and exponential
service on c counters (one group, FIFO) and compares the mean wait with the Erlang-C formula
(M/M/c). Each service day starts empty, so the first customers of each day are a warm-up and are
not counted (FIFO waits do not depend on later arrivals, so the end of a day is not biased).

Part 2 runs whole simulated days of the sample centre (its groups and counters, the demo's hourly
arrival profile, 12 % priority tickets, officers who take a moment to call and to start, absent
citizens recalled three times) and compares, for every ticket, the wait predicted at issue time
with the actual wait until its first call. The baseline is "people ahead x mean service time /
open counters that serve the group".

    .venv/bin/python bench/bench_queueing.py [--quick] [--seeds 4]
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import random
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from luot.config import CentreConfig, load_config  # noqa: E402
from server.engine import CALLED, SERVING, QueueEngine  # noqa: E402
from server.simulation import HOURLY_PROFILE  # noqa: E402

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


# ---------------------------------------------------------------------------------------- Erlang C
def erlang_c(c: int, a: float) -> float:
    """Probability that an arrival waits in M/M/c with offered load ``a`` = lambda/mu (Erlang C)."""
    rho = a / c
    term, total = 1.0, 1.0  # sum_{k<c} a^k/k!, computed iteratively
    for k in range(1, c):
        term *= a / k
        total += term
    last = term * a / c  # a^c / c!
    top = last / (1 - rho)
    return top / (total + top)


def erlang_c_wait(c: int, rho: float, mean_service: float) -> float:
    """Mean wait in queue Wq = C(c, a) / (c mu - lambda)."""
    mu = 1.0 / mean_service
    lam = rho * c * mu
    return erlang_c(c, lam / mu) / (c * mu - lam)


def single_group_config(counters: int) -> CentreConfig:
    """The sample centre reduced to one group served by ``counters`` identical counters."""
    base = load_config()
    data = base.model_dump()
    group = {**data["groups"][0], "first_number": 1, "capacity": 9999, "service_minutes": 1}
    data["groups"] = [group]
    data["counters"] = [{"number": n, "name": f"Quầy {n}", "groups": [group["code"]]} for n in range(1, counters + 1)]
    data["devices"] = []
    data.pop("greeter", None)  # the sample's procedure mapping names groups this one-group centre has not
    return CentreConfig.model_validate(data)


def cheap_ids() -> tuple:
    ids = itertools.count()
    return (lambda: f"{next(ids):015x}{0:017x}"), (lambda: f"tok{next(ids):020d}")


def mmc_mean_wait(c: int, rho: float, customers: int, seed: int, warmup: int = 1000,
                  per_day: int = 9500) -> tuple[float, int]:
    """Mean wait (in mean service times) measured on the engine; returns (mean, customers counted).

    Engine time: one mean service time = 1 s (so a day holds thousands of services). Each day gets at most ``per_day`` tickets (numbers
    run 1-9999), then arrivals stop, the queue drains, and the next day starts empty.
    """
    config = single_group_config(c)
    new_id, new_token = cheap_ids()
    engine = QueueEngine(config, new_id=new_id, new_token=new_token)
    rng = random.Random(seed)
    group = config.groups[0].code
    lam = rho * c  # arrivals per second (mean service = 1 second)
    waits: list[float] = []
    day = datetime(2026, 1, 5, 0, 30, tzinfo=ZONE)
    while len(waits) < customers:
        t = 0.0
        for n in range(1, c + 1):
            engine.open_counter(n, f"o{n}", day)
        pending: list[tuple[float, int, int]] = []  # (time, order, counter) service ends
        order = itertools.count()
        free = list(range(1, c + 1))
        arrivals = 0
        next_arrival = rng.expovariate(lam)
        while arrivals < per_day or pending:
            if arrivals < per_day and (not pending or next_arrival <= pending[0][0]):
                t = next_arrival
                now = day + timedelta(seconds=t)
                engine.issue(group, now)
                arrivals += 1
                next_arrival = t + rng.expovariate(lam)
            else:
                t, _, counter = heapq.heappop(pending)
                now = day + timedelta(seconds=t)
                engine.finish(counter, now)
                free.append(counter)
            while free and engine.waiting_count:
                counter = free.pop()
                ticket, events = engine.call_next(counter, now)
                if ticket is None:
                    free.append(counter)
                    break
                if ticket.number > warmup:
                    waits.append(events[-1].data["wait_seconds"])
                engine.start(counter, now)
                heapq.heappush(pending, (t + rng.expovariate(1.0), next(order), counter))
        engine.close_day(day + timedelta(seconds=t))  # as a manager closes it: the next day opens without a clock check
        day += timedelta(days=1)
    return statistics.fmean(waits), len(waits)


def part1(seeds: int, scale: float) -> list[dict]:
    print("Part 1: engine vs Erlang C (M/M/c, one group, FIFO); waits in mean service times")
    print(f"{'c':>3} {'rho':>5} {'Erlang C':>9} {'engine':>9} {'error':>8} {'customers':>10} {'seconds':>8}")
    rows = []
    for c in (1, 3, 6):
        for rho in (0.5, 0.7, 0.85):
            started = time.perf_counter()
            theory = erlang_c_wait(c, rho, 1.0)
            # the sample mean's noise grows like 1/(1-rho)^2, and relative noise grows when few wait
            # at all (many counters, light load): scale the run length with both
            customers = int(scale * 6000 / (1 - rho) ** 2 * max(1.0, 0.5 / theory))
            means, counted = [], 0
            for seed in range(seeds):
                mean, n = mmc_mean_wait(c, rho, customers // seeds, seed=1000 * c + int(rho * 100) + seed)
                means.append(mean * n)
                counted += n
            measured = sum(means) / counted
            error = (measured - theory) / theory
            rows.append({"c": c, "rho": rho, "erlang_c": theory, "engine": measured, "error": error, "customers": counted})
            print(f"{c:3d} {rho:5.2f} {theory:9.3f} {measured:9.3f} {error:+8.1%} {counted:10d} {time.perf_counter() - started:8.1f}")
    return rows


# ---------------------------------------------------------------------------------------- part 2
@dataclass
class Prediction:
    group: str
    priority: bool
    issued: datetime
    predicted: float | None
    baseline: float | None
    actual: float | None = None


def baseline_minutes(engine: QueueEngine, ticket_id: str, ahead: int, now: datetime) -> float | None:
    """People ahead x the group's mean service time / open counters that serve the group."""
    ticket = engine.tickets[ticket_id]
    open_counters = [c for c in engine.counters.values() if c.status not in ("closed", "paused")
                     and ticket.group in c.groups]
    if not open_counters:
        return None
    return ahead * engine.mean_service_minutes(ticket.group) / len(open_counters)


def simulate_day(config: CentreConfig, seed: int, tickets_per_day: int, day: datetime,
                 no_show_rate: float = 0.05) -> list[Prediction]:
    """One day of the sample centre, driven like server/simulation.py but with explicit times."""
    rng = random.Random(seed)
    new_id, new_token = cheap_ids()
    engine = QueueEngine(config, new_id=new_id, new_token=new_token)
    groups = config.groups
    weights = [1.0 / g.service_minutes + 0.05 for g in groups]
    priorities = [p.code for p in config.priority_classes]
    open_hours = sum(HOURLY_PROFILE.values())
    peak = max(HOURLY_PROFILE.values())
    base_rate = tickets_per_day / open_hours / 60.0  # per minute at profile 1.0
    start = day.replace(hour=7, minute=0)
    end_arrivals = day.replace(hour=17, minute=0)
    heap: list[tuple[datetime, int, str, int]] = []
    order = itertools.count()
    for counter in config.counters:
        engine.open_counter(counter.number, f"canbo{counter.number}", start)
        heapq.heappush(heap, (start + timedelta(minutes=rng.uniform(0, 1)), next(order), "act", counter.number))
    # arrivals: non-homogeneous Poisson by thinning
    t = start
    while True:
        t += timedelta(minutes=rng.expovariate(base_rate * peak))
        if t >= end_arrivals:
            break
        if rng.random() < HOURLY_PROFILE.get(t.hour, 0.0) / peak:
            heapq.heappush(heap, (t, next(order), "arrive", 0))
    predictions: dict[str, Prediction] = {}
    absent: set[str] = set()
    while heap:
        now, _, kind, number = heapq.heappop(heap)
        if kind == "arrive":
            group = rng.choices(groups, weights)[0].code
            priority = rng.choice(priorities) if priorities and rng.random() < 0.12 else None
            ticket, _ = engine.issue(group, now, priority=priority)
            estimate = engine.estimates(now).get(ticket.id)
            predictions[ticket.id] = Prediction(
                group, priority is not None, now, estimate.wait_minutes if estimate else None,
                baseline_minutes(engine, ticket.id, estimate.ahead if estimate else 0, now))
            continue
        counter = engine.counters[number]
        ticket = engine.tickets.get(counter.ticket_id) if counter.ticket_id else None
        if ticket is None:
            if now > end_arrivals and not any(engine.eligible(t, counter) for t in engine.waiting()):
                continue  # the day is over for this officer
            called, _ = engine.call_next(number, now)
            if called is not None:
                predictions[called.id].actual = (now - called.issued_at).total_seconds() / 60.0
                if rng.random() < no_show_rate:
                    absent.add(called.id)
                delay = rng.uniform(0.3, 1.0)
            else:
                delay = 0.5
        elif ticket.status == CALLED and ticket.id in absent:
            engine.recall(number, now)
            delay = 1.0
        elif ticket.status == CALLED:
            engine.start(number, now)
            mean = config.group(ticket.group).service_minutes
            delay = max(0.5, rng.expovariate(1.0 / mean))
        elif ticket.status == SERVING:
            engine.finish(number, now)
            delay = rng.uniform(0.2, 0.8)
        else:
            delay = 0.5
        heapq.heappush(heap, (now + timedelta(minutes=delay), next(order), "act", number))
    return [p for p in predictions.values() if p.actual is not None]


def part2(days: int, tickets_per_day: int) -> dict:
    config = load_config()
    rows: list[Prediction] = []
    started = time.perf_counter()
    first = datetime(2026, 11, 2, tzinfo=ZONE)  # a Monday
    for index in range(days):
        rows += simulate_day(config, seed=index, tickets_per_day=tickets_per_day, day=first + timedelta(days=index))
    scored = [r for r in rows if r.predicted is not None and r.baseline is not None]
    mae = statistics.fmean(abs(r.predicted - r.actual) for r in scored)
    mae_base = statistics.fmean(abs(r.baseline - r.actual) for r in scored)
    bias = statistics.fmean(r.predicted - r.actual for r in scored)
    bias_base = statistics.fmean(r.baseline - r.actual for r in scored)
    mean_wait = statistics.fmean(r.actual for r in scored)
    improvement = 1 - mae / mae_base
    print(f"\nPart 2: predictor on {days} simulated days of the sample centre, {tickets_per_day} tickets a day "
          f"({len(scored)} tickets, mean actual wait {mean_wait:.1f} min, {time.perf_counter() - started:.1f} s)")
    print(f"  engine predictor   MAE {mae:6.2f} min   bias {bias:+6.2f} min")
    print(f"  baseline           MAE {mae_base:6.2f} min   bias {bias_base:+6.2f} min")
    print(f"  predictor is {improvement:.0%} better than the baseline (target: at least 30 %)")
    for label, subset in (("ordinary", [r for r in scored if not r.priority]), ("priority", [r for r in scored if r.priority])):
        if subset:
            print(f"    {label:9s} n={len(subset):5d}  MAE {statistics.fmean(abs(r.predicted - r.actual) for r in subset):6.2f}"
                  f"  baseline {statistics.fmean(abs(r.baseline - r.actual) for r in subset):6.2f}")
    return {"mae": mae, "mae_baseline": mae_base, "improvement": improvement, "tickets": len(scored)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--scale", type=float, default=1.0, help="run length factor for part 1")
    parser.add_argument("--days", type=int, default=40, help="simulated days for part 2")
    parser.add_argument("--tickets-per-day", type=int, default=300)
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test, not the figures)")
    parser.add_argument("--part", choices=["1", "2", "both"], default="both")
    args = parser.parse_args()
    if args.quick:
        args.scale, args.days = 0.1, 5
    if args.part in ("1", "both"):
        part1(args.seeds, args.scale)
    if args.part in ("2", "both"):
        part2(args.days, args.tickets_per_day)


if __name__ == "__main__":
    main()
