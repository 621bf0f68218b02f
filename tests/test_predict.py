"""``luot predict`` prints the engine's estimates for a scenario as JSON."""

from __future__ import annotations

import json
import subprocess
import sys


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "luot.cli", "predict", *args], capture_output=True, text=True, timeout=60)


def test_simple_scenario_waits_grow_with_the_queue_and_shrink_with_counters() -> None:
    one = json.loads(run("--waiting", "4", "--counters", "1", "--group", "ho-tich").stdout)
    two = json.loads(run("--waiting", "4", "--counters", "2", "--group", "ho-tich").stdout)
    assert [t["mean_minutes"] for t in one["tickets"]] == [0, 8, 16, 24]  # 8 configured minutes each
    assert [t["mean_minutes"] for t in two["tickets"]] == [0, 0, 8, 8]
    assert [t["ahead"] for t in one["tickets"]] == [0, 1, 2, 3]


def test_queue_file_with_a_busy_counter_and_a_priority_ticket(tmp_path) -> None:
    queue = tmp_path / "queue.json"
    queue.write_text(json.dumps({
        "counters": [{"number": 1, "serving": {"group": "ho-tich", "elapsed_minutes": 3}}],
        "waiting": [{"group": "ho-tich"}, {"group": "ho-tich", "priority": "elderly"}]}))
    result = json.loads(run("--queue", str(queue)).stdout)
    first, second = result["tickets"]
    assert first["priority"] == "elderly" and first["mean_minutes"] == 5.0  # 8 - 3 minutes left
    assert second["mean_minutes"] == 13.0


def test_impossible_scenario_is_explained() -> None:
    answer = run("--waiting", "3", "--counters", "9", "--group", "ho-tich")
    assert answer.returncode == 1 and "serve ho-tich" in answer.stderr


def test_a_scenario_asked_just_after_midnight_keeps_its_counters_open() -> None:
    """At 00:10 in Hanoi the scenario's counters, opened "an hour earlier", must not fall on
    yesterday (the engine would close them and answer with the wrong counters)."""
    from datetime import datetime, timezone

    from luot.commands.predict import predict, scenario_time
    from luot.config import load_config

    config = load_config()
    just_after_midnight = datetime(2026, 11, 23, 17, 10, tzinfo=timezone.utc)  # 00:10 on the 24th in Hanoi
    at = scenario_time(config, just_after_midnight)
    assert at.astimezone(config.zone).date().isoformat() == "2026-11-24"
    result = predict(config, {"counters": [{"number": 1}], "waiting": [{"group": "ho-tich"}] * 3}, at)
    assert result["counters_open"] == [1]
    assert [t["mean_minutes"] for t in result["tickets"]] == [0, 8, 16]


def test_scenario_family_prints_the_benchmark_figures() -> None:
    answer = run("--scenario", "paused-late", "--seeds", "1")
    assert answer.returncode == 0, answer.stderr
    result = json.loads(answer.stdout)
    assert result["scenario"] == "paused-late" and result["tickets"] > 200
    for predictor in ("ours", "les", "hol", "ql", "rolling"):
        assert result[predictor]["mae"] > 0 and 0 <= result[predictor]["under_10"] <= 1
    assert 0 < result["ours"]["coverage"] <= 1
    # past the range's upper end by more than 10 minutes: a part of the tickets the range missed
    assert 0 < result["ours"]["over_range_10"] <= 1 - result["ours"]["coverage"]
    assert result["ours"]["mae"] < result[result["best_classic"]]["mae"]
    assert result["crossing_break"]["tickets"] > 0
    # the strongest simple baseline, raw and recalibrated to break as few promises as ours
    assert result["best_simple"] in ("les", "hol", "ql", "rolling", "naive", "naive_hours") and result["naive_hours"]["mae"] > 0
    assert result["matched"]["mae"] > result["ours"]["mae"] and 0 < result["gain_vs_matched"] < 1


def test_scenario_family_prints_the_figures_with_a_history_of_earlier_days() -> None:
    answer = run("--scenario", "slower", "--seeds", "1", "--history", "3")
    assert answer.returncode == 0, answer.stderr
    result = json.loads(answer.stdout)
    known = result["with_history"]
    assert known["history_days"] == 3 and known["tickets"] == result["tickets"]  # the same day, scored twice
    assert known["ql"] == result["ql"]  # the classic predictors read no history
    # told differently: the afternoon's slower pace is known before it starts
    assert known["ours"]["bias"] > result["ours"]["bias"]
    assert run("--scenario", "slower", "--history", "11").returncode == 1


def test_unknown_scenario_is_refused() -> None:
    answer = run("--scenario", "holiday")
    assert answer.returncode == 1 and "unknown scenario" in answer.stderr


def test_estimates_carry_the_range_and_its_wording() -> None:
    result = json.loads(run("--waiting", "6", "--counters", "1", "--group", "ho-tich").stdout)
    last = result["tickets"][-1]
    lo, hi = last["wait_range_minutes"]
    assert lo <= last["mean_minutes"] == 40 < last["wait_minutes"] <= hi and last["wait_text"].startswith("khoảng ")


def test_a_simulated_day_whose_line_runs_past_midnight_ends_at_midnight() -> None:
    """Heavy-monday seed 198 (on 2030-04-01) still had officers serving at midnight; the engine
    refuses to finish a ticket on the next day, so the simulated day must stop there (it raised
    QueueError before), scoring only the tickets called that day."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from luot.config import load_config
    from server import wait_scenarios

    day = datetime(2030, 4, 1, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
    rows = wait_scenarios.simulate_day(load_config(), wait_scenarios.FAMILIES["heavy-monday"], 198, day)
    assert rows and all(r.called.astimezone(day.tzinfo).date() == day.date() for r in rows)
