"""The notifier's durable outbox: a message is on disk before anyone is told it will be sent.

Rows move ``pending`` → ``sent`` (or ``failed`` once retries are pointless). A unique dedupe key
makes :meth:`Outbox.add` idempotent, so the "your turn is near" listener can offer the same
message after every commit and after a restart and it is queued once. A row stays ``pending``
until its channel confirmed the hand-over, so a crash between the send and the mark sends it
again on restart (at least once); the channel is given the row's stable id so it can recognise
its own earlier hand-over (at most once where the channel can tell, docs/notifications.md).

Once a message is sent or given up, its sealed phone and its text (a one-time code) are blanked:
only the dedupe key and the times stay, until the retention sweep deletes the row.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from server.notify.store import open_private_sqlite

PENDING, SENT, FAILED = "pending", "sent", "failed"
SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    dedupe_key TEXT NOT NULL UNIQUE,
    sealed_phone TEXT NOT NULL,
    text TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    next_at TEXT NOT NULL,
    expires_at TEXT,
    done_at TEXT,
    channel TEXT,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_at);
"""


@dataclass(frozen=True)
class OutboxMessage:
    id: int
    dedupe_key: str
    sealed_phone: str
    text: str
    kind: str
    attempts: int
    expires_at: datetime | None

    @property
    def message_id(self) -> str:
        """Stable across retries and restarts, and says nothing about the phone: 16 hex digits."""
        return hashlib.sha256(self.dedupe_key.encode("utf-8")).hexdigest()[:16]


class Outbox:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn = open_private_sqlite(self.path, SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def add(self, dedupe_key: str, sealed_phone: str, text: str, kind: str, now: datetime,
            expires_at: datetime | None = None) -> bool:
        """Queue a message; False when one with this dedupe key was queued before (nothing changes)."""
        with self._lock:
            cursor = self._conn.execute(
                "INSERT OR IGNORE INTO outbox (dedupe_key, sealed_phone, text, kind, created_at, next_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (dedupe_key, sealed_phone, text, kind, now.isoformat(), now.isoformat(), expires_at.isoformat() if expires_at else None))
            return cursor.rowcount == 1

    def due(self, now: datetime, limit: int = 20) -> list[OutboxMessage]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM outbox WHERE status = ? AND next_at <= ? ORDER BY next_at, id LIMIT ?",
                (PENDING, now.isoformat(), limit)).fetchall()
        return [OutboxMessage(r["id"], r["dedupe_key"], r["sealed_phone"], r["text"], r["kind"], r["attempts"],
                              datetime.fromisoformat(r["expires_at"]) if r["expires_at"] else None) for r in rows]

    def next_due(self) -> datetime | None:
        with self._lock:
            row = self._conn.execute("SELECT MIN(next_at) FROM outbox WHERE status = ?", (PENDING,)).fetchone()
        return datetime.fromisoformat(row[0]) if row[0] else None

    def mark_sent(self, message_id: int, channel: str, now: datetime) -> None:
        self._finish(message_id, SENT, now, channel=channel, error=None)

    def mark_failed(self, message_id: int, now: datetime, error: str) -> None:
        """Given up for good (expired, refused by every channel, unreadable phone)."""
        self._finish(message_id, FAILED, now, channel=None, error=error)

    def _finish(self, message_id: int, status: str, now: datetime, channel: str | None, error: str | None) -> None:
        with self._lock:
            self._conn.execute(
                "UPDATE outbox SET status = ?, done_at = ?, channel = ?, last_error = ?, attempts = attempts + 1,"
                " sealed_phone = '', text = '' WHERE id = ?", (status, now.isoformat(), channel, error, message_id))

    def retry_later(self, message_id: int, at: datetime, error: str) -> None:
        with self._lock:
            self._conn.execute("UPDATE outbox SET attempts = attempts + 1, next_at = ?, last_error = ? WHERE id = ?",
                               (at.isoformat(), error, message_id))

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._conn.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status").fetchall()
        return {PENDING: 0, SENT: 0, FAILED: 0, **{r[0]: r[1] for r in rows}}

    def status_of(self, dedupe_key: str) -> sqlite3.Row | None:
        """One message's row (for the CLI and tests): status, attempts, channel, last_error, times."""
        with self._lock:
            return self._conn.execute("SELECT id, dedupe_key, kind, status, attempts, channel, last_error, created_at,"
                                      " done_at, sealed_phone != '' AS holds_phone FROM outbox WHERE dedupe_key = ?",
                                      (dedupe_key,)).fetchone()

    def sweep(self, older_than: datetime) -> int:
        """Retention: delete every row queued before ``older_than`` (a still-pending one too: a
        message that old is of no use to anyone)."""
        with self._lock:
            return self._conn.execute("DELETE FROM outbox WHERE created_at < ?", (older_than.isoformat(),)).rowcount

    @staticmethod
    def backoff(attempts: int, base: float, cap: float) -> timedelta:
        """The wait before try ``attempts + 1``: base, 2x base, 4x base, ... up to ``cap`` seconds."""
        return timedelta(seconds=min(cap, base * (2 ** min(attempts, 30))))
