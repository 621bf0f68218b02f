"""The web pages' HTTP side: dossiers, live event streams, reports and exports, tracking page."""

from __future__ import annotations

import asyncio
import csv
import io
import json

import httpx
import pytest
from openpyxl import load_workbook

from tests.helpers.centre import ManualClock, device_auth, running_centre, staff_auth

pytestmark = pytest.mark.asyncio


class SseReader:
    """Reads an open text/event-stream response message by message."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.aiter_lines()
        self.kind: str | None = None

    async def next(self, count: int = 1, timeout: float = 5.0) -> list[tuple[str, object]]:
        """``count`` messages as (event name, parsed data); comment lines come as ('comment', text)."""
        found: list[tuple[str, object]] = []

        async def read() -> None:
            async for line in self.lines:
                if line.startswith(":"):
                    found.append(("comment", line[1:].strip()))
                elif line.startswith("event:"):
                    self.kind = line[6:].strip()
                elif line.startswith("data:"):
                    found.append((self.kind or "message", json.loads(line[5:])))
                if len(found) >= count:
                    return

        await asyncio.wait_for(read(), timeout)
        return found

    async def until(self, predicate, timeout: float = 5.0) -> object:
        """The data of the first message that satisfies ``predicate``."""
        async def scan() -> object:
            while True:
                _, data = (await self.next(timeout=timeout))[0]
                if predicate(data):
                    return data
        return await asyncio.wait_for(scan(), timeout)


async def _serve_one(http: httpx.AsyncClient, centre, group: str = "chung-thuc", counter: int = 3):
    kiosk, officer = device_auth(centre, "kiosk-1"), await staff_auth(centre)
    ticket = (await http.post("/api/v1/tickets", json={"group": group}, headers=kiosk)).json()
    await http.post(f"/api/v1/counters/{counter}/open", headers=officer)
    await http.post(f"/api/v1/counters/{counter}/call-next", headers=officer)
    return ticket, officer


async def test_dossier_attach_status_and_tracking_timeline(tmp_path):
    clock = ManualClock()
    async with running_centre(tmp_path, clock=clock) as centre, httpx.AsyncClient(base_url=centre.base_url) as http:
        ticket, officer = await _serve_one(http, centre)
        attached = await http.post(f"/api/v1/tickets/{ticket['id']}/dossier", json={"code": "H26-250101-0001"}, headers=officer)
        assert attached.status_code == 200, attached.text
        assert attached.json()["status"] == "received"
        clock.advance(minutes=30)
        moved = await http.post("/api/v1/dossiers/H26-250101-0001/status", json={"status": "needs_documents"}, headers=officer)
        assert moved.status_code == 200 and [s["status"] for s in moved.json()["timeline"]] == ["received", "needs_documents"]
        tracked = (await http.get(f"/api/v1/track/{ticket['token']}")).json()
        assert tracked["dossiers"][0]["code"] == "H26-250101-0001"
        assert [s["status"] for s in tracked["dossiers"][0]["timeline"]] == ["received", "needs_documents"]
        for status in ("processing", "ready", "returned"):
            assert (await http.post("/api/v1/dossiers/H26-250101-0001/status", json={"status": status}, headers=officer)).status_code == 200
        final = await http.post("/api/v1/dossiers/H26-250101-0001/status", json={"status": "processing"}, headers=officer)
        assert final.status_code == 409 and "đã trả kết quả" in final.json()["message"]
        # the timeline survives a restart of the engine from the log
        await centre.service.reload()
        assert centre.service.engine.dossiers["H26-250101-0001"].status == "returned"


async def test_dossier_refusals_are_plain_4xx(tmp_path):
    async with running_centre(tmp_path) as centre, httpx.AsyncClient(base_url=centre.base_url) as http:
        ticket, officer = await _serve_one(http, centre)
        other = (await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=device_auth(centre, "kiosk-1"))).json()
        url = f"/api/v1/tickets/{ticket['id']}/dossier"
        assert (await http.post(url, json={"code": "X-1"})).status_code == 401
        for body in (b"", b"{", b"[]", b'{"code": 5}', b'{"code": "a b c"}', b'{"code": "ab"}', b'{"code": "OK-1", "x": 1}',
                     b'{"code": "' + b"A" * 500 + b'"}', b"\xff\xfe"):
            answer = await http.post(url, content=body, headers={**officer, "content-type": "application/json"})
            assert 400 <= answer.status_code < 500 and answer.json()["message"], body
        waiting = await http.post(f"/api/v1/tickets/{other['id']}/dossier", json={"code": "HS-0002"}, headers=officer)
        assert waiting.status_code == 409 and "chưa được phục vụ" in waiting.json()["message"]
        assert (await http.post("/api/v1/tickets/tnope/dossier", json={"code": "HS-0003"}, headers=officer)).status_code == 404
        assert (await http.post(url, json={"code": "HS-0001"}, headers=officer)).status_code == 200
        assert (await http.post(url, json={"code": "HS-0001"}, headers=officer)).status_code == 200  # same again: fine
        bad = await http.post("/api/v1/dossiers/HS-0001/status", json={"status": "lost"}, headers=officer)
        assert bad.status_code == 422
        missing = await http.post("/api/v1/dossiers/HS-9999/status", json={"status": "ready"}, headers=officer)
        assert missing.status_code == 404 and "Không tìm thấy hồ sơ" in missing.json()["message"]
        assert (await http.post("/api/v1/dossiers/HS-0001/status", content=b"{", headers={**officer, "content-type": "application/json"})).status_code == 422


async def test_staff_stream_needs_login_and_carries_snapshot_and_events(tmp_path):
    async with running_centre(tmp_path) as centre, httpx.AsyncClient(base_url=centre.base_url, timeout=10) as http:
        assert (await http.get("/api/v1/stream")).status_code == 401
        officer = await staff_auth(centre)
        async with http.stream("GET", "/api/v1/stream", headers=officer) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            reader = SseReader(stream)
            first = await reader.next()
            assert first[0][0] == "update" and "counters" in first[0][1]["snapshot"]
            await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=device_auth(centre, "kiosk-1"))
            kind, update = (await reader.next())[0]
            assert kind == "update"
            issued = [e for e in update["events"] if e["type"] == "ticket.issued"]
            assert issued and issued[0]["data"]["number"] == 1001
            assert "token" not in issued[0]["data"], "tracking tokens never go out on the staff stream"
            assert update["snapshot"]["groups"]["ho-tich"]["waiting"] == 1


async def test_ticket_stream_shows_only_that_ticket(tmp_path):
    async with running_centre(tmp_path) as centre, httpx.AsyncClient(base_url=centre.base_url, timeout=10) as http:
        kiosk, officer = device_auth(centre, "kiosk-1"), await staff_auth(centre)
        mine = (await http.post("/api/v1/tickets", json={"group": "chung-thuc"}, headers=kiosk)).json()
        other = (await http.post("/api/v1/tickets", json={"group": "chung-thuc"}, headers=kiosk)).json()
        unknown = [await http.get(f"/api/v1/track/{t}/stream") for t in ("x", mine["token"][:-2] + "zz", "B" * 22)]
        assert {a.status_code for a in unknown} == {404} and len({a.text for a in unknown}) == 1
        async with http.stream("GET", f"/api/v1/track/{other['token']}/stream") as stream:
            reader = SseReader(stream)
            kind, view = (await reader.next())[0]
            assert kind == "ticket" and view["number"] == other["number"] and view["ahead"] == 1
            await http.post("/api/v1/counters/3/open", headers=officer)
            await http.post("/api/v1/counters/3/call-next", headers=officer)  # calls "mine": other moves up
            view = await reader.until(lambda v: v["ahead"] == 0)
            assert view["number"] == other["number"] and view["status"] == "waiting"
            await http.post("/api/v1/counters/3/start", headers=officer)
            await http.post("/api/v1/counters/3/call-next", headers=officer)  # finishes mine, calls other
            view = await reader.until(lambda v: v["status"] != "waiting")
            assert view["status"] == "called" and view["counter"] == 3
            assert set(view) == {"number", "group_name", "group_name_en", "status", "ahead", "wait_minutes", "counter",
                                 "called_at", "calls", "day", "dossiers", "moved_to", "wait_range_minutes",
                                 "expected_at", "wait_text", "wait_text_en", "after_closing"}
            # nothing of the other ticket leaks (times are left out: their digits may spell any number)
            assert mine["number"] not in [value for key, value in view.items() if key != "called_at"]
            assert mine["id"] not in json.dumps(view) and mine["token"] not in json.dumps(view)


async def test_heartbeat_and_slow_clients_are_dropped_without_blocking(tmp_path):
    async with running_centre(tmp_path) as centre, httpx.AsyncClient(base_url=centre.base_url, timeout=10) as http:
        hub = centre.app.state.live
        hub.heartbeat = 0.2
        officer = await staff_auth(centre)
        async with http.stream("GET", "/api/v1/stream", headers=officer) as stream:
            messages = await SseReader(stream).next(2)
            assert messages[1] == ("comment", "heartbeat")
        slow = hub.subscribe("staff")  # a client that never reads
        kiosk = device_auth(centre, "kiosk-1")
        for _ in range(40):
            assert (await http.post("/api/v1/tickets", json={"group": "khac"}, headers=kiosk)).status_code == 201
        assert slow not in hub.subscribers and hub.dropped >= 1
        assert slow.queue.get_nowait() is None, "a dropped client's stream ends"


async def test_reports_json_csv_and_xlsx_hold_the_same_numbers(tmp_path):
    clock = ManualClock()
    async with running_centre(tmp_path, clock=clock) as centre, httpx.AsyncClient(base_url=centre.base_url) as http:
        kiosk, officer = device_auth(centre, "kiosk-1"), await staff_auth(centre)
        manager = await staff_auth(centre, "quanly2", "manager")
        for _ in range(3):
            await http.post("/api/v1/tickets", json={"group": "chung-thuc"}, headers=kiosk)
        await http.post("/api/v1/counters/3/open", headers=officer)
        clock.advance(minutes=10)
        await http.post("/api/v1/counters/3/call-next", headers=officer)
        await http.post("/api/v1/counters/3/start", headers=officer)
        clock.advance(minutes=4)
        await http.post("/api/v1/counters/3/call-next", headers=officer)  # finishes the first (4 min), calls the second (14 min wait)
        await http.post("/api/v1/counters/3/no-show", headers=officer)
        assert (await http.get("/api/v1/reports", headers=officer)).status_code == 403
        for query in ("by=bogus", "period=month", "from=2025-13-01", "from=2026-02-01&to=2025-01-01", "from=2020-01-01&to=2025-01-01"):
            answer = await http.get(f"/api/v1/reports/export.csv?{query}", headers=manager)
            assert answer.status_code == 422 and answer.json()["message"], query
        rows = (await http.get("/api/v1/reports?by=group", headers=manager)).json()["rows"]
        row = next(r for r in rows if r["key"] == "chung-thuc")
        assert (row["issued"], row["called"], row["served"], row["no_show"]) == (3, 2, 1, 1)
        assert row["mean_wait_minutes"] == pytest.approx(12) and row["mean_service_minutes"] == pytest.approx(4)
        assert row["no_show_rate"] == 50.0
        raw = (await http.get("/api/v1/reports/export.csv?by=group", headers=manager))
        assert raw.headers["content-type"].startswith("text/csv") and "attachment" in raw.headers["content-disposition"]
        assert raw.content.startswith(b"\xef\xbb\xbf")
        table = list(csv.reader(io.StringIO(raw.content.decode("utf-8-sig"))))
        assert table[0][5] == "Số vé cấp" and "Chờ trung bình (phút)" in table[0]
        line = next(r for r in table if r[3] == "chung-thuc")
        assert line[4] == "Chứng thực" and line[5:9] == ["3", "2", "1", "1"]
        xlsx = await http.get("/api/v1/reports/export.xlsx?by=counter&period=week", headers=manager)
        sheet = load_workbook(io.BytesIO(xlsx.content)).active
        values = list(sheet.iter_rows(values_only=True))
        assert values[1][5] == "Số vé cấp" and values[2][5] == "Tickets issued"
        counter_row = next(r for r in values[3:] if r[3] == 3)
        assert counter_row[6:9] == (2, 1, 1) and counter_row[9] == pytest.approx(12)


async def test_tracking_page_and_identical_404_for_unknown_tokens(tmp_path):
    async with running_centre(tmp_path) as centre, httpx.AsyncClient(base_url=centre.base_url) as http:
        ticket = (await http.post("/api/v1/tickets", json={"group": "cu-tru"}, headers=device_auth(centre, "kiosk-1"))).json()
        page = await http.get(f"/t/{ticket['token']}")
        assert page.status_code == 200 and str(ticket["number"]) in page.text and "Cư trú" in page.text
        assert ticket["id"] not in page.text
        answers = [await http.get(f"/t/{t}") for t in ("x", ticket["token"][:-2] + "zz", "C" * 22, "%3Cscript%3E", "a" * 300)]
        assert {a.status_code for a in answers} == {404}
        assert len({a.text for a in answers}) == 1 and "Không tìm thấy vé" in answers[0].text
        for path in ("/console", "/dashboard", "/reports", "/static/track.js"):
            assert (await http.get(path)).status_code == 200, path


async def test_each_staff_page_carries_one_sign_in_form_with_its_own_title(tmp_path):
    """The form is one file (server/web/staff_login.html) put into the three staff pages."""
    titles = {"/console": ("Đăng nhập", "Sign in"), "/dashboard": ("Đăng nhập quản lý", "Manager sign in"),
              "/reports": ("Đăng nhập quản lý", "Manager sign in")}
    async with running_centre(tmp_path) as centre, httpx.AsyncClient(base_url=centre.base_url) as http:
        for path, (title, title_en) in titles.items():
            response = await http.get(path)
            assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
            page = response.text
            assert page.count('id="login-form"') == 1 and page.count('name="password"') == 1, path
            assert f'<h2 id="login-title">{title} <span class="en" lang="en">{title_en}</span></h2>' in page, path
            assert "#staff-login" not in page and "{{" not in page, path
            assert page.index('id="login"') < page.index('<main id="app" hidden>'), path
        public = (await http.get("/")).text
        assert 'id="login-form"' not in public
