"""The real kiosk program on a kiosk box, driven by JSON lines (for tests/test_lan_centre.py).

It builds the KioskApp the way ``luot kiosk --server URL --data DIR --config FILE`` does (the
identity it enrolled with, the centre file as the offline fallback), on an SDL offscreen window,
and taps through it with real touches (tests/helpers/kiosk_driver.py). The Kivy loop is pumped on
the main thread all the time; commands arrive on stdin:

* ``{"cmd": "ticket", "group": 0}`` -> tap an ordinary ticket of the first group; answers with
  what the screen showed, the ticket's tracking URL and the PNG the kiosk rendered for the printer;
* ``{"cmd": "state"}`` -> whether the kiosk thinks it is online, its outbox's pending tickets and
  every ticket it issued (number, token, offline);
* ``{"cmd": "quit"}``.

Usage: python -m tests.helpers.lan_kiosk '{"server": URL, "device": ID, "secret": S, "data": DIR, "config": FILE}'
"""

from __future__ import annotations

import json
import logging
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tests.kiosk_scenarios import tap_ordinary_ticket  # imports kiosk_driver: sets Kivy's environment first
from tests.helpers.kiosk_driver import Driver


def main() -> None:
    raw = json.loads(sys.argv[1])
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from kiosk.app import KioskApp, KioskOptions
    from luot.commands.kiosk import _centre_description
    from luot.config import load_config

    data = Path(raw["data"])
    config = load_config(raw["config"])
    options = KioskOptions(server_url=raw["server"], device_id=raw["device"], secret=raw["secret"],
                           data_dir=data, transitions=False, config=config, timezone=config.centre.timezone,
                           fallback_centre=_centre_description(config), speech=False)
    app = KioskApp(options)
    driver = Driver(app, data / "shots")
    out = sys.stdout
    sys.stdout = sys.stderr  # only answers on the real stdout

    def answer(value: Any) -> None:
        out.write(json.dumps(value, ensure_ascii=False, default=str) + "\n")
        out.flush()

    def ticket(command: dict[str, Any]) -> dict[str, Any]:
        seen = tap_ordinary_ticket(driver, command.get("group", 0))
        issued = app.issued[-1]
        png = data / "tickets" / f"{issued.issued_at.strftime('%Y%m%d-%H%M%S')}-{issued.group}-{issued.number}.png"
        deadline = time.monotonic() + 15
        while not png.exists() and time.monotonic() < deadline:  # rendered on the printing thread
            driver.pump(0.1)
        return {**{k: seen[k] for k in ("shown", "number", "group", "offline", "token")},
                "tracking_url": issued.tracking_url, "png": str(png) if png.exists() else None,
                "offline_notice": [t for t in seen["texts"] if "mất kết nối" in t]}

    def state() -> dict[str, Any]:
        pending = app.runner.call(app.link.outbox.pending())
        return {"online": app.link.online, "pending": [t.number for t in pending],
                "issued": [{"number": t.number, "group": t.group, "token": t.token, "offline": t.offline}
                           for t in app.issued]}

    commands: "queue.Queue[dict[str, Any]]" = queue.Queue()

    def read() -> None:
        for line in sys.stdin:
            if line.strip():
                commands.put(json.loads(line))
        commands.put({"cmd": "quit"})

    threading.Thread(target=read, daemon=True, name="driver-stdin").start()
    driver.start()
    driver.wait(lambda: app.root.current == "attract", what="the attract screen")
    while True:
        driver.pump(0.05)
        try:
            command = commands.get_nowait()
        except queue.Empty:
            continue
        try:
            if command["cmd"] == "quit":
                answer({"ok": True})
                break
            answer(ticket(command) if command["cmd"] == "ticket" else state())
        except Exception as error:  # report it to the test instead of hanging it
            logging.exception("kiosk driver command failed")
            answer({"error": repr(error)})
    driver.stop()


if __name__ == "__main__":
    main()
