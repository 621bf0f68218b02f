"""The systemd unit shipped for a centre server (assets/luot-server.service) is one systemd accepts
and starts the real ``luot server`` with options it knows: a broken unit would be found only at a
centre, after a power cut, when the server does not come back."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from luot.cli import build_parser

UNIT = Path(__file__).resolve().parents[1] / "assets" / "luot-server.service"


def _service_section() -> configparser.SectionProxy:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # systemd keys are case-sensitive
    unit.read(UNIT, encoding="utf-8")
    return unit["Service"]


def test_unit_restarts_the_server_and_puts_it_ahead_of_other_work() -> None:
    service = _service_section()
    assert service["Restart"] == "always"
    assert int(service["Nice"]) < 0
    command = shlex.split(service["ExecStart"].replace("\\\n", " "))
    assert Path(command[0]).name == "luot" and command[1] == "server"
    args = build_parser().parse_args(command[1:])  # exits (fails the test) on an unknown option
    assert args.config.endswith("centre.toml") and args.data


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    # The unit names the paths of an installed centre; point it at this checkout's luot to verify.
    luot = Path(sys.executable).with_name("luot")
    text = UNIT.read_text(encoding="utf-8").replace("/opt/luot/.venv/bin/luot", str(luot))
    (tmp_path / UNIT.name).write_text(text, encoding="utf-8")
    result = subprocess.run(["systemd-analyze", "verify", str(tmp_path / UNIT.name)],
                            capture_output=True, text=True, timeout=60)
    complaints = [line for line in (result.stdout + result.stderr).splitlines()
                  if UNIT.name in line or "luot" in line]
    assert result.returncode == 0 and not complaints, result.stdout + result.stderr
