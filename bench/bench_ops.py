"""Durable ticket operations per second: engine alone, through the service (SQLite group commit),
and over HTTP. Figures are printed, never asserted; compare them within one run.

    .venv/bin/python bench/bench_ops.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import itertools
import asyncio
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from luot.config import load_config  # noqa: E402
from server.engine import QueueEngine  # noqa: E402
from server.service import CentreService  # noqa: E402
from server.storage import Storage  # noqa: E402
from tests.helpers.centre import device_auth, running_centre  # noqa: E402

GROUPS = ["ho-tich", "chung-thuc", "cu-tru", "khac"]
# shared round robin, so each simulated day spreads its 3,000 tickets evenly over the groups
turns = itertools.cycle(GROUPS)


def bench_engine(seconds: float) -> float:
    config = load_config()
    engine = QueueEngine(config)
    now = datetime(2026, 11, 23, 1, tzinfo=timezone.utc)
    for counter in config.counters:
        engine.open_counter(counter.number, f"o{counter.number}", now)
    ops, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        for group in GROUPS:
            engine.issue(group, now)
        for counter in (1, 2, 3, 5, 6):
            ticket, _ = engine.call_next(counter, now)
            ops += 1
            if ticket is not None:
                engine.finish(counter, now)
                ops += 1
        ops += len(GROUPS)
        now += timedelta(milliseconds=1)
        if engine.numbering.next_number.get("ho-tich", 0) > 1900:  # numbers run out: on to the next day
            now += timedelta(days=1)
            for counter in config.counters:
                engine.open_counter(counter.number, f"o{counter.number}", now)
    return ops / seconds


async def bench_service(seconds: float, clients: int) -> tuple[float, float]:
    config = load_config()
    with tempfile.TemporaryDirectory() as tmp:
        storage = await Storage.open(Path(tmp) / "bench.sqlite3", config.zone)
        ops = 0
        start = datetime(2026, 11, 23, 1, tzinfo=timezone.utc)
        # each simulated day holds 3,000 tickets (750 a group, under each group's 999 numbers)
        service = await CentreService.start(config, storage, clock=lambda: start + timedelta(days=ops // 3000))
        end = time.perf_counter() + seconds

        async def client(i: int) -> None:
            nonlocal ops
            while time.perf_counter() < end:
                group = next(turns)
                await service.run(lambda e, now: e.issue(group, now))
                ops += 1

        await asyncio.gather(*(client(i) for i in range(clients)))
        rate = ops / seconds
        per_commit = storage.committed_events / max(storage.commits, 1)
        await storage.close()
        return rate, per_commit


async def bench_http(seconds: float, clients: int) -> float:
    ops = 0
    start = datetime(2026, 11, 23, 1, tzinfo=timezone.utc)
    with tempfile.TemporaryDirectory() as tmp:
        async with running_centre(Path(tmp), clock=lambda: start + timedelta(days=ops // 3000)) as centre:
            auth = device_auth(centre, "kiosk-1")
            end = time.perf_counter() + seconds

            async def client(i: int) -> None:
                nonlocal ops
                async with httpx.AsyncClient(base_url=centre.base_url) as http:
                    while time.perf_counter() < end:
                        answer = await http.post("/api/v1/tickets", json={"group": next(turns)}, headers=auth)
                        assert answer.status_code == 201
                        ops += 1

            await asyncio.gather(*(client(i) for i in range(clients)))
            return ops / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    print(f"engine only (no I/O):            {bench_engine(args.seconds):10.0f} commands/s")
    for clients in (1, 8, 32):
        rate, batch = asyncio.run(bench_service(args.seconds, clients))
        print(f"durable via service, {clients:2d} clients: {rate:10.0f} acknowledged ops/s  ({batch:.1f} events per commit)")
    for clients in (1, 8):
        print(f"durable over HTTP,   {clients:2d} clients: {asyncio.run(bench_http(args.seconds, clients)):10.0f} tickets/s")


if __name__ == "__main__":
    main()
