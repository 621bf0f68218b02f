"""/metrics: what Prometheus reads is what the queue shows, scraped by the real Prometheus server."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from luot.config import load_config, parse_config
from luot.mqtt_client import QOS, new_client
from luot.protocol import Topics
from tests.helpers.centre import ManualClock, device_auth, running_centre, staff_auth
from tests.helpers.mqtt import free_port

pytestmark = pytest.mark.asyncio
PROMETHEUS = "/usr/bin/prometheus"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape as (name, sorted labels) -> value."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(scrape: dict, name: str, **labels: str) -> float:
    return scrape[(name, tuple(sorted(labels.items())))]


async def scrape(http: httpx.AsyncClient, **headers: str) -> dict:
    answer = await http.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return samples(answer.text)


async def test_metrics_read_the_queue_devices_streams_and_commits(tmp_path):
    clock = ManualClock()
    async with running_centre(tmp_path, mqtt=True, clock=clock) as centre:
        assert await centre.link.wait_connected(10)
        async with httpx.AsyncClient(base_url=centre.base_url, timeout=10) as http:
            kiosk = device_auth(centre, "kiosk-1")
            for group in ("ho-tich", "ho-tich", "ho-tich", "chung-thuc"):
                (await http.post("/api/v1/tickets", json={"group": group}, headers=kiosk)).raise_for_status()
                clock.advance(minutes=1)
            officer = await staff_auth(centre)
            (await http.post("/api/v1/counters/2/open", headers=officer)).raise_for_status()
            called = (await http.post("/api/v1/counters/2/call-next", headers=officer)).json()["ticket"]
            (await http.post("/api/v1/counters/2/finish", headers=officer)).raise_for_status()
            clock.advance(minutes=2)

            # kiosk-2 says it is online, as a real kiosk does, on its own retained availability topic
            topics = Topics(centre.config.centre.id)
            device = new_client("kiosk-2", centre.credentials.password("kiosk-2"), persistent=False, reconnect=(1, 5))
            device.connect(centre.mqtt_host, centre.mqtt_port)
            device.loop_start()
            try:
                device.publish(topics.device_availability("kiosk-2"), b"online", qos=QOS, retain=True).wait_for_publish(5)
                deadline = time.monotonic() + 20
                while centre.link.devices_status()["kiosk-2"].status != "online":
                    assert time.monotonic() < deadline, "the server never heard kiosk-2's availability"
                    await asyncio.sleep(0.05)

                async with http.stream("GET", "/api/v1/stream", headers=officer) as stream:
                    async for _chunk in stream.aiter_text():
                        break  # the stream is open and has sent its first state
                    seen = await scrape(http)
            finally:
                device.disconnect()
                device.loop_stop()

        snapshot = centre.service.engine.snapshot(clock())
        for group in snapshot["groups"]:
            assert value(seen, "luot_waiting", group=group) == snapshot["groups"][group]["waiting"]
        assert value(seen, "luot_waiting", group="ho-tich") == 2
        assert value(seen, "luot_waiting", group="chung-thuc") == 1
        # tickets at minutes 0, 1, 2 (ho-tich) and 3 (chung-thuc), scraped at minute 6; the first left the line
        served_group = called["group"]
        assert served_group == "ho-tich"
        assert value(seen, "luot_longest_wait_seconds", group="ho-tich") == 5 * 60
        assert value(seen, "luot_longest_wait_seconds", group="chung-thuc") == 3 * 60
        assert value(seen, "luot_tickets_issued_total", group="ho-tich") == 3
        assert value(seen, "luot_tickets_issued_total", group="chung-thuc") == 1
        assert value(seen, "luot_tickets_served_total", group="ho-tich") == 1
        assert value(seen, "luot_tickets_served_total", group="chung-thuc") == 0
        assert value(seen, "luot_counters_open") == 1
        assert value(seen, "luot_counters", status="idle") == 1
        assert value(seen, "luot_device_up", device="kiosk-2", role="kiosk") == 1
        assert value(seen, "luot_device_up", device="pad-1", role="pad") == 0
        assert value(seen, "luot_mqtt_connected") == 1
        assert value(seen, "luot_sse_clients", kind="staff") == 1
        # 4 tickets + open + call + finish, each awaited its own commit (the login is no engine command)
        assert value(seen, "luot_commit_seconds_count") == 7
        assert 0 < value(seen, "luot_commit_seconds_sum") < 60
        text = json.dumps([list(k) for k in seen])
        assert "token" not in text and "Bearer" not in text


async def test_two_centres_in_one_process_each_report_their_own(tmp_path):
    async with running_centre(tmp_path / "a") as first, running_centre(tmp_path / "b") as second:
        async with httpx.AsyncClient(base_url=first.base_url) as a, httpx.AsyncClient(base_url=second.base_url) as b:
            (await a.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=device_auth(first, "kiosk-1"))).raise_for_status()
            assert value(await scrape(a), "luot_waiting", group="ho-tich") == 1
            assert value(await scrape(b), "luot_waiting", group="ho-tich") == 0
            assert value(await scrape(b), "luot_commit_seconds_count") == 0


async def test_a_metrics_token_is_required_once_configured(tmp_path):
    raw = load_config().model_dump(mode="json", exclude_none=True)
    raw["metrics"] = {"token": "prom-secret-0123456789"}
    async with running_centre(tmp_path, config=parse_config(raw)) as centre:
        async with httpx.AsyncClient(base_url=centre.base_url) as http:
            refused = await http.get("/metrics")
            assert refused.status_code == 401 and refused.json()["message"] and refused.json()["message_en"]
            assert (await http.get("/metrics", headers={"Authorization": "Bearer wrong-token-0123456789"})).status_code == 401
            assert value(await scrape(http, Authorization="Bearer prom-secret-0123456789"), "luot_counters_open") == 0


def prometheus_config(target: str, path: Path, token: str | None = None) -> Path:
    """The scrape configuration docs/monitoring.md documents, with a 1 s interval for the test."""
    auth = f"    authorization:\n      credentials: {token}\n" if token else ""
    path.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        "  - job_name: luot\n"
        "    metrics_path: /metrics\n"
        f"{auth}"
        "    static_configs:\n"
        f"      - targets: ['{target}']\n"
        "        labels:\n          centre: hn-cua-nam\n", encoding="utf-8")
    return path


def query(base: str, expression: str) -> list[dict]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
    with urllib.request.urlopen(url, timeout=5) as answer:
        body = json.load(answer)
    assert body["status"] == "success", body
    return body["data"]["result"]


async def prometheus_answer(process: subprocess.Popen, tmp_path: Path, base: str, expression: str, good,
                            seconds: float = 90) -> list[dict]:
    """Ask Prometheus until its answer is ``good`` (it scrapes every second; start-up takes a few)."""
    deadline = time.monotonic() + seconds
    result: list[dict] = []
    while time.monotonic() < deadline:
        assert process.poll() is None, (tmp_path / "prometheus.log").read_text()[-2000:]
        try:
            result = await asyncio.to_thread(query, base, expression)
        except OSError:
            result = []
        if good(result):
            return result
        await asyncio.sleep(0.5)
    raise AssertionError(f"Prometheus answered {result} for {expression}: "
                         + (tmp_path / "prometheus.log").read_text()[-2000:])


async def test_the_real_prometheus_scrapes_the_waiting_count(tmp_path):
    if not shutil.which(PROMETHEUS):
        pytest.fail("prometheus is not installed (apt install prometheus): this test runs the real server")
    token = "prom-secret-0123456789"
    raw = load_config().model_dump(mode="json", exclude_none=True)
    raw["metrics"] = {"token": token}
    async with running_centre(tmp_path, config=parse_config(raw)) as centre:
        async with httpx.AsyncClient(base_url=centre.base_url) as http:
            for _ in range(5):
                (await http.post("/api/v1/tickets", json={"group": "chung-thuc"}, headers=device_auth(centre, "kiosk-1"))).raise_for_status()
        expected = centre.service.engine.snapshot(centre.service.now())["groups"]["chung-thuc"]["waiting"]
        assert expected == 5
        port = free_port()
        conf = prometheus_config(f"127.0.0.1:{centre.http_port}", tmp_path / "prometheus.yml", token)
        log = open(tmp_path / "prometheus.log", "wb")
        process = subprocess.Popen([PROMETHEUS, f"--config.file={conf}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                    f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{port}"
            waiting = 'luot_waiting{group="chung-thuc"}'
            [series] = await prometheus_answer(process, tmp_path, base, waiting, lambda result: bool(result))
            assert float(series["value"][1]) == expected
            assert series["metric"]["centre"] == "hn-cua-nam" and series["metric"]["job"] == "luot"
            up = await asyncio.to_thread(query, base, 'up{job="luot"}')
            assert float(up[0]["value"][1]) == 1

            async with httpx.AsyncClient(base_url=centre.base_url) as http:  # the queue grows; Prometheus follows
                for _ in range(2):
                    (await http.post("/api/v1/tickets", json={"group": "chung-thuc"}, headers=device_auth(centre, "kiosk-2"))).raise_for_status()
            expected = centre.service.engine.snapshot(centre.service.now())["groups"]["chung-thuc"]["waiting"]
            assert expected == 7
            await prometheus_answer(process, tmp_path, base, waiting,
                                    lambda result: bool(result) and float(result[0]["value"][1]) == expected)
        finally:
            process.terminate()
            try:
                await asyncio.to_thread(process.wait, 15)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait)
            log.close()
