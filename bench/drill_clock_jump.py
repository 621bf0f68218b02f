"""Drill: the server clock jumps ±1 day and ±3 hours around midnight while kiosks issue tickets.

A real centre runs in this process (SQLite file, HTTP on a free port, no MQTT) with a clock the
drill moves: it ticks on (``--speed`` simulated seconds per real second) from 22:00 local time, and
at set moments jumps by a day or three hours forwards or backwards, then is corrected. Two kiosks
issue tickets over HTTP the whole time and an officer calls and finishes at counter 1. Phases:

- ``+1 day``, ``+3 h`` (across midnight), ``-3 h`` at 23:00, each corrected after a while;
- local midnight passing normally (the new day opens by itself, numbering starts again);
- ``-1 day`` and ``-3 h`` (back into yesterday) after midnight, each corrected;
- ``-3 h`` at 04:00 that is the truth (the clock had been 3 h fast): refused until a manager confirms the
  clock (POST /api/v1/day/confirm-clock);
- a restart of the server on the same database, and one more ticket.

Printed: per phase (the one a request was sent in; a request sent just before a correction may
be answered after it) the tickets issued, refusals by code with the first message, storage failures
(503), and at the end acknowledged tickets missing from the database (lost), numbers given twice on
a day (repeated), and whether issuing worked again after every correction.

    .venv/bin/python bench/drill_clock_jump.py [--speed 600] [--phase-seconds 0.6] [--kiosks 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from luot.config import load_config  # noqa: E402
from server.app import CentreRuntime, RuntimeOptions  # noqa: E402
from tests.helpers.centre import device_auth, staff_auth  # noqa: E402


class JumpingClock:
    """Simulated time: ``speed`` seconds per real second from ``start``, plus an offset the drill
    sets to make the clock jump (and sets back to correct it)."""

    def __init__(self, start: datetime, speed: float) -> None:
        self.start, self.speed, self.offset = start, speed, timedelta()
        self.t0 = time.monotonic()
        self.frozen: datetime | None = None

    def true_now(self) -> datetime:
        return self.start + timedelta(seconds=(time.monotonic() - self.t0) * self.speed)

    def __call__(self) -> datetime:
        return self.true_now() + self.offset


async def _kiosk(http: httpx.AsyncClient, auth: dict[str, str], group: str, log: list[dict[str, Any]],
                 phase: list[str], stop: asyncio.Event) -> None:
    while not stop.is_set():
        asked_in = phase[0]  # the phase the request was sent in, whenever the answer comes
        answer = await http.post("/api/v1/tickets", json={"group": group}, headers=auth)
        entry: dict[str, Any] = {"phase": asked_in, "status": answer.status_code}
        body = answer.json()
        if answer.status_code == 201:
            entry.update(number=body["number"], group=group, token=body["token"])
        else:
            entry.update(code=body.get("error"), message_en=body.get("message_en"), message=body.get("message"))
        log.append(entry)
        await asyncio.sleep(0.005)


async def _officer(http: httpx.AsyncClient, auth: dict[str, str], stop: asyncio.Event) -> None:
    while not stop.is_set():
        await http.post("/api/v1/counters/1/open", headers=auth)
        await http.post("/api/v1/counters/1/call-next", headers=auth)
        await http.post("/api/v1/counters/1/finish", headers=auth)
        await asyncio.sleep(0.02)


async def drill(directory: Path, speed: float = 600.0, phase_seconds: float = 0.6, kiosks: int = 4) -> dict[str, Any]:
    config = load_config()
    # Wide number ranges: on a quiet machine the kiosks issue thousands of tickets in the drill's
    # simulated night, and a full group ("group_full") is not what the drill is about.
    config = config.model_copy(update={"groups": [
        group.model_copy(update={"first_number": index * 10_000 + 1, "capacity": 9_999})
        for index, group in enumerate(config.groups)]})
    local = datetime.now(config.zone).replace(hour=22, minute=0, second=0, microsecond=0) - timedelta(days=1)
    clock = JumpingClock(local.astimezone(timezone.utc), speed)
    options = RuntimeOptions(data_dir=directory, http_port=0, mqtt=False, clock=clock, init=True)
    runtime = await CentreRuntime(config, options).start()
    log: list[dict[str, Any]] = []
    phase = ["start"]
    stop = asyncio.Event()
    resumed: dict[str, bool] = {}
    groups = [g.code for g in config.groups]

    async def hold(name: str, seconds: float = phase_seconds) -> None:
        phase[0] = name
        await asyncio.sleep(seconds)

    async def until_local(hour: int, minute: int = 0) -> None:
        """Let true time run on to hour:minute local (tomorrow if it is already past)."""
        phase[0] = f"normal, until {hour:02d}:{minute:02d}"
        now_local = clock.true_now().astimezone(config.zone)
        target = now_local.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if target <= now_local:
            target += timedelta(days=1)
        await asyncio.sleep((target - now_local).total_seconds() / speed)

    async def issued_since(before: int, patience: float = 15.0) -> bool:
        """Whether a ticket was issued after log entry ``before`` (waiting up to ``patience`` real
        seconds: on a loaded machine an answer may take a while)."""
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            if any(e["status"] == 201 for e in log[before:]):
                return True
            await asyncio.sleep(0.05)
        return False

    async def jump(name: str, by: timedelta, correct: bool = True) -> None:
        phase[0] = name  # labelled first: a request sent now meets the jumped clock or a later one
        clock.offset = by
        await hold(name)
        if correct:
            phase[0] = f"{name}, corrected"
            clock.offset = timedelta()
            before = len(log)
            await hold(f"{name}, corrected")
            resumed[name] = await issued_since(before)

    async with httpx.AsyncClient(base_url=runtime.base_url, timeout=30) as http:
        officer = await staff_auth(runtime)
        workers = [asyncio.create_task(_kiosk(http, device_auth(runtime, f"kiosk-{1 + k % 2}"), groups[k % len(groups)],
                                              log, phase, stop)) for k in range(kiosks)]
        workers.append(asyncio.create_task(_officer(http, officer, stop)))
        await hold("22:00 normal")
        await until_local(23, 0)
        await jump("+1 day at 23:00", timedelta(days=1))
        await jump("+3 h at 23:00 (to 02:00)", timedelta(hours=3))
        await jump("-3 h at 23:00 (to 20:00)", timedelta(hours=-3))
        await until_local(0, 5)
        await hold("midnight passed normally")
        await until_local(0, 30)
        await jump("-1 day at 00:30", timedelta(days=-1))
        await jump("-3 h at 00:30 (back into yesterday)", timedelta(hours=-3))
        await until_local(4, 0)
        # The clock had been 3 h fast all along: the true time is 3 h earlier (01:00), and stays so.
        clock.start -= timedelta(hours=3)
        await hold("true clock 3 h behind the log, not confirmed")
        manager = await staff_auth(runtime, "quanly2", "manager")
        confirmed = await http.post("/api/v1/day/confirm-clock", headers=manager)
        assert confirmed.status_code == 200, confirmed.text
        before = len(log)
        await hold("after a manager confirmed the clock")
        resumed["-3 h for good, confirmed by a manager"] = await issued_since(before)
        stop.set()
        await asyncio.gather(*workers)
    await runtime.stop()
    # --- a restart on the same database: the day replays and numbering goes on
    runtime = await CentreRuntime(config, RuntimeOptions(data_dir=directory, http_port=0, mqtt=False, clock=clock)).start()
    async with httpx.AsyncClient(base_url=runtime.base_url, timeout=30) as http:
        phase[0] = "after a restart"
        answer = await http.post("/api/v1/tickets", json={"group": groups[0]}, headers=device_auth(runtime, "kiosk-1"))
        entry: dict[str, Any] = {"phase": phase[0], "status": answer.status_code}
        if answer.status_code == 201:
            entry.update(number=answer.json()["number"], group=groups[0], token=answer.json()["token"])
        log.append(entry)
        resumed["restart"] = answer.status_code == 201
    assert runtime.storage is not None
    acked = [e for e in log if e["status"] == 201]
    rows = [await runtime.storage.ticket_by_token(e["token"]) for e in acked]
    lost = sum(1 for row in rows if row is None)
    keys = Counter((row["day"], row["grp"], row["number"]) for row in rows if row is not None)
    repeated = sum(n - 1 for n in keys.values() if n > 1)
    mismatched = sum(1 for e, row in zip(acked, rows) if row is not None and row["number"] != e["number"])
    days = sorted({row["day"] for row in rows if row is not None})
    await runtime.stop()
    phases: dict[str, dict[str, Any]] = {}
    for e in log:
        p = phases.setdefault(e["phase"], {"issued": 0, "refused": Counter(), "storage_503": 0, "why": None})
        if e["status"] == 201:
            p["issued"] += 1
        elif e["status"] == 503:
            p["storage_503"] += 1
        else:
            p["refused"][e.get("code")] += 1
            p["why"] = p["why"] or e.get("message_en")
    return {"acknowledged": len(acked), "lost": lost, "repeated": repeated, "mismatched": mismatched,
            "days": days, "phases": phases, "resumed": resumed,
            "storage_503": sum(p["storage_503"] for p in phases.values())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--speed", type=float, default=600.0, help="simulated seconds per real second")
    parser.add_argument("--phase-seconds", type=float, default=0.6, help="real seconds each jump lasts")
    parser.add_argument("--kiosks", type=int, default=4, help="concurrent ticket requesters")
    args = parser.parse_args()
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, load "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="luot-drill-clock-") as tmp:
        result = asyncio.run(drill(Path(tmp), args.speed, args.phase_seconds, args.kiosks))
    for name, p in result["phases"].items():
        refused = ", ".join(f"{code} {n}" for code, n in p["refused"].items()) or "none"
        print(f"{name:45s} issued {p['issued']:4d}  refused {refused:24s}  503 {p['storage_503']}")
        if p["why"]:
            print(f"{'':45s} why: {p['why']}")
    print(f"service days with tickets: {', '.join(result['days'])}")
    print(f"tickets acknowledged {result['acknowledged']}   tickets lost {result['lost']}   "
          f"numbers repeated {result['repeated']}   number differs from the answer {result['mismatched']}   "
          f"storage failures (503) {result['storage_503']}")
    print("issuing works again after: " + ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in result["resumed"].items()))
    bad = result["lost"] or result["repeated"] or result["mismatched"] or result["storage_503"] or not all(
        result["resumed"].values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
