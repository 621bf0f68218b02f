"""`luot demo` runs a whole centre headless and reports what a manager would look at."""

from __future__ import annotations

import json
import subprocess
import sys


def test_demo_runs_a_simulated_morning_and_summarises_it(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "luot.cli", "demo", "--speed", "1500", "--minutes", "120", "--headless", "--json",
         "--port", "0", "--mqtt-port", "0", "--data", str(tmp_path / "demo")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["issued"] > 20 and summary["served"] > 10
    assert summary["issued"] >= summary["served"] + summary["waiting_total"]
    assert summary["counters_open"] == 6
    assert summary["mean_wait_minutes"] is not None and summary["mean_wait_minutes"] >= 0
    assert (tmp_path / "demo" / "luot.sqlite3").exists()


# --------------------------------------------------------------------------- days, nights and what-if
import sqlite3  # noqa: E402
from datetime import datetime, time  # noqa: E402
from zoneinfo import ZoneInfo  # noqa: E402

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
FRIDAY = "2026-11-27"  # Friday, Saturday (mornings only), Sunday closed, Monday


def luot(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "luot.cli", *args], capture_output=True, text=True, timeout=timeout)


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_three_simulated_days_each_serve_people_and_close_like_a_centre(tmp_path):
    result = luot("demo", "--days", "3", "--start", FRIDAY, "--json", "--data", str(tmp_path / "demo"))
    assert result.returncode == 0, result.stderr[-2000:]
    days = json_lines(result.stdout)
    assert [(d["day"], d["weekday"]) for d in days] == [("2026-11-27", "fri"), ("2026-11-28", "sat"), ("2026-11-30", "mon")]
    for day in days:
        assert day["served"] > 0.8 * day["issued"] > 50, day  # every day, not just the first, serves people
        # nobody stays "waiting" through the night: each ticket ends served, absent or expired by the manager's close
        assert day["issued"] == day["served"] + day["no_shows"] + day["expired_at_closing"], day
        assert 0 <= day["mean_wait_minutes"] <= day["p90_wait_minutes"] <= day["longest_wait_minutes"]
        assert day["satisfaction"]["ratings"] > 0 and 1 <= day["satisfaction"]["mean"] <= 5
    assert days[1]["issued"] < days[0]["issued"]  # Saturday is a morning only

    with sqlite3.connect(tmp_path / "demo" / "luot.sqlite3") as db:
        rows = db.execute("SELECT type, at, day, data FROM events ORDER BY seq").fetchall()
    sessions = {"fri": [(time(7, 30), time(12)), (time(13), time(16, 30))], "mon": [(time(7, 30), time(12)), (time(13), time(16, 30))],
                "sat": [(time(7, 30), time(11, 30))]}
    issued_at = [datetime.fromisoformat(at).astimezone(HANOI) for type_, at, _, _ in rows if type_ == "ticket.issued"]
    assert len(issued_at) == sum(d["issued"] for d in days)
    for moment in issued_at:  # no arrivals while the centre is closed
        weekday = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[moment.weekday()]
        assert any(start <= moment.time() < end for start, end in sessions[weekday]), moment
    closed = [(day, json.loads(data)["reason"]) for type_, _, day, data in rows if type_ == "day.closed"]
    assert closed == [(d["day"], "manager") for d in days]  # the manager closes each day; no day left open
    lunch = [(day, json.loads(data)["counter"]) for type_, _, day, data in rows
             if type_ == "counter.paused" and json.loads(data)["reason"] == "lunch"]
    assert sorted(c for d, c in lunch if d == FRIDAY) == [1, 2, 3, 4, 5, 6]  # every officer pauses for lunch
    assert not [d for d, _ in lunch if d == "2026-11-28"]  # no lunch on a morning-only day
    opened = [day for type_, _, day, _ in rows if type_ == "counter.opened"]
    assert {day: opened.count(day) for day in set(opened)} == {d["day"]: 6 for d in days}  # officers come back each day


def test_same_seed_gives_the_same_days_and_another_seed_other_days():
    first = luot("demo", "--days", "1", "--start", FRIDAY, "--json")
    again = luot("demo", "--days", "1", "--start", FRIDAY, "--json")
    other = luot("demo", "--days", "1", "--start", FRIDAY, "--json", "--seed", "8")
    assert first.returncode == again.returncode == other.returncode == 0, first.stderr + other.stderr
    assert json_lines(first.stdout) == json_lines(again.stdout)
    assert json_lines(first.stdout) != json_lines(other.stdout)


def test_live_demo_keeps_serving_after_the_first_night(tmp_path):
    """The issue's failure: left running, the demo stopped serving after its first local midnight."""
    result = luot("demo", "--days", "2", "--live", "--start", FRIDAY, "--speed", "4000", "--headless", "--json",
                  "--no-mqtt", "--port", "0", "--data", str(tmp_path / "demo"), timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    days = json_lines(result.stdout)
    assert [d["day"] for d in days] == ["2026-11-27", "2026-11-28"]
    for day in days:
        assert day["served"] > day["issued"] / 2 > 30, day
        assert day["issued"] == day["served"] + day["no_shows"] + day["expired_at_closing"], day


def test_what_if_one_more_counter_shortens_only_that_groups_waits():
    result = luot("demo", "--days", "2", "--start", FRIDAY, "--what-if", "add-counter:dat-dai", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["changes"] == ["one more counter for dat-dai"] and report["notes"] == ["counter 7 added for dat-dai"]
    before, after = report["baseline"]["period"]["groups"], report["what_if"]["period"]["groups"]
    assert after["dat-dai"]["mean_wait_minutes"] < before["dat-dai"]["mean_wait_minutes"] / 2
    assert report["difference"]["groups"]["dat-dai"]["mean_wait_minutes"] < 0
    for code in before:  # the same citizens came in both runs (common random numbers)
        assert after[code]["issued"] == before[code]["issued"]
        if code != "dat-dai":  # counters of the other groups did not change: neither did their waits
            assert after[code]["mean_wait_minutes"] == before[code]["mean_wait_minutes"], code

    table = luot("demo", "--days", "2", "--start", FRIDAY, "--what-if", "lunch:+45")
    assert table.returncode == 0, table.stderr[-2000:]
    assert "lunch 45 minutes longer" in table.stdout
    assert "all days" in table.stdout and "→" in table.stdout


def test_what_if_longer_lunch_makes_waits_longer_and_a_bad_change_is_refused():
    result = luot("demo", "--days", "2", "--start", FRIDAY, "--what-if", "lunch:+60", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["difference"]["period"]["mean_wait_minutes"] > 0
    wrong = luot("demo", "--what-if", "add-counter:nope")
    assert wrong.returncode == 2 and "'nope' is not a group" in wrong.stderr
    garbled = luot("demo", "--what-if", "more-staff")
    assert garbled.returncode == 2 and "add-counter:GROUP" in garbled.stderr
