"""Load on a real centre: kiosks and counters over HTTP, displays on MQTT, the server a child process.

Starts Mosquitto (broker_config/) and ``luot server`` (SQLite with synchronous=FULL, MQTT link on),
then prints:

* durable ticket operations per second: kiosks issue, counters call-next/finish as fast as they
  can; an operation counts once its HTTP answer (given only after the SQLite commit) arrived;
* call-to-display latency at 10 and 100 calls/s: from just before the counter's HTTP request to
  the moment a display (its own MQTT user, subscribed to events/call) receives the call; the
  kiosks meanwhile issue tickets at the same rate;
* the server process's CPU (cores used) and resident memory (psutil);
* the machine's state at the time: the speed of the server's core before and after the runs
  (``core_speed``: short interpreter loops timed on that core; a slower figure means a slower
  machine, as when the hypervisor shares the physical core) and, during each run, the share of
  that core other processes took and the hypervisor stole. A run with others on the server's
  core measures a shared core, not one core.

Figures are printed, never asserted (docs/performance.md has the targets). Noisy on shared machines:
compare within one run.

    .venv/bin/python bench/bench_load.py [--seconds 10] [--kiosks 3] [--backlog 150] [--rates 10,100] [--server-core 0]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import psutil

from loadkit import Centre, Display, Http, percentile

ISSUE, CALL_NEXT, START, FINISH = "issue", "call-next", "start", "finish"


class ServerMeter:
    """CPU seconds and resident memory of the server process over an interval, and what else
    happened on its core meanwhile (other processes' time, the hypervisor's steal): on a shared
    machine these explain why the same code gives different figures from one hour to the next."""

    def __init__(self, pid: int, core: int | None = None) -> None:
        self.process = psutil.Process(pid)
        self.core = core

    def _core_times(self) -> tuple[float, float, float]:
        """(busy, steal, total) seconds of the server's core so far, or zeros when not pinned."""
        if self.core is None:
            return 0.0, 0.0, 0.0
        times = psutil.cpu_times(percpu=True)[self.core]
        total = sum(times)
        return total - times.idle - times.iowait - times.steal, times.steal, total

    def __enter__(self) -> "ServerMeter":
        times = self.process.cpu_times()
        self.core0 = self._core_times()
        self.cpu0, self.wall0 = times.user + times.system, time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        times = self.process.cpu_times()
        self.cpu = times.user + times.system - self.cpu0
        self.wall = time.perf_counter() - self.wall0
        self.rss_mb = self.process.memory_info().rss / 2**20
        busy, steal, total = (b - a for a, b in zip(self.core0, self._core_times()))
        self.others = max(0.0, busy - self.cpu) / total if total else float("nan")
        self.steal = steal / total if total else float("nan")

    @property
    def cores(self) -> float:
        return self.cpu / self.wall


def core_speed(core: int, seconds: float = 0.6) -> float:
    """Millions of simple interpreter steps per second on ``core``: the median of short timed
    loops run there. It is the yardstick for the machine's speed at the moment of a run (on this
    shared machine it has moved by half between hours), so that runs can be compared as ratios."""
    if other_cores(core) is None:
        return float("nan")
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, [core])  # this thread only, for the measurement
    try:
        rates, end = [], time.perf_counter() + seconds
        while time.perf_counter() < end:
            t0, table, total = time.perf_counter(), dict.fromkeys(range(64), 0), 0
            for i in range(20_000):
                table[i & 63] = i
                total += table[(i * 7) & 63]
            rates.append(20_000 / (time.perf_counter() - t0) / 1e6)
        return statistics.median(rates)
    finally:
        os.sched_setaffinity(0, before)


def other_cores(core: int) -> list[int] | None:
    """The CPUs left for the load generator and the broker, or None when not pinning."""
    cores = list(range(psutil.cpu_count() or 1))
    if core < 0 or len(cores) < 2 or core not in cores:
        return None
    return [c for c in cores if c != core]


def pin_server(server_pid: int, core: int) -> str:
    """The server alone on one core; the load generator and Mosquitto (started from this process
    after it was moved, so they inherit its CPUs) on the others. The target is per core, and on a
    2-core machine an unpinned server borrows the generator's core (or the other way round)."""
    rest = other_cores(core)
    if rest is None:
        return "not pinned"
    for thread in psutil.Process(server_pid).threads():
        os.sched_setaffinity(thread.id, [core])
    return f"server pinned to CPU {core}; load generator and Mosquitto on CPU {','.join(map(str, rest))}"


async def open_counters(centre: Centre, staff: dict[str, str]) -> list[int]:
    numbers = [c.number for c in centre.config.counters]
    async with Http(centre.url, staff) as http:
        for number in numbers:
            status, body = await http.request("POST", f"/api/v1/counters/{number}/open")
            assert status == 200, body
    return numbers


async def waiting_now(centre: Centre, staff: dict[str, str]) -> int:
    async with Http(centre.url, staff) as http:
        status, body = await http.request("GET", "/api/v1/queue")
        assert status == 200, body
        return int(body["waiting_total"])


async def throughput(centre: Centre, staff: dict[str, str], seconds: float, kiosks: int, backlog: int,
                     core: int | None) -> dict[str, float]:
    """Closed loop: every client sends its next request as soon as the previous one is answered.

    The hall starts with ``backlog`` citizens waiting (a busy morning). Each counter does two
    requests per citizen (call-next, finish) and each kiosk one, so half as many kiosks as counters
    would balance them if every counter always had work; but tickets go to the seven groups in
    turn and some groups have one counter while others share two, so the line still grows (150 to
    about 700 in 10 s on a quiet machine, the printed "waiting" figures): a hall that gets busier,
    with every issued ticket's estimate walking the whole line. More kiosks make it grow faster.
    """
    counters = await open_counters(centre, staff)
    groups = itertools.cycle([g.code for g in centre.config.groups])
    async with Http(centre.url, centre.device_header("kiosk-1")) as http:
        for _ in range(backlog):
            status, body = await http.request("POST", "/api/v1/tickets", {"group": next(groups)})
            assert status == 201, body
    waiting_before = await waiting_now(centre, staff)
    done = {ISSUE: 0, CALL_NEXT: 0, FINISH: 0}
    errors: list[str] = []
    end = time.perf_counter() + seconds

    async def kiosk(index: int) -> None:
        device = ["kiosk-1", "kiosk-2"][index % 2]
        async with Http(centre.url, centre.device_header(device)) as http:
            while time.perf_counter() < end:
                status, body = await http.request("POST", "/api/v1/tickets", {"group": next(groups)})
                if status == 201:
                    done[ISSUE] += 1
                else:
                    errors.append(f"issue {status} {body}")

    async def counter(number: int) -> None:
        async with Http(centre.url, staff) as http:
            while time.perf_counter() < end:
                status, body = await http.request("POST", f"/api/v1/counters/{number}/call-next")
                if status != 200:
                    errors.append(f"call {status} {body}")
                    continue
                if body["ticket"] is None:
                    await asyncio.sleep(0.005)
                    continue
                done[CALL_NEXT] += 1
                status, body = await http.request("POST", f"/api/v1/counters/{number}/finish")
                if status == 200:
                    done[FINISH] += 1
                else:
                    errors.append(f"finish {status} {body}")

    with ServerMeter(centre.pid, core) as meter:
        await asyncio.gather(*(kiosk(i) for i in range(kiosks)), *(counter(n) for n in counters))
    ops = sum(done.values())
    waiting_after = await waiting_now(centre, staff)
    async with Http(centre.url, staff) as http:  # leave an empty hall for the latency runs
        await http.request("POST", "/api/v1/day/close")
    return {"ops": ops, "ops_per_s": ops / meter.wall, "ops_per_cpu_s": ops / max(meter.cpu, 1e-9),
            "cores": meter.cores, "rss_mb": meter.rss_mb, "others_on_core": meter.others, "steal": meter.steal,
            "errors": len(errors), **{k: v for k, v in done.items()},
            "waiting_before": waiting_before, "waiting_after": waiting_after,
            "first_error": errors[0] if errors else ""}


async def latency(centre: Centre, staff: dict[str, str], display: Display, rate: float, seconds: float,
                  core: int | None) -> dict[str, float]:
    """Open loop at ``rate`` calls/s over all counters; kiosks issue at the same rate."""
    counters = await open_counters(centre, staff)
    config = centre.config
    serves = {c.number: c.groups[0] for c in config.counters}
    async with Http(centre.url, centre.device_header("kiosk-1")) as http:  # a small backlog per group
        for number in counters:
            for _ in range(20):
                status, body = await http.request("POST", "/api/v1/tickets", {"group": serves[number]})
                assert status == 201, body
    period = len(counters) / rate
    samples: list[tuple[float, str]] = []  # (t0, ticket_id)
    refused: list[str] = []
    start = time.perf_counter() + 0.2
    end = start + seconds

    async def counter(number: int, offset: float) -> None:
        async with Http(centre.url, staff) as http:
            due = start + offset
            while due < end:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                t0 = time.perf_counter()
                status, body = await http.request("POST", f"/api/v1/counters/{number}/call-next")
                if status == 200 and body["ticket"]:
                    samples.append((t0, body["ticket"]["id"]))
                    status, body = await http.request("POST", f"/api/v1/counters/{number}/start")
                if status != 200:
                    refused.append(f"{status} {body}")
                due += period

    async def kiosk() -> None:
        async with Http(centre.url, centre.device_header("kiosk-2")) as http:
            due, order = start, itertools.cycle(counters)
            while due < end:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                status, body = await http.request("POST", "/api/v1/tickets", {"group": serves[next(order)]})
                if status != 201:
                    refused.append(f"{status} {body}")
                due += 1 / rate

    with ServerMeter(centre.pid, core) as meter:
        await asyncio.gather(kiosk(), *(counter(n, i * period / len(counters)) for i, n in enumerate(counters)))
        await asyncio.sleep(0.5)  # the last calls' messages
    latencies, missing = [], 0
    for t0, ticket_id in samples:
        received = display.received(ticket_id)
        if received is None:
            missing += 1
        else:
            latencies.append((received - t0) * 1000)
    async with Http(centre.url, staff) as http:
        await http.request("POST", "/api/v1/day/close")
    return {"rate": rate, "calls": len(samples), "achieved": len(samples) / seconds,
            "p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99), "max": max(latencies, default=float("nan")),
            "missing": missing, "refused": len(refused), "cores": meter.cores, "rss_mb": meter.rss_mb,
            "others_on_core": meter.others, "steal": meter.steal}


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="luot-bench-load-") as tmp:
        centre = Centre(Path(tmp), capacity=9999)
        rest = other_cores(args.server_core)
        if rest is not None:
            os.sched_setaffinity(0, rest)  # before anything starts: threads and children inherit it
        try:
            centre.start_broker()
            centre.start_server()
            staff = await centre.staff_header()
            pinned = pin_server(centre.pid, args.server_core)
            display = Display(centre).start()
            idle_rss = psutil.Process(centre.pid).memory_info().rss / 2**20
            print(f"server pid {centre.pid}, {psutil.cpu_count()} cores, load average {psutil.getloadavg()[0]:.2f}; "
                  f"idle RSS {idle_rss:.0f} MB; {pinned}")
            result: dict[str, object] = {"idle_rss_mb": idle_rss}
            core = args.server_core if rest is not None else None
            speed = core_speed(args.server_core)
            result["core_speed_before"] = speed
            print(f"speed of the server's core before the runs: {speed:.1f} M steps/s (core_speed)")
            tp = await throughput(centre, staff, args.seconds, args.kiosks, args.backlog, core)
            result["throughput"] = tp
            print(f"durable ops: {tp['ops_per_s']:7.0f} acknowledged ops/s  ({tp['issue']} issued, {tp['call-next']} called, "
                  f"{tp['finish']} finished in {args.seconds:.0f} s; errors {tp['errors']}; "
                  f"waiting {tp['waiting_before']} -> {tp['waiting_after']})")
            print(f"             server CPU {tp['cores']:.2f} cores -> {tp['ops_per_cpu_s']:7.0f} ops per server CPU-second;"
                  f" RSS {tp['rss_mb']:.0f} MB;"
                  f" others on its core {tp['others_on_core']:.0%}, steal {tp['steal']:.0%}")
            if tp["errors"]:
                print(f"             first error: {tp['first_error']}")
            for rate in args.rates:
                lat = await latency(centre, staff, display, rate, args.seconds, core)
                result[f"latency_{rate:g}"] = lat
                print(f"call->display at {rate:5.0f} calls/s ({lat['achieved']:.0f} achieved, {lat['calls']} calls): "
                      f"p50 {lat['p50']:.2f} ms  p99 {lat['p99']:.2f} ms  max {lat['max']:.1f} ms  "
                      f"missing {lat['missing']}  refused {lat['refused']}  server CPU {lat['cores']:.2f} cores  RSS {lat['rss_mb']:.0f} MB  "
                      f"others on its core {lat['others_on_core']:.0%}, steal {lat['steal']:.0%}")
            speed = core_speed(args.server_core)
            result["core_speed_after"] = speed
            print(f"speed of the server's core after the runs: {speed:.1f} M steps/s; load average {psutil.getloadavg()[0]:.2f}")
            display.stop()
            return result
        finally:
            centre.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--kiosks", type=int, default=3, help="concurrent kiosk clients in the throughput run "
                        "(the line grows during the run; more kiosks, faster)")
    parser.add_argument("--backlog", type=int, default=150, help="citizens waiting when the throughput run starts")
    parser.add_argument("--server-core", type=int, default=0,
                        help="pin the server to this CPU and the load to the others (-1: no pinning)")
    parser.add_argument("--rates", default="10,100", help="call rates for the latency runs (calls/s)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    args.rates = [float(r) for r in args.rates.split(",")]
    result = asyncio.run(main_async(args))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
