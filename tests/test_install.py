"""``luot install`` sets up a server box or a device box; here into a scratch root (``--root``),
where it writes every file under that root and prints the system commands instead of running
them. Every generated unit is checked by the real ``systemd-analyze verify``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from luot.config import DEFAULT_CONFIG, parse_config
from luot.paths import data_dir, database_file
from tests.helpers.units import ROLES, check_unit, systemd_complaints

ROOT_DIR = Path(__file__).resolve().parents[1]


def luot(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "luot.cli", *args], capture_output=True, text=True, timeout=60,
                          cwd=ROOT_DIR, env={**os.environ, **(env or {})})


def install(root: Path, role: str, *extra: str) -> dict:
    result = luot("install", "--role", role, "--root", str(root), *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def read_env(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#"))


@pytest.mark.parametrize("role", ROLES)
def test_install_into_a_scratch_root_writes_a_unit_systemd_accepts(tmp_path: Path, role: str) -> None:
    root = tmp_path / "root"
    report = install(root, role)
    assert report["ran"] is False and all(f.startswith(str(root)) for f in report["files"])
    # Nothing outside the root was touched; the commands that would change the system are listed.
    assert report["commands"][0].startswith("useradd --system") and report["commands"][0].endswith(" luot")
    assert f"systemctl enable --now luot-{role}.service" in report["commands"]
    unit = root / "etc/systemd/system" / f"luot-{role}.service"
    assert (root / "var/lib/luot").is_dir() and oct((root / "var/lib/luot").stat().st_mode & 0o777) == "0o750"

    # The installed centre file is valid, and every command on the box finds the same database.
    config = parse_config(tomllib.loads((root / "etc/luot/centre.toml").read_text("utf-8")), "centre.toml")
    assert database_file(data_dir(None, config), config) == Path("/var/lib/luot/luot.sqlite3")
    env = {}
    if role != "server":
        env = read_env(root / "etc/luot/device.env")
        assert config.device(env["LUOT_DEVICE"]).role == role
        assert env["LUOT_SERVER"] == config.centre.public_url
        assert env["LUOT_MQTT"] == f"192.168.1.10:{config.mqtt.port}"
    check_unit(unit, role, env)
    if shutil.which("systemd-analyze"):
        assert systemd_complaints(unit) == ""
    assert str(Path(sys.executable).with_name("luot")) in unit.read_text()


def test_a_second_install_keeps_the_centre_file_the_technician_edited(tmp_path: Path) -> None:
    install(tmp_path, "server")
    centre = tmp_path / "etc/luot/centre.toml"
    edited = centre.read_text("utf-8").replace("http://192.168.1.10:8080", "http://10.0.5.2:8080")
    centre.write_text(edited, "utf-8")
    install(tmp_path, "display", "--device", "display-counter-1")
    assert centre.read_text("utf-8") == edited
    env = read_env(tmp_path / "etc/luot/device.env")
    assert env == {"LUOT_DEVICE": "display-counter-1", "LUOT_SERVER": "http://10.0.5.2:8080", "LUOT_MQTT": "10.0.5.2:18830"}
    install(tmp_path, "server", "--force")
    assert "192.168.1.10" in centre.read_text("utf-8")


def test_a_device_box_must_name_a_device_of_its_role(tmp_path: Path) -> None:
    result = luot("install", "--role", "kiosk", "--device", "display-hall", "--root", str(tmp_path))
    assert result.returncode == 1
    assert "không phải 'kiosk'" in result.stderr and "not 'kiosk'" in result.stderr
    assert not (tmp_path / "etc/systemd/system/luot-kiosk.service").exists()
    broken = tmp_path / "broken.toml"
    broken.write_text(DEFAULT_CONFIG.read_text("utf-8").replace("service_minutes = 8", "service_minutes = 0"))
    result = luot("install", "--role", "server", "--config", str(broken), "--root", str(tmp_path / "r"))
    assert result.returncode == 1 and "groups[0].service_minutes" in result.stderr
    assert not (tmp_path / "r").exists()


def test_uninstall_keeps_the_records_unless_purged(tmp_path: Path) -> None:
    install(tmp_path, "server")
    install(tmp_path, "pad")
    (tmp_path / "var/lib/luot/luot.sqlite3").write_bytes(b"records")
    result = luot("uninstall", "--root", str(tmp_path))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["commands"][0] == "systemctl disable --now luot-server.service luot-pad.service"
    assert not list((tmp_path / "etc/systemd/system").iterdir())
    assert (tmp_path / "var/lib/luot/luot.sqlite3").read_bytes() == b"records"
    assert (tmp_path / "etc/luot/centre.toml").exists()
    purged = json.loads(luot("uninstall", "--root", str(tmp_path), "--purge").stdout)
    assert "userdel luot" in purged["commands"]
    assert not (tmp_path / "var/lib/luot").exists() and not (tmp_path / "etc/luot").exists()
