"""Run a real display (the same build_app as ``luot display``) in this process, driven from stdin.

Kivy's Window is process-global, so each Kivy test module starts this once as a subprocess and
talks JSON lines: a command on stdin, one answer on stdout (logs go to stderr). Commands run on
Kivy's main thread:

* ``{"cmd": "describe"}`` -> what the widget tree shows (display.app.describe) plus the voice's
  history (announced calls with their WAV paths) and the number of MQTT connects;
* ``{"cmd": "screenshot", "path": P, "size": [w, h]}`` -> resize if asked, draw, write a PNG;
* ``{"cmd": "frames"}`` -> how many frames the window has drawn so far (its ``on_flip`` events);
* ``{"cmd": "quit"}``.

Usage: python -m tests.helpers.display_driver '<json options>'
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from pathlib import Path
from typing import Any


def main() -> None:
    raw = json.loads(sys.argv[1])
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from display.runner import DisplayOptions, build_app
    from luot.config import load_config

    options = DisplayOptions(
        config=load_config(raw.get("config")), device=raw["device"], secret=raw["secret"],
        host=raw["host"], port=raw["port"], counter=raw.get("counter"),
        size=tuple(raw.get("size", (1920, 1080))), voice=raw.get("voice", True),  # type: ignore[arg-type]
        data_dir=Path(raw["data_dir"]),
    )
    app = build_app(options)
    from kivy.clock import Clock
    from kivy.core.window import Window

    from display.app import describe

    frames = [0]
    Window.bind(on_flip=lambda *_: frames.__setitem__(0, frames[0] + 1))
    out = sys.stdout
    sys.stdout = sys.stderr  # anything else printed must not corrupt the answers

    def answer(value: Any) -> None:
        out.write(json.dumps(value, ensure_ascii=False) + "\n")
        out.flush()

    def describe_all() -> dict[str, Any]:
        state = describe(app.root)
        announcer = app.announcer
        state["announced"] = [
            {"event_id": a.event_id, "number": a.number, "counter": a.counter, "wav": str(a.wav) if a.wav else None,
             "text": a.text, "played": a.played}
            for a in (announcer.history if announcer is not None else [])
        ]
        state["submitted"] = [c.event_id for c in app.controller.announced]
        state["connects"] = app.client.connects if app.client is not None else 0
        state["connected"] = app.model.connected
        state["server_online"] = app.model.server_online
        return state

    def screenshot(command: dict[str, Any]) -> None:
        if command.get("size"):
            Window.size = tuple(command["size"])

        def shoot(_dt: float) -> None:
            target = Path(command["path"])
            written = Window.screenshot(name=str(target.with_suffix("")) + "%(counter)s.png")
            Path(written).replace(target)
            answer({"path": str(target), "size": list(Window.size)})

        # two frames: one to lay out at the new size, one to draw it
        Clock.schedule_once(lambda _dt: Clock.schedule_once(shoot, 0.3), 0.2)

    def run(command: dict[str, Any]) -> None:
        try:
            if command["cmd"] == "describe":
                answer(describe_all())
            elif command["cmd"] == "screenshot":
                screenshot(command)
            elif command["cmd"] == "frames":
                answer({"frames": frames[0]})
            elif command["cmd"] == "quit":
                answer({"ok": True})
                app.stop()
            else:
                answer({"error": f"unknown command {command['cmd']!r}"})
        except Exception as error:  # report it to the test instead of hanging it
            logging.exception("driver command failed")
            answer({"error": repr(error)})

    def read_commands() -> None:
        for line in sys.stdin:
            if line.strip():
                command = json.loads(line)
                Clock.schedule_once(lambda _dt, c=command: run(c), 0)
        Clock.schedule_once(lambda _dt: app.stop(), 0)

    threading.Thread(target=read_commands, name="driver-stdin", daemon=True).start()
    app.run()


if __name__ == "__main__":
    main()
