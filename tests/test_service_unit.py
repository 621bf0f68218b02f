"""The systemd units shipped for a centre (assets/luot-*.service) are ones systemd accepts, restart
the program forever with room for many sockets, log to the journal at INFO, and start the real
``luot`` with options it knows: a broken unit would be found only at a centre, after a power cut,
when the server or a kiosk does not come back."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.helpers.units import ROLES, check_unit, service_section, systemd_complaints

ASSETS = Path(__file__).resolve().parents[1] / "assets"
DEVICE_ENV = {"LUOT_DEVICE": "kiosk-1", "LUOT_SERVER": "http://192.168.1.10:8080", "LUOT_MQTT": "192.168.1.10:18830"}


@pytest.mark.parametrize("role", ROLES)
def test_unit_restarts_the_program_and_logs_to_the_journal(role: str) -> None:
    check_unit(ASSETS / f"luot-{role}.service", role, DEVICE_ENV)


def test_server_unit_puts_the_server_ahead_of_other_work() -> None:
    assert int(service_section(ASSETS / "luot-server.service")["Nice"]) < 0


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
@pytest.mark.parametrize("role", ROLES)
def test_systemd_accepts_the_unit(tmp_path: Path, role: str) -> None:
    # The unit names the paths of an installed centre; point it at this checkout's luot to verify.
    unit = ASSETS / f"luot-{role}.service"
    luot = Path(sys.executable).with_name("luot")
    text = unit.read_text(encoding="utf-8").replace("/opt/luot/.venv/bin/luot", str(luot))
    (tmp_path / unit.name).write_text(text, encoding="utf-8")
    assert systemd_complaints(tmp_path / unit.name) == ""
