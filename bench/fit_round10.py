"""Score the rules of issue 17's tenth round on the tuning days (docs/estimates.md, "tenth round").

Two choices were made here, each on tuning seeds 0-179 only (never a reserved set of
bench_queueing.py):

* without history, the point's cap from today's load so far: ``16 + slope x (load - knee)``
  (``Estimate.load`` is that load, so each day is simulated once and every rule scored offline);
* with a history, how much wider an overloaded centre's range is: the range's sigma times
  ``1 + c x (usual load - 1)``, the point computed as before.

A point or range does not change the simulated day (the simulator ignores what citizens are
told), so every rule is re-derived from what the estimator recorded per ticket
(``Estimate.basis``: the open minute now, the walk's mean, the minutes per place) and mapped to
wall time as ``_finish`` does. Figures per family, pooled over the seeds: gain over the best
classic predictor, the share under-estimated by more than 10 minutes, the range's coverage
overall and across the break.

    .venv/bin/python bench/fit_round10.py [--seeds 180] [--history 0|1|5]   # 1-4 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from multiprocessing import Pool
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_queueing import FIRST_DAY  # noqa: E402
from luot.config import load_config  # noqa: E402
from server import estimates, wait_scenarios  # noqa: E402
from server.estimates import EstimateModel, Timeline, spread_wait, today_shift_cap  # noqa: E402

# (label, knee, slope): the no-history cap is 16 + slope x max(0, today's load - knee)
TODAY_RULES = (("16 (before)", 9.0, 0.0), ("16 + 100 (load - 1.1)", 1.1, 100.0), ("16 + 200 (load - 1.1)", 1.1, 200.0),
               ("16 + 400 (load - 1.1)", 1.1, 400.0), ("16 + 400 (load - 1.25)", 1.25, 400.0),
               ("16 + 400 (load - 1.3) (kept)", 1.3, 400.0))
RANGE_WIDENINGS = (0.0, 1.0, 1.5, 2.0)  # c, with a history: the range's sigma x (1 + c (load - 1))


def family_rows(args: tuple[str, int, int]) -> list[dict]:
    """Every called ticket of ``family`` on tuning seeds 0..seeds-1, as the estimator saw it."""
    family, seeds, history_days = args
    config, scenario = load_config(), wait_scenarios.FAMILIES[family]
    rows = []
    for seed, day in wait_scenarios.family_days(scenario, range(seeds), FIRST_DAY):
        history = wait_scenarios.history_for(config, scenario, seed, day, history_days) if history_days else None
        rows += day_rows(config, scenario, seed, day, history)
    return rows


def day_rows(config, scenario, seed: int, day, history) -> list[dict]:
    """One simulated day's called tickets, as the estimator given ``history`` saw them: what the
    point and range were computed from (``Estimate.basis``, ``Estimate.load``), the point told,
    the classic predictors, naive (also in open hours) and the real wait (bench/fit_round11.py
    replays days with other histories, bench/fit_round12.py draws the point's frontier against the
    strongest simple predictor)."""
    model = EstimateModel(config)
    model.use_history(history)
    timeline = Timeline.for_day(config, day.replace(hour=8))
    rows = []
    for p in wait_scenarios.simulate_day(config, scenario, seed, day, history=history):
        if p.basis is None or p.ours is None or p.actual is None or p.load is None:
            continue
        open_now, wait, step = p.basis
        after = timeline.next_break_end(open_now)
        pace = model.range_pace(p.group, timeline, open_now, wait) if history else 1.0
        rows.append(dict(timeline=timeline, open_now=open_now, wait=wait, step=step, now_s=p.issued.timestamp(),
                         actual=p.actual, classic=p.classic, naive=p.naive or 0.0, naive_hours=p.naive_hours or 0.0,
                         ours=p.ours, load=p.load,
                         crosses=p.crosses_break, pace=pace,
                         to_break=None if after is None else after - open_now, group=p.group, seed=seed))
    return rows


def told(row: dict, cap: float, k: float, widening: float) -> tuple[float, int, int]:
    """The point and range (minutes from now) for ``row`` with the point's ``cap`` and shift ``k``
    and the range's overload ``widening``, mapped to wall time as ``_finish`` does."""
    point, lo, hi = spread_wait(row["wait"], row["step"], k=k, cap=cap, to_break=row["to_break"], scale=row["pace"],
                                widen=1.0 + widening * max(0.0, row["load"] - 1.0))
    return in_wall_minutes(row, point, lo, hi)


def in_wall_minutes(row: dict, point: float, lo: float, hi: float) -> tuple[float, int, int]:
    """A point and range in open minutes from ``row``'s now, as minutes from now on the wall clock
    (the range in whole minutes), as ``_finish`` tells them."""
    def minutes(open_minutes: float) -> float:
        return max(0.0, (row["timeline"].wall_seconds(row["open_now"] + open_minutes) - row["now_s"]) / 60.0)
    return minutes(point), math.floor(minutes(lo) + 1e-6), math.ceil(minutes(hi) - 1e-6)


def figures(rows: list[dict], cap_of, k: float, widening: float) -> str:
    """gain / under > 10 / coverage / coverage across the break, in per cent (``cap_of(row)``: the point's cap)."""
    return "{:4.1f}/{:5.2f}/{:4.1f}/{:4.1f}".format(*scores(rows, cap_of, k, widening))


def scores(rows: list[dict], cap_of, k: float, widening: float) -> tuple[float, float, float, float]:
    """:func:`figures` as numbers."""
    return answer_scores(rows, [told(r, cap_of(r), k, widening) for r in rows])


def answer_scores(rows: list[dict], answers: list[tuple[float, int, int]]) -> tuple[float, float, float, float]:
    """Gain, under > 10, coverage and coverage across the break (per cent) of ``answers`` (point,
    low, high in minutes from now, one per row)."""
    best = min(statistics.fmean(abs(r["classic"][c] - r["actual"]) for r in rows) for c in wait_scenarios.CLASSIC)
    errors = [point - r["actual"] for (point, _, _), r in zip(answers, rows)]
    inside = [lo <= r["actual"] <= hi for (_, lo, hi), r in zip(answers, rows)]
    crossing = [hit for hit, r in zip(inside, rows) if r["crosses"]]
    return (100 * (1 - statistics.fmean(map(abs, errors)) / best), 100 * sum(e < -10 for e in errors) / len(errors),
            100 * sum(inside) / len(inside), 100 * sum(crossing) / max(1, len(crossing)))


def simulated_families(description: str, default_seeds: int) -> tuple[argparse.Namespace, list[str], list[list[dict]], float]:
    """The fitting scripts' command line (``--seeds``, ``--history``) and every family's rows on
    those tuning seeds, two families at a time: (arguments, family names, rows per family, seconds)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seeds", type=int, default=default_seeds, help="tuning seeds 0..N-1 of every family")
    parser.add_argument("--history", type=int, default=0, help="earlier days of history (0: a new centre)")
    args = parser.parse_args()
    started = time.perf_counter()
    names = list(wait_scenarios.FAMILIES)
    with Pool(2) as pool:
        per_family = pool.map(family_rows, [(name, args.seeds, args.history) for name in names])
    return args, names, per_family, time.perf_counter() - started


def main() -> None:
    args, names, per_family, seconds = simulated_families(__doc__.split("\n")[0], 180)
    print(f"simulated {sum(map(len, per_family))} tickets in {seconds:.0f} s, history of "
          f"{args.history} days; per family: gain / under > 10 / coverage / coverage across the break (%)")
    print(f"{'rule':36} " + " ".join(f"{n:>24}" for n in names))
    if args.history:
        for widening in RANGE_WIDENINGS:
            cells = [figures(rows, lambda r: estimates.history_shift_cap_for(r["load"]), estimates.HISTORY_POINT_SHIFT, widening)
                     for rows in per_family]
            print(f"{f'range x (1 + {widening} (load - 1))':36} " + " ".join(f"{c:>24}" for c in cells))
    else:
        for label, knee, slope in TODAY_RULES:
            cells = [figures(rows, lambda r: today_shift_cap(r["load"], knee, slope),
                             estimates.POINT_SHIFT, 0.0) for rows in per_family]
            print(f"{label:36} " + " ".join(f"{c:>24}" for c in cells))


if __name__ == "__main__":
    main()
