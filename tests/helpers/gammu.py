"""A real Gammu SMSD for tests: its dummy driver keeps the "phone" in a directory, its files
service keeps the spool (platform-findings.md, "SMS without a modem")."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from server.notify.gammu import decode_smsbackup

HAVE_GAMMU = shutil.which("gammu-smsd") is not None and shutil.which("gammu-smsd-inject") is not None


class GammuSpool:
    """The dummy phone, the spool folders and ``gammu-smsdrc`` under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.phone = root / "phone"
        for name in ("sms/1", "sms/2", "sms/3", "sms/4", "sms/5", "pbk", "note", "calendar", "todo", "fs", "alarm"):
            (self.phone / name).mkdir(parents=True, exist_ok=True)
        self.spool = {name: root / "spool" / name for name in ("inbox", "outbox", "sent", "error")}
        for folder in self.spool.values():
            folder.mkdir(parents=True, exist_ok=True)
        self.config = root / "gammu-smsdrc"
        self.log = root / "smsd.log"
        self.config.write_text(
            f"[gammu]\ndevice = {self.phone}/\nconnection = none\nmodel = dummy\n\n"
            f"[smsd]\nservice = files\ninboxpath = {self.spool['inbox']}/\noutboxpath = {self.spool['outbox']}/\n"
            f"sentsmspath = {self.spool['sent']}/\nerrorsmspath = {self.spool['error']}/\nloopsleep = 1\n"
            # commtimeout: seconds between looks at an empty outbox (default 30: a message waits up to 30 s)
            f"commtimeout = 1\nlogfile = {self.log}\ndebuglevel = 1\n", encoding="utf-8")
        self.daemon: subprocess.Popen[bytes] | None = None

    def start(self) -> "GammuSpool":
        self.daemon = subprocess.Popen(["gammu-smsd", "-c", str(self.config)], stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self

    def stop(self) -> None:
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.terminate()
            try:
                self.daemon.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()

    def sent_files(self) -> list[Path]:
        return sorted(self.spool["sent"].glob("*.smsbackup"))

    def wait_sent(self, tags: list[str], timeout: float = 20.0) -> dict[str, dict[str, str]]:
        """Wait until the daemon moved a file for each ``tag`` (an outbox message id) to sentsmspath;
        the decoded messages by tag. The daemon is another process: its progress can only be polled."""
        deadline = time.monotonic() + timeout
        while True:
            found = {tag: [f for f in self.sent_files() if f.name.endswith(f"_luot{tag}.smsbackup")] for tag in tags}
            if all(found.values()):
                return {tag: decode_smsbackup(files[0]) for tag, files in found.items()}
            if self.daemon is not None and self.daemon.poll() is not None:
                raise RuntimeError(f"gammu-smsd exited with {self.daemon.returncode}: {self.log_text()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"gammu-smsd sent {[f.name for f in self.sent_files()]}, not all of {tags}: "
                                   f"{self.log_text()}")
            time.sleep(0.05)

    def wait_text(self, text: str, timeout: float = 20.0) -> dict[str, str]:
        """Wait until the daemon has sent a message with exactly ``text``; that message decoded."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for path in self.sent_files():
                sms = decode_smsbackup(path)
                if sms["text"] == text:
                    return sms
            time.sleep(0.05)
        raise TimeoutError(f"gammu-smsd did not send {text!r}: {self.log_text()}")

    def log_text(self, whole: bool = False) -> str:
        """The daemon's log (its last 2,000 characters unless ``whole``)."""
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return text if whole else text[-2000:]

    def files_named(self, tag: str) -> list[Path]:
        """Every spool file (outbox, sent, error) of one outbox message."""
        return [Path(folder, name) for folder in (self.spool["outbox"], self.spool["sent"], self.spool["error"])
                for name in os.listdir(folder) if name.endswith(f"_luot{tag}.smsbackup")]
