"""Drive the real Kivy kiosk in this process: SDL offscreen window, real touches, screenshots.

Imported only in a child process (tests/kiosk_scenarios.py): Kivy's Window is process-global, so
each scenario gets a fresh process. A real centre runs in a background thread of the same process
(tests/helpers/centre.py's runtime on its own asyncio loop), and the kiosk talks to it over HTTP.
"""

from __future__ import annotations

import os
import tempfile

_home = tempfile.mkdtemp(prefix="kivy-home-")
os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_HOME", _home)
os.environ.setdefault("KIVY_NO_FILELOG", "1")
os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
if not os.environ.get("DISPLAY"):
    os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")

import asyncio  # noqa: E402
import shutil  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

from kivy.config import Config  # noqa: E402

Config.set("graphics", "width", os.environ.get("LUOT_KIOSK_WIDTH", "720"))
Config.set("graphics", "height", os.environ.get("LUOT_KIOSK_HEIGHT", "1280"))
Config.set("input", "mouse", "")  # no hover/mouse provider noise offscreen

from kivy.base import EventLoop  # noqa: E402
from kivy.core.window import Window  # noqa: E402
from kivy.tests.common import UnitTestTouch  # noqa: E402

from luot.config import load_config  # noqa: E402
from server.app import CentreRuntime, RuntimeOptions, free_port  # noqa: E402


class CentreThread:
    """A real centre (SQLite, HTTP, optionally MQTT) on its own loop thread, on a fixed port so
    it can be stopped and started again at the same address (the offline drill)."""

    def __init__(self, data_dir: Path, mqtt: bool = False, port: int | None = None, config: Any = None,
                 clock: Any = None) -> None:
        self.data_dir = data_dir
        self.config = config  # a CentreConfig; None: the sample centre
        self.clock = clock  # the server's clock (None: the real one)
        self.mqtt = mqtt
        self.port = port or free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="centre")
        self.thread.start()
        self.runtime: CentreRuntime | None = None

    def call(self, coro: Any, timeout: float = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> "CentreThread":
        runtime = CentreRuntime(self.config or load_config(), RuntimeOptions(
            data_dir=self.data_dir, http_port=self.port, mqtt=self.mqtt, mqtt_port=0 if self.mqtt else None, init=True,
            **({"clock": self.clock} if self.clock else {})))
        self.call(runtime.start())
        self.runtime = runtime
        return self

    def stop(self) -> None:
        if self.runtime is not None:
            self.call(self.runtime.stop())
            self.runtime = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def secret(self, device: str) -> str:
        assert self.runtime is not None and self.runtime.credentials is not None
        return self.runtime.credentials.password(device)

    def engine(self):
        assert self.runtime is not None and self.runtime.service is not None
        return self.runtime.service.engine

    def run(self, command: Callable[[Any, Any], Any]) -> Any:
        assert self.runtime is not None and self.runtime.service is not None
        return self.call(self.runtime.service.run(command))


class Driver:
    """Pump the Kivy loop by hand, tap widgets with real touches, take screenshots."""

    def __init__(self, app: Any, shots: Path) -> None:
        self.app = app
        self.shots = shots
        shots.mkdir(parents=True, exist_ok=True)
        self.taps = 0

    def start(self) -> None:
        self.app._run_prepare()
        self.pump(0.3)

    def stop(self) -> None:
        self.app.stop()
        EventLoop.close()

    def pump(self, seconds: float = 0.05) -> None:
        end = time.monotonic() + seconds
        while True:
            EventLoop.idle()
            if time.monotonic() >= end:
                return
            time.sleep(0.005)

    def wait(self, predicate: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            EventLoop.idle()
            if predicate():
                self.pump(0.1)  # let bindings and the next frame settle
                return
            time.sleep(0.01)
        raise AssertionError(f"timed out after {timeout} s waiting for {what} (screen {self.app.root.current})")

    def screen(self, name: str | None = None):
        root = self.app.root
        return root.get_screen(name or root.current)

    def tap(self, widget: Any) -> None:
        """A finger down and up at the widget's centre, through the Window like a real touch."""
        assert widget.get_root_window() is not None, f"{widget} is not on screen"
        assert widget.opacity > 0 and not widget.disabled, f"{widget} is hidden or disabled"
        x, y = widget.to_window(*widget.center)
        touch = UnitTestTouch(x, y)
        touch.touch_down()
        self.pump(0.02)
        touch.touch_up()
        self.taps += 1
        self.pump(0.05)

    def find_text(self, root: Any, text: str) -> Any:
        """The first widget under ``root`` whose text contains ``text`` (markup included)."""
        for widget in root.walk():
            if text in str(getattr(widget, "text", "")):
                return widget
        raise AssertionError(f"no widget with text {text!r} on {self.app.root.current}")

    def texts(self, root: Any | None = None) -> list[str]:
        root = root or self.screen()
        return [str(w.text) for w in root.walk() if getattr(w, "text", None) and getattr(w, "opacity", 1) > 0]

    def shot(self, name: str) -> Path:
        self.pump(0.1)
        made = Path(Window.screenshot(str(self.shots / f"{name}.png")))
        final = self.shots / f"{name}.png"
        shutil.move(made, final)
        return final
