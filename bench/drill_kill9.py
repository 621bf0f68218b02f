"""Drill: kill -9 the server under load, restart it, and count what was lost.

Kiosks issue tickets as fast as they can against a real ``luot server`` (MQTT on, Mosquitto);
after a random moment the server process is killed with SIGKILL, restarted, and the kiosks carry
on. Repeated ``--kills`` times. Then every ticket whose HTTP answer arrived (acknowledged) must be
in the server's event log, and no number may appear twice in a day. Prints what was lost (the
answer must be 0) and exits 1 if anything was.

    .venv/bin/python bench/drill_kill9.py [--kills 5] [--seconds 2] [--kiosks 4]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadkit import Centre, Http  # noqa: E402


async def all_events(centre: Centre, staff: dict[str, str]) -> list[dict]:
    events, after = [], 0
    async with Http(centre.url, staff) as http:
        while True:
            status, body = await http.request("GET", f"/api/v1/events?after={after}&limit=5000")
            assert status == 200, body
            if not body["events"]:
                return events
            events += body["events"]
            after = body["events"][-1]["seq"]


async def load_until_killed(centre: Centre, kiosks: int, seconds: float, acked: list[dict], rng: random.Random) -> int:
    """Kiosks issue until the server dies under them; returns requests that got no answer."""
    groups = itertools.cycle([g.code for g in centre.config.groups])
    unanswered = 0
    stop = asyncio.Event()

    async def kiosk(i: int) -> None:
        nonlocal unanswered
        http = Http(centre.url, centre.device_header(["kiosk-1", "kiosk-2"][i % 2]))
        try:
            while not stop.is_set():
                try:
                    status, body = await http.request("POST", "/api/v1/tickets", {"group": next(groups)})
                except (ConnectionError, OSError, asyncio.IncompleteReadError):
                    unanswered += 1  # in flight when the server died: never acknowledged
                    return
                if status == 201:
                    acked.append({"id": body["id"], "number": body["number"], "group": body["group"]})
        finally:
            await http.close()

    tasks = [asyncio.create_task(kiosk(i)) for i in range(kiosks)]
    await asyncio.sleep(seconds * rng.uniform(0.5, 1.5))
    await asyncio.to_thread(centre.server.kill9)  # type: ignore[union-attr]
    stop.set()
    await asyncio.gather(*tasks)
    return unanswered


async def drill(directory: Path, kills: int = 5, seconds: float = 2.0, kiosks: int = 4, seed: int = 1) -> dict:
    rng = random.Random(seed)
    centre = Centre(directory, capacity=9999)
    acked: list[dict] = []
    unanswered = 0
    try:
        centre.start_broker()
        centre.start_server()
        for _ in range(kills):
            unanswered += await load_until_killed(centre, kiosks, seconds, acked, rng)
            centre.start_server()  # restart on the same data directory
        staff = await centre.staff_header()
        # after the last restart: a few more tickets, whose numbers must follow on, never repeat
        async with Http(centre.url, centre.device_header("kiosk-1")) as http:
            for group in [g.code for g in centre.config.groups]:
                status, body = await http.request("POST", "/api/v1/tickets", {"group": group})
                assert status == 201, body
                acked.append({"id": body["id"], "number": body["number"], "group": body["group"]})
        events = await all_events(centre, staff)
    finally:
        centre.close()
    issued = [e for e in events if e["type"] == "ticket.issued"]
    logged = {e["data"]["ticket_id"] for e in issued}
    missing = [t for t in acked if t["id"] not in logged]
    seen: dict[tuple, int] = {}
    for e in issued:
        key = (e["day"], e["data"]["group"], e["data"]["number"])
        seen[key] = seen.get(key, 0) + 1
    duplicates = sum(n - 1 for n in seen.values() if n > 1)
    answered_numbers = [(t["group"], t["number"]) for t in acked]
    duplicate_answers = len(answered_numbers) - len(set(answered_numbers))
    return {"kills": kills, "acknowledged": len(acked), "in_log": len(issued), "unanswered": unanswered,
            "lost": len(missing), "duplicate_numbers": duplicates + duplicate_answers}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0, help="mean load time before each kill")
    parser.add_argument("--kiosks", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="luot-drill-kill9-") as tmp:
        result = asyncio.run(drill(Path(tmp), args.kills, args.seconds, args.kiosks))
    print(f"kill -9 x{result['kills']}: {result['acknowledged']} tickets acknowledged, {result['in_log']} in the log "
          f"({result['unanswered']} requests in flight at a kill got no answer and may or may not exist)")
    print(f"LOST acknowledged tickets: {result['lost']}   duplicate numbers: {result['duplicate_numbers']}")
    return 1 if result["lost"] or result["duplicate_numbers"] else 0


if __name__ == "__main__":
    sys.exit(main())
