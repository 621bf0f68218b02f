"""The province hand-off end to end (docs/export.md): a local receiver (a real HTTP server in this
test) checks every record against the field table in docs/export.md and every batch's HMAC
signature; it refuses the first delivery (the centre retries), the centre restarts half-way
(nothing lost, nothing repeated), and the HTTP feed and daily CSV carry the same records."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import hmac
import io
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from luot.config import parse_config
from tests.engine_support import sample_data
from tests.helpers.centre import device_auth, running_centre, staff_auth

ROOT = Path(__file__).resolve().parent.parent


def documented_fields() -> dict[str, set[str]]:
    """key -> record kinds, read from the table in docs/export.md (the receiver trusts only the doc)."""
    fields: dict[str, set[str]] = {}
    for line in (ROOT / "docs" / "export.md").read_text("utf-8").splitlines():
        match = re.match(r"^\| `([a-z_]+)` \|[^|]*\|[^|]*\| ([a-z_, ]+) \|", line)
        if match:
            fields[match.group(1)] = {k.strip() for k in match.group(2).split(",")}
    return fields


class Receiver:
    """A province integrator's endpoint: verifies, dedups by event_id, answers 503 once."""

    def __init__(self, fields: dict[str, set[str]]) -> None:
        self.fields, self.key = fields, b""
        self.records: dict[str, dict] = {}
        self.duplicates = 0
        self.deliveries: list[str] = []
        self.problems: list[str] = []
        self.refuse_next = 1
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.take(self.headers, body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/luot"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take(self, headers, body: bytes) -> int:
        stamp = headers.get("X-Luot-Timestamp", "")
        expected = "sha256=" + hmac.new(self.key, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, headers.get("X-Luot-Signature", "")):
            self.problems.append("bad signature")
            return 401
        if abs(time.time() - int(stamp)) > 300:
            self.problems.append("old timestamp")
            return 401
        if self.refuse_next:
            self.refuse_next -= 1
            return 503
        self.deliveries.append(headers["X-Luot-Delivery"])
        for line in body.decode("utf-8").splitlines():
            item = json.loads(line)
            kind = item.get("loai")
            wanted = {k for k, kinds in self.fields.items() if kind in kinds}
            if set(item) != wanted:
                self.problems.append(f"{kind}: fields {sorted(set(item) ^ wanted)} differ from docs/export.md")
            if item["event_id"] in self.records:
                self.duplicates += 1
            self.records[item["event_id"]] = item
        return 200

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def until(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def serve_and_rate(http, centre, officer, pad, plan) -> None:
    """Per (dossier code or None, level, reasons): issue, serve at counter 1, attach, finish, rate."""
    kiosk = device_auth(centre, "kiosk-1")
    await http.post("/api/v1/counters/1/open", headers=officer)
    for code, level, reasons in plan:
        ticket = (await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=kiosk)).json()
        for step in ("call-next", "start"):
            answer = await http.post(f"/api/v1/counters/1/{step}", headers=officer)
            assert answer.status_code == 200, answer.text
        if code:
            attached = await http.post(f"/api/v1/tickets/{ticket['id']}/dossier", headers=officer,
                                       json={"code": code, "appointment": "2026-12-31"})
            assert attached.status_code == 200, attached.text
        assert (await http.post("/api/v1/counters/1/finish", headers=officer)).status_code == 200
        rated = await http.post("/api/v1/feedback", headers=pad,
                                json={"ticket_id": ticket["id"], "rating": level, "scale": 5, "reasons": reasons})
        assert rated.status_code == 200, rated.text


async def test_webhook_feed_and_daily_csv_reach_a_receiver_signed_complete_and_once(tmp_path) -> None:
    fields = documented_fields()
    assert {"ma_ho_so", "muc_do", "ly_do", "can_bo", "linh_vuc", "event_id", "seq"} <= set(fields)
    receiver = Receiver(fields)
    data = sample_data()
    data["export"] = {"webhook_url": receiver.url, "batch": 3}
    config = parse_config(data, "test")
    try:
        async with running_centre(tmp_path, config=config) as centre, httpx.AsyncClient(base_url=centre.base_url) as http:
            receiver.key = (tmp_path / "var" / "export-webhook.key").read_text().strip().encode()
            assert (tmp_path / "var" / "export-webhook.key").stat().st_mode & 0o777 == 0o600
            officer, pad = await staff_auth(centre), device_auth(centre, "pad-1")
            await serve_and_rate(http, centre, officer, pad,
                                 [("HS-0001", 5, []), ("HS-0002", 1, ["wait", "attitude"]), (None, 3, [])])
            # 2 links + 3 ratings; the first delivery was refused with 503 and retried
            await until(lambda: len(receiver.records) == 5, 30, "five records at the receiver")
            assert centre.exporter.failures >= 1
        # the centre is down; the receiver has everything so far. Restart and rate two more.
        async with running_centre(tmp_path, config=config) as centre, httpx.AsyncClient(base_url=centre.base_url) as http:
            # canbo1 still holds counter 1 (only its holder acts at it): the same officer signs in again
            async with httpx.AsyncClient(base_url=centre.base_url) as fresh:  # no session cookie left on `http`
                login = await fresh.post("/api/v1/login", json={"username": "canbo1", "password": "matkhau-123"})
            assert login.status_code == 200, login.text
            officer, pad = {"Authorization": f"Bearer {login.json()['token']}"}, device_auth(centre, "pad-1")
            await serve_and_rate(http, centre, officer, pad, [("HS-0003", 2, ["documents"]), (None, 4, [])])
            await until(lambda: len(receiver.records) == 8, 30, "eight records at the receiver")
            await asyncio.sleep(2.5)  # a poll later: still nothing more, nothing again
            assert receiver.problems == [] and receiver.duplicates == 0 and len(receiver.records) == 8
            ratings = sorted((r for r in receiver.records.values() if r["loai"] == "danh_gia"), key=lambda r: r["seq"])
            assert [(r["ma_ho_so"], r["muc_do"], r["ly_do"], r["can_bo"]) for r in ratings] == [
                ("HS-0001", 5, [], "canbo1"), ("HS-0002", 1, ["wait", "attitude"], "canbo1"), (None, 3, [], "canbo1"),
                ("HS-0003", 2, ["documents"], "canbo1"), (None, 4, [], "canbo1")]  # counter 1 stayed open as canbo1
            assert ratings[1]["muc_do_ten"] == "Rất không hài lòng" and ratings[1]["ly_do_ten"] == ["Thời gian chờ đợi", "Thái độ cán bộ"]
            assert ratings[0]["linh_vuc"] == "ho-tich" and ratings[0]["kenh"] == "pad" and ratings[0]["thang_do_goc"] == 5
            links = [r for r in receiver.records.values() if r["loai"] == "lien_ket_ho_so"]
            assert sorted(r["ma_ho_so"] for r in links) == ["HS-0001", "HS-0002", "HS-0003"]
            assert all(r["ngay_hen_tra"] == "2026-12-31" and r["can_bo"] == "canbo1" for r in links), links  # cán bộ tiếp nhận
            # the pull feed: the same records, page by page with the cursor; managers only
            manager = await staff_auth(centre, "quanly2", "manager")
            assert (await http.get("/api/v1/export/feed", headers=officer)).status_code == 403
            assert (await http.get("/api/v1/export/feed")).status_code == 401
            pulled, since = [], 0
            while True:
                page = await http.get(f"/api/v1/export/feed?since={since}&limit=3", headers=manager)
                assert page.headers["content-type"].startswith("application/x-ndjson")
                lines = [json.loads(line) for line in page.text.splitlines()]
                if not lines:
                    break
                pulled += lines
                since = int(page.headers["X-Luot-Next-Since"])
            assert {r["event_id"]: r for r in pulled} == receiver.records
            day = ratings[0]["ngay"]
            raw = await http.get(f"/api/v1/export/daily.csv?day={day}", headers=manager)
            assert raw.content.startswith(b"\xef\xbb\xbf")
            table = list(csv.reader(io.StringIO(raw.content.decode("utf-8-sig"))))
            assert "Mã hồ sơ (ma_ho_so)" in table[0] and len(table) == 1 + 8
            column = table[0].index("Lý do không hài lòng (ly_do)")
            assert "wait; attitude" in [row[column] for row in table[1:]]
        # the same feed from the command line, read from the database of the stopped centre
        import subprocess
        import sys

        done = subprocess.run([sys.executable, "-m", "luot.cli", "export", "feed", "--data", str(tmp_path / "var")],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert {json.loads(line)["event_id"] for line in done.stdout.splitlines()} == set(receiver.records)
    finally:
        receiver.close()


async def test_a_receiver_that_is_down_loses_nothing(tmp_path) -> None:
    """No receiver listening: ratings pile up in the log; when it comes up they all arrive."""
    fields = documented_fields()
    receiver = Receiver(fields)
    receiver.refuse_next = 0
    url = receiver.url
    receiver.close()  # the port is closed: connection refused
    data = sample_data()
    data["export"] = {"webhook_url": url}
    async with running_centre(tmp_path, config=parse_config(data, "test")) as centre, httpx.AsyncClient(base_url=centre.base_url) as http:
        officer, pad = await staff_auth(centre), device_auth(centre, "pad-1")
        await serve_and_rate(http, centre, officer, pad, [(None, 5, []), (None, 2, ["other"])])
        await until(lambda: centre.exporter.failures >= 1, 20, "a failed delivery")
        assert centre.exporter.last_error and centre.exporter.delivered == 0
    port = int(url.split(":")[2].split("/")[0])
    up = Receiver(fields)
    up.refuse_next = 0
    up.server.server_close()
    up.server = ThreadingHTTPServer(("127.0.0.1", port), up.server.RequestHandlerClass)
    threading.Thread(target=up.server.serve_forever, daemon=True).start()
    try:
        async with running_centre(tmp_path, config=parse_config(data, "test")) as centre:
            up.key = (tmp_path / "var" / "export-webhook.key").read_text().strip().encode()
            await until(lambda: len(up.records) == 2, 30, "both ratings after the receiver came up")
            assert up.problems == [] and up.duplicates == 0
    finally:
        up.close()
