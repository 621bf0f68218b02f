"""What every Luot systemd unit promises, for the shipped units (tests/test_service_unit.py) and the
ones ``luot install`` generates (tests/test_install.py)."""

from __future__ import annotations

import configparser
import re
import shlex
import subprocess
from pathlib import Path

from luot.cli import build_parser

ROLES = ("server", "kiosk", "display", "pad")


def service_section(unit: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read(unit, encoding="utf-8")
    return parser["Service"]


def exec_args(service: configparser.SectionProxy, env: dict[str, str]) -> list[str]:
    """ExecStart as the program receives it, with ${VAR} expanded as systemd does."""
    line = re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], service["ExecStart"].replace("\\\n", " "))
    return shlex.split(line)


def check_unit(unit: Path, role: str, env: dict[str, str]) -> None:
    """What every Luot unit promises; shared with tests/test_install.py for the generated units."""
    service = service_section(unit)
    assert service["Restart"] == "always"
    assert int(service["LimitNOFILE"]) >= 65536
    assert service["User"] == "luot"
    assert service["StandardOutput"] == service["StandardError"] == "journal"
    command = exec_args(service, env)
    assert Path(command[0]).name == "luot" and command[1] == role
    args = build_parser().parse_args(command[1:])  # exits (fails the test) on an unknown option
    assert args.config == "/etc/luot/centre.toml" and args.data == "/var/lib/luot"
    assert "--debug" not in command and "DEBUG" not in command


def systemd_complaints(unit: Path) -> str:
    """What `systemd-analyze verify` says about ``unit`` ('' when it accepts it)."""
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if unit.name in line or "luot" in line]
    return "" if result.returncode == 0 and not complaints else result.stdout + result.stderr
