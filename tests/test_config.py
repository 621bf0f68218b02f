"""A broken centre file is refused at start-up with the key that is wrong and what is expected."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from datetime import datetime, timezone

import pytest

from luot.config import DEFAULT_CONFIG, ConfigError, load_config, parse_config


def sample() -> dict:
    return tomllib.loads(DEFAULT_CONFIG.read_text("utf-8"))


def problems(data: dict) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, "centre.toml")
    return str(caught.value)


def test_sample_centre_is_valid_and_realistic():
    config = load_config()
    codes = {g.code for g in config.groups}
    assert {"ho-tich", "chung-thuc", "dat-dai", "cu-tru", "bao-tro-xa-hoi", "ho-kinh-doanh"} <= codes
    assert {p.code for p in config.priority_classes} >= {"elderly", "disabled", "pregnant", "small_child", "merit"}
    assert all(g.documents for g in config.groups)


@pytest.mark.parametrize("change, expected", [
    (lambda d: d["groups"][2].__setitem__("service_minutes", -1), "groups[2].service_minutes"),
    (lambda d: d["centre"].__setitem__("colour", "red"), "centre.colour: unknown key"),
    (lambda d: d["counters"][0].__setitem__("groups", ["ho-tich", "nope"]), "'nope', which is not a group code"),
    (lambda d: d["groups"][1].__setitem__("letter", "A"), "groups[1].letter: 'A' is used twice"),
    (lambda d: d["groups"][1].__setitem__("first_number", 1500), "overlap"),
    (lambda d: d["hours"].__setitem__("mon", ["7:30-12:00"]), "is not 'HH:MM-HH:MM'"),
    (lambda d: d["centre"].__setitem__("timezone", "Mars/Base"), "unknown time zone"),
    (lambda d: d["centre"].__setitem__("id", "Bad Id"), "centre.id"),
    (lambda d: d.pop("groups"), "groups: required key is missing"),
    (lambda d: d["devices"].append({"id": "pad-9", "role": "pad"}), "must name its counter"),
    (lambda d: d["devices"].append({"id": "kiosk-1", "role": "kiosk"}), "'kiosk-1' is used twice"),
])
def test_each_mistake_is_named(change, expected):
    data = sample()
    change(data)
    assert expected in problems(data)


def test_unreadable_and_non_toml_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[centre\nid = 1", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken)


def test_check_config_command_exits_1_with_the_explanation(tmp_path):
    bad = tmp_path / "centre.toml"
    bad.write_text(DEFAULT_CONFIG.read_text("utf-8").replace("service_minutes = 8", "service_minutes = 0"), encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "luot.cli", "check-config", str(bad)], capture_output=True, text=True)
    assert result.returncode == 1
    assert "groups[0].service_minutes" in result.stderr and "greater than 0" in result.stderr
    good = subprocess.run([sys.executable, "-m", "luot.cli", "check-config"], capture_output=True, text=True)
    assert good.returncode == 0 and '"ok": true' in good.stdout


def test_service_day_and_hours_are_computed_from_the_time_given():
    config = load_config()
    before_midnight = datetime(2026, 11, 23, 16, 59, tzinfo=timezone.utc)  # 23:59 in Hanoi
    after_midnight = datetime(2026, 11, 23, 17, 1, tzinfo=timezone.utc)
    assert config.service_day(before_midnight).isoformat() == "2026-11-23"
    assert config.service_day(after_midnight).isoformat() == "2026-11-24"
    assert config.is_open(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc))  # Monday 09:00
    assert not config.is_open(datetime(2026, 11, 23, 5, 30, tzinfo=timezone.utc))  # Monday 12:30, lunch
    assert not config.is_open(datetime(2026, 11, 22, 2, 0, tzinfo=timezone.utc))  # Sunday
