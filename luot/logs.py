"""Logging set-up: plain one-line records; tokens and secrets are never passed to a logger.

The server logs to stderr, which systemd puts in the journal (rotated by journald). Devices
(kiosk, display, pad) log at INFO unless started with ``--debug``: a kiosk at DEBUG, with Kivy's
own file log on, wrote about 50 MB a day into a directory nothing ever emptied. Now they log to
the journal when systemd runs them, otherwise to stderr and a size-capped rotating file in their
data directory, and Kivy's own file log is off (its records go through Python's logging).
"""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
DEVICE_LOG_BYTES = 5 * 1024 * 1024
DEVICE_LOG_BACKUPS = 4
"""A device keeps at most 25 MB of its own log: five files of 5 MB."""
CHATTY = ("httpx", "httpcore", "PIL", "urllib3", "asyncio")
"""Libraries that log every request or decode at INFO/DEBUG: WARNING and above unless --debug."""


def setup_logging(level: str | None = None) -> None:
    logging.basicConfig(
        level=(level or os.environ.get("LUOT_LOG", "INFO")).upper(),
        format=FORMAT,
        datefmt="%H:%M:%S",
    )


def under_journal() -> bool:
    """True when systemd connected our stderr to the journal (it sets ``JOURNAL_STREAM``)."""
    return bool(os.environ.get("JOURNAL_STREAM"))


def setup_device_logging(program: str, data_dir: str | Path, debug: bool = False) -> Path | None:
    """Log a device program at INFO (DEBUG with ``debug``); return the log file, if one is used.

    Must run before Kivy is imported: it sets Kivy's logging environment (Python logging mode,
    no file log of its own, level INFO or DEBUG).
    """
    level = logging.DEBUG if debug else logging.INFO
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    log_file = None
    if not under_journal():
        log_file = Path(data_dir) / "logs" / f"{program}.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.handlers.RotatingFileHandler(
            log_file, maxBytes=DEVICE_LOG_BYTES, backupCount=DEVICE_LOG_BACKUPS, encoding="utf-8"))
    logging.basicConfig(level=level, format=FORMAT, handlers=handlers, force=True)
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.DEBUG if debug else logging.WARNING)
    os.environ["KIVY_LOG_MODE"] = "PYTHON"  # Kivy's records go through the handlers above
    os.environ["KIVY_NO_FILELOG"] = "1"  # and not into KIVY_HOME/logs, which nothing empties
    os.environ["KCFG_KIVY_LOG_LEVEL"] = "debug" if debug else "info"
    return log_file
