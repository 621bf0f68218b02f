"""Talking to a driver program in a child process: one JSON command a line on its stdin, one JSON
answer a line on its stdout. The display's driver and the LAN test's device drivers speak it."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from pathlib import Path
from typing import Any


class JsonLinePeer:
    """The talking half: ``proc`` is a started child with piped stdin/stdout, ``log`` its stderr file."""

    answer_timeout = 30.0

    def __init__(self, proc: "subprocess.Popen[bytes]", name: str, log: Path) -> None:
        self.proc, self.name, self.log = proc, name, log
        self._answers: "queue.Queue[dict[str, Any]]" = queue.Queue()
        threading.Thread(target=self._read, daemon=True, name=f"driver-{name}").start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self._answers.put(json.loads(line))
            except ValueError:  # a stray line from a library: keep it in the log
                with open(self.log, "ab") as sink:
                    sink.write(b"[stdout] " + line)

    def command(self, cmd: str, timeout: float | None = None, **fields: Any) -> dict[str, Any]:
        """Send one command and wait for its answer; the driver's refusal is raised with its log's tail."""
        timeout = self.answer_timeout if timeout is None else timeout
        assert self.proc.stdin is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} driver exited with {self.proc.returncode}: {self.tail()}")
        self.proc.stdin.write((json.dumps({"cmd": cmd, **fields}) + "\n").encode())
        self.proc.stdin.flush()
        try:
            answer = self._answers.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"{self.name} did not answer {cmd!r} in {timeout} s: {self.tail()}") from None
        if "error" in answer:
            raise RuntimeError(f"{self.name} failed on {cmd!r}: {answer['error']}\n{self.tail()}")
        return answer

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text("utf-8", "replace").splitlines()[-lines:])
        except OSError:
            return ""

    def quit(self) -> None:
        """Ask the driver to quit; kill it when it does not."""
        if self.proc.poll() is None:
            try:
                self.command("quit", timeout=10)
                self.proc.wait(10)
            except (TimeoutError, RuntimeError, subprocess.TimeoutExpired, OSError):
                self.proc.kill()
                self.proc.wait()
