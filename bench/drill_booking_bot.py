"""Drill: a booking bot against a real centre, and walk-in issuing while the booking page is busy.

Prints figures (with the machine's state), never asserts. Two parts, each on its own centre
(SQLite file, uvicorn, notifier with a Gammu SMSD spool as its SMS channel; a manual clock at a
Monday 08:30 so limits that count hours can be crossed without waiting):

1. **Bot.** 1,000 phones take numbers through the public API exactly as the page does: ask a
   one-time code (it goes through the notifier into Gammu's outbox, where the bot reads it, as a
   bot with 1,000 SIM cards would), then book. Scenario *one address*: all 1,000 phones from one
   network address. Scenario *1,000 addresses*: each phone from its own loopback address
   (127.x.y.z; the server sees the TCP peer), four rounds 21 minutes apart: a remote number in
   group A, one in group B, another in A, an appointment in C. Printed: what the bot got against
   what the limits allow (``[booking]``/``[otp]`` of the centre file), and the refusals by reason.
2. **Load.** Walk-in tickets issued by a kiosk (POST /api/v1/tickets, one every 50 ms, from a
   separate process): p99 while the centre is quiet, then while another process drives the booking
   page at 200 requests a second (open loop: the page, its script, the slots, and code requests),
   and the ratio. The goal is a ratio of at most 2.

Run: ``python bench/drill_booking_bot.py [--phones 1000] [--rate 200] [--seconds 20]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
MONDAY_0830 = datetime(2026, 3, 2, 8, 30, tzinfo=HCM).astimezone(timezone.utc)
CODE = re.compile(r"Mã xác nhận Luot: (\d{6})")


def machine() -> str:
    load = os.getloadavg()
    return f"cpus={os.cpu_count()} load1={load[0]:.2f} load5={load[1]:.2f} load15={load[2]:.2f}"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered))) - 1))]


def centre_config(root: Path):
    from luot.config import parse_config
    from tests.engine_support import sample_data
    from tests.helpers.gammu import GammuSpool

    data = sample_data()
    data["notify"] = {"channels": ["sms"], "gammu_config": str(GammuSpool(root / "gammu").config)}
    data["booking"] = {}
    return parse_config(data, "drill")


class CodeReader:
    """Reads the one-time codes the notifier handed to Gammu's outbox, newest per phone."""

    def __init__(self, outbox: Path) -> None:
        self.outbox, self.seen, self.codes, self.scanned = outbox, set(), {}, 0.0

    def scan(self) -> None:
        from server.notify.gammu import decode_smsbackup

        for path in sorted(self.outbox.glob("*.smsbackup")):
            if path in self.seen:
                continue
            self.seen.add(path)
            message = decode_smsbackup(path)
            found = CODE.search(message["text"])
            if found:
                self.codes[message["number"]] = found.group(1)

    async def wait_for(self, numbers: set[str], timeout: float = 120.0) -> None:
        """Until a code for each of ``numbers`` is in; one scan of the folder at a time for all waiters."""
        deadline = time.monotonic() + timeout
        while not numbers <= self.codes.keys() and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            if time.monotonic() - self.scanned > 0.15:
                self.scanned = time.monotonic()
                self.scan()


def phone(i: int) -> str:
    return f"091{i:07d}"


def e164(local: str) -> str:
    return "+84" + local[1:]


async def bot(phones: int) -> None:
    from tests.helpers.centre import ManualClock, running_centre

    with tempfile.TemporaryDirectory(prefix="luot-bot-") as tmp:
        root = Path(tmp)
        clock = ManualClock(MONDAY_0830)
        config = centre_config(root)
        rules, otp = config.booking, config.otp
        async with running_centre(root, config, clock=clock) as centre:
            reader = CodeReader(root / "gammu" / "spool" / "outbox")
            gate = asyncio.Semaphore(16)
            started = time.perf_counter()

            async def attempt(i: int, address: str | None, body: dict, tally: Counter, got: Counter) -> None:
                transport = httpx.AsyncHTTPTransport(local_address=address) if address else None
                async with gate, httpx.AsyncClient(base_url=centre.base_url, transport=transport) as http:
                    try:
                        await book(http, i, body, tally, got)
                    except httpx.TransportError as error:
                        tally["transport error: " + type(error).__name__] += 1

            async def post(http: httpx.AsyncClient, path: str, body: dict) -> httpx.Response:
                """A POST, sent again once if the server had closed the idle keep-alive connection
                (server/http_limits.py closes one that starts no request within its header timeout)."""
                try:
                    return await http.post(path, json=body)
                except (httpx.ReadError, httpx.RemoteProtocolError):
                    return await http.post(path, json=body)

            async def book(http: httpx.AsyncClient, i: int, body: dict, tally: Counter, got: Counter) -> None:
                sent = await post(http, "/api/v1/bookings/code", {"phone": phone(i)})
                if sent.status_code != 202:
                    tally["code refused: " + sent.json().get("error", str(sent.status_code))] += 1
                    return
                tally["codes sent"] += 1
                await reader.wait_for({e164(phone(i))})
                code = reader.codes.pop(e164(phone(i)), None)
                if code is None:
                    tally["code never arrived"] += 1
                    return
                made = await post(http, "/api/v1/bookings", {"phone": phone(i), "code": code, **body})
                if made.status_code == 201:
                    tally["booked"] += 1
                    day = made.json()["day"]
                    got[("group", i, body["group"], day)] += 1
                    got[("day", i, day)] += 1
                else:
                    tally["booking refused: " + made.json().get("error", str(made.status_code))] += 1

            # --- scenario 1: one address, 1,000 phones
            tally, got = Counter(), Counter()
            await asyncio.gather(*(attempt(i, "127.0.0.1", {"group": "ho-tich", "kind": "remote"}, tally, got)
                                   for i in range(phones)))
            print(f"bot, one address, {phones} phones, one remote number each asked: got {tally['booked']} bookings, "
                  f"{tally['codes sent']} codes; limits: per_address_day={rules.per_address_day} bookings, "
                  f"otp per_address_per_hour={otp.per_address_per_hour} codes")
            for reason, n in sorted(tally.items()):
                print(f"  {reason}: {n}")

            # --- scenario 2: 1,000 phones, each its own address; four rounds
            clock.advance(hours=1, minutes=1)  # the first scenario's hour of codes is over
            rounds = [{"group": "ho-tich", "kind": "remote"}, {"group": "chung-thuc", "kind": "remote"},
                      {"group": "ho-tich", "kind": "remote"}, {"group": "dat-dai", "kind": "appointment"}]
            tally, got = Counter(), Counter()
            for r, body in enumerate(rounds):
                if r:
                    clock.advance(minutes=21)  # the resend gap and the codes-per-hour limit
                if body["kind"] == "appointment":  # the slots not begun yet, today and the days ahead
                    slots_c: list[str] = []
                    async with httpx.AsyncClient(base_url=centre.base_url) as http:
                        for day in (await http.get("/api/v1/bookings/slots")).json()["days"]:
                            answer = (await http.get("/api/v1/bookings/slots", params={"group": "dat-dai", "day": day})).json()
                            slots_c += [row["slot"] for row in answer["slots"]]
                    capacity_c = len(slots_c) * rules.capacity("dat-dai")
                await asyncio.gather(*(attempt(phones + i, f"127.{10 + i // 250}.{i % 250}.9",  # other phones than above
                                               {**body, "slot": slots_c[i % len(slots_c)]} if body["kind"] == "appointment" else body,
                                               tally, got) for i in range(phones)))
            per_day = [n for k, n in got.items() if k[0] == "day"]  # (phone, day) -> bookings
            per_group = [n for k, n in got.items() if k[0] == "group"]
            today = MONDAY_0830.astimezone(HCM).date().isoformat()
            booked_today = sum(n for k, n in got.items() if k[0] == "day" and k[2] == today)
            appointments = sum(n for k, n in got.items() if k[0] == "group" and k[2] == "dat-dai")
            print(f"bot, {phones} addresses, {phones} phones, 4 tries each (remote in A, remote in B, remote in A again, "
                  f"an appointment in C on any open slot of the next {rules.days_ahead} days): got {tally['booked']} bookings, "
                  f"{booked_today} of them for today; limit for today {phones * rules.per_phone_day} "
                  f"(per_phone_day={rules.per_phone_day}, per_phone_group_day={rules.per_phone_group_day})")
            print(f"  most bookings one phone holds for one day: {max(per_day)} (limit {rules.per_phone_day}); most for "
                  f"one group and day: {max(per_group)} (limit {rules.per_phone_group_day}); appointments in C: "
                  f"{appointments} (seats {capacity_c} in {len(slots_c)} slots)")
            for reason, n in sorted(tally.items()):
                print(f"  {reason}: {n}")
            print(f"  wall time {time.perf_counter() - started:.0f} s; {machine()}")


async def run_child(*args: str) -> dict:
    process = await asyncio.create_subprocess_exec(sys.executable, __file__, *args, stdout=asyncio.subprocess.PIPE,
                                                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    out, _ = await process.communicate()
    return json.loads(out.decode().strip().splitlines()[-1])


async def load(rate: float, seconds: float) -> None:
    from tests.helpers.centre import ManualClock, device_auth, running_centre

    with tempfile.TemporaryDirectory(prefix="luot-load-") as tmp:
        root = Path(tmp)
        clock = ManualClock(MONDAY_0830)
        async with running_centre(root, centre_config(root), clock=clock) as centre:
            auth = device_auth(centre, "kiosk-1")["Authorization"]
            await run_child("--child", "probe", centre.base_url, auth, "3")  # warm up
            print(f"load: before, {machine()}")
            quiet = await run_child("--child", "probe", centre.base_url, auth, str(seconds))
            print(f"load: quiet walk-in issuing: n={quiet['n']} p50={quiet['p50']:.1f} ms p99={quiet['p99']:.1f} ms "
                  f"errors={quiet['errors']}; {machine()}")
            probe = asyncio.create_task(run_child("--child", "probe", centre.base_url, auth, str(seconds)))
            pages = asyncio.create_task(run_child("--child", "page", centre.base_url, str(rate), str(seconds + 1)))
            busy, page = await probe, await pages
            print(f"load: walk-in issuing while the booking page is driven: n={busy['n']} p50={busy['p50']:.1f} ms "
                  f"p99={busy['p99']:.1f} ms errors={busy['errors']}; {machine()}")
            print(f"load: booking page: asked {rate:.0f}/s, achieved {page['rate']:.1f} requests/s answered "
                  f"({page['n']} in {page['seconds']:.1f} s; statuses {page['statuses']}; p50={page['p50']:.1f} ms "
                  f"p99={page['p99']:.1f} ms, timed from when each was due)")
            print(f"load: p99 under load / quiet p99 = {busy['p99'] / quiet['p99']:.2f} (goal <= 2)")


async def child_probe(url: str, auth: str, seconds: float) -> dict:
    """Walk-in tickets one every 50 ms, each timed from send to answer."""
    times, errors = [], 0
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": auth}) as http:
        end = time.perf_counter() + seconds
        groups = ["ho-tich", "chung-thuc", "dat-dai"]
        n = 0
        while time.perf_counter() < end:
            began = time.perf_counter()
            answer = await http.post("/api/v1/tickets", json={"group": groups[n % 3]})
            times.append((time.perf_counter() - began) * 1000)
            errors += answer.status_code != 201
            n += 1
            await asyncio.sleep(max(0.0, 0.05 - (time.perf_counter() - began)))
    return {"n": len(times), "p50": statistics.median(times), "p99": percentile(times, 99), "errors": errors}


REQUESTS = [b"GET /dat-so HTTP/1.1\r\nHost: luot\r\n\r\n"] * 3 + [b"GET /static/book.js HTTP/1.1\r\nHost: luot\r\n\r\n"] * 2 \
    + [b"GET /api/v1/bookings/slots?group=ho-tich HTTP/1.1\r\nHost: luot\r\n\r\n"] * 4
"""What phones ask of the booking page, in proportion (a tenth more are code requests, built per phone)."""


async def child_page(url: str, rate: float, seconds: float) -> dict:
    """Open loop at ``rate`` requests a second over 48 keep-alive connections (a small HTTP/1.1
    client on asyncio streams, so the generator's own CPU stays small beside the server's): 30% the
    page, 20% its script, 40% the slots, 10% code requests for new phones (past the first few
    refused by the one-time code limits, as a bot's would be). A request's time runs from when it
    was due, so a server that falls behind shows in the figures."""
    host, port = url.split("//", 1)[1].split(":")
    times: list[float] = []
    statuses: Counter[int] = Counter()
    queue: asyncio.Queue = asyncio.Queue()

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        while True:
            job = await queue.get()
            if job is None:
                writer.close()
                return
            k, due = job
            if k % 10 == 9:
                body = json.dumps({"phone": f"098{k:07d}"}).encode()
                request = (b"POST /api/v1/bookings/code HTTP/1.1\r\nHost: luot\r\nContent-Type: application/json\r\n"
                           b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            else:
                request = REQUESTS[k % 10]
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
            await reader.readexactly(length)
            times.append((time.perf_counter() - due) * 1000)
            statuses[int(head.split(b" ", 2)[1])] += 1

    workers = [asyncio.create_task(connection()) for _ in range(48)]
    start = time.perf_counter()
    k = 0
    while k / rate <= seconds:
        due = start + k / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((k, due))
        k += 1
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    spent = time.perf_counter() - start
    return {"n": len(times), "seconds": spent, "rate": len(times) / spent, "statuses": dict(statuses),
            "p50": statistics.median(times), "p99": percentile(times, 99), "late": 0}


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        role, args = sys.argv[2], sys.argv[3:]
        if role == "probe":
            result = asyncio.run(child_probe(args[0], args[1], float(args[2])))
        else:
            result = asyncio.run(child_page(args[0], float(args[1]), float(args[2])))
        print(json.dumps(result))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phones", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--only", choices=["bot", "load"])
    options = parser.parse_args()
    print(f"drill_booking_bot: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {machine()}")
    if options.only != "load":
        asyncio.run(bot(options.phones))
    if options.only != "bot":
        asyncio.run(load(options.rate, options.seconds))


if __name__ == "__main__":
    main()
