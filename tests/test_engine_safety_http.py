"""Over HTTP against a real server and SQLite file: one kiosk's bad offline ticket is refused to
that kiosk alone, while another kiosk's tickets issued at the same moment all succeed (before,
the bad ticket failed the whole group commit and 20 of 20 concurrent tickets got 503)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.engine_support import TOKENS
from tests.helpers.centre import ManualClock, device_auth, running_centre

pytestmark = pytest.mark.asyncio


async def test_a_used_offline_token_fails_only_its_own_kiosk(tmp_path):
    clock = ManualClock()
    async with running_centre(tmp_path, clock=clock) as centre, httpx.AsyncClient(base_url=centre.base_url) as http:
        one, two = device_auth(centre, "kiosk-1"), device_auth(centre, "kiosk-2")
        lease = (await http.post("/api/v1/leases", json={"group": "ho-tich", "size": 5}, headers=one)).json()
        clock.advance(minutes=1)
        first = {"group": "ho-tich", "number": lease["first"], "issued_at": clock.now.isoformat(), "token": TOKENS[0]}
        assert (await http.post("/api/v1/offline-tickets", json=first, headers=one)).status_code == 200
        clock.advance(minutes=1)
        reused = {**first, "number": lease["first"] + 1}
        weak = {**first, "number": lease["first"] + 2, "token": "A" * 22}
        answers = await asyncio.gather(
            http.post("/api/v1/offline-tickets", json=reused, headers=one),
            http.post("/api/v1/offline-tickets", json=weak, headers=one),
            *(http.post("/api/v1/tickets", json={"group": "cu-tru"}, headers=two) for _ in range(20)))
        bad, worse, *good = answers
        assert (bad.status_code, bad.json()["error"]) == (409, "token_taken")
        assert (worse.status_code, worse.json()["error"]) == (400, "token_weak")
        assert [a.status_code for a in good] == [201] * 20
        assert len({a.json()["number"] for a in good}) == 20
        for answer in good:  # every acknowledged ticket is really there
            assert (await http.get(f"/api/v1/track/{answer.json()['token']}")).status_code == 200


async def test_a_manager_confirms_the_clock_over_http(tmp_path):
    """The clock was 3 hours fast and is put right: tickets are refused with the reason until a
    manager confirms, then numbering goes on where it was; an officer may not confirm."""
    from datetime import timedelta

    from tests.helpers.centre import staff_auth

    clock = ManualClock()
    async with running_centre(tmp_path, clock=clock) as centre, httpx.AsyncClient(base_url=centre.base_url) as http:
        kiosk = device_auth(centre, "kiosk-1")
        clock.advance(hours=3)
        first = (await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=kiosk)).json()
        clock.now -= timedelta(hours=3)
        refused = await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=kiosk)
        assert refused.status_code == 409 and refused.json()["error"] == "clock_suspect"
        assert "Đồng hồ" in refused.json()["message"] and "clock" in refused.json()["message_en"]
        officer = await staff_auth(centre)
        assert (await http.post("/api/v1/day/confirm-clock", headers=officer)).status_code == 403
        manager = await staff_auth(centre, "quanly2", "manager")
        assert (await http.post("/api/v1/day/confirm-clock", headers=manager)).status_code == 200
        second = await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=kiosk)
        assert second.status_code == 201 and second.json()["number"] == first["number"] + 1
