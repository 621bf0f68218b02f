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
