"""Issue 17's fifteenth round: what a centre's first day cannot know. Without a history, *slower*
(officers 40 % slower after lunch, server/wait_scenarios.py) leaves 13 % of its tickets told a
wait more than 10 minutes short. This scores its days again with an estimator told what no first
day knows, to see how much of that share the missing knowledge explains. Tuning seeds only.

* **as it is**: the estimator in force (EstimateModel);
* **afternoon told**: from 13:00 on, every group's cycle is its file time times 1.4 (the slowdown
  itself), for the tickets issued after it;
* **afternoon foreseen**: also the morning's walk runs its afternoon part at those cycles, so a
  morning ticket whose turn falls after lunch knows it too.

The told cycles leave out the minute an officer takes to call and start (learned in the cycles as
they are), so they are a little short rather than flattering. Each variant is scored at the
point's shift in force (``POINT_SHIFT``) and above it, with ordinary's and heavy-monday's figures
at the same shift: without history one rule serves every family, so a larger shift is paid for on
every day.

    .venv/bin/python bench/first_day_limits.py [--seeds 180]   # about two minutes on 2 cores
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, time
from multiprocessing import Pool
from pathlib import Path
from typing import Any
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fit_round10 import answer_scores, family_rows, told  # noqa: E402
from luot.config import CentreConfig  # noqa: E402
from server import engine as engine_module  # noqa: E402
from server import estimates, wait_scenarios  # noqa: E402
from server.estimates import EstimateModel, Timeline, today_shift_cap  # noqa: E402

SLOWER = wait_scenarios.FAMILIES["slower"]
SHIFTS = (estimates.POINT_SHIFT, 1.2, 1.3, 1.4, 1.6, 1.8)
FAMILIES = tuple(wait_scenarios.FAMILIES)
KNEES = ((estimates.POINT_SHIFT, estimates.TODAY_OVERLOAD_KNEE, estimates.TODAY_OVERLOAD_SLOPE),
         (1.1, 1.2, 400.0), (1.1, 1.15, 400.0), (1.2, 1.2, 800.0), (1.2, 1.15, 400.0), (1.2, 1.1, 200.0))


class AfternoonTold(EstimateModel):
    """The estimator, told from the slowdown's hour on what the afternoon's services take (and,
    with ``foreseen``, the morning's walk told it for its part after lunch)."""

    foreseen = False

    def __init__(self, config: CentreConfig) -> None:
        super().__init__(config)
        self.latest: datetime | None = None  # the newest event's instant: the model has no clock
        self.after, self.factor = SLOWER.slower_after  # type: ignore[misc]

    def observe(self, event: Any) -> None:
        self.latest = event.at if self.latest is None else max(self.latest, event.at)
        super().observe(event)

    def slow_cycle(self, group: str) -> float:
        """The afternoon's true mean service of ``group`` plus the usual pause before the next call."""
        return self.configured[group] * self.factor + self.gap_minutes()

    def afternoon(self) -> bool:
        """Whether the newest event came at or after the slowdown's hour."""
        return self.latest is not None and self.latest.astimezone(self.config.zone).time() >= self.after

    def cycle_minutes(self, group: str, timeline: Timeline | None = None, session: int | None = None) -> float:
        if self.afternoon():
            return self.slow_cycle(group)
        return super().cycle_minutes(group, timeline, session)

    def session_cycles(self, timeline: Timeline) -> tuple[tuple[float, ...], dict[str, tuple[float, ...]]]:
        """One cycle a group for the whole walk as in force, or, ``foreseen``, the morning's and
        the afternoon's (the sample centre's day has one break, and the slowdown starts with it)."""
        if self.foreseen and not self.afternoon() and len(timeline.sessions) == 2:
            # the morning's cycle as in force (super() with its arguments: a comprehension has no
            # __class__ cell for the bare form before Python 3.12)
            return (tuple(timeline.session_starts[1:]),
                    {g: (super(AfternoonTold, self).cycle_minutes(g), self.slow_cycle(g)) for g in self.configured})
        return ((), {g: (self.cycle_minutes(g),) for g in self.configured})


class AfternoonForeseen(AfternoonTold):
    foreseen = True


VARIANTS = {"as it is": EstimateModel, "afternoon told": AfternoonTold, "afternoon foreseen": AfternoonForeseen}


def rows_of(job: tuple[str, str, int]) -> list[dict]:
    """The called tickets of ``family`` on seeds 0..seeds-1 with the estimator of ``variant``."""
    family, variant, seeds = job
    with mock.patch.object(engine_module, "EstimateModel", VARIANTS[variant]):
        return family_rows((family, seeds, 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=180, help="tuning seeds 0..N-1 (at most 180)")
    args = parser.parse_args()
    if not 1 <= args.seeds <= 180:
        parser.error("--seeds must be between 1 and 180: the reserved sets start at 5000")
    assert SLOWER.slower_after == (time(13, 0), 1.4), "the variants' docstrings describe this slowdown"
    jobs = [("slower", variant, args.seeds) for variant in VARIANTS] + [(family, "as it is", args.seeds)
                                                                        for family in FAMILIES if family != "slower"]
    with Pool(2) as pool:
        rows = dict(zip(((family, variant) for family, variant, _ in jobs), pool.map(rows_of, jobs)))
    print(f"Without history, tuning seeds 0..{args.seeds - 1}: gain over the best classic predictor / share "
          "under-estimated by more than 10 minutes (%), the point w + k min(sigma, cap)")
    shown = [key for key in rows if key[0] in ("slower", "ordinary", "heavy-monday")]
    print(f"{'k':>5}  " + "  ".join(f"{f'{family} {variant}':>28}" for family, variant in shown))
    for k in SHIFTS:
        cells = []
        for key in shown:
            gain, under = scores(rows[key], k, estimates.TODAY_OVERLOAD_KNEE, estimates.TODAY_OVERLOAD_SLOPE)
            cells.append(f"{gain:22.1f} / {under:5.2f}")
        print(f"{k:5.2f}{' *' if k == estimates.POINT_SHIFT else '  '}" + "  ".join(cells), flush=True)
    print("  * in force; targets: gain >= 30 %, under < 10 %")
    print("\nThe cap's load knee (the shift's cap grows past today's load KNEE by SLOPE minutes a unit), the "
          "estimator as it is: heavy-monday's under-estimates against the lowest gain of the five families "
          "and the most under-estimated of ordinary, paused-late and surge")
    for k, knee, slope in KNEES:
        figures = {family: scores(rows[(family, "as it is")], k, knee, slope) for family in FAMILIES}
        in_force = (k, knee, slope) == (estimates.POINT_SHIFT, estimates.TODAY_OVERLOAD_KNEE, estimates.TODAY_OVERLOAD_SLOPE)
        print(f"  k {k:4.2f} knee {knee:4.2f} slope {slope:4.0f}{' *' if in_force else '  '}  heavy-monday under "
              f"{figures['heavy-monday'][1]:5.2f}  lowest gain {min(g for g, _ in figures.values()):4.1f} "
              f"({min(figures, key=lambda f: figures[f][0])})  most under of the rest "
              f"{max(figures[f][1] for f in ('ordinary', 'paused-late', 'surge')):5.2f}", flush=True)


def scores(rows: list[dict], k: float, knee: float, slope: float) -> tuple[float, float]:
    """Gain and under > 10 (per cent) of the point w + k min(sigma, cap), the cap growing past
    today's load ``knee`` by ``slope`` minutes a unit of load (TODAY_OVERLOAD_KNEE, _SLOPE)."""
    gain, under, _, _ = answer_scores(rows, [told(r, today_shift_cap(r["load"], knee, slope), k, 0.0) for r in rows])
    return gain, under


if __name__ == "__main__":
    main()
