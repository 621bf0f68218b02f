"""Small versions of the fault drills in bench/ (the full ones print figures; see docs/performance.md).

They check correctness only, never speed: an acknowledged ticket survives kill -9, a Mosquitto
restart loses no call announcement, a kiosk's offline tickets arrive once, and bad MQTT payloads
and bad HTTP requests crash nothing. Each runs a real ``luot server`` child process and a real
Mosquitto.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import drill_bad_input  # noqa: E402
import drill_broker_restart  # noqa: E402
import drill_kill9  # noqa: E402
import drill_offline_kiosk  # noqa: E402

from server.broker import find_mosquitto  # noqa: E402

pytestmark = pytest.mark.skipif(find_mosquitto() is None, reason="the drills need Mosquitto (apt install mosquitto)")


async def test_kill9_under_load_loses_no_acknowledged_ticket(tmp_path: Path) -> None:
    result = await drill_kill9.drill(tmp_path, kills=2, seconds=0.6, kiosks=3)
    assert result["acknowledged"] > 0
    assert result["lost"] == 0, result
    assert result["duplicate_numbers"] == 0, result


async def test_broker_restart_misses_no_call_and_resyncs(tmp_path: Path) -> None:
    result = await drill_broker_restart.drill(tmp_path, seconds=3.0, rate=10.0, down=1.0)
    assert result["calls"] > 0 and result["display_connects"] >= 2, result
    assert result["missed"] == 0 and result["refused"] == 0, result
    assert result["resync_seconds"] <= drill_broker_restart.RESYNC_LIMIT, result


async def test_offline_kiosk_tickets_arrive_once_in_their_place(tmp_path: Path) -> None:
    result = await drill_offline_kiosk.drill(tmp_path, minutes=2, speed=30, per_minute=6)
    assert result["offline"] > 0, result
    assert (result["lost"], result["duplicates"], result["clashes"], result["misplaced"]) == (0, 0, 0, 0), result
    assert result["problems"] == []


async def test_malformed_payloads_and_fuzzed_requests_crash_nothing(tmp_path: Path) -> None:
    result = await drill_bad_input.drill(tmp_path, payloads=1000, max_examples=5, fuzz=True)
    assert result["pubacks"] == 1000
    assert result["good_message_recorded"] and result["ticket_kept"] and result["healthy"], result
    assert result["server_500s"] == 0 and result["server_alive"], result
    assert all(errors == 0 for errors, _ in result["schemathesis"].values()), result["schemathesis"]
    assert result["healthy_after_fuzz"]
