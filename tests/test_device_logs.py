"""Device programs (kiosk, display, pad) log at INFO unless told --debug, into a size-capped
rotating file (or the journal under systemd), and Kivy keeps no file log of its own: a kiosk at
DEBUG with Kivy's file log wrote about 50 MB a day that nothing ever removed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT_DIR = Path(__file__).resolve().parents[1]

PROGRAM = """
import logging, sys
from pathlib import Path
from luot.logs import setup_device_logging
data = Path(sys.argv[1])
log_file = setup_device_logging("kiosk", data, debug=sys.argv[2] == "debug")
print(log_file)
import os
os.environ["KIVY_HOME"] = str(data / "kivy")
os.environ["SDL_VIDEODRIVER"] = "offscreen"
from kivy.logger import Logger
Logger.info("Probe: kivy info record")
Logger.debug("Probe: kivy debug record")
log = logging.getLogger("luot.kiosk")
log.info("ticket 1001 printed")
log.debug("debug detail")
for i in range(int(sys.argv[3])):
    log.info("filler %06d %s", i, "x" * 100)
"""


def run_program(data: Path, mode: str, filler: int = 0, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("KIVY_", "KCFG_", "JOURNAL_STREAM"))}
    environment.update(env, KIVY_NO_ARGS="1")
    result = subprocess.run([sys.executable, "-c", PROGRAM, str(data), mode, str(filler)], capture_output=True,
                            text=True, timeout=120, cwd=ROOT_DIR, env=environment)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_info_by_default_debug_only_when_asked_and_no_kivy_file_log(tmp_path):
    quiet = tmp_path / "quiet"
    run_program(quiet, "info")
    text = (quiet / "logs" / "kiosk.log").read_text("utf-8")
    assert "ticket 1001 printed" in text and "kivy info record" in text
    assert "debug detail" not in text and "kivy debug record" not in text and " DEBUG " not in text
    assert not (quiet / "kivy" / "logs").exists() or not any((quiet / "kivy" / "logs").iterdir())

    loud = tmp_path / "loud"
    run_program(loud, "debug")
    text = (loud / "logs" / "kiosk.log").read_text("utf-8")
    assert "debug detail" in text and "kivy debug record" in text


def test_the_log_file_rotates_at_5_mb_and_keeps_five_files(tmp_path):
    run_program(tmp_path, "info", filler=150_000)  # about 21 MB of records
    files = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert files == ["kiosk.log", "kiosk.log.1", "kiosk.log.2", "kiosk.log.3", "kiosk.log.4"]
    assert all((tmp_path / "logs" / f).stat().st_size <= 5 * 1024 * 1024 for f in files)


def test_under_systemd_the_journal_keeps_the_log(tmp_path):
    result = run_program(tmp_path, "info", JOURNAL_STREAM="8:12345")
    assert result.stdout.strip() == "None" and not (tmp_path / "logs").exists()
    assert "ticket 1001 printed" in result.stderr  # stderr is what systemd hands to the journal


@pytest.mark.parametrize("command, bad", [("display", ["--size", "tiny"]), ("kiosk", ["--mqtt", "nope"]),
                                           ("pad", ["--mqtt", "nope"])])
def test_device_commands_log_into_their_data_directory(tmp_path, command, bad):
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    result = subprocess.run([sys.executable, "-m", "luot.cli", command, "--data", str(tmp_path), *bad],
                            capture_output=True, text=True, timeout=60, cwd=ROOT_DIR, env=env)
    assert result.returncode == 1
    assert (tmp_path / "logs" / f"{command}.log").exists()
