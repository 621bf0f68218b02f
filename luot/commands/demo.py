"""``luot demo``: a whole centre with simulated visitors and officers, and a live summary.

Three ways to run it (docs/demo.md):

- live (``make centre``): the server, the broker (Mosquitto from broker_config/ when installed, else
  the embedded amqtt broker) and a SQLite file under var/demo, the simulated time running
  ``--speed`` times faster than real time, day after day (officers open in the morning, pause for
  lunch, close in the evening; nights and closed days pass); a live line shows what a manager
  would look at, and each finished day prints its summary. With a screen it also opens the kiosk
  and hall display windows.
- ``--days N`` (without ``--live``): the same simulated days as fast as the machine can, engine and
  SQLite only, one summary per day (``--json``: one JSON object per line).
- ``--what-if CHANGE``: the same days (same seed: same citizens) without and with a change a manager
  would consider, side by side.
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
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="centre TOML file (default: the shipped sample centre)")
    parser.add_argument("--data", help="demo data directory, emptied at start (default: var/demo live; "
                                       "in memory for --days and --what-if)")
    parser.add_argument("--speed", type=float, default=60.0, help="simulated seconds per real second (default: 60)")
    parser.add_argument("--minutes", type=float, help="stop after this many simulated minutes (default: run until Ctrl+C)")
    parser.add_argument("--tickets-per-day", type=int, default=260, help="mean arrivals in a day (default: 260)")
    parser.add_argument("--port", type=int, help="HTTP port (default: from the config)")
    parser.add_argument("--mqtt-port", type=int, help="port of the broker the demo starts (0 = any free port)")
    parser.add_argument("--broker", choices=["auto", "mosquitto", "amqtt"], default="auto")
    parser.add_argument("--no-mqtt", action="store_true", help="run without a broker (web/API only)")
    parser.add_argument("--headless", action="store_true", help="do not open kiosk and display windows")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables (--days: one object per day)")
    parser.add_argument("--days", type=int, help="simulate this many open days, as fast as possible unless --live")
    parser.add_argument("--live", action="store_true", help="with --days: run the days live (server, broker, --speed)")
    parser.add_argument("--start", type=date.fromisoformat, help="first day, YYYY-MM-DD (default: today; closed days are skipped)")
    parser.add_argument("--seed", type=int, default=7, help="same seed, same simulated citizens and officers (default: 7)")
    parser.add_argument("--what-if", action="append", default=[], metavar="CHANGE",
                        help="compare the same days with a change: add-counter:GROUP, move:GROUP:COUNTER, "
                             "lunch:+MINUTES (repeatable; default 3 days)")


def run(args: argparse.Namespace) -> int:
    from luot.config import load_config
    from luot.logs import setup_logging

    setup_logging(os.environ.get("LUOT_LOG", "WARNING"))
    config = load_config(args.config)
    if args.days is not None and not 1 <= args.days <= 366:
        print("luot demo: --days must be between 1 and 366", file=sys.stderr)
        return 2
    first = args.start or datetime.now(config.zone).date()  # the centre's today, not the machine's
    if args.what_if:
        return _what_if(config, args, first)
    if args.days is not None and not args.live:
        return _fast(config, args, first)
    data = Path(args.data or "var/demo")
    if data.exists():
        shutil.rmtree(data)
    return asyncio.run(_demo(config, args, data, first))


def _fast(config, args, first: date) -> int:
    """``--days N``: the days as fast as possible, one summary per day."""
    from server.simulation import simulate_days

    db = ":memory:"
    if args.data:
        data = Path(args.data)
        if data.exists():
            shutil.rmtree(data)
        db = str(data / Path(config.storage.path).name)
    result = asyncio.run(simulate_days(config, first, args.days, seed=args.seed,
                                       tickets_per_day=args.tickets_per_day, db_path=db))
    if args.json:
        for day in result["days"]:
            print(json.dumps(day, ensure_ascii=False))
    else:
        print(f"Luot demo: {config.centre.name}, {args.days} ngày / days, seed {args.seed}")
        _print_days(result["days"] + [{"day": "all days", "weekday": "", **result["period"]}])
    return 0


def _what_if(config, args, first: date) -> int:
    """``--what-if``: the same days without and with the change, side by side."""
    from server.simulation import WhatIf, compare

    try:
        change = WhatIf.parse(args.what_if)
        result = asyncio.run(compare(config, change, first, args.days or 3, seed=args.seed,
                                     tickets_per_day=args.tickets_per_day))
    except ValueError as error:
        print(f"luot demo: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        _print_comparison(result)
    return 0


def _minutes(value: Any) -> str:
    return "-" if value is None else f"{value:.1f}"


def _print_days(days: list[dict]) -> None:
    print(f"{'ngày / day':<15}{'cấp':>6}{'phục vụ':>9}{'vắng':>6}{'hết giờ':>8}"
          f"{'chờ TB':>8}{'P90':>7}{'lâu nhất':>9}{'hài lòng':>10}")
    print(f"{'':<15}{'issued':>6}{'served':>9}{'no-sh':>6}{'expired':>8}"
          f"{'mean':>8}{'P90':>7}{'longest':>9}{'satisfied':>10}")
    for d in days:
        share = d["satisfaction"]["satisfied_share"]
        print(f"{(d['day'] + ' ' + d['weekday']).strip():<15}{d['issued']:>6}{d['served']:>9}{d['no_shows']:>6}"
              f"{d['expired_at_closing']:>8}{_minutes(d['mean_wait_minutes']):>8}{_minutes(d['p90_wait_minutes']):>7}"
              f"{_minutes(d['longest_wait_minutes']):>9}{'-' if share is None else f'{share:.0%}':>10}")


def _side(before: Any, after: Any) -> str:
    if before is None or after is None:
        return f"{_minutes(before)} → {_minutes(after)}"
    return f"{before:.1f} → {after:.1f} ({after - before:+.1f})"


def _print_comparison(result: dict) -> None:
    print("Nếu / what if: " + "; ".join(result["changes"]) + f"   (seed {result['seed']}, same citizens both runs)")
    for note in result["notes"]:
        print(f"  ({note})")
    print(f"{'ngày / day':<16}{'chờ TB / mean wait (min)':<28}{'P90 (min)':<28}{'phục vụ / served':<18}"
          f"{'hết giờ / expired':<18}")
    rows = list(zip(result["baseline"]["days"], result["what_if"]["days"]))
    rows.append(({"day": "all days", **result["baseline"]["period"]}, {"day": "all days", **result["what_if"]["period"]}))
    for before, after in rows:
        print(f"{before['day']:<16}{_side(before['mean_wait_minutes'], after['mean_wait_minutes']):<28}"
              f"{_side(before['p90_wait_minutes'], after['p90_wait_minutes']):<28}"
              f"{before['served']} → {after['served']:<12}{before['expired_at_closing']} → {after['expired_at_closing']}")
    print(f"{'nhóm / group':<16}{'chờ TB / mean wait (min)':<28}{'P90 (min)':<28}")
    after_groups = result["what_if"]["period"]["groups"]
    for code, before in result["baseline"]["period"]["groups"].items():
        after = after_groups.get(code, {})
        print(f"{code:<16}{_side(before['mean_wait_minutes'], after.get('mean_wait_minutes')):<28}"
              f"{_side(before['p90_wait_minutes'], after.get('p90_wait_minutes')):<28}")


async def _demo(config, args, data: Path, first: date) -> int:
    from luot.aio import freeze_startup_objects
    from server.app import CentreRuntime, RuntimeOptions, free_port
    from server.simulation import SimClock, Simulation, open_days, sessions

    opening = sessions(config, next(iter(open_days(config, first, 1))))[0][0]
    clock = SimClock(opening - timedelta(minutes=5), args.speed, time.monotonic)
    # The demo is one box: its web server stays on loopback whatever [http] host says, and its
    # tickets' QR links point there (a browser on this machine opens them), not at the LAN address.
    port = args.port if args.port is not None else config.http.port
    port = port or free_port()
    config = config.model_copy(update={"centre": config.centre.model_copy(
        update={"public_url": f"http://127.0.0.1:{port}", "single_box": True})})
    runtime = CentreRuntime(config, RuntimeOptions(data_dir=data, http_host="127.0.0.1", http_port=port,
                                                     broker=args.broker, clock=clock,
                                                     mqtt_port=args.mqtt_port,
                                                     mqtt=not args.no_mqtt, init=True))
    try:
        await runtime.start()
    except Exception as error:
        print(f"Không khởi động được trung tâm / the centre could not start: {error}", file=sys.stderr)
        await runtime.stop()
        return 1
    freeze_startup_objects()
    assert runtime.service is not None
    sim = Simulation(runtime.service, tickets_per_day=args.tickets_per_day, seed=args.seed, first_day=first,
                     days=args.days)
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
    reported = 0
    summary: dict = {}
    try:
        while not stop.is_set() and not sim.done:
            await sim.step()
            for day in sim.finished_days[reported:]:  # a day just closed: its summary, as in --days
                reported += 1
                day_summary = sim.ledger.summary(day)
                if args.json:
                    print(json.dumps(day_summary, ensure_ascii=False), flush=True)
                else:
                    _print_days([day_summary])
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
    if args.json and args.days is None:
        print(json.dumps(summary, ensure_ascii=False))
    elif not args.json:
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
        "time": now.astimezone(service.config.zone).strftime("%a %d/%m %H:%M"),
        "open": service.config.is_open(now),
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
    line = (f"[{s['time']}{'' if s['open'] else ' đóng cửa/closed'}] đã cấp {s['issued']:4d} | đã phục vụ {s['served']:4d} | đang chờ {s['waiting_total']:3d} "
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
