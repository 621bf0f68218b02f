"""``luot display`` refuses a bad set-up with a clear message before opening any window."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("args", "message"), [
    (["--device", "kiosk-1", "--secret", "x"], "has role 'kiosk', not display"),
    (["--device", "display-nowhere", "--secret", "x"], "is not in the centre file"),
    (["--counter", "42", "--secret", "x"], "there is no such counter"),
    (["--size", "big", "--secret", "x"], "expected WIDTHxHEIGHT"),
    (["--mqtt", "broker", "--secret", "x"], "expected HOST:PORT"),
    (["--data", "{missing}"], "cannot read the device secrets"),
])
def test_bad_arguments_are_explained(args: list[str], message: str, tmp_path) -> None:
    # Every run gets a data directory of its own under tmp_path (the display writes its log there),
    # never a path outside the test's directory that a later test might find.
    args = [a.replace("{missing}", str(tmp_path / "missing")) for a in args]
    if "--data" not in args:
        args += ["--data", str(tmp_path / "data")]
    done = subprocess.run([sys.executable, "-m", "luot.cli", "display", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 1
    assert message in done.stderr and "Traceback" not in done.stderr
