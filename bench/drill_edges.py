"""Drill: what one misbehaving client on the hall's Wi-Fi can take from the centre's server.

Against a real ``luot server`` child process and a real Mosquitto (bench/loadkit.py), four attacks,
one after the other; during each, a kiosk takes tickets and the console's live stream waits for an
assistance request, as on a working morning:

1. ``idle``: 1,500 connections opened and left silent by ten phones (the header deadline closes them);
2. ``streams``: 2,000 live streams opened on one public ticket by one phone (the per-address cap
   and the stream budgets per ticket and overall);
3. ``body``: a 200 MB request body, declared and then chunked (refused at 1 MB, before login);
4. ``logins``: 100 wrong logins a second for ten seconds.

Prints, per attack: the kiosk's ticket times (max must stay under 1 s), the time for the console to
hear the assistance request, the server's RSS, and what the attack got. Figures, never asserted.

    .venv/bin/python bench/drill_edges.py [--only idle,streams,body,logins]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psutil  # noqa: E402

from loadkit import Centre, Http, percentile  # noqa: E402
from server.http_limits import raise_open_files_limit  # noqa: E402

ATTACKER = "127.0.0.2"  # the misbehaving phone: another machine of the hall, as the kiosk is


async def kiosk_times(centre: Centre, count: int = 10, pause: float = 0.3) -> list[float]:
    """Seconds each of ``count`` tickets took, on a fresh kiosk connection each (as a kiosk that
    woke up would); a failure counts as infinity."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        try:
            async with Http(centre.url, centre.device_header("kiosk-1")) as http:
                status, _ = await asyncio.wait_for(http.request("POST", "/api/v1/tickets", {"group": "ho-tich"}), 5)
            times.append(time.perf_counter() - started if status == 201 else float("inf"))
        except (OSError, ConnectionError, asyncio.TimeoutError):
            times.append(float("inf"))
        await asyncio.sleep(pause)
    return times


async def console_hears_assistance(centre: Centre, staff: dict[str, str], request_id: str) -> float:
    """Seconds from a kiosk's assistance request to the console's live stream carrying it."""
    host, port = centre.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        head = f"GET /api/v1/stream HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: {staff['Authorization']}\r\n\r\n"
        writer.write(head.encode())
        status = await asyncio.wait_for(reader.readline(), 5)
        if b" 200 " not in status:
            return float("inf")
        started = time.perf_counter()
        async with Http(centre.url, centre.device_header("kiosk-1")) as http:
            await http.request("POST", "/api/v1/assistance", {"request_id": request_id, "reason": "help"})

        async def wait() -> None:
            while True:
                line = await reader.readline()
                if not line:
                    raise ConnectionError("stream closed")
                if request_id.encode() in line:
                    return

        await asyncio.wait_for(wait(), 5)
        return time.perf_counter() - started
    except (OSError, ConnectionError, asyncio.TimeoutError):
        return float("inf")
    finally:
        writer.close()


async def attack_idle(centre: Centre, stop: asyncio.Event) -> str:
    host, port = centre.url.removeprefix("http://").split(":")
    opened, closed = [], 0
    for index in range(1500):  # ten phones (127.0.1.1-10), 150 silent connections each
        try:
            opened.append(await asyncio.open_connection(host, int(port), local_addr=(f"127.0.1.{1 + index % 10}", 0)))
        except OSError:
            break
    await stop.wait()
    for reader, writer in opened:
        if reader.at_eof() or (await _eof_soon(reader)):
            closed += 1
        writer.close()
    return f"{len(opened)} idle connections opened, {closed} closed by the server"


async def _eof_soon(reader: asyncio.StreamReader) -> bool:
    try:
        return await asyncio.wait_for(reader.read(1), 0.01) == b""
    except asyncio.TimeoutError:
        return False
    except ConnectionError:
        return True


async def attack_streams(centre: Centre, stop: asyncio.Event) -> str:
    async with Http(centre.url, centre.device_header("kiosk-1")) as http:
        _, ticket = await http.request("POST", "/api/v1/tickets", {"group": "cu-tru"})
    token = ticket["tracking_url"].rsplit("/", 1)[1]
    host, port = centre.url.removeprefix("http://").split(":")
    statuses: dict[str, int] = {}
    writers = []
    for _ in range(2000):
        try:
            reader, writer = await asyncio.open_connection(host, int(port), local_addr=(ATTACKER, 0))
        except OSError:
            statuses["connect failed"] = statuses.get("connect failed", 0) + 1
            continue
        writer.write(f"GET /api/v1/track/{token}/stream HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        writers.append((reader, writer))
    for reader, _ in writers:
        try:
            line = (await asyncio.wait_for(reader.readline(), 5)).decode().split()
            code = line[1] if len(line) > 1 else "closed"
        except ConnectionError:
            code = "cut by the server"
        except asyncio.TimeoutError:
            code = "no answer"
        statuses[code] = statuses.get(code, 0) + 1
    await stop.wait()
    for _, writer in writers:
        writer.close()
    return "2,000 stream requests on one ticket: " + ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items()))


async def attack_body(centre: Centre, stop: asyncio.Event) -> str:
    host, port = centre.url.removeprefix("http://").split(":")
    results = []
    for chunked in (False, True):
        reader, writer = await asyncio.open_connection(host, int(port), local_addr=(ATTACKER, 0))
        framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {200 * 1024 * 1024}"
        writer.write(f"POST /api/v1/tickets HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                     f"{framing}\r\n\r\n".encode())
        answer = asyncio.create_task(reader.readline())
        sent = 0
        block = b"x" * (1024 * 1024)
        try:
            while sent < 200 * 1024 * 1024 and not answer.done():
                writer.write((b"%x\r\n%s\r\n" % (len(block), block)) if chunked else block)
                await writer.drain()
                sent += len(block)
        except ConnectionError:
            pass
        try:
            status = (await asyncio.wait_for(answer, 5)).decode().split()[1]
        except (ConnectionError, IndexError):
            status = "none (connection cut by the server)"
        except asyncio.TimeoutError:
            status = "none (no answer in 5 s)"
        writer.close()
        results.append(f"{'chunked' if chunked else 'declared'}: HTTP {status} after {sent // (1024 * 1024)} MB sent")
    await stop.wait()
    return "200 MB body — " + "; ".join(results)


async def attack_logins(centre: Centre, stop: asyncio.Event) -> str:
    answers: dict[int, int] = {}
    started = time.perf_counter()
    sent = 0

    async def one(index: int) -> None:
        try:
            async with Http(centre.url, local_addr=ATTACKER) as http:
                status, _ = await asyncio.wait_for(http.request(
                    "POST", "/api/v1/login", {"username": f"quanly" if index % 2 else f"nobody{index}", "password": "sai"}), 10)
        except (OSError, ConnectionError, asyncio.TimeoutError):
            status = 0
        answers[status] = answers.get(status, 0) + 1

    tasks = []
    while not stop.is_set() and time.perf_counter() - started < 10:
        tasks.append(asyncio.create_task(one(sent)))
        sent += 1
        await asyncio.sleep(0.01)
    await asyncio.gather(*tasks)
    await stop.wait()
    return f"{sent} wrong logins in {time.perf_counter() - started:.1f} s; answers " + \
        ", ".join(f"{k}: {v}" for k, v in sorted(answers.items()))


ATTACKS: dict[str, Callable[[Centre, asyncio.Event], Awaitable[str]]] = {
    "idle": attack_idle, "streams": attack_streams, "body": attack_body, "logins": attack_logins}


async def drill(centre: Centre, names: list[str]) -> list[dict[str, Any]]:
    staff = await centre.staff_header()
    process = psutil.Process(centre.pid)
    rows = []
    quiet = await kiosk_times(centre, 5, 0.1)
    rows.append({"attack": "none", "kiosk_max_s": max(quiet), "kiosk_p50_s": percentile(quiet, 0.5),
                 "assistance_s": await console_hears_assistance(centre, staff, "quiet-1"),
                 "server_rss_mb": process.memory_info().rss / 1e6, "what": "quiet baseline"})
    for name in names:
        stop = asyncio.Event()
        attack = asyncio.create_task(ATTACKS[name](centre, stop))
        await asyncio.sleep(3.0)  # let the attack take hold
        peak_rss = process.memory_info().rss
        times = await kiosk_times(centre)
        heard = await console_hears_assistance(centre, staff, f"{name}-1")
        peak_rss = max(peak_rss, process.memory_info().rss)
        if name == "idle":
            await asyncio.sleep(12)  # past the header deadline: the server lets them go
        stop.set()
        what = await attack
        rows.append({"attack": name, "kiosk_max_s": max(times), "kiosk_p50_s": percentile(times, 0.5),
                     "assistance_s": heard, "server_rss_mb": peak_rss / 1e6, "what": what,
                     "kiosk_ms": [round(t * 1000) for t in times]})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(ATTACKS))
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n]
    soft, hard = raise_open_files_limit()
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}, drill open-files limit {soft}")
    with tempfile.TemporaryDirectory() as tmp:
        centre = Centre(Path(tmp))
        try:
            centre.start_broker()
            centre.start_server()
            rows = asyncio.run(drill(centre, names))
        finally:
            centre.close()
    print(f"{'attack':8} {'kiosk max':>10} {'kiosk p50':>10} {'help heard':>11} {'server RSS':>11}  what the attack got")
    for row in rows:
        print(f"{row['attack']:8} {row['kiosk_max_s'] * 1000:8.0f}ms {row['kiosk_p50_s'] * 1000:8.0f}ms "
              f"{row['assistance_s'] * 1000:9.0f}ms {row['server_rss_mb']:9.0f}MB  {row['what']}")
    print(json.dumps(rows, ensure_ascii=False, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
