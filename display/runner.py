"""Start a hall or counter display: Kivy environment, voice, MQTT client and the app, wired once.

Used by ``luot display``, the Kivy tests' driver and the benchmark, so all three run the same code.
Nothing here imports Kivy before :func:`prepare_kivy_env` has set its environment.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from luot.config import CentreConfig
from luot.protocol import Topics

log = logging.getLogger(__name__)


@dataclass
class DisplayOptions:
    config: CentreConfig
    device: str
    secret: str
    host: str
    port: int
    counter: int | None = None
    size: tuple[int, int] | None = (1920, 1080)
    fullscreen: bool = False
    voice: bool = True
    data_dir: Path = Path("var")


def prepare_kivy_env(home: str | Path, size: tuple[int, int] | None = None, fullscreen: bool = False) -> None:
    """Kivy's environment and window settings; must run before anything imports Kivy."""
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_HOME", str(home))
    os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")  # one log, through Python's logging
    os.environ.setdefault("KIVY_NO_FILELOG", "1")
    Path(home).mkdir(parents=True, exist_ok=True)
    from kivy.config import Config

    if size:
        Config.set("graphics", "width", str(size[0]))
        Config.set("graphics", "height", str(size[1]))
    Config.set("graphics", "fullscreen", "auto" if fullscreen else "0")
    Config.set("graphics", "resizable", "1")
    Config.set("input", "mouse", "mouse,disable_multitouch")
    Config.set("kivy", "exit_on_escape", "1")


def build_app(options: DisplayOptions) -> Any:
    """The LuotDisplayApp for ``options`` (its MQTT client starts with the app)."""
    prepare_kivy_env(options.data_dir / "kivy", options.size, options.fullscreen)
    from display.app import LuotDisplayApp
    from display.client import DisplayClient
    from display.controller import make_announcer
    from display.model import DisplayModel

    model = DisplayModel(options.config, options.counter)
    # A counter's own display stays silent: the hall speaks, once, for everyone.
    announcer = None
    if options.voice and options.counter is None:
        announcer = make_announcer(options.config.voice, options.data_dir / "announcements")

    def start_client(app: Any) -> DisplayClient:
        client = DisplayClient(Topics(options.config.centre.id), options.device, options.secret,
                               options.host, options.port, on_message=app.post_message,
                               on_status=app.post_status, tls=options.config.mqtt.tls)
        client.start()
        return client

    return LuotDisplayApp(model, announcer, start_client=start_client)
