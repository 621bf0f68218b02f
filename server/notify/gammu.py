"""SMS through Gammu SMSD (Debian's ``gammu-smsd``), the gateway daemon that owns the USB modem.

Luot never talks to the modem. It hands each message to the daemon's *files* spool: the text goes
through ``gammu-smsd-inject -unicode -textutf8`` (which splits Vietnamese text into linked UCS-2
parts) into a private staging folder, and the finished ``.smsbackup`` file is renamed into the
daemon's outbox under a name that carries the outbox message id (``…_luot<id>.smsbackup``). The
daemon sends it and moves it to ``sentsmspath`` (or ``errorsmspath``).

Why the staging rename: the rename is atomic (the daemon never reads half a file) and the id in
the name lets :meth:`GammuSmsdChannel.send` see that a message was already handed over before a
crash, so a retry after kill -9 does not send a second SMS.

Gammu's spool and log hold phone numbers in clear (its file names, ``Number =`` lines); the
retention sweep deletes spool files older than ``[notify] keep_phone_days``
(docs/notifications.md says how to keep Gammu's own log quiet).
"""

from __future__ import annotations

import asyncio
import configparser
import logging
import os
import re
from datetime import datetime
from pathlib import Path

from luot.config import NotifySettings
from server.notify.channel import SendFailed

log = logging.getLogger("luot.notify.gammu")
INJECT = "gammu-smsd-inject"
WRITTEN = re.compile(r"Written message with ID (\S+\.smsbackup)")
SPOOL_NAME = re.compile(r"^(OUT.*_)[^_]*(\.smsbackup)$")


class GammuConfigError(ValueError):
    """The Gammu SMSD configuration cannot be used (missing, or not the files service)."""


class GammuSmsdChannel:
    name = "sms"

    def __init__(self, config_file: str | Path, max_chars: int = 320, inject: str = INJECT,
                 timeout: float = 20.0) -> None:
        self.config_file = Path(config_file)
        self.max_chars = max_chars
        self.inject = inject
        self.timeout = timeout
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        if not parser.read(self.config_file, encoding="utf-8"):
            raise GammuConfigError(f"{self.config_file}: no Gammu SMSD configuration there (docs/notifications.md)")
        if not parser.has_section("gammu") or not parser.has_section("smsd"):
            raise GammuConfigError(f"{self.config_file}: needs [gammu] and [smsd] sections")
        smsd = parser["smsd"]
        if smsd.get("service", "").strip().lower() != "files":
            raise GammuConfigError(f"{self.config_file}: Luot needs [smsd] service = files")
        try:
            self.outbox = Path(smsd["outboxpath"])
            self.sent = Path(smsd["sentsmspath"])
            self.errors = Path(smsd["errorsmspath"])
        except KeyError as missing:
            raise GammuConfigError(f"{self.config_file}: [smsd] needs {missing.args[0]}") from None
        self.staging = self.config_file.parent / (self.config_file.name + ".staging")
        self.staging.mkdir(mode=0o700, exist_ok=True)
        # the inject tool writes into our staging folder; the daemon never looks there
        inject_rc = configparser.ConfigParser(interpolation=None)
        inject_rc["gammu"] = dict(parser["gammu"])
        inject_rc["smsd"] = {"service": "files", "outboxpath": str(self.staging) + "/"}
        self.inject_config = self.staging / "inject.rc"
        with open(self.inject_config, "w", encoding="utf-8") as handle:
            inject_rc.write(handle)

    @classmethod
    def from_settings(cls, settings: NotifySettings, data_dir: Path) -> "GammuSmsdChannel":
        path = Path(settings.gammu_config)
        return cls(path if path.is_absolute() else data_dir / path, max_chars=settings.sms_max_chars)

    def _tag(self, message_id: str) -> str:
        return f"_luot{message_id}.smsbackup"

    def handed_over(self, message_id: str) -> Path | None:
        """The spool file of this message, wherever the daemon has put it by now (or None)."""
        tag = self._tag(message_id)
        for folder in (self.outbox, self.sent, self.errors):
            try:
                for entry in os.scandir(folder):
                    if entry.name.endswith(tag):
                        return Path(entry.path)
            except FileNotFoundError:
                continue
        return None

    async def send(self, message_id: str, phone: str, text: str, kind: str) -> None:
        earlier = self.handed_over(message_id)
        if earlier is not None:
            if earlier.parent == self.errors:
                raise SendFailed("Gammu could not send it (in errorsmspath)", retry=False)
            return  # handed over before a crash: do not send a second SMS
        text = text if len(text) <= self.max_chars else text[: self.max_chars - 1] + "…"
        try:
            process = await asyncio.create_subprocess_exec(
                self.inject, "-c", str(self.inject_config), "TEXT", phone, "-unicode", "-len", str(4 * self.max_chars),
                "-textutf8", text, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
        except FileNotFoundError:
            raise SendFailed(f"{self.inject} is not installed (apt-get install gammu-smsd)") from None
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout=self.timeout)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()
            raise SendFailed(f"{self.inject} did not finish in {self.timeout:.0f} s") from None
        written = WRITTEN.search(out.decode("utf-8", "replace"))
        if process.returncode != 0 or written is None:
            # its stderr names the number: keep only the last line's start, without digits
            detail = re.sub(r"\+?\d{6,}", "<number>", err.decode("utf-8", "replace").strip().splitlines()[-1:][0]
                            if err.strip() else f"exit {process.returncode}")
            raise SendFailed(f"{self.inject} failed: {detail[:200]}")
        staged = Path(written.group(1))
        final = SPOOL_NAME.sub(lambda m: m.group(1) + f"luot{message_id}" + m.group(2), staged.name)
        os.chmod(staged, 0o600)
        os.replace(staged, self.outbox / final)  # atomic: the daemon sees all of it or nothing

    def sweep(self, older_than: datetime) -> int:
        """Delete Luot's spool files in sentsmspath and errorsmspath last changed before ``older_than``."""
        cutoff = older_than.timestamp()
        removed = 0
        for folder in (self.sent, self.errors, self.staging):
            try:
                entries = list(os.scandir(folder))
            except FileNotFoundError:
                continue
            for entry in entries:
                if entry.name.endswith(".smsbackup") and entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
        return removed


def decode_smsbackup(path: str | Path) -> dict[str, str]:
    """What a Gammu ``.smsbackup`` file holds: ``number`` and ``text`` (the parts' UTF-16 hex
    ``TextNN`` lines joined in order). A file moved to sentsmspath may repeat a part's section;
    the last copy of each counts. For tests and ``luot notify`` checks."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        header = re.match(r"^\[(SMSBackup\d+)\]$", line.strip())
        if header:
            current = sections[header.group(1)] = {}
            continue
        if current is not None and "=" in line and not line.startswith(";"):
            key, _, value = line.partition("=")
            current[key.strip()] = value.strip()
    text, number = "", ""
    for name in sorted(sections):
        part = sections[name]
        number = part.get("Number", number).strip('"')
        hexes = "".join(part[k] for k in sorted(part) if re.fullmatch(r"Text\d\d", k))
        text += bytes.fromhex(hexes).decode("utf-16-be")  # Gammu keeps every coding as UTF-16 hex
    return {"number": number, "text": text}
