"""A broken centre file is refused at start-up with the key that is wrong and what is expected."""

from __future__ import annotations

import re
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


# --------------------------------------------------------------------------- everything at once (issue 20)
import json  # noqa: E402


def check_config(tmp_path, data_text: str, *extra: str) -> tuple[int, dict, str]:
    file = tmp_path / "centre.toml"
    file.write_text(data_text, encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "luot.cli", "check-config", str(file), *extra],
                            capture_output=True, text=True, timeout=60)
    return result.returncode, json.loads(result.stdout), result.stderr


def sample_text() -> str:
    return DEFAULT_CONFIG.read_text("utf-8")


SAMPLE_HTTP = re.search(r"\[http\]\nhost = [^\n]*\nport = [^\n]*", sample_text()).group(0)  # type: ignore[union-attr]
"""The sample's [http] section as written (with its comments), for tests that change it."""


def test_overlapping_and_reversed_sessions_are_refused_at_start_up_all_together():
    data = sample()
    data["hours"]["mon"] = ["07:30-12:00", "11:00-16:30"]
    data["hours"]["tue"] = ["12:00-07:30"]
    text = problems(data)
    assert "hours.mon: sessions '07:30-12:00' and '11:00-16:30' overlap" in text
    assert "hours.tue: '12:00-07:30' is not a valid time range" in text
    data = sample()
    data["hours"]["mon"] = ["07:30-12:00", "12:00-16:30"]  # back to back is fine
    parse_config(data)


def test_cross_field_mistakes_come_all_at_once_at_start_up():
    data = sample()
    data["groups"][1]["letter"] = "A"
    data["counters"][3]["groups"] = ["dat-dai", "nope"]
    data["devices"].append({"id": "pad-9", "role": "pad"})
    text = problems(data)
    assert "3 problem(s)" in text
    assert "groups[1].letter: 'A' is used twice" in text
    assert "counters[3].groups: counter 4 serves 'nope'" in text
    assert "devices[7]: a satisfaction pad must name its counter" in text


def test_check_config_reports_every_problem_with_its_key_and_a_fix(tmp_path):
    text = (sample_text()
            .replace('mon = ["07:30-12:00", "13:00-16:30"]', 'mon = ["07:30-12:00", "11:00-16:30"]')
            .replace('letter = "B"', 'letter = "A"')
            .replace('groups = ["dat-dai"]', 'groups = ["dat-dai", "nope"]')
            .replace(SAMPLE_HTTP, "[http]\nhost = \"127.0.0.1\"\nport = 18830")
            .replace('voice = "vi" ', 'voice = "vn" '))
    code, report, stderr = check_config(tmp_path, text)
    assert code == 1 and report["ok"] is False
    found = {p["key"]: p for p in report["problems"]}
    # a broken [hours] does not hide the cross-field mistakes: they are all in the one report
    assert set(found) == {"hours.mon", "groups[1].letter", "counters[3].groups", "http.port", "voice.voice"}
    assert all(p["fix"] and p["severity"] == "error" for p in report["problems"])
    assert "merge them" in found["hours.mon"]["fix"]
    assert "use one of the known groups: bao-tro-xa-hoi" in found["counters[3].groups"]["fix"]
    assert "port 18830 is also mqtt.port" in found["http.port"]["message"]
    assert "vi-vn-x-south" in found["voice.voice"]["fix"]  # read from this machine's espeak-ng --voices
    assert "5 error(s)" in stderr and "fix: give each of the groups its own letter" in stderr


def test_ports_only_clash_on_the_same_machine(tmp_path):
    same = sample_text().replace(SAMPLE_HTTP, "[http]\nhost = \"127.0.0.1\"\nport = 18830")
    code, report, _ = check_config(tmp_path, same.replace("[mqtt]\n", "[mqtt]\nhost = \"broker.lan\"\n"))
    assert code == 0 and report["ok"] is True, report  # the broker runs elsewhere: no clash
    any_port = sample_text().replace(SAMPLE_HTTP, "[http]\nhost = \"127.0.0.1\"\nport = 0")
    assert check_config(tmp_path, any_port)[0] == 0


def test_voices_the_announcer_cannot_use(tmp_path):
    code, report, _ = check_config(tmp_path, sample_text().replace('voice = "vi" ', 'voice = "en" '))
    assert code == 1
    assert report["problems"][0]["key"] == "voice.voice" and "not Vietnamese" in report["problems"][0]["message"]
    for good in ("vi", "vi-vn-x-south", "aav/vi"):
        assert check_config(tmp_path, sample_text().replace('voice = "vi" ', f'voice = "{good}" '))[0] == 0, good
    code, report, _ = check_config(tmp_path, sample_text().replace('languages = ["vi", "en"]', 'languages = ["vi"]')
                                   .replace("english = false", "english = true"))
    assert code == 0 and [(p["key"], p["severity"]) for p in report["problems"]] == [("voice.english", "warning")]


def test_printer_targets_given_as_paths(tmp_path):
    device = tmp_path / "lp0"
    device.write_bytes(b"")
    code, report, _ = check_config(tmp_path, sample_text(), "--printer", f"file:{device}", "--printer", "network:10.0.0.9:9100")
    assert code == 0 and report["problems"] == []
    code, report, _ = check_config(tmp_path, sample_text(), "--printer", str(tmp_path / "missing"),
                                   "--printer", f"file:{tmp_path}", "--printer", "lp0")
    assert code == 1
    messages = [(p["key"], p["message"]) for p in report["problems"]]
    assert ("--printer[0]", f"'{tmp_path / 'missing'}' is a path without its kind; the kiosk would refuse it") in messages
    assert ("--printer[0]", f"{tmp_path / 'missing'} does not exist: tickets could not be printed") in messages
    assert ("--printer[1]", f"{tmp_path} is a directory, not a printer device") in messages
    assert ("--printer[2]", "printer target 'lp0' not understood") in messages
