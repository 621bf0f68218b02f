"""Issue 17's fourteenth round: the point's shift and the range's history knobs, refit to the walk
whose times weigh today's services and the centre file by their precision (docs/estimates.md,
"fourteenth round"). Tuning seeds 0-179 only, never a reserved set of bench_queueing.py.

Criterion (the sixth and eighth rounds', fixed before choosing): margins in standard deviations of
the six 30-seed blocks, and the rule with the largest smallest margin is kept.

* **The point without history** (``POINT_SHIFT``: ``w + k x min(sigma, cap)``, the cap as in
  force): margins ``(gain - 30) / sd`` and ``(10 - under) / sd`` over the targets a new centre's
  point can meet on these days, every family's gain and the under-estimates of ordinary,
  paused-late and surge (heavy-monday's and *slower*'s stay above 10 % for every k that keeps
  the gains).
* **The range with a history** (``RANGE_PACE``, ``HISTORY_RANGE_OVERLOAD``; the point does not
  move): margins ``(5 - |coverage - 80|) / sd``, overall and across the break, every family, with
  one and with five earlier days.

Each day is simulated once per history setting (the simulator ignores what citizens are told) and
every rule scored from what the estimator recorded per ticket (``Estimate.basis``, ``load``, the
range's pace), as bench/fit_round10.py does.

    .venv/bin/python bench/fit_round14.py [--seeds 180]   # about 5 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from multiprocessing import Pool
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fit_round10 import answer_scores, family_rows, in_wall_minutes, told  # noqa: E402
from server import estimates, wait_scenarios  # noqa: E402
from server.estimates import spread_wait, today_shift_cap  # noqa: E402

BLOCK = 30
SHIFTS = (1.0, 1.05, 1.1, 1.15, 1.2, 1.25)
PACES = (1.0, 0.6, 0.5, 0.4, 0.3)
OVERLOADS = (1.5, 0.5, 0.25, 0.0)
MEETABLE_UNDER = ("ordinary", "paused-late", "surge")


def blocks(rows: list[dict]) -> list[list[int]]:
    """Row indices of each 30-seed block."""
    return [[i for i, r in enumerate(rows) if b * BLOCK <= r["seed"] < (b + 1) * BLOCK]
            for b in range(1 + max(r["seed"] for r in rows) // BLOCK)]


def point_margins(rows: list[dict], k: float) -> tuple[float, float, float, float]:
    """Gain and under (per cent) of the no-history point with shift ``k``, and their margins in sd."""
    answers = [told(r, today_shift_cap(r["load"]), k, 0.0) for r in rows]
    gain, under, _, _ = answer_scores(rows, answers)
    per_block = [answer_scores([rows[i] for i in idx], [answers[i] for i in idx])[:2] for idx in blocks(rows)]
    return (gain, under, (gain - 30) / statistics.stdev(g for g, _ in per_block),
            (10 - under) / statistics.stdev(u for _, u in per_block))


def range_answers(rows: list[dict], pace: float, overload: float) -> list[tuple[float, int, int]]:
    """The printed range with a history for ``RANGE_PACE = pace`` and ``HISTORY_RANGE_OVERLOAD =
    overload`` (the rows' pace was recorded with RANGE_PACE in force), as answers whose point is not
    scored here."""
    answers = []
    for r in rows:
        ratio = 1.0 + (r["pace"] - 1.0) / estimates.RANGE_PACE if estimates.RANGE_PACE else 1.0
        point, lo, hi = spread_wait(r["wait"], r["step"], to_break=r["to_break"], scale=1.0 + pace * (ratio - 1.0),
                                    widen=1.0 + overload * max(0.0, r["load"] - 1.0))
        answers.append(in_wall_minutes(r, point, lo, hi))
    return answers


def range_margins(rows: list[dict], pace: float, overload: float) -> tuple[tuple[float, ...], list[float]]:
    """Coverage overall and across the break, and their margins inside 80 +- 5 % in sd."""
    answers = range_answers(rows, pace, overload)
    overall = answer_scores(rows, answers)[2:]
    per_block = [answer_scores([rows[i] for i in idx], [answers[i] for i in idx])[2:] for idx in blocks(rows)]
    return overall, [(5 - abs(overall[j] - 80)) / statistics.stdev(c[j] for c in per_block) for j in (0, 1)]


def simulated(seeds: int) -> dict[int, dict[str, list[dict]]]:
    """Every family's rows on tuning seeds 0..seeds-1, without history and with one and five days."""
    names = list(wait_scenarios.FAMILIES)
    jobs = [(name, seeds, days) for days in (0, 1, 5) for name in names]
    with Pool(2) as pool:
        rows = pool.map(family_rows, jobs)
    result: dict[int, dict[str, list[dict]]] = {0: {}, 1: {}, 5: {}}
    for (name, _, days), family in zip(jobs, rows):
        result[days][name] = family
    return result


def table(label: str, cells: list[str], smallest: float) -> None:
    print(f"{label:24} " + "  ".join(cells) + f"   smallest {smallest:+.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=180, help="tuning seeds 0..N-1 (at most 180)")
    args = parser.parse_args()
    if not 2 * BLOCK <= args.seeds <= 180:
        parser.error("--seeds must be between 60 and 180: tuning seeds only, at least two blocks")
    started = time.perf_counter()
    rows = simulated(args.seeds)
    print(f"simulated tuning seeds 0..{args.seeds - 1} without history and with 1 and 5 days in "
          f"{time.perf_counter() - started:.0f} s")
    print("\nThe point without history, w + k min(sigma, cap): gain / under (%) and the margins in sd "
          "(gains; under of " + ", ".join(MEETABLE_UNDER) + ")")
    for k in SHIFTS:
        cells, margins = [], []
        for name, family in rows[0].items():
            gain, under, gain_margin, under_margin = point_margins(family, k)
            cells.append(f"{name} {gain:4.1f}/{under:5.2f}")
            margins += [gain_margin] + ([under_margin] if name in MEETABLE_UNDER else [])
        table(f"k {k}{' (in force)' if k == estimates.POINT_SHIFT else ''}", cells, min(margins))
    print("\nThe range with a history: coverage overall / across the break (%), one day | five days, "
          "and the smallest margin in sd")
    in_force = (estimates.RANGE_PACE, estimates.HISTORY_RANGE_OVERLOAD)
    for pace, overload in ((p, w) for w in OVERLOADS for p in PACES):
        cells, margins = [], []
        for days in (1, 5):
            for family in rows[days].values():
                (overall, crossing), pair = range_margins(family, pace, overload)
                cells.append(f"{overall:4.1f}/{crossing:4.1f}")
                margins += pair
        table(f"pace {pace} overload {overload}{' *' if (pace, overload) == in_force else ''}", cells, min(margins))


if __name__ == "__main__":
    main()
