"""``luot demo``: a whole centre with simulated visitors and officers, and a live summary.

It runs on the embedded defaults (a SQLite file under var/demo, and Mosquitto from broker_config/
when installed, else the embedded amqtt broker), speeds the day up ``--speed`` times, and prints
what a manager would look at: tickets issued, people waiting per group, mean wait, counters busy.
When a screen exists it also opens the kiosk and hall display windows.
"""

from __future__ import annotations

HELP = "run a whole centre with simulated visitors and officers, with a live summary"

import argparse
import asyncio
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, time as clock_time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="centre TOML file (default: the shipped sample centre)")
    parser.add_argument("--data", default="var/demo", help="demo data directory, emptied at start (default: var/demo)")
    parser.add_argument("--speed", type=float, default=60.0, help="simulated seconds per real second (default: 60)")
    parser.add_argument("--minutes", type=float, help="stop after this many simulated minutes (default: run until Ctrl+C)")
    parser.add_argument("--tickets-per-day", type=int, default=260, help="mean arrivals in a day (default: 260)")
    parser.add_argument("--port", type=int, help="HTTP port (default: from the config)")
    parser.add_argument("--mqtt-port", type=int, help="port of the broker the demo starts (0 = any free port)")
    parser.add_argument("--broker", choices=["auto", "mosquitto", "amqtt"], default="auto")
    parser.add_argument("--no-mqtt", action="store_true", help="run without a broker (web/API only)")
    parser.add_argument("--headless", action="store_true", help="do not open kiosk and display windows")
    parser.add_argument("--json", action="store_true", help="print one JSON summary at the end instead of the live table")


def run(args: argparse.Namespace) -> int:
    from luot.config import load_config
    from luot.logs import setup_logging

    setup_logging(os.environ.get("LUOT_LOG", "WARNING"))
    config = load_config(args.config)
    data = Path(args.data)
    if data.exists():
        shutil.rmtree(data)
    return asyncio.run(_demo(config, args, data))


def _morning(config) -> datetime:
    """Today at 07:30 in the centre's time zone: the demo day starts when the doors open."""
    local_today = datetime.now(config.zone).date()
    return datetime.combine(local_today, clock_time(7, 30), tzinfo=config.zone)


async def _demo(config, args, data: Path) -> int:
    from luot.aio import freeze_startup_objects
    from server.app import CentreRuntime, RuntimeOptions, free_port
    from server.simulation import SimClock, Simulation

    clock = SimClock(_morning(config), args.speed, time.monotonic)
    # The demo is one box: its web server stays on loopback whatever [http] host says, and its
    # tickets' QR links point there (a browser on this machine opens them), not at the LAN address.
    port = args.port if args.port is not None else config.http.port
    port = port or free_port()
    config = config.model_copy(update={"centre": config.centre.model_copy(
        update={"public_url": f"http://127.0.0.1:{port}", "single_box": True})})
    runtime = CentreRuntime(config, RuntimeOptions(data_dir=data, http_host="127.0.0.1", http_port=port,
                                                     broker=args.broker, clock=clock,
                                                     mqtt_port=args.mqtt_port,
                                                     mqtt=not args.no_mqtt))
    try:
        await runtime.start()
    except Exception as error:
        print(f"Không khởi động được trung tâm / the centre could not start: {error}", file=sys.stderr)
        await runtime.stop()
        return 1
    freeze_startup_objects()
    assert runtime.service is not None
    sim = Simulation(runtime.service, tickets_per_day=args.tickets_per_day)
    await sim.open_counters()
    windows = [] if args.headless else _open_windows(runtime, data)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    started = clock()
    if not args.json:
        print(f"Luot demo: {config.centre.name}")
        print(f"  web/API {runtime.base_url}   MQTT {runtime.mqtt_host}:{runtime.mqtt_port} "
              f"({getattr(runtime.broker, 'kind', 'external')})   speed x{args.speed:g}")
        print(f"  quầy / counter console  {runtime.base_url}/console    "
              f"bảng điều hành / dashboard  {runtime.base_url}/dashboard")
        for note in runtime.notes:
            print(f"  {note}")
        if not windows:
            print("  (no screen: running headless; kiosk and display windows need a display)")
    last_print = 0.0
    summary: dict = {}
    try:
        while not stop.is_set():
            await sim.step()
            if args.minutes is not None and (clock() - started).total_seconds() / 60 >= args.minutes:
                break
            if time.monotonic() - last_print >= 1.0:
                last_print = time.monotonic()
                summary = await _summary(runtime, sim)
                if not args.json:
                    _print_live(summary)
            await asyncio.sleep(0.05)
        summary = await _summary(runtime, sim)
    finally:
        for window in windows:
            window.terminate()
        await runtime.stop()
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        print("\nDemo stopped. Data kept in", data)
    return 0


async def _summary(runtime, sim) -> dict:
    service = runtime.service
    now = service.now()
    snapshot = service.engine.snapshot(now)
    day = service.config.service_day(now)
    rows = await service.storage.waiting_stats(day, day, "group")
    called = sum(r["called"] for r in rows)
    mean_wait = (sum((r["mean_wait_minutes"] or 0) * r["called"] for r in rows) / called) if called else None
    busy = sum(1 for c in snapshot["counters"] if c["status"] in ("calling", "serving"))
    open_ = sum(1 for c in snapshot["counters"] if c["status"] != "closed")
    return {
        "time": now.astimezone(service.config.zone).strftime("%H:%M"),
        "issued": sum(r["issued"] for r in rows),
        "served": sum(r["served"] for r in rows),
        "waiting": {code: g["waiting"] for code, g in snapshot["groups"].items()},
        "waiting_total": snapshot["waiting_total"],
        "mean_wait_minutes": round(mean_wait, 1) if mean_wait is not None else None,
        "counters_busy": busy,
        "counters_open": open_,
        "http": runtime.base_url,
    }


def _print_live(s: dict) -> None:
    waiting = "  ".join(f"{code}:{n}" for code, n in s["waiting"].items())
    mean = "-" if s["mean_wait_minutes"] is None else f"{s['mean_wait_minutes']:.1f} phút"
    line = (f"[{s['time']}] đã cấp {s['issued']:4d} | đã phục vụ {s['served']:4d} | đang chờ {s['waiting_total']:3d} "
            f"({waiting}) | chờ TB {mean} | quầy bận {s['counters_busy']}/{s['counters_open']}")
    print(line, flush=True)


def _open_windows(runtime, data: Path) -> list[subprocess.Popen]:
    """Start the kiosk and hall display as their own processes when a screen exists."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return []
    broker = f"{runtime.mqtt_host}:{runtime.mqtt_port}"
    wanted = {
        "kiosk": ["--server", runtime.base_url, "--mqtt", broker, "--data", str(data)],
        "display": ["--mqtt", broker, "--data", str(data), "--size", "1280x720"],
    }
    windows = []
    for command, options in wanted.items():
        if importlib.util.find_spec(f"luot.commands.{command}") is None:
            continue
        windows.append(subprocess.Popen([sys.executable, "-m", "luot.cli", command, *options]))
    return windows
