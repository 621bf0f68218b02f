"""An acknowledged ticket survives kill -9, and no number is ever repeated after a restart."""

from __future__ import annotations

import json
import sqlite3
import threading
import time

import httpx

from tests.helpers.process import ServerProcess


def _hammer(url: str, auth: dict[str, str], acked: list[tuple[int, str]], stop: threading.Event) -> None:
    with httpx.Client(base_url=url, timeout=5) as http:
        while not stop.is_set():
            try:
                answer = http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=auth)
            except httpx.HTTPError:
                return  # the server died under us: whatever was not answered was not acknowledged
            if answer.status_code == 201:
                body = answer.json()
                acked.append((body["number"], body["token"]))


def test_kill_9_under_load_loses_no_acknowledged_ticket(tmp_path):
    data = tmp_path / "var"
    server = ServerProcess(data).start()
    secrets = json.loads((data / "secrets.json").read_text())
    auth = {"Authorization": f"Bearer kiosk-1:{secrets['kiosk-1']}"}
    acked: list[tuple[int, str]] = []
    try:
        for _round in range(2):
            stop = threading.Event()
            threads = [threading.Thread(target=_hammer, args=(server.url, auth, acked, stop)) for _ in range(8)]
            for thread in threads:
                thread.start()
            target = len(acked) + 150
            deadline = time.monotonic() + 60
            while len(acked) < target and time.monotonic() < deadline:
                time.sleep(0.01)
            server.kill9()  # requests are still in flight
            stop.set()
            for thread in threads:
                thread.join()
            server = ServerProcess(data, port=server.port).start()

        assert len(acked) >= 300
        numbers = [number for number, _ in acked]
        assert len(set(numbers)) == len(numbers), "an acknowledged number was handed out twice"
        with httpx.Client(base_url=server.url) as http:
            for number, token in acked:
                tracked = http.get(f"/api/v1/track/{token}")
                assert tracked.status_code == 200, f"acknowledged ticket {number} was lost"
                assert tracked.json()["number"] == number
            fresh = http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=auth).json()["number"]
        assert fresh > max(numbers), "numbering continues after the restart"
    finally:
        server.stop()
    with sqlite3.connect(data / "luot.sqlite3") as db:
        duplicates = db.execute("SELECT day, grp, number, COUNT(*) FROM tickets GROUP BY 1, 2, 3 HAVING COUNT(*) > 1").fetchall()
        assert duplicates == []
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
