"""Drill: a kiosk loses the network for ten minutes while it keeps printing tickets.

Before the cut the kiosk leases a block of numbers per group (POST /api/v1/leases). Cut off, it
issues tickets from its blocks on its own (Poisson, ``--per-minute``), each with a fresh 128-bit
token and the time it printed it, while the other kiosk keeps issuing online and counters keep
calling. Back online it hands them over (POST /api/v1/offline-tickets), and hands them over a
second time, as a kiosk whose answers were lost would. Then every offline ticket must be on the
server exactly once, in line at the time it was printed, and no number may be used twice.

The cut lasts ``--minutes`` (default 10) of simulated time, run ``--speed`` times faster than
real time (default 20: 30 s). ``--speed 1`` makes it a real ten minutes.

    .venv/bin/python bench/drill_offline_kiosk.py [--minutes 10] [--speed 20] [--per-minute 3]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from drill_kill9 import all_events  # noqa: E402
from loadkit import Centre, Http  # noqa: E402


async def drill(directory: Path, minutes: float = 10.0, speed: float = 20.0, per_minute: float = 3.0,
                seed: int = 3) -> dict:
    rng = random.Random(seed)
    centre = Centre(directory)
    groups = [g.code for g in centre.config.groups]
    offline: list[dict] = []
    online: list[tuple[str, int]] = []
    problems: list[str] = []
    try:
        centre.start_broker()
        centre.start_server()
        staff = await centre.staff_header()
        kiosk_header = centre.device_header("kiosk-1")
        blocks: dict[str, list[int]] = {}
        async with Http(centre.url, kiosk_header) as kiosk:
            for group in groups:
                status, body = await kiosk.request("POST", "/api/v1/leases", {"group": group, "size": 50})
                assert status == 200, body
                blocks[group] = list(range(body["first"], body["last"] + 1))
        # --- the cut: kiosk-1 prints on its own; kiosk-2 and the counters carry on online
        end = time.perf_counter() + minutes * 60 / speed

        async def offline_kiosk() -> None:
            while True:
                await asyncio.sleep(rng.expovariate(per_minute) * 60 / speed)
                if time.perf_counter() >= end:
                    return
                group = rng.choice(groups)
                if not blocks[group]:
                    continue  # a real kiosk would stop offering that group
                offline.append({"group": group, "number": blocks[group].pop(0),
                                "issued_at": datetime.now(timezone.utc).isoformat(),
                                "token": secrets.token_urlsafe(16)})

        async def online_hall() -> None:
            async with Http(centre.url, centre.device_header("kiosk-2")) as kiosk, Http(centre.url, staff) as officer:
                await officer.request("POST", "/api/v1/counters/1/open")
                while time.perf_counter() < end:
                    group = rng.choice(groups)
                    status, body = await kiosk.request("POST", "/api/v1/tickets", {"group": group})
                    if status == 201:
                        online.append((body["group"], body["number"]))
                    else:
                        problems.append(f"online issue {status}")
                    status, body = await officer.request("POST", "/api/v1/counters/1/call-next")
                    if status == 200 and body["ticket"]:
                        await officer.request("POST", "/api/v1/counters/1/finish")
                    await asyncio.sleep(rng.expovariate(per_minute) * 60 / speed)

        await asyncio.gather(offline_kiosk(), online_hall())
        # --- back online: hand everything over, twice
        answers: dict[int, str] = {}
        async with Http(centre.url, kiosk_header) as kiosk:
            for attempt in range(2):
                for ticket in offline:
                    status, body = await kiosk.request("POST", "/api/v1/offline-tickets", ticket)
                    if status != 200:
                        problems.append(f"upload {status} {body}")
                        continue
                    if attempt == 0:
                        answers[ticket["number"]] = body["id"]
                    elif answers.get(ticket["number"]) != body["id"]:
                        problems.append(f"second upload of {ticket['number']} made another ticket")
        events = await all_events(centre, staff)
    finally:
        centre.close()
    issued = [e for e in events if e["type"] == "ticket.issued"]
    offline_logged = {e["data"]["number"]: e for e in issued if e["data"].get("offline")}
    lost = [t for t in offline if t["number"] not in offline_logged]
    misplaced = [t for t in offline if t["number"] in offline_logged
                 and offline_logged[t["number"]]["data"]["issued_at"] != t["issued_at"]]
    numbers = [(e["data"]["group"], e["data"]["number"]) for e in issued]
    duplicates = len(numbers) - len(set(numbers))
    leased = {(t["group"], t["number"]) for t in offline}
    clashes = [n for n in online if n in leased]
    return {"offline": len(offline), "online": len(online), "lost": len(lost), "duplicates": duplicates,
            "clashes": len(clashes), "misplaced": len(misplaced), "problems": problems}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the network cut (simulated minutes)")
    parser.add_argument("--speed", type=float, default=20.0, help="how much faster than real time (1 = real)")
    parser.add_argument("--per-minute", type=float, default=3.0, help="tickets per simulated minute at each kiosk")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="luot-drill-offline-") as tmp:
        result = asyncio.run(drill(Path(tmp), args.minutes, args.speed, args.per_minute))
    print(f"kiosk offline {args.minutes:g} min (x{args.speed:g}): {result['offline']} tickets printed offline, "
          f"{result['online']} issued online meanwhile; each offline ticket uploaded twice")
    print(f"LOST offline tickets: {result['lost']}   duplicate numbers: {result['duplicates']}   "
          f"online numbers inside a leased block: {result['clashes']}   out of place: {result['misplaced']}   "
          f"problems: {len(result['problems'])} {result['problems'][:3]}")
    bad = result["lost"] or result["duplicates"] or result["clashes"] or result["misplaced"] or result["problems"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
