"""Issue 17's seventh round: score the point and the range with a history on the tuning days 0-179
only (docs/estimates.md). The simulated days do not depend on what citizens are told, so each
variant of the walk is simulated once (``--dump FILE``, with the profile of 5 earlier days; ``--set
NAME=VALUE`` overrides a constant of server/estimates.py, e.g. ``BREAK_RUNOVER=False`` for the walk
before this round) and every rule for the point and the range is scored from what the estimator
recorded per ticket (``--score FILE``): the point mapped back to wall time as ``_finish`` does.

Criterion (the sixth round's, fixed before choosing): per family, (gain - 30) / sd and (10 - under)
/ sd, sd the standard deviation over the six 30-seed blocks of the walk before this round, and the
rule with the largest smallest margin is kept. The range is scored alike: (5 - |coverage - 80|) /
sd, overall and across the break. The reserved fresh sets of bench_queueing.py must never be
passed here (``--seeds`` is at most 180).

    .venv/bin/python bench/fit_round7.py --dump /tmp/before.pkl --set BREAK_RUNOVER=False --set HISTORY_POINT_SHIFT=1.2
    .venv/bin/python bench/fit_round7.py --dump /tmp/after.pkl    # about 6 minutes each on 2 cores
    .venv/bin/python bench/fit_round7.py --score /tmp/before.pkl --score /tmp/after.pkl
"""

from __future__ import annotations

import argparse
import math
import pickle
import statistics
import sys
import time
from multiprocessing import Pool
from pathlib import Path
from statistics import NormalDist

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fit_history_point import days_with_history  # noqa: E402
from server import estimates, wait_scenarios  # noqa: E402
from server.estimates import spread_wait, wait_spread  # noqa: E402
BLOCK = 30
FAMILIES = list(wait_scenarios.FAMILIES)


def family_rows(args: tuple) -> list[dict]:
    """What the estimator recorded for every called ticket of one family on seeds first..last-1."""
    family, first, last, overrides = args
    for name, value in overrides:
        assert hasattr(estimates, name), name
        setattr(estimates, name, value)
    rows = []
    for seed, model, timeline, load, called in days_with_history(family, first, last):
        for p in called:
            handles = [model.history_handle(p.group, timeline, k) for k in range(len(timeline.sessions))]
            rows.append(dict(family=family, seed=seed, timeline=timeline, basis=p.basis, now_s=p.issued.timestamp(),
                             actual=p.actual, classic=p.classic, load=load, crosses=p.crosses_break,
                             group=p.group, handles=handles))  # the history's time per session (round 8)
    return rows


def capped_point(k: float):
    def point(row: dict) -> float:
        _, wait, step = row["basis"]
        return spread_wait(wait, step, k=k, cap=estimates.history_shift_cap_for(row["load"]))[0]
    return point


def gamma_point(alpha: float, kappa: float, k: float = 1.25):
    """The wait as a gamma variable of mean w and standard deviation kappa x sigma (a sum of
    exponential services): the point is its median, or later where P(real > point + 10) would
    exceed alpha, at most the capped rule's point (Wilson-Hilferty quantiles)."""
    z = NormalDist().inv_cdf(1 - alpha)

    def point(row: dict) -> float:
        _, wait, step = row["basis"]
        sigma = wait_spread(wait, step) * kappa
        _, lo, hi = spread_wait(wait, step)
        if wait <= 0 or sigma <= 0:
            return min(max(wait, lo), hi)
        n = (wait / sigma) ** 2
        quantile = lambda q: wait * max(0.0, 1 - 1 / (9 * n) + q / (3 * math.sqrt(n))) ** 3  # noqa: E731
        told = min(max(quantile(0.0), quantile(z) - 10.0), wait + k * min(wait_spread(wait, step), estimates.history_shift_cap_for(row["load"])))
        return min(max(told, lo), hi)
    return point


def printed_range(row: dict) -> tuple[float, float]:
    """The range as _finish makes it, in open minutes from now."""
    open_now, wait, step = row["basis"]
    _, lo, hi = spread_wait(wait, step)
    after = row["timeline"].next_break_end(open_now)
    if after is not None and open_now + hi > after:
        hi += estimates.BREAK_WIDENING * (open_now + hi - after)
    return lo, hi


def wall(row: dict, minutes: float) -> float:
    return max(0.0, (row["timeline"].wall_seconds(row["basis"][0] + minutes) - row["now_s"]) / 60.0)


def blocks(rows: list[dict], point, with_range: bool) -> dict[str, list[tuple[float, ...]]]:
    """Per family and 30-seed block: gain %, under %, coverage %, coverage across the break %."""
    out: dict[str, list[tuple[float, ...]]] = {}
    for family in FAMILIES:
        by_block: dict[int, list[dict]] = {}
        for row in rows:
            if row["family"] == family:
                by_block.setdefault(row["seed"] // BLOCK, []).append(row)
        for part in by_block.values():
            best = min(statistics.fmean(abs(r["classic"][c] - r["actual"]) for r in part) for c in wait_scenarios.CLASSIC)
            errors = [wall(r, point(r)) - r["actual"] for r in part]
            figures = [100 * (1 - statistics.fmean(map(abs, errors)) / best), 100 * sum(e < -10 for e in errors) / len(errors)]
            if with_range:
                inside = []
                for r in part:
                    lo, hi = printed_range(r)
                    inside.append((math.floor(wall(r, lo) + 1e-6) <= r["actual"] <= math.ceil(wall(r, hi) - 1e-6), r["crosses"]))
                figures += [100 * statistics.fmean(i for i, _ in inside), 100 * statistics.fmean(i for i, c in inside if c)]
            out.setdefault(family, []).append(tuple(figures))
    return out


def report(label: str, figures: dict, spreads: dict) -> None:
    cells, point_margins, range_margins = [], [], []
    for family in FAMILIES:
        means = [statistics.fmean(f[i] for f in figures[family]) for i in range(len(figures[family][0]))]
        sd = spreads[family]
        point_margins += [(means[0] - 30) / sd[0], (10 - means[1]) / sd[1]]
        cell = f"{means[0]:4.1f}/{means[1]:4.1f}"
        if len(means) > 2:
            range_margins += [(5 - abs(means[2] - 80)) / sd[2], (5 - abs(means[3] - 80)) / sd[3]]
            cell += f" {means[2]:4.1f}/{means[3]:4.1f}"
        cells.append(cell)
    tail = f"  point {min(point_margins):+.2f}" + (f"  range {min(range_margins):+.2f}" if range_margins else "")
    print(f"{label:44} " + "  ".join(f"{c:>21}" for c in cells) + tail, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=180)
    parser.add_argument("--dump", help="simulate the tuning days and store the rows here")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="with --dump: override a constant of server/estimates.py (an experiment)")
    parser.add_argument("--score", action="append", default=[], help="score the rows stored here (repeatable)")
    args = parser.parse_args()
    assert args.seeds <= 180, "tuning seeds only"
    if args.dump:
        started = time.perf_counter()
        overrides = [(k, eval(v)) for k, v in (item.split("=", 1) for item in args.set)]  # noqa: S307 (a bench flag)
        jobs = [(name, lo, min(lo + BLOCK, args.seeds), overrides) for name in FAMILIES for lo in range(0, args.seeds, BLOCK)]
        with Pool(2) as pool:
            rows = [r for part in pool.map(family_rows, jobs) for r in part]
        with open(args.dump, "wb") as f:
            pickle.dump(rows, f)
        print(f"{len(rows)} tickets in {time.perf_counter() - started:.0f} s")
    spreads = None
    print(f"{'rows / rule':44} " + "  ".join(f"{n:>21}" for n in FAMILIES) + "  smallest margins")
    print(f"{'':44} " + "  ".join(f"{'gain/under cov/break':>21}" for _ in FAMILIES))
    for path in args.score:
        with open(path, "rb") as f:
            rows = pickle.load(f)
        name = Path(path).stem
        for k in (1.2, 1.25, 1.3):
            figures = blocks(rows, capped_point(k), True)
            if spreads is None:  # the first file's blocks with the sixth round's 1.2 set the standard deviations
                spreads = {fam: [statistics.stdev(f[i] for f in figures[fam]) for i in range(4)] for fam in FAMILIES}
            report(f"{name}: {k} x min(sigma, cap)", figures, spreads)
        for alpha, kappa in ((0.04, 1.0), (0.04, 1.3), (0.06, 1.3), (0.08, 1.3)):
            report(f"{name}: gamma, P(> point + 10) = {alpha}, sd x {kappa}", blocks(rows, gamma_point(alpha, kappa), False), spreads)


if __name__ == "__main__":
    main()
