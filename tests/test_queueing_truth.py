"""Small versions of bench/bench_queueing.py, so the benchmark cannot rot unseen and the engine's
queueing stays true.

The full benchmark prints its figures (docs/performance.md); these runs are short, seeded and so
deterministic: they check the engine's mean wait against the Erlang-C formula with a looser margin
than the benchmark's 5 %, and that the expected-wait predictor still beats the baseline by 30 % on
five simulated days. The benchmark once reached into an engine attribute that a later change
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


def test_predictor_beats_the_baseline_by_thirty_percent() -> None:
    result = bench_queueing.part2(days=5, tickets_per_day=300)
    assert result["tickets"] > 1000
    assert result["improvement"] >= 0.30, f"MAE {result['mae']:.2f} vs baseline {result['mae_baseline']:.2f} min"
