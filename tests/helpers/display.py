"""Start a real Kivy display in a subprocess (SDL offscreen) and ask it what it shows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from tests.helpers.line_driver import JsonLinePeer

ROOT = Path(__file__).resolve().parents[2]


class DisplayProcess(JsonLinePeer):
    """``tests/helpers/display_driver.py`` as a child process; one JSON command, one JSON answer."""

    answer_timeout = 20.0

    def __init__(self, data_dir: Path, **options: Any) -> None:
        self.data_dir = data_dir
        log = data_dir / "display.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "SDL_VIDEODRIVER": "offscreen", "KIVY_NO_ARGS": "1",
               "KIVY_HOME": str(data_dir / "kivy"), "KIVY_NO_FILELOG": "1", "KIVY_LOG_MODE": "PYTHON",
               "PYTHONUNBUFFERED": "1"}
        env.pop("DISPLAY", None)
        self._stderr = open(log, "wb")  # noqa: SIM115 - closed in close()
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.helpers.display_driver",
             json.dumps({"data_dir": str(data_dir), **options})],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, cwd=ROOT, env=env,
        )
        super().__init__(proc, "display", log)

    def describe(self) -> dict[str, Any]:
        return self.command("describe")

    def wait_until(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 15.0,
                   what: str = "condition") -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            state = self.describe()
            if predicate(state):
                return state
            if time.monotonic() > deadline:
                shown = {k: state[k] for k in ("tiles", "newest", "badge", "connected", "submitted") if k in state}
                raise AssertionError(f"display: {what} not seen in {timeout} s; shows {shown}")
            time.sleep(0.1)

    def screenshot(self, path: Path, size: tuple[int, int] | None = None) -> Path:
        self.command("screenshot", path=str(path), size=list(size) if size else None)
        return path

    def close(self) -> None:
        self.quit()
        self._stderr.close()
