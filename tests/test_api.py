"""The HTTP API as kiosks, officers, managers and citizens use it, against a real server and SQLite file."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.helpers.centre import ManualClock, device_auth, running_centre, staff_auth

pytestmark = pytest.mark.asyncio


async def test_kiosk_issues_ticket_and_citizen_tracks_it(tmp_path):
    async with running_centre(tmp_path) as centre, httpx.AsyncClient(base_url=centre.base_url) as http:
        kiosk = device_auth(centre, "kiosk-1")
        first = await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=kiosk)
        second = await http.post("/api/v1/tickets", json={"group": "ho-tich", "priority": "elderly"}, headers=kiosk)
        assert first.status_code == second.status_code == 201
        a, b = first.json(), second.json()
        assert (a["number"], b["number"]) == (1001, 1002)
        assert a["counters"] == [1, 2] and a["group_name"] == "Hộ tịch"
        assert len(a["token"]) >= 16 and a["tracking_url"].endswith("/t/" + a["token"])
        # the priority ticket goes first, so the ordinary one now has one person ahead
        assert a["ahead"] == 0 and b["ahead"] == 0
        tracked = (await http.get(f"/api/v1/track/{a['token']}")).json()
        assert tracked["number"] == 1001 and tracked["status"] == "waiting" and tracked["ahead"] == 1
        assert not {"token", "id", "source", "priority_class", "officer"} & set(tracked)


async def test_unknown_or_guessed_token_says_not_found_without_hints(tmp_path):
    async with running_centre(tmp_path) as centre, httpx.AsyncClient(base_url=centre.base_url) as http:
        real = (await http.post("/api/v1/tickets", json={"group": "cu-tru"}, headers=device_auth(centre, "kiosk-1"))).json()
        answers = [await http.get(f"/api/v1/track/{token}") for token in ("x", real["token"][:8] + ("B" if real["token"][8] != "B" else "C") + real["token"][9:], "A" * 22)]
        assert {a.status_code for a in answers} == {404}
        assert len({a.text for a in answers}) == 1
        assert "Không tìm thấy vé" in answers[0].json()["message"]


async def test_roles_are_enforced(tmp_path):
    async with running_centre(tmp_path) as centre, httpx.AsyncClient(base_url=centre.base_url) as http:
        assert (await http.post("/api/v1/tickets", json={"group": "ho-tich"})).status_code == 401
        fake = {"Authorization": "Bearer kiosk-1:not-the-secret"}
        assert (await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=fake)).status_code == 401
        kiosk = device_auth(centre, "kiosk-1")
        assert (await http.post("/api/v1/counters/1/open", headers=kiosk)).status_code == 403
        display = device_auth(centre, "display-hall")
        assert (await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=display)).status_code == 403
        officer = await staff_auth(centre)
        assert (await http.get("/api/v1/stats/waiting", headers=officer)).status_code == 403
        manager = await staff_auth(centre, "quanly2", "manager")
        assert (await http.get("/api/v1/stats/waiting", headers=manager)).status_code == 200
        bad = await http.post("/api/v1/login", json={"username": "canbo1", "password": "wrong-password"})
        assert bad.status_code == 401 and "Sai tên đăng nhập" in bad.json()["message"]


async def test_officer_serves_a_ticket_and_reports_show_it(tmp_path):
    clock = ManualClock()
    async with running_centre(tmp_path, clock=clock) as centre, httpx.AsyncClient(base_url=centre.base_url) as http:
        kiosk, officer = device_auth(centre, "kiosk-1"), await staff_auth(centre)
        manager = await staff_auth(centre, "quanly2", "manager")
        ticket = (await http.post("/api/v1/tickets", json={"group": "chung-thuc"}, headers=kiosk)).json()
        assert (await http.post("/api/v1/counters/3/open", headers=officer)).json()["counter"]["status"] == "idle"
        clock.advance(minutes=12)
        called = (await http.post("/api/v1/counters/3/call-next", headers=officer)).json()
        assert called["ticket"]["number"] == ticket["number"] and called["counter"]["status"] == "calling"
        tracked = (await http.get(f"/api/v1/track/{ticket['token']}")).json()
        assert tracked["status"] == "called" and tracked["counter"] == 3
        await http.post("/api/v1/counters/3/start", headers=officer)
        clock.advance(minutes=5)
        done = (await http.post("/api/v1/counters/3/finish", headers=officer)).json()
        assert done["ticket"]["status"] == "done" and done["counter"]["status"] == "idle"
        rows = (await http.get("/api/v1/stats/waiting", headers=manager)).json()["rows"]
        row = next(r for r in rows if r["group"] == "chung-thuc")
        assert row["issued"] == 1 and row["served"] == 1
        assert row["mean_wait_minutes"] == pytest.approx(12, abs=0.01)
        assert row["mean_service_minutes"] == pytest.approx(5, abs=0.01)
        assert 12 <= row["p90_wait_minutes"] <= 13
        pad = device_auth(centre, "pad-1")  # pad-1 belongs to counter 1, not 3
        refused = await http.post("/api/v1/feedback", json={"ticket_id": ticket["id"], "rating": 4}, headers=pad)
        assert refused.status_code == 400


async def test_transfer_keeps_place_and_counter_errors_are_plain(tmp_path):
    clock = ManualClock()
    async with running_centre(tmp_path, clock=clock) as centre, httpx.AsyncClient(base_url=centre.base_url) as http:
        kiosk, officer = device_auth(centre, "kiosk-1"), await staff_auth(centre)
        early = (await http.post("/api/v1/tickets", json={"group": "khac"}, headers=kiosk)).json()
        clock.advance(minutes=3)
        late = (await http.post("/api/v1/tickets", json={"group": "chung-thuc"}, headers=kiosk)).json()
        await http.post("/api/v1/counters/3/open", headers=officer)
        idle = await http.post("/api/v1/counters/3/recall", headers=officer)
        assert idle.status_code == 409 and "chưa gọi số nào" in idle.json()["message"]
        await http.post("/api/v1/counters/3/call-next", headers=officer)  # calls "early" (khac)
        moved = await http.post("/api/v1/counters/3/transfer", json={"group": "chung-thuc"}, headers=officer)
        assert moved.status_code == 200 and moved.json()["ticket"]["group"] == "chung-thuc"
        nxt = (await http.post("/api/v1/counters/3/call-next", headers=officer)).json()
        assert nxt["ticket"]["number"] == early["number"], "the transferred citizen keeps the earlier place"
        assert late["number"] != early["number"]


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b"null", b'{"group": 5}', b'{"group": "ho-tich", "x": 1}',
                                  b'{"group": "' + b"a" * 5000 + b'"}', b"\xff\xfe", b'{"group": "ho-tich", "priority": "king"}'])
async def test_malformed_bodies_get_4xx_and_server_keeps_serving(tmp_path, body):
    async with running_centre(tmp_path) as centre, httpx.AsyncClient(base_url=centre.base_url) as http:
        kiosk = {**device_auth(centre, "kiosk-1"), "content-type": "application/json"}
        answer = await http.post("/api/v1/tickets", content=body, headers=kiosk)
        assert 400 <= answer.status_code < 500, answer.text
        assert answer.json()["message"]
        ok = await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=kiosk)
        assert ok.status_code == 201 and ok.json()["number"] == 1001


async def test_openapi_document_describes_the_api(tmp_path):
    async with running_centre(tmp_path) as centre, httpx.AsyncClient(base_url=centre.base_url) as http:
        doc = (await http.get("/openapi.json")).json()
        assert doc["openapi"].startswith("3.")
        for path in ("/api/v1/tickets", "/api/v1/track/{token}", "/api/v1/counters/{number}/{action}",
                     "/api/v1/stats/waiting", "/api/v1/events"):
            assert path in doc["paths"]


async def test_concurrent_kiosks_and_counters_never_duplicate(tmp_path):
    """FQM handed out duplicate numbers and called one ticket at two counters under 8 clients."""
    async with running_centre(tmp_path) as centre:
        kiosks = [device_auth(centre, k) for k in ("kiosk-1", "kiosk-2")]
        officers = [await staff_auth(centre, f"canbo{i}") for i in range(1, 7)]
        async with httpx.AsyncClient(base_url=centre.base_url) as http:
            for number, officer in zip(range(1, 7), officers):
                assert (await http.post(f"/api/v1/counters/{number}/open", headers=officer)).status_code == 200

            async def kiosk_client(i: int) -> list[int]:
                numbers = []
                async with httpx.AsyncClient(base_url=centre.base_url) as own:
                    for _ in range(40):
                        answer = await own.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=kiosks[i % 2])
                        numbers.append(answer.json()["number"])
                return numbers

            issued = await asyncio.gather(*(kiosk_client(i) for i in range(8)))
            numbers = [n for batch in issued for n in batch]
            assert len(numbers) == 320 and len(set(numbers)) == 320

            async def counter_client(number: int, officer: dict[str, str]) -> list[int]:
                called = []
                async with httpx.AsyncClient(base_url=centre.base_url) as own:
                    while True:
                        answer = (await own.post(f"/api/v1/counters/{number}/call-next", headers=officer)).json()
                        if answer.get("ticket") is None:
                            return called
                        called.append(answer["ticket"]["number"])
                        await own.post(f"/api/v1/counters/{number}/finish", headers=officer)

            # counters 1 and 2 serve ho-tich: both race for the same queue, from 4 clients each
            calls = await asyncio.gather(*(counter_client(1 + i % 2, officers[i % 2]) for i in range(8)))
        everything = [n for batch in calls for n in batch]
        assert sorted(everything) == sorted(numbers), "every ticket called exactly once"


async def test_a_signed_out_or_expired_session_stops_working_at_once(tmp_path):
    """Session look-ups are served from memory: signing out and the 12-hour expiry must still
    take effect on the very next click."""
    clock = ManualClock()
    async with running_centre(tmp_path, clock=clock) as centre, httpx.AsyncClient(base_url=centre.base_url) as http:
        officer = await staff_auth(centre)
        assert (await http.get("/api/v1/queue", headers=officer)).status_code == 200
        assert (await http.post("/api/v1/logout", headers=officer)).status_code == 200
        assert (await http.get("/api/v1/queue", headers=officer)).status_code == 401

        again = await staff_auth(centre, "canbo2")
        assert (await http.get("/api/v1/queue", headers=again)).status_code == 200  # now cached
        clock.advance(hours=12, minutes=1)
        assert (await http.get("/api/v1/queue", headers=again)).status_code == 401
