"""One SQLite connection on one dedicated thread, reached from asyncio.

Why not aiosqlite here: a group commit must run BEGIN, its inserts, projections and COMMIT as one
function on the connection's thread (one hop from the event loop per transaction, not one per
statement; bench/bench_load.py), and aiosqlite has no public way to run a function there. This
class owns the connection and a single-thread executor, so :meth:`call` is that one hop, and
:meth:`execute` keeps the small ``await (await db.execute(sql)).fetchall()`` style for reads.
Everything runs on the one thread, in submission order, so statements never interleave inside
a function.
"""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable, TypeVar

T = TypeVar("T")


class Rows:
    """The rows of one statement, fetched on the SQLite thread (awaitable accessors for the
    aiosqlite-style call sites)."""

    def __init__(self, rows: list[sqlite3.Row], rowcount: int, lastrowid: int | None) -> None:
        self.rows, self.rowcount, self.lastrowid = rows, rowcount, lastrowid

    async def fetchone(self) -> sqlite3.Row | None:
        return self.rows[0] if self.rows else None

    async def fetchall(self) -> list[sqlite3.Row]:
        return self.rows


class SqliteThread:
    """An autocommit SQLite connection (``isolation_level=None``, rows as :class:`sqlite3.Row`)
    living on its own thread. Create with :meth:`open`, finish with :meth:`close`."""

    def __init__(self, executor: ThreadPoolExecutor, connection: sqlite3.Connection) -> None:
        self._executor = executor
        self._connection = connection

    @classmethod
    async def open(cls, path: str) -> "SqliteThread":
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="luot-sqlite")

        def connect() -> sqlite3.Connection:
            connection = sqlite3.connect(path, isolation_level=None)
            connection.row_factory = sqlite3.Row
            return connection

        try:
            connection = await asyncio.get_running_loop().run_in_executor(executor, connect)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(executor, connection)

    async def call(self, function: Callable[..., T], *args: Any) -> T:
        """Run ``function(connection, *args)`` on the SQLite thread, in one hop."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, self._connection, *args)

    async def execute(self, sql: str, parameters: Iterable[Any] | dict[str, Any] = ()) -> Rows:
        """One statement; its rows are read on the SQLite thread before this returns."""
        def run(connection: sqlite3.Connection) -> Rows:
            cursor = connection.execute(sql, parameters)
            try:
                return Rows(cursor.fetchall(), cursor.rowcount, cursor.lastrowid)
            finally:
                cursor.close()
        return await self.call(run)

    async def executescript(self, script: str) -> None:
        await self.call(lambda connection: connection.executescript(script))

    async def close(self) -> None:
        try:
            await self.call(lambda connection: connection.close())
        finally:
            self._executor.shutdown(wait=True)
