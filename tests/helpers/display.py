"""Start a real Kivy display in a subprocess (SDL offscreen) and ask it what it shows."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]


class DisplayProcess:
    """``tests/helpers/display_driver.py`` as a child process; one JSON command, one JSON answer."""

    def __init__(self, data_dir: Path, **options: Any) -> None:
        self.data_dir = data_dir
        self.log = data_dir / "display.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "SDL_VIDEODRIVER": "offscreen", "KIVY_NO_ARGS": "1",
               "KIVY_HOME": str(data_dir / "kivy"), "KIVY_NO_FILELOG": "1", "KIVY_LOG_MODE": "PYTHON",
               "PYTHONUNBUFFERED": "1"}
        env.pop("DISPLAY", None)
        self._stderr = open(self.log, "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.helpers.display_driver",
             json.dumps({"data_dir": str(data_dir), **options})],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, cwd=ROOT, env=env,
        )
        self._answers: "queue.Queue[dict[str, Any]]" = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._answers.put(json.loads(line))

    def command(self, cmd: str, timeout: float = 20.0, **fields: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"display exited with {self.proc.returncode}: {self.tail()}")
        self.proc.stdin.write((json.dumps({"cmd": cmd, **fields}) + "\n").encode())
        self.proc.stdin.flush()
        try:
            answer = self._answers.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"display did not answer {cmd!r} in {timeout} s: {self.tail()}") from None
        if "error" in answer:
            raise RuntimeError(f"display failed on {cmd!r}: {answer['error']}: {self.tail()}")
        return answer

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

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text("utf-8", "replace").splitlines()[-lines:])
        except OSError:
            return ""

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.command("quit", timeout=10)
                self.proc.wait(10)
            except (TimeoutError, RuntimeError, subprocess.TimeoutExpired, BrokenPipeError):
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()
