"""Drill: restart Mosquitto in the middle of the day while counters keep calling.

Counters call citizens over HTTP at ``--rate`` calls/s; a hall display (its own MQTT user, a
persistent session: clean_session False) records every call it hears. Mid-run Mosquitto is stopped
(SIGTERM: it saves its persistence) for ``--down`` seconds and started again on the same port.
Then: every call the server acknowledged must have reached the display (calls made while the broker
was down are kept by the server's MQTT client and delivered after it reconnects), and the display
must have its retained state again within 5 s of the broker's return. Prints what was lost (the
answer must be 0) and exits 1 if anything was, or if the resync took longer than 5 s.

    .venv/bin/python bench/drill_broker_restart.py [--seconds 6] [--rate 10] [--down 2]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadkit import Centre, Display, Http  # noqa: E402

RESYNC_LIMIT = 5.0


async def drill(directory: Path, seconds: float = 6.0, rate: float = 10.0, down: float = 2.0) -> dict:
    centre = Centre(directory, capacity=9999)
    calls: list[str] = []
    refused: list[str] = []
    try:
        centre.start_broker()
        centre.start_server()
        staff = await centre.staff_header()
        display = Display(centre, "display-hall", clean_session=False).start()
        counters = [c.number for c in centre.config.counters]
        serves = {c.number: c.groups[0] for c in centre.config.counters}
        async with Http(centre.url, staff) as http, Http(centre.url, centre.device_header("kiosk-1")) as kiosk:
            for n in counters:
                assert (await http.request("POST", f"/api/v1/counters/{n}/open"))[0] == 200
            per_counter = int(seconds * rate / len(counters)) + 2
            for n in counters:
                for _ in range(per_counter):
                    status, body = await kiosk.request("POST", "/api/v1/tickets", {"group": serves[n]})
                    assert status == 201, body

        async def calling() -> None:
            async with Http(centre.url, staff) as http:
                end, turn = time.perf_counter() + seconds, 0
                while time.perf_counter() < end:
                    n = counters[turn % len(counters)]
                    turn += 1
                    status, body = await http.request("POST", f"/api/v1/counters/{n}/call-next")
                    if status == 200 and body["ticket"]:
                        calls.append(body["ticket"]["id"])
                        await http.request("POST", f"/api/v1/counters/{n}/start")
                    elif status != 200:
                        refused.append(f"{status} {body}")
                    await asyncio.sleep(1 / rate)

        async def restart_broker() -> float:
            await asyncio.sleep(seconds / 3)
            await asyncio.to_thread(centre.stop_broker)
            await asyncio.sleep(down)
            await asyncio.to_thread(centre.start_broker)
            return time.perf_counter()

        _, back = await asyncio.gather(calling(), restart_broker())
        deadline = time.perf_counter() + 15
        while time.perf_counter() < deadline and any(display.received(t) is None for t in calls):
            await asyncio.sleep(0.1)
        state_after = [t for t in display.state_at if t >= back]
        resync = (state_after[0] - back) if state_after else float("inf")
        missed = [t for t in calls if display.received(t) is None]
        display.stop()
    finally:
        centre.close()
    return {"calls": len(calls), "missed": len(missed), "refused": len(refused), "resync_seconds": resync,
            "display_connects": display.connects}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--rate", type=float, default=10.0, help="calls per second")
    parser.add_argument("--down", type=float, default=2.0, help="seconds the broker stays down")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="luot-drill-broker-") as tmp:
        result = asyncio.run(drill(Path(tmp), args.seconds, args.rate, args.down))
    print(f"Mosquitto restarted mid-run ({args.down:g} s down): {result['calls']} calls acknowledged, "
          f"display connected {result['display_connects']} times, state resynced {result['resync_seconds']:.2f} s "
          f"after the broker came back (limit {RESYNC_LIMIT:g} s)")
    print(f"LOST call announcements: {result['missed']}   refused calls: {result['refused']}")
    bad = result["missed"] or result["refused"] or result["resync_seconds"] > RESYNC_LIMIT
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
