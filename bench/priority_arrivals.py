"""Priority tickets arriving during a wait: what the walk expected, what came, and what knowing it
would be worth (issue 17's thirteenth round).

bench/walk_error_floor.py showed that priority tickets arriving during the wait make most of the
walk mean's excess error. This script says how. For every ordinary ticket of the benchmark's days
(tuning seeds only) it compares, in minutes of the ticket's counters:

* **expected**: what the walk added for priority arrivals (its mean wait minus the same walk's with
  no priority arrivals counted, ``PRIORITY_LOAD_CAP = 0``);
* **arrived**: the priority tickets issued while it waited, of its group and of every group sharing
  its counters (each by the share of that group's counters that are the ticket's), their service
  times summed over the ticket's counters;

and the MAE of the walk's mean as it is, without the priority arrivals, and with the arrived work
added instead of the expected (an oracle no estimate can be, since the arrivals are random: it
says what the arrivals' randomness costs). The simulated day does not depend on what citizens are
told, so each day is played three times: with the estimator as it is, with no priority arrivals
counted, and once recording its tickets (``simulate_day(records=...)``).

    .venv/bin/python bench/priority_arrivals.py [--seeds 20] [--history 0|1|5]   # about a minute
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Mapping
from datetime import datetime
from multiprocessing import Pool
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_queueing import FIRST_DAY  # noqa: E402
from luot.config import CentreConfig, load_config  # noqa: E402
from server import estimates, wait_scenarios  # noqa: E402
from server.estimates import EstimateModel, Timeline  # noqa: E402
from server.wait_history import TicketRecord  # noqa: E402


def arrived_work(ticket: wait_scenarios.Prediction, priority: list[TicketRecord], serving: Mapping[str, frozenset[int]]) -> float:
    """Minutes of the ticket's counters that priority tickets issued while it waited brought."""
    assert ticket.called is not None
    mine = serving[ticket.group]
    work = 0.0
    for record in priority:
        if ticket.issued < record.issued_at < ticket.called and record.first_called_at and record.finished_at:
            theirs = serving[record.group]
            service = (record.finished_at - record.first_called_at).total_seconds() / 60.0
            work += len(theirs & mine) / len(theirs) * service
    return work / max(1, len(mine))


def day_rows(config: CentreConfig, scenario: wait_scenarios.Scenario, seed: int, day: datetime, history_days: int) -> list[dict]:
    """Each called ordinary ticket of one day: its actual wait and the walk's means in wall minutes."""
    history = wait_scenarios.history_for(config, scenario, seed, day, history_days) if history_days else None
    told = wait_scenarios.simulate_day(config, scenario, seed, day, history=history)
    cap = estimates.PRIORITY_LOAD_CAP
    estimates.PRIORITY_LOAD_CAP = 0.0  # the same walk, no priority arrivals counted
    try:
        plain = wait_scenarios.simulate_day(config, scenario, seed, day, history=history)
    finally:
        estimates.PRIORITY_LOAD_CAP = cap
    records: list[TicketRecord] = []
    wait_scenarios.simulate_day(config, scenario, seed, day, records=records)
    priority = [r for r in records if r.priority]
    serving = EstimateModel(config).counters_of  # the configured counters that serve each group
    timeline = Timeline.for_day(config, day.replace(hour=8))
    rows = []
    for with_priority, without in zip(told, plain, strict=True):
        assert (with_priority.issued, with_priority.group) == (without.issued, without.group)
        if with_priority.priority or with_priority.basis is None or without.basis is None:
            continue
        open_now, walk, _ = with_priority.basis
        bare = without.basis[1]
        arrived = arrived_work(with_priority, priority, serving)

        def wall(open_minutes: float) -> float:
            return max(0.0, (timeline.wall_seconds(open_now + open_minutes) - with_priority.issued.timestamp()) / 60.0)
        rows.append(dict(group=with_priority.group, actual=with_priority.actual, expected=walk - bare, arrived=arrived,
                         walk=wall(walk), bare=wall(bare), oracle=wall(bare + arrived)))
    return rows


def family_rows(args: tuple[str, int, int]) -> tuple[str, list[dict]]:
    family, seeds, history_days = args
    config, scenario = load_config(), wait_scenarios.FAMILIES[family]
    rows = []
    for seed, day in wait_scenarios.family_days(scenario, range(seeds), FIRST_DAY):
        rows += day_rows(config, scenario, seed, day, history_days)
    return family, rows


def mae(rows: list[dict], key: str) -> float:
    return statistics.fmean(abs(r[key] - r["actual"]) for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=20, help="tuning seeds 0..N-1 of every family")
    parser.add_argument("--history", type=int, default=0, help="earlier days of history (0: a new centre)")
    args = parser.parse_args()
    print(f"ordinary tickets, tuning seeds 0..{args.seeds - 1}, history of {args.history} days; priority work "
          "ahead in minutes of the ticket's counters; MAE of the walk's mean (minutes)")
    print(f"{'family':13} {'tickets':>8} {'expected':>9} {'arrived':>8}   {'MAE walk':>9} {'no arrivals':>12} {'arrivals known':>15}")
    with Pool(2) as pool:
        for family, rows in pool.map(family_rows, [(f, args.seeds, args.history) for f in wait_scenarios.FAMILIES]):
            print(f"{family:13} {len(rows):8d} {statistics.fmean(r['expected'] for r in rows):9.2f} "
                  f"{statistics.fmean(r['arrived'] for r in rows):8.2f}   {mae(rows, 'walk'):9.2f} "
                  f"{mae(rows, 'bare'):12.2f} {mae(rows, 'oracle'):15.2f}")
            for group in sorted({r["group"] for r in rows}):
                mine = [r for r in rows if r["group"] == group]
                print(f"  {group:15} {len(mine):6d} {statistics.fmean(r['expected'] for r in mine):9.2f} "
                      f"{statistics.fmean(r['arrived'] for r in mine):8.2f}")


if __name__ == "__main__":
    main()
