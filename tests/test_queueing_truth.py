"""Small versions of bench/bench_queueing.py, so the benchmark cannot rot unseen and the engine's
queueing stays true.

The full benchmark prints its figures (docs/performance.md); these runs are short, seeded and so
deterministic: they check the engine's mean wait against the Erlang-C formula with a looser margin
than the benchmark's 5 %, and that the wait estimate still beats the best classic predictor by 30 %
(and the strongest simple one recalibrated to break as few promises) on two simulated days of two
scenario families. The benchmark once reached into an engine attribute that a later change
renamed, and nothing noticed until it was run by hand.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import bench_queueing  # noqa: E402


@pytest.mark.parametrize(("counters", "load"), [(1, 0.7), (3, 0.85), (6, 0.7)])
def test_engine_mean_wait_matches_erlang_c(counters: int, load: float) -> None:
    theory = bench_queueing.erlang_c_wait(counters, load, 1.0)
    measured, customers = bench_queueing.mmc_mean_wait(counters, load, 20_000, seed=7 * counters)
    assert customers >= 10_000
    assert measured == pytest.approx(theory, rel=0.10), f"c={counters}, rho={load}: engine {measured:.3f}, Erlang C {theory:.3f}"


@pytest.mark.parametrize("family", ["ordinary", "paused-late"])
def test_estimate_beats_the_best_classic_predictor_and_its_range_holds(family: str) -> None:
    """On simulated days with the lunch break (tuning seeds), the estimate's mean absolute error is
    at least 30 % below the best of LES, HOL, QL and the 30-minute rolling average, also for waits
    that cross the break (which the estimate used to under-estimate by the hour of lunch and more),
    and the printed range holds the real wait for most tickets. Against the strongest of the six
    simple predictors (naive in open hours included) it is ahead in raw error, and 30 % ahead of
    it recalibrated to break as few promises as ours (issue 17's twelfth round: the raw 30 % is
    not met against it, since our point is shifted to keep promises; tests/test_wait_baselines.py,
    docs/estimates.md)."""
    result = bench_queueing.part2([family], [0, 1])[family]
    assert result["tickets"] > 400
    best = result[result["best_classic"]]["mae"]
    assert result["gain_vs_best"] >= 0.30, f"MAE {result['ours']['mae']:.2f} vs best classic {best:.2f} min"
    assert result["gain_vs_simple"] > 0, (result["best_simple"], result["ours"])
    assert result["gain_vs_matched"] >= 0.30, result["matched"]
    crossing = result["crossing_break"]
    assert crossing["tickets"] > 10 and crossing["gain_vs_best"] >= 0.30, crossing
    assert 0.70 <= result["ours"]["coverage"] <= 0.95, result["ours"]
