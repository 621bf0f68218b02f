"""Hall display latency: MQTT publish -> widgets updated in the Kivy process, and event -> WAV ready.

Runs a real Mosquitto (from the generated broker_config), the real hall display in THIS process
(Kivy, SDL offscreen unless a screen is there) and a publisher logged in as the server. All times
are ``time.monotonic()`` in one process, so no clock skew:

* screen: publish of a ``ticket.called`` on events/call -> the tile and newest-call widgets carry
  the number (``LuotDisplayApp.view_updates``), and -> the next Kivy frame after that;
* voice: publish -> the announcement WAV (chime + Vietnamese) is on disk, i.e. its first sample
  could play; calls spaced so none waits behind another;
* the same spaced calls on screen: a hall's usual case, one call at a time on a resting screen
  (the burst of phase 1 is a stress: every call there costs a software-drawn frame);
* the machine's state: CPUs and load average before and after.

Figures are printed, never asserted.

    .venv/bin/python bench/bench_display.py [--calls 200] [--voice-calls 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from luot.config import load_config  # noqa: E402
from luot.credentials import load_or_create  # noqa: E402
from display.model import FLASH_SECONDS  # noqa: E402
from luot.protocol import Topics, encode  # noqa: E402
from server.app import free_port  # noqa: E402
from server.broker import start_broker  # noqa: E402


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _report(label: str, millis: list[float]) -> None:
    if not millis:
        print(f"{label:<40} no samples")
        return
    print(f"{label:<40} n={len(millis):4d}  p50={statistics.median(millis):7.1f} ms  "
          f"p99={_percentile(millis, 0.99):7.1f} ms  max={max(millis):7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="calls for the screen latency")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between those calls")
    parser.add_argument("--voice-calls", type=int, default=10, help="spaced calls for the voice latency")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="luot-bench-display-"))
    os.environ.setdefault("SDL_VIDEODRIVER", "offscreen" if not os.environ.get("DISPLAY") else os.environ.get("SDL_VIDEODRIVER", "x11"))
    config = load_config()
    credentials = load_or_create(config, work / "secrets.json")
    port = free_port()
    broker = asyncio.run(start_broker(config, credentials, work / "broker", port))

    from display.runner import DisplayOptions, build_app

    app = build_app(DisplayOptions(config, "display-hall", credentials.password("display-hall"), "127.0.0.1", port,
                                   size=(1920, 1080), voice=True, data_dir=work))
    from kivy.clock import Clock

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    topics = Topics(config.centre.id)
    published: dict[str, float] = {}
    framed: dict[str, float] = {}
    original = app._redraw

    def redraw(dt: float = 0.0) -> None:
        with app._pending_lock:
            ids = [call.event_id for update in app._pending for call in update.announce]
        original(dt)
        for event_id in ids:  # the frame drawn after the widgets changed
            Clock.schedule_once(lambda _dt, e=event_id: framed.setdefault(e, time.monotonic()), 0)

    app._redraw = redraw

    def publisher() -> None:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="server", protocol=mqtt.MQTTv311)
        client.username_pw_set("server", credentials.password("server"))
        client.connect("127.0.0.1", port)
        client.loop_start()
        deadline = time.monotonic() + 20
        while (app.client is None or not app.client.subscribed) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)

        def call(index: int, counter: int) -> str:
            event_id = f"bench-{index:05d}"
            payload = encode("ticket.called", {"ticket_id": f"t{index}", "number": 1001 + index % 900, "group": "ho-tich",
                                               "counter": counter, "call": 1}, id=event_id,
                             at="2026-11-24T02:06:00+00:00", centre=config.centre.id)
            published[event_id] = time.monotonic()
            client.publish(topics.call_events, payload, qos=1).wait_for_publish(5)
            return event_id

        def wait_drawn(ids: list[str], timeout: float) -> None:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and any(e not in framed for e in ids):
                time.sleep(0.02)

        # Phase 1: screen latency. Announcements pile up behind these (the announcer is one
        # worker), so phase 2 waits for it, and for the screen, to drain first.
        burst = []
        for index in range(args.calls):
            burst.append(call(index, 1 + index % 6))
            time.sleep(args.interval)
        time.sleep(1.0)
        app.announcer.wait_idle(600)
        wait_drawn(burst, 120)
        time.sleep(FLASH_SECONDS + 0.5)
        # Phase 2: one call at a time on a resting screen, the next once it is spoken, drawn and
        # done flashing (a hall's usual case).
        global voice_ids
        voice_ids = []
        for index in range(args.voice_calls):
            voice_ids.append(call(10_000 + index, 1 + index % 6))
            app.announcer.wait_idle(60)
            wait_drawn(voice_ids[-1:], 30)
            time.sleep(FLASH_SECONDS + 0.5)
        client.disconnect()
        client.loop_stop()
        Clock.schedule_once(lambda _dt: app.stop(), 0)

    threading.Thread(target=publisher, daemon=True).start()
    started = time.monotonic()
    load_before = os.getloadavg()
    cpu_before = time.process_time()
    app.run()
    cpu = time.process_time() - cpu_before
    asyncio.run(broker.stop())

    updated = {u.announce[0].event_id: at for at, u in app.view_updates if u.announce}
    screen = [(updated[e] - t) * 1000 for e, t in published.items() if e in updated and not e.startswith("bench-1")]
    frame = [(framed[e] - t) * 1000 for e, t in published.items() if e in framed and not e.startswith("bench-1")]
    history = {a.event_id: a for a in app.announcer.history}
    spoken = [a for e in voice_ids if (a := history.get(e))]
    # history times are monotonic too: WAV ready - publish
    ready = [(a.ready - published[a.event_id]) * 1000 for a in spoken]
    render = [(a.ready - a.started) * 1000 for a in spoken]
    print(f"hall display bench: Mosquitto on 127.0.0.1:{port}, Kivy {os.environ.get('SDL_VIDEODRIVER')}, "
          f"{args.calls} calls every {args.interval * 1000:.0f} ms, {args.voice_calls} spaced voice calls "
          f"({time.monotonic() - started:.1f} s)")
    _report("publish -> widgets updated", screen)
    _report("publish -> next frame after update", frame)
    ordered = sorted(e for e in published if e in updated and not e.startswith("bench-1"))
    _report("  widgets updated, after the first 20", [(updated[e] - published[e]) * 1000 for e in ordered[20:]])
    _report("publish -> announcement WAV ready", ready)
    _report("  of which rendering (chime+speech)", render)
    spaced = [e for e in voice_ids if e in framed]
    _report("spaced calls: publish -> widgets updated", [(updated[e] - published[e]) * 1000 for e in spaced if e in updated])
    _report("spaced calls: publish -> next frame", [(framed[e] - published[e]) * 1000 for e in spaced])
    wall = time.monotonic() - started
    print(f"this process (display, voice, publisher): {cpu:.1f} CPU-s in {wall:.1f} s = {100 * cpu / wall:.0f} % of one core")
    print(f"machine: {os.cpu_count()} CPUs, load average {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after")
    lost = args.calls - len(screen)
    print(f"calls not seen on screen: {lost}")


voice_ids: list[str] = []

if __name__ == "__main__":
    main()
