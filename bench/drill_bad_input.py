"""Drill: bad input never crashes the server or costs a ticket.

1. Ten thousand malformed MQTT payloads (not UTF-8, not JSON, wrong version, unknown and
   out-of-range fields, huge strings, empty) to the feedback topic with a pad's own credentials and
   to the assistance topic with a kiosk's own credentials; then one good assistance request, which
   must be recorded, and the server must still answer /health.
2. schemathesis against the server's OpenAPI document (``--checks all``), once per identity
   (manager session, kiosk, pad), with a seed. Any 500 is a bug (counted from the server log, where
   the API logs every unexpected error, and from schemathesis' own report).

Prints what was lost or broken (the answer must be 0) and exits 1 otherwise.

    .venv/bin/python bench/drill_bad_input.py [--payloads 10000] [--max-examples 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from drill_kill9 import all_events  # noqa: E402
from loadkit import Centre, Http  # noqa: E402


def malformed(rng: random.Random, i: int) -> bytes:
    """One of many ways a device (or a fault) can spoil a payload."""
    choices = [
        lambda: b"",
        lambda: bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64))),
        lambda: b"\xff\xfe not utf-8 \xc3\x28",
        lambda: b"{not json",
        lambda: b"[1, 2, 3]",
        lambda: b"null",
        lambda: json.dumps({"v": 2, "kind": "feedback", "data": {}}).encode(),
        lambda: json.dumps({"v": 1, "kind": "feedback"}).encode(),
        lambda: json.dumps({"v": 1, "kind": "feedback", "data": "x"}).encode(),
        lambda: json.dumps({"v": 1, "kind": "feedback", "data": {"ticket_id": "t1", "rating": 5000, "request_id": "r"}}).encode(),
        lambda: json.dumps({"v": 1, "kind": "feedback", "data": {"ticket_id": "t1", "rating": 4, "request_id": "r",
                                                                 "name": "Nguyễn Văn A"}}).encode(),
        lambda: json.dumps({"v": 1, "kind": "assistance", "data": {"request_id": "x" * 500}}).encode(),
        lambda: json.dumps({"v": 1, "kind": "assistance", "data": {"request_id": "", "reason": "dance"}}).encode(),
        lambda: json.dumps({"v": 1, "kind": "feedback", "data": {"ticket_id": None, "rating": "4"}}).encode(),
        lambda: b"{" * 5000,
        lambda: json.dumps({"v": 1, "kind": "feedback", "data": {"ticket_id": "t-unknown", "rating": 3,
                                                                 "request_id": f"r{i}"}}).encode(),  # valid shape, no such ticket
        lambda: b"x" * 20000,  # over the 16 KB limit
    ]
    return rng.choice(choices)()


def flood(centre: Centre, count: int) -> int:
    """Publish ``count`` malformed payloads at QoS 1 from pad-1 and kiosk-1; returns PUBACKs."""
    rng = random.Random(42)
    acked = 0
    clients = []
    for device, topic in (("pad-1", centre.topics.feedback("pad-1")), ("kiosk-1", centre.topics.assistance("kiosk-1"))):
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device, protocol=mqtt.MQTTv311)
        client.username_pw_set(device, centre.credentials.password(device))
        client.max_inflight_messages_set(100)
        client.connect("127.0.0.1", centre.mqtt_port)
        client.loop_start()
        clients.append((client, topic))
    infos = []
    for i in range(count):
        client, topic = clients[i % 2]
        infos.append(client.publish(topic, malformed(rng, i), qos=1))
    for info in infos:
        info.wait_for_publish(30)
        acked += info.is_published()
    for client, _ in clients:
        client.disconnect()
        client.loop_stop()
    return acked


def schemathesis(centre: Centre, header: str, max_examples: int, workdir: Path) -> tuple[int, str]:
    """Run the schemathesis CLI with one identity; returns (exit code, summary line)."""
    binary = Path(sys.executable).with_name("schemathesis")
    command = [str(binary), "run", f"{centre.url}/openapi.json", "--checks", "all", "--max-examples",
               str(max_examples), "--seed", "42", "--workers", "1", "-H", header]
    done = subprocess.run(command, capture_output=True, text=True, cwd=workdir, timeout=900,
                          env={**os.environ, "NO_COLOR": "1"})
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    summary = next((line for line in reversed(lines) if re.search(r"\d+ (passed|failed)", line)), lines[-1] if lines else "")
    server_errors = len(re.findall(r"Server error", done.stdout))
    return server_errors, summary.strip(" =")


async def drill(directory: Path, payloads: int = 10_000, max_examples: int = 50, fuzz: bool = True) -> dict:
    centre = Centre(directory)
    result: dict = {}
    try:
        centre.start_broker()
        centre.start_server()
        staff = await centre.staff_header()
        async with Http(centre.url, centre.device_header("kiosk-2")) as kiosk:  # a ticket that must survive
            status, body = await kiosk.request("POST", "/api/v1/tickets", {"group": "ho-tich"})
            assert status == 201, body
            before = body["id"]
        started = time.perf_counter()
        result["pubacks"] = await asyncio.to_thread(flood, centre, payloads)
        result["flood_seconds"] = time.perf_counter() - started
        good_id = "drill-good-0001"
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="kiosk-1", protocol=mqtt.MQTTv311)
        client.username_pw_set("kiosk-1", centre.credentials.password("kiosk-1"))
        client.connect("127.0.0.1", centre.mqtt_port)
        client.loop_start()
        client.publish(centre.topics.assistance("kiosk-1"),
                       json.dumps({"v": 1, "kind": "assistance", "data": {"request_id": good_id, "reason": "help"}}),
                       qos=1).wait_for_publish(10)
        client.disconnect()
        client.loop_stop()
        good = False
        deadline = time.perf_counter() + 60  # the server works through the flood first
        while time.perf_counter() < deadline and not good:
            events = await all_events(centre, staff)
            good = any(e["type"] == "assistance.requested" and e["data"].get("request_id") == good_id for e in events)
            await asyncio.sleep(0.5)
        result["good_message_recorded"] = good
        result["ticket_kept"] = any(e["type"] == "ticket.issued" and e["data"]["ticket_id"] == before for e in events)
        async with Http(centre.url) as http:
            status, health = await http.request("GET", "/health")
        result["healthy"] = status == 200 and health["mqtt"]
        if fuzz:
            pad = centre.device_header("pad-1")["Authorization"]
            kiosk = centre.device_header("kiosk-1")["Authorization"]
            runs = {}
            for name, header in (("manager", staff["Authorization"]), ("kiosk", kiosk), ("pad", pad)):
                runs[name] = schemathesis(centre, f"Authorization: {header}", max_examples, directory)
            result["schemathesis"] = runs
            async with Http(centre.url) as http:
                status, _ = await http.request("GET", "/health")
            result["healthy_after_fuzz"] = status == 200
        assert centre.server is not None
        server_log = centre.server.log.read_text("utf-8", errors="replace")
        result["server_500s"] = server_log.count("unexpected error")
        result["server_alive"] = centre.server.proc is not None and centre.server.proc.poll() is None
    finally:
        centre.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--payloads", type=int, default=10_000)
    parser.add_argument("--max-examples", type=int, default=50)
    parser.add_argument("--no-fuzz", action="store_true", help="skip schemathesis")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="luot-drill-input-") as tmp:
        r = asyncio.run(drill(Path(tmp), args.payloads, args.max_examples, not args.no_fuzz))
    print(f"{args.payloads} malformed MQTT payloads ({r['pubacks']} acknowledged by the broker) in {r['flood_seconds']:.1f} s; "
          f"good message afterwards recorded: {r['good_message_recorded']}; earlier ticket kept: {r['ticket_kept']}; "
          f"server healthy: {r['healthy']}")
    for name, (errors, summary) in r.get("schemathesis", {}).items():
        print(f"schemathesis as {name:8s}: server errors {errors}; {summary}")
    print(f"server 500s in its log: {r['server_500s']}   server process alive: {r['server_alive']}")
    bad = (not r["good_message_recorded"] or not r["ticket_kept"] or not r["healthy"] or r["server_500s"]
           or not r["server_alive"] or any(e for e, _ in r.get("schemathesis", {}).values())
           or not r.get("healthy_after_fuzz", True))
    print(f"LOST or broken: {0 if not bad else 1}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
