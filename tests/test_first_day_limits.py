"""bench/first_day_limits.py tells the estimator what a centre's first week does not know, by
overriding EstimateModel's public ``cycle_minutes`` and ``session_cycles``. Its figures
(docs/estimates.md, fifteenth round) mean something only while those overrides reach the walk:
this checks, on three simulated *slower* days, that the told estimator's afternoon waits are longer,
that the foreseeing one's morning waits past lunch are longer still, and that nothing else moves."""

from __future__ import annotations

import statistics
import sys
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import first_day_limits  # noqa: E402
from luot.config import load_config  # noqa: E402


def _rows(variant: str) -> list[dict]:
    return first_day_limits.rows_of(("slower", variant, 3))


def test_told_afternoon_reaches_the_walk() -> None:
    zone = load_config().zone
    as_is, told, foreseen = (_rows(v) for v in ("as it is", "afternoon told", "afternoon foreseen"))
    assert [r["now_s"] for r in as_is] == [r["now_s"] for r in told] == [r["now_s"] for r in foreseen]

    def hour(row: dict) -> float:
        local = datetime.fromtimestamp(row["now_s"], zone)
        return local.hour + local.minute / 60

    # in the afternoon's first half hour the estimator as it is has seen few of its slower services;
    # told that they take 1.4 times the file's, its waits are longer by about as much
    afternoon = [i for i, r in enumerate(as_is) if 13 <= hour(r) < 13.5 and r["wait"] > 5]
    assert len(afternoon) > 15
    ratio = statistics.median(told[i]["wait"] / as_is[i]["wait"] for i in afternoon)
    assert 1.1 < ratio < 1.6, ratio
    assert all(told[i]["wait"] >= as_is[i]["wait"] - 1e-9 for i in afternoon)
    # a morning ticket whose walk runs past lunch is told it only by the foreseeing walk
    past_lunch = [i for i, r in enumerate(told) if hour(r) < 12 and r["to_break"] is not None and r["wait"] > r["to_break"] + 30]
    assert len(past_lunch) > 10
    assert all(foreseen[i]["wait"] > told[i]["wait"] for i in past_lunch)
    # before lunch, a wait that ends before it is the same for all three
    before = [i for i, r in enumerate(as_is) if hour(r) < 11 and r["to_break"] is not None and r["wait"] < r["to_break"] - 30]
    assert before and all(as_is[i]["wait"] == told[i]["wait"] == foreseen[i]["wait"] for i in before)
