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


async def test_a_ticket_issued_just_before_midnight_is_answered_with_its_own_view(tmp_path):
    """The first command after midnight opens a new day while the last ticket of the old one is still
    being written: that ticket's answer is built in its own instant, not looked up afterwards in a day
    that no longer has it (it was answered 404 while stored)."""
    from datetime import timedelta

    clock = ManualClock()
    clock.now = clock.now.replace(hour=16, minute=59, second=59)  # 23:59:59 in Hanoi (UTC+7)
    async with running_centre(tmp_path, clock=clock) as centre:
        service = centre.service
        last = asyncio.create_task(service.run_viewed(lambda e, now: e.issue("ho-tich", now)))
        await asyncio.sleep(0)  # its command has run; its commit is on its way
        clock.advance(seconds=2)  # 00:00:01: the next command opens the new day
        first, first_view = await service.run_viewed(lambda e, now: e.issue("ho-tich", now))
        ticket, view = await last
        assert view["id"] == ticket.id and view["number"] == ticket.number and view["status"] == "waiting"
        assert first_view["number"] == first.number and service.engine.day == (clock.now + timedelta(hours=7)).date()


async def luot_clock(centre, *args: str, password: str = "matkhau-123") -> tuple[int, dict]:
    """``luot clock ...`` in its own process against the running centre (its JSON, its exit status);
    run in a thread so the centre, on this test's event loop, can answer it."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "LUOT_PASSWORD": password}
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "luot.cli", "clock", *args, "--server", centre.base_url],
        capture_output=True, text=True, env=env, cwd=Path(__file__).resolve().parents[1], timeout=60)
    return done.returncode, json.loads(done.stdout)


async def test_luot_clock_shows_a_suspect_clock_and_a_manager_confirms_it(tmp_path):
    """``luot clock status`` says commands are refused and why; an officer's ``confirm`` and a
    wrong password print the API's refusal and exit 1; a manager's confirm lets tickets go on."""
    from datetime import timedelta

    clock = ManualClock()
    async with running_centre(tmp_path, clock=clock) as centre, httpx.AsyncClient(base_url=centre.base_url) as http:
        kiosk = device_auth(centre, "kiosk-1")
        for name, role in (("canbo1", "officer"), ("quanly2", "manager")):
            await centre.accounts.add_user(name, name, role, "matkhau-123")
        clock.advance(hours=3)
        first = (await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=kiosk)).json()
        clock.now -= timedelta(hours=3)  # the clock was 3 hours fast and has been put right

        status, shown = await luot_clock(centre, "status", "--user", "canbo1")
        assert status == 0 and shown["needs_confirmation"] is True, shown
        assert shown["reason"]["error"] == "clock_suspect" and "Đồng hồ" in shown["reason"]["message"]
        assert shown["last_event_at"] == (clock.now + timedelta(hours=3)).isoformat()
        assert shown["now"] == clock.now.isoformat() and shown["day"] == centre.config.service_day(clock.now).isoformat()

        status, refused = await luot_clock(centre, "confirm", "--user", "canbo1")
        assert status == 1 and refused["error"] == "forbidden", refused
        assert refused["message"] and refused["message_en"]
        status, refused = await luot_clock(centre, "confirm", "--user", "quanly2", password="sai-mat-khau")
        assert (status, refused["error"]) == (1, "bad_login") and "Sai" in refused["message"]
        assert (await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=kiosk)).status_code == 409

        status, confirmed = await luot_clock(centre, "confirm", "--user", "quanly2")
        assert status == 0 and confirmed["ok"] is True and confirmed["at"] == clock.now.isoformat(), confirmed
        status, shown = await luot_clock(centre, "status", "--user", "quanly2")
        assert status == 0 and shown["needs_confirmation"] is False and shown["reason"] is None
        second = await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=kiosk)
        assert second.status_code == 201 and second.json()["number"] == first["number"] + 1
        # each command signed out again: no session is left behind
        left = await (await centre.storage.db.execute("SELECT COUNT(*) FROM sessions")).fetchone()
        assert left[0] == 0
