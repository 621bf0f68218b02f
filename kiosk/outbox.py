"""The kiosk's own SQLite file: leased number blocks and tickets issued while the server was away.

Why it exists: the centre's power and internet are unstable, and a visitor must still get a valid
number. While online the kiosk holds a block of numbers per group leased from the server
(``POST /api/v1/leases``); offline it takes the next number of that block here. The ticket row is
committed *before* the ticket is shown or printed, so a kiosk that loses power right after still
knows it issued that number and hands it over when the link returns (``POST
/api/v1/offline-tickets``, idempotent on the server). A number is taken with one UPDATE inside one
transaction, so it can never be given twice, even across restarts.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import aiosqlite

SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    day TEXT NOT NULL,
    grp TEXT NOT NULL,
    first INTEGER NOT NULL,
    last INTEGER NOT NULL,
    next INTEGER NOT NULL,
    UNIQUE (day, grp, first)
);
CREATE TABLE IF NOT EXISTS tickets (
    token TEXT PRIMARY KEY,
    day TEXT NOT NULL,
    grp TEXT NOT NULL,
    number INTEGER NOT NULL,
    priority TEXT,
    issued_at TEXT NOT NULL,
    synced_at TEXT,
    server_id TEXT,
    last_error TEXT,
    UNIQUE (day, grp, number)
);
CREATE TABLE IF NOT EXISTS issued (
    day TEXT NOT NULL,
    grp TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (day, grp)
);
"""


@dataclass(frozen=True)
class OfflineTicket:
    token: str
    day: str
    group: str
    number: int
    priority: str | None
    issued_at: str

    def body(self) -> dict[str, Any]:
        """The ``POST /api/v1/offline-tickets`` body."""
        return {"group": self.group, "number": self.number, "issued_at": self.issued_at,
                "token": self.token, "priority": self.priority}


class LeaseExhausted(Exception):
    """No leased number left for this group today: the kiosk cannot issue offline."""


class Outbox:
    """One aiosqlite connection, used from the kiosk's background loop only."""

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self.db = db
        self.path = path
        self._lock = asyncio.Lock()  # one transaction at a time on the one connection

    @classmethod
    async def open(cls, path: str | Path) -> "Outbox":
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path)
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=FULL")  # a committed offline ticket survives power loss
        await db.executescript(SCHEMA)
        await db.commit()
        return cls(db, path)

    async def close(self) -> None:
        await self.db.close()

    # ------------------------------------------------------------------ leases
    async def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        """One statement in its own committed transaction, never inside a ``take``."""
        async with self._lock:
            await self.db.execute(sql, params)
            await self.db.commit()

    async def add_lease(self, day: str, group: str, first: int, last: int) -> None:
        await self._write("INSERT OR IGNORE INTO leases (day, grp, first, last, next) VALUES (?, ?, ?, ?, ?)",
                          (day, group, first, last, first))

    async def remaining(self, day: str, group: str) -> int:
        async with self.db.execute(
                "SELECT COALESCE(SUM(last - next + 1), 0) FROM leases WHERE day = ? AND grp = ? AND next <= last",
                (day, group)) as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def take(self, day: str, group: str, priority: str | None, issued_at: datetime) -> OfflineTicket:
        """Claim the next leased number and record the ticket, in one committed transaction."""
        token = secrets.token_urlsafe(16)
        async with self._lock:
            return await self._take(token, day, group, priority, issued_at)

    async def _take(self, token: str, day: str, group: str, priority: str | None, issued_at: datetime) -> OfflineTicket:
        await self.db.execute("BEGIN IMMEDIATE")
        try:
            async with self.db.execute(
                    "SELECT id, next FROM leases WHERE day = ? AND grp = ? AND next <= last ORDER BY first LIMIT 1",
                    (day, group)) as cursor:
                row = await cursor.fetchone()
            if row is None:
                raise LeaseExhausted(group)
            lease_id, number = row
            await self.db.execute("UPDATE leases SET next = next + 1 WHERE id = ?", (lease_id,))
            await self.db.execute(
                "INSERT INTO tickets (token, day, grp, number, priority, issued_at) VALUES (?, ?, ?, ?, ?, ?)",
                (token, day, group, number, priority, issued_at.isoformat()))
            await self._count(day, group)
            await self.db.commit()
        except BaseException:
            await self.db.rollback()
            raise
        return OfflineTicket(token, day, group, number, priority, issued_at.isoformat())

    # ------------------------------------------------------------------ sync
    async def pending(self) -> list[OfflineTicket]:
        async with self.db.execute(
                "SELECT token, day, grp, number, priority, issued_at FROM tickets WHERE synced_at IS NULL "
                "ORDER BY issued_at, number") as cursor:
            rows = await cursor.fetchall()
        return [OfflineTicket(*row) for row in rows]

    async def mark_synced(self, token: str, server_id: str, at: datetime) -> None:
        await self._write("UPDATE tickets SET synced_at = ?, server_id = ?, last_error = NULL WHERE token = ?",
                          (at.isoformat(), server_id, token))

    async def mark_error(self, token: str, error: str) -> None:
        """Keep the ticket (never lose one) and remember why the server refused it, for staff."""
        await self._write("UPDATE tickets SET last_error = ? WHERE token = ?", (error[:500], token))

    # ------------------------------------------------------------------ local history (guided flow order)
    COUNT = ("INSERT INTO issued (day, grp, count) VALUES (?, ?, 1) "
             "ON CONFLICT (day, grp) DO UPDATE SET count = count + 1")

    async def _count(self, day: str, group: str) -> None:
        await self.db.execute(self.COUNT, (day, group))

    async def count_issued(self, day: str, group: str) -> None:
        await self._write(self.COUNT, (day, group))

    async def popularity(self, since: date) -> dict[str, int]:
        """Tickets this kiosk issued per group since ``since``: the guided flow shows the top ones."""
        async with self.db.execute("SELECT grp, SUM(count) FROM issued WHERE day >= ? GROUP BY grp",
                                   (since.isoformat(),)) as cursor:
            return {grp: int(n) for grp, n in await cursor.fetchall()}
