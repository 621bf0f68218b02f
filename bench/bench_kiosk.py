"""Kiosk benchmark: tap-to-ticket latency, cold start to first frame, resident memory.

The centre runs in this process (real SQLite, HTTP on a free port); the kiosk runs in a child
process (Kivy's window is process-global), offscreen when there is no display. Figures are
printed, never asserted (DEVELOPERS.md).

    python bench/bench_kiosk.py [--tickets 40]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def child(url: str, secret: str, data: Path, tickets: int) -> None:
    """The kiosk process: first frame, then ``tickets`` taps on "Lấy số", timed to the ticket screen."""
    import psutil

    started = psutil.Process().create_time()
    from tests.helpers.kiosk_driver import Driver  # sets the Kivy environment

    from kiosk.app import KioskApp, KioskOptions

    app = KioskApp(KioskOptions(server_url=url, device_id="kiosk-1", secret=secret, data_dir=data,
                                transitions=False, speech=False, ticket_seconds=3600))
    driver = Driver(app, data / "shots")
    app._run_prepare()
    from kivy.base import EventLoop

    EventLoop.idle()  # the first frame is drawn and flipped here
    first_frame = time.time() - started
    rss_start = psutil.Process().memory_info().rss
    driver.pump(0.3)
    latencies = []
    for index in range(tickets):
        app.restart()
        app.choose_language("vi")
        app.choose_group(app.centre["groups"][index % 3]["code"])
        app.choose_priority(None)
        driver.pump(0.02)
        before = len(app.issued)
        button = driver.screen().ids.take
        from kivy.tests.common import UnitTestTouch

        touch = UnitTestTouch(*button.to_window(*button.center))
        t0 = time.perf_counter()
        touch.touch_down()
        touch.touch_up()
        while not (app.root.current == "ticket" and len(app.issued) > before):
            EventLoop.idle()  # frames as a real kiosk draws them (60 fps cap)
            if time.perf_counter() - t0 > 10:
                raise RuntimeError("no ticket within 10 s")
        latencies.append((time.perf_counter() - t0) * 1000)
    rss_end = psutil.Process().memory_info().rss
    driver.stop()
    print(json.dumps({"first_frame_s": first_frame, "rss_start_mb": rss_start / 2**20, "rss_end_mb": rss_end / 2**20,
                      "latencies_ms": latencies}))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=40)
    parser.add_argument("--child", nargs=3, metavar=("URL", "SECRET", "DATA"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], Path(args.child[2]), args.tickets)
        return 0

    from luot.config import load_config
    from server.app import CentreRuntime, RuntimeOptions

    tmp = Path(tempfile.mkdtemp(prefix="bench-kiosk-"))
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    runtime = CentreRuntime(load_config(), RuntimeOptions(data_dir=tmp / "server", http_port=0, mqtt=False, init=True))
    asyncio.run_coroutine_threadsafe(runtime.start(), loop).result(60)
    secret = runtime.credentials.password("kiosk-1")
    env = {k: v for k, v in os.environ.items() if k != "KIVY_HOME"}
    done = subprocess.run([sys.executable, __file__, "--tickets", str(args.tickets), "--child", runtime.base_url, secret,
                           str(tmp / "kiosk")], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    asyncio.run_coroutine_threadsafe(runtime.stop(), loop).result(30)
    if done.returncode != 0:
        print(done.stderr[-4000:], file=sys.stderr)
        return 1
    result = json.loads(done.stdout.strip().splitlines()[-1])
    lat = sorted(result["latencies_ms"])
    p95 = lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))]
    print("kiosk benchmark (centre in this process, kiosk in a child process, SDL "
          f"{os.environ.get('SDL_VIDEODRIVER') or ('offscreen' if not os.environ.get('DISPLAY') else 'x11')})")
    print(f"  tap 'Lấy số' -> ticket on screen ({len(lat)} tickets): p50 {statistics.median(lat):.1f} ms, "
          f"p95 {p95:.1f} ms, max {lat[-1]:.1f} ms")
    print(f"  cold start -> first frame: {result['first_frame_s']:.2f} s")
    print(f"  resident memory: {result['rss_start_mb']:.0f} MB at first frame, "
          f"{result['rss_end_mb']:.0f} MB after {len(lat)} tickets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
