"""One small private SQLite file per job (the notifier's outbox, the one-time codes).

Why not the centre's database: these rows are short-lived and written outside the queue's group
commit (a code request must not wait behind the engine's events, nor the engine behind an SMS
gateway), and keeping them apart keeps phone-related data out of the database backups and exports.
WAL with ``synchronous=FULL``: a row is on disk when the call returns, so a kill -9 or a power cut
right after an ``enqueue`` loses nothing.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path


def open_private_sqlite(path: str | Path, schema: str) -> sqlite3.Connection:
    """Open (creating it 0600, with ``schema``) a SQLite file used by one object from any thread;
    the caller serialises access with its own lock."""
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    if not file.exists():
        os.close(os.open(file, os.O_WRONLY | os.O_CREAT, 0o600))
    conn = sqlite3.connect(file, isolation_level=None, check_same_thread=False, timeout=30)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA secure_delete=ON")  # a deleted phone or code is overwritten, not left in a free page
    conn.executescript(schema)
    return conn
