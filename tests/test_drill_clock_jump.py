"""A short run of bench/drill_clock_jump.py (the full one prints figures): whatever the clock does
around midnight, no acknowledged ticket is lost, no number repeats, no commit fails, and issuing
works again after every correction, a manager's confirmation and a restart."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import drill_clock_jump  # noqa: E402


@pytest.mark.asyncio
async def test_clock_jumps_lose_nothing_and_repeat_nothing(tmp_path: Path) -> None:
    result = await drill_clock_jump.drill(tmp_path, speed=600, phase_seconds=0.6, kiosks=3)
    assert result["acknowledged"] > 0
    assert (result["lost"], result["repeated"], result["mismatched"], result["storage_503"]) == (0, 0, 0, 0), result
    assert all(result["resumed"].values()), result["resumed"]
    refused = {code for p in result["phases"].values() for code in p["refused"]}
    assert refused <= {"clock_suspect", "ticket_not_found"}, refused  # see the drill: the answer races midnight
    assert result["phases"]["+1 day at 23:00"]["refused"]["clock_suspect"] > 0
