"""Hall display at rest: how much CPU does `luot display` take when nothing happens?

A hall display runs all day on a cheap 2-core box with no GPU, where every frame at 1920x1080 is
drawn by Mesa's software rasteriser (llvmpipe): a screen that redraws continuously eats a core
that the server, the broker and the voice need. This benchmark runs the real thing:

* a real Mosquitto and a real ``luot server`` (bench/loadkit.py) with a centre's day in progress:
  all counters open, tickets waiting, some called, so the retained ``state/#`` is what a hall
  shows at 10 a.m.;
* the real ``luot display`` as a child process, 1920x1080, voice on, SDL's offscreen driver (or
  ``--xvfb``: a virtual X screen), Mesa software GL, exactly as on such a box;
* after it has drawn the retained state and settled, its CPU time (user + system, all threads) is
  sampled with psutil over ``--seconds`` with no message at all; then a few calls are made and the
  CPU of that window is printed too (a call flashes and is spoken), then another idle window.

Printed, never asserted: the display's CPU as % of one core, the GL renderer it reported, and the
machine's state (load, what the other processes took, the hypervisor's steal).

    .venv/bin/python bench/bench_display_idle.py [--seconds 25] [--xvfb]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psutil  # noqa: E402

from loadkit import ROOT, Centre, Http  # noqa: E402


class CpuWindow:
    """CPU seconds of one process, and of the whole machine, over a window of wall time."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)

    def __enter__(self) -> "CpuWindow":
        times = self.process.cpu_times()
        self.cpu0 = times.user + times.system
        self.machine0 = psutil.cpu_times()
        self.wall0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        times = self.process.cpu_times()
        self.cpu = times.user + times.system - self.cpu0
        self.wall = time.perf_counter() - self.wall0
        machine = psutil.cpu_times()
        deltas = {name: getattr(machine, name) - getattr(self.machine0, name) for name in machine._fields}
        total = sum(deltas.values())
        busy = total - deltas["idle"] - deltas.get("iowait", 0.0) - deltas.get("steal", 0.0)
        cores = psutil.cpu_count() or 1
        self.others_cores = max(0.0, busy - self.cpu) / total * cores if total else float("nan")
        self.steal = deltas.get("steal", 0.0) / total if total else float("nan")

    @property
    def percent_of_one_core(self) -> float:
        return 100.0 * self.cpu / self.wall


async def prepare_day(centre: Centre) -> None:
    """A morning in progress: every counter open, tickets waiting in every group, a few called."""
    staff = await centre.staff_header()
    async with Http(centre.url, staff) as http, Http(centre.url, centre.device_header("kiosk-1")) as kiosk:
        for counter in centre.config.counters:
            status, body = await http.request("POST", f"/api/v1/counters/{counter.number}/open")
            assert status == 200, body
        for group in centre.config.groups:
            for _ in range(4):
                status, body = await kiosk.request("POST", "/api/v1/tickets", {"group": group.code})
                assert status == 201, body
        for counter in centre.config.counters:
            await http.request("POST", f"/api/v1/counters/{counter.number}/call-next")


async def call_some(centre: Centre, count: int) -> None:
    staff = await centre.staff_header()
    async with Http(centre.url, staff) as http:
        counters = [c.number for c in centre.config.counters]
        for index in range(count):
            number = counters[index % len(counters)]
            await http.request("POST", f"/api/v1/counters/{number}/finish")
            await http.request("POST", f"/api/v1/counters/{number}/call-next")
            await asyncio.sleep(1.0)


def start_display(centre: Centre, work: Path, display_env: dict[str, str],
                  counter: int | None = None) -> tuple[subprocess.Popen[bytes], Path]:
    log = work / "display.log"
    env = {**os.environ, **display_env, "PYTHONUNBUFFERED": "1", "KIVY_NO_ARGS": "1",
           "KIVY_HOME": str(work / "kivy"), "KIVY_NO_FILELOG": "1", "KIVY_LOG_MODE": "PYTHON"}
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "luot.cli", "display", "--config", str(centre.config_path),
             "--mqtt", f"127.0.0.1:{centre.mqtt_port}", "--data", str(centre.data), "--size", "1920x1080",
             *(["--counter", str(counter)] if counter is not None else [])],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    return proc, log


def wait_for_log(proc: subprocess.Popen[bytes], log: Path, pattern: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"display exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        if re.search(pattern, log.read_text("utf-8", errors="replace")):
            return
        time.sleep(0.2)
    raise RuntimeError(f"display: no {pattern!r} in its log after {timeout} s:\n{log.read_text()[-3000:]}")


def gl_renderer(log: Path) -> str:
    found = re.search(r"OpenGL renderer <b?'?([^>']+)", log.read_text("utf-8", errors="replace"))
    return found.group(1) if found else "unknown"


def report(label: str, window: CpuWindow) -> None:
    print(f"{label:<44} {window.percent_of_one_core:6.1f} % of one core "
          f"({window.cpu:.2f} CPU-s in {window.wall:.1f} s); others {window.others_cores:.2f} cores, "
          f"steal {100 * window.steal:.1f} %")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="--counter N measures that counter's display instead")
    parser.add_argument("--seconds", type=float, default=25.0, help="length of the idle window")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after the first draw before measuring")
    parser.add_argument("--calls", type=int, default=3, help="calls made after the idle window (then measured)")
    parser.add_argument("--counter", type=int, help="a counter's display instead of the hall's")
    parser.add_argument("--xvfb", action="store_true", help="a virtual X screen instead of SDL offscreen")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="luot-bench-idle-"))
    centre = Centre(work / "centre")
    xvfb: subprocess.Popen[bytes] | None = None
    display: subprocess.Popen[bytes] | None = None
    display_env = {"LIBGL_ALWAYS_SOFTWARE": "1"}
    if args.xvfb:
        xvfb = subprocess.Popen(["Xvfb", ":97", "-screen", "0", "1920x1080x24", "-nolisten", "tcp"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        display_env.update(DISPLAY=":97", SDL_VIDEODRIVER="x11")
    else:
        display_env.update(SDL_VIDEODRIVER="offscreen")
        os.environ.pop("DISPLAY", None)
    try:
        centre.start_broker()
        centre.start_server()
        asyncio.run(prepare_day(centre))
        load_before = os.getloadavg()
        display, log = start_display(centre, work, display_env, args.counter)
        wait_for_log(display, log, r"connected to MQTT broker", 60)
        time.sleep(args.settle)
        with CpuWindow(display.pid) as idle:
            time.sleep(args.seconds)
        with CpuWindow(display.pid) as after_calls:
            asyncio.run(call_some(centre, args.calls))
            time.sleep(max(0.0, args.seconds - args.calls))
        with CpuWindow(display.pid) as idle_again:
            time.sleep(args.seconds)
        rss = psutil.Process(display.pid).memory_info().rss / 2**20
        what = f"counter {args.counter}" if args.counter is not None else "hall"
        print(f"{what} display idle bench: luot display 1920x1080, "
              f"{'Xvfb' if args.xvfb else 'SDL offscreen'}, GL renderer: {gl_renderer(log)}, "
              f"{psutil.cpu_count()} CPUs, load average before {load_before[0]:.2f}, RSS {rss:.0f} MB")
        report(f"idle, retained state shown ({args.seconds:.0f} s)", idle)
        report(f"{args.calls} calls, 1 s apart, then rest ({args.seconds:.0f} s)", after_calls)
        report(f"idle again ({args.seconds:.0f} s)", idle_again)
        return 0
    finally:
        if display is not None and display.poll() is None:
            display.terminate()
            try:
                display.wait(10)
            except subprocess.TimeoutExpired:
                display.kill()
                display.wait()
        centre.close()
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
