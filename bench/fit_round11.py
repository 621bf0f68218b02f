"""Score the rules of issue 17's eleventh round on the tuning days (docs/estimates.md, "eleventh round").

One rule was kept: with a history, the point's cap from the smaller of the centre's usual load
and that of the ticket's own counters (HISTORY_COUNTER_LOAD). The others were tried and not kept;
the script keeps the record. Each was judged on
tuning seeds 0-179 only (never a reserved set of bench_queueing.py), by the family x target checks
(gain over the best classic predictor >= 30 %, under-estimated by more than 10 minutes < 10 %,
coverage 80 +- 5 % overall and across the break: 20 per history setting):

* with a history (``--history 1`` or ``5``), other loads for the point's cap than the centre's
  usual load: the load of the ticket's own counters (the history's work of every group split
  evenly over the counters that serve it), the group's own work alone, the smaller of the centre's
  and the counters' (kept), the usual load scaled by today's volume so far (today's tickets before now
  over the history's before the same minute, each plus 30), and the overload part halved;
* without history (``--history 0``), a point further out for waits that run past the next break
  (``beta`` x the part of the walk's mean beyond it: the afternoon's pace is unknown in the
  morning), and with ``--starter`` a new centre given a starter profile: the province's mix of
  other centres, modelled as one earlier day of each of the five families (the same mix for every
  family: a new centre does not know which kind it is).

As in bench/fit_round10.py, a rule that changes only the point or the range is re-derived from
what the estimator recorded per ticket; the starter profile changes the walk, so those days are
simulated again with it.

    .venv/bin/python bench/fit_round11.py [--seeds 180] [--history 0|1|5] [--starter]   # 2-12 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from bisect import bisect_left
from datetime import datetime, timedelta, timezone
from multiprocessing import Pool
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_queueing import FIRST_DAY  # noqa: E402
from fit_round10 import answer_scores, day_rows, in_wall_minutes, scores  # noqa: E402
from luot.config import load_config  # noqa: E402
from server import estimates, wait_scenarios  # noqa: E402
from server.estimates import EstimateModel, Timeline, spread_wait  # noqa: E402
from server.wait_history import History, TicketRecord, expected_between, minute_of_day  # noqa: E402

VOLUME_PRIOR = 30.0  # tickets added to today's and the history's counts before their ratio is taken
AFTERNOON_BETAS = (0.1, 0.2, 0.4)
_product_finish = EstimateModel._finish


def _finish_recording(self, engine, ticket, at, ahead, counters, cycle, open_now, timeline, now, loads):
    """The product's answer, unchanged; its ``load`` becomes (the load the cap came from, today's
    load so far, tickets issued before now), so that other caps can be scored offline."""
    estimate = _product_finish(self, engine, ticket, at, ahead, counters, cycle, open_now, timeline, now, loads)
    if estimate.load is None:
        return estimate
    issued = sum(bisect_left(instants, now.timestamp()) for instants in self.issue_instants.values())
    return dataclasses.replace(estimate, load=(estimate.load, self.today_load(now, open_now, {}), issued))


EstimateModel._finish = _finish_recording  # bench-side only: records figures, changes no answer


def counter_loads(config, history: History, timeline: Timeline) -> dict[str, tuple[float, float]]:
    """Per group: the usual load of its counters (the product's EstimateModel.history_counter_load)
    and of its own work alone over its counters, from ``history``."""
    model = EstimateModel(config)
    model.use_history(history)
    minutes = timeline.open_minutes_at_closing
    loads = {}
    for group in config.groups:
        counters = len(model.counters_of[group.code])
        handle = history.handle_minutes(group.code, 0, 24 * 60, least=1) or float(group.service_minutes)
        own = sum(history.arrivals.get(group.code, ())) * handle / (counters * minutes)
        loads[group.code] = (model.history_counter_load(group.code, timeline), own)
    return loads


def starter_history(config, seed: int, day) -> History:
    """A new centre's starter profile: one earlier day of each family (seeds apart from every
    evaluated one, as wait_scenarios.history_for; each on its own date, so five days)."""
    records: list[TicketRecord] = []
    for i, scenario in enumerate(wait_scenarios.FAMILIES.values()):
        wait_scenarios.simulate_day(config, scenario, wait_scenarios.HISTORY_SEED_BASE + seed * 10 + i,
                                    day - timedelta(days=7 * (i + 1)), records=records)
    return History.from_records(records, config.zone)


def family_rows(args: tuple[str, int, int, bool]) -> list[dict]:
    """Every called ticket of ``family`` on tuning seeds 0..seeds-1, with the loads the rules need."""
    family, seeds, history_days, starter = args
    config, scenario = load_config(), wait_scenarios.FAMILIES[family]
    rows = []
    for seed, day in wait_scenarios.family_days(scenario, range(seeds), FIRST_DAY):
        if starter:
            history = starter_history(config, seed, day)
        else:
            history = wait_scenarios.history_for(config, scenario, seed, day, history_days) if history_days else None
        timeline = Timeline.for_day(config, day.replace(hour=8))
        loads = counter_loads(config, history, timeline) if history else {}
        for row in day_rows(config, scenario, seed, day, history):
            row["load"], row["today"], row["issued"] = row["load"]
            row["counters"], row["own"] = loads.get(row["group"], (row["load"], row["load"]))
            if history:  # the history's tickets issued before the same minute of the day
                at = minute_of_day(datetime.fromtimestamp(row["now_s"], tz=timezone.utc), config.zone)
                row["usual"] = sum(expected_between(history.cumulative(g), 0.0, at) for g in history.arrivals)
            rows.append(row)
    return rows


def history_cap(load_of):
    """The point's cap with a history, from the load ``load_of(row)`` instead of the centre's."""
    return lambda row: estimates.history_shift_cap_for(load_of(row))


def halved_overload(row: dict) -> float:
    """The centre's usual load with its part above 1 halved (a one-day history's overload is noisy)."""
    load = row["load"]
    return load if load <= 1.0 else 1.0 + 0.5 * (load - 1.0)


HISTORY_RULES = (
    ("centre's usual load (before)", history_cap(lambda r: r["load"])),
    ("its counters' load", history_cap(lambda r: r["counters"])),
    ("its group's own work", history_cap(lambda r: r["own"])),
    ("min(centre's, its counters') (kept)", history_cap(lambda r: min(r["load"], r["counters"]))),
    ("usual load x today's volume", history_cap(lambda r: r["load"] * (r["issued"] + VOLUME_PRIOR) / (r["usual"] + VOLUME_PRIOR))),
    ("overload part halved", history_cap(halved_overload)),
)


def told_past_break(row: dict, beta: float) -> tuple[float, int, int]:
    """Without history: the point told moved out by ``beta`` x the part of the walk's mean beyond
    the next break (kept inside the range); ``beta`` 0 is the product's answer."""
    point, lo, hi = spread_wait(row["wait"], row["step"], cap=estimates.today_shift_cap(row["today"]), to_break=row["to_break"])
    if row["to_break"] is not None:
        point = min(hi, point + beta * max(0.0, row["wait"] - row["to_break"]))
    return in_wall_minutes(row, point, lo, hi)


def met(cells: tuple[float, float, float, float]) -> int:
    gain, under, coverage, across = cells
    return (gain >= 30.0) + (under < 10.0) + (abs(coverage - 80.0) <= 5.0) + (abs(across - 80.0) <= 5.0)


def line(label: str, cells: list[tuple[float, float, float, float]]) -> str:
    return (f"{label:36} " + " ".join("{:4.1f}/{:5.2f}/{:4.1f}/{:4.1f}".format(*c).rjust(24) for c in cells)
            + f" {sum(map(met, cells)):4d}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=180, help="tuning seeds 0..N-1 of every family (N <= 180)")
    parser.add_argument("--history", type=int, default=0, help="earlier days of history (0: a new centre)")
    parser.add_argument("--starter", action="store_true", help="without history: also a new centre given a starter profile")
    args = parser.parse_args()
    if not 0 < args.seeds <= 180:
        raise SystemExit("tuning seeds 0-179 only")
    started = time.perf_counter()
    names = list(wait_scenarios.FAMILIES)
    settings = [(args.history, False)] + ([(0, True)] if args.starter and not args.history else [])
    with Pool(2) as pool:
        per_setting = {starter: pool.map(family_rows, [(name, args.seeds, days, starter) for name in names])
                       for days, starter in settings}
    print(f"simulated in {time.perf_counter() - started:.0f} s, history of {args.history} days; per family: gain / "
          "under > 10 / coverage / coverage across the break (%); checks met of 20")
    print(f"{'rule':36} " + " ".join(f"{n:>24}" for n in names) + "  met")
    per_family = per_setting[False]
    if args.history:
        for label, cap_of in HISTORY_RULES:
            print(line(label, [scores(rows, cap_of, estimates.HISTORY_POINT_SHIFT, estimates.HISTORY_RANGE_OVERLOAD)
                               for rows in per_family]))
        return
    print(line("today's load (kept)", [answer_scores(rows, [told_past_break(r, 0.0) for r in rows]) for rows in per_family]))
    for beta in AFTERNOON_BETAS:
        print(line(f"past the break x {beta}", [answer_scores(rows, [told_past_break(r, beta) for r in rows]) for rows in per_family]))
    if args.starter:
        print(line("starter profile", [scores(rows, history_cap(lambda r: r["load"]), estimates.HISTORY_POINT_SHIFT,
                                              estimates.HISTORY_RANGE_OVERLOAD) for rows in per_setting[True]]))
        print(line("starter, today's load cap", [scores(rows, lambda r: estimates.today_shift_cap(r["today"]),
                                                        estimates.POINT_SHIFT, estimates.HISTORY_RANGE_OVERLOAD)
                                                 for rows in per_setting[True]]))


if __name__ == "__main__":
    main()
