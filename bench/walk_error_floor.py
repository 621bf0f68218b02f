"""Where the walk mean's error comes from: against a floor, with and without priority tickets.

Issue 17's twelfth round found that no point of the walk meets both targets against the strongest
simple predictor; only a better walk mean would. This script says how far the walk's mean is from
a rough floor, and how much of the gap priority tickets make. The floor is the MAE the walk's mean
would have were it exact, with only the service times random: each wait a Gamma sum of ``w / s``
services of ``s`` minutes (``w`` the walk's mean, ``s`` the minutes one place in the line takes),
the spread an exponential service gives. It leaves out priority arrivals, no-shows and the break's
jump, so it is a floor for the service times alone, not for every estimator. Each family is run
on the sample centre as it is, and again with its priority classes removed (no ticket jumps the
line), on tuning seeds only and without history.

    .venv/bin/python bench/walk_error_floor.py [--seeds 20]   # about a minute
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_queueing import FIRST_DAY  # noqa: E402
from fit_round10 import day_rows, told  # noqa: E402
from luot.config import CentreConfig, load_config  # noqa: E402
from server import wait_scenarios  # noqa: E402


def without_priority(config: CentreConfig) -> CentreConfig:
    """The same centre with no priority classes: every ticket waits its turn."""
    data = config.model_dump()
    data["priority_classes"] = []
    return CentreConfig.model_validate(data)


def walk_and_floor(config: CentreConfig, family: str, seeds: int, rng: np.random.Generator) -> tuple[float, float]:
    """MAE (minutes) of the walk's mean on ``family``'s tuning days, and the floor's."""
    scenario = wait_scenarios.FAMILIES[family]
    rows = [row for seed, day in wait_scenarios.family_days(scenario, range(seeds), FIRST_DAY)
            for row in day_rows(config, scenario, seed, day, None)]
    actual = np.array([r["actual"] for r in rows])
    mean = np.array([told(r, 1.0, 0.0, 0.0)[0] for r in rows])  # k = 0: the walk's mean, in wall minutes
    wait = np.array([r["wait"] for r in rows])
    step = np.maximum(np.array([r["step"] for r in rows]), 1e-6)
    drawn = rng.gamma(np.maximum(wait / step, 1e-3)[:, None], step[:, None], size=(len(rows), 50))
    return float(np.mean(np.abs(mean - actual))), float(np.mean(np.abs(wait[:, None] - drawn)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=20, help="tuning seeds 0..N-1 of every family")
    args = parser.parse_args()
    sample = load_config()
    print(f"MAE of the walk's mean / the floor (minutes), tuning seeds 0..{args.seeds - 1}, no history")
    print(f"{'family':13} {'as the centre is':>20} {'no priority tickets':>20}")
    for family in wait_scenarios.FAMILIES:
        cells = []
        for config in (sample, without_priority(sample)):
            walk, floor = walk_and_floor(config, family, args.seeds, np.random.default_rng(1))
            cells.append(f"{walk:6.2f} / {floor:6.2f}")
        print(f"{family:13} {cells[0]:>20} {cells[1]:>20}")


if __name__ == "__main__":
    main()
