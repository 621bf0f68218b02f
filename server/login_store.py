"""Keeps the login guard's counters in the centre's SQLite, so a restart gives no fresh guesses.

Before, :class:`server.login_guard.LoginGuard` lived in memory only: restarting the server (or
making it crash) wiped every lock. Now the entries a sign-in changed are written after it is
decided (:func:`save`, one short transaction, nothing at all when nothing changed, so an ordinary
sign-in costs no extra write) and read back once at start-up (:func:`load`), dropping the entries
whose window has passed. Keys are SHA-256 digests (:func:`server.login_guard.digest`), never the
names or addresses typed. The tables belong to this module: :data:`LOGIN_GUARD_DDL` is one schema
migration of :data:`server.storage.MIGRATIONS`, self-contained (``IF NOT EXISTS``) so it can be
renumbered.
"""

from __future__ import annotations

import sqlite3

from server.login_guard import KNOWN_PAIRS, GuardChanges, LoginGuard, user_key
from server.sqlite_thread import SqliteThread

LOGIN_GUARD_DDL = """
CREATE TABLE IF NOT EXISTS login_strikes (
    kind TEXT NOT NULL CHECK (kind IN ('address', 'user')),
    key TEXT NOT NULL,            -- SHA-256 of the address, or of the lower-cased username
    failures INTEGER NOT NULL,
    locked_until REAL NOT NULL,   -- wall clock, seconds since the epoch
    last REAL NOT NULL,           -- the last failure, same clock
    expires REAL NOT NULL,        -- after this the entry holds no one back: deleted at start-up
    PRIMARY KEY (kind, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS login_known (
    pair TEXT PRIMARY KEY,        -- SHA-256 of username and address that signed in together
    at REAL NOT NULL              -- when (wall clock)
) WITHOUT ROWID;
"""
"""The guard's tables (one schema migration; ``IF NOT EXISTS`` so it stands alone)."""


async def load(db: SqliteThread, guard: LoginGuard) -> None:
    """Give ``guard`` back what was stored, forgetting entries whose window has passed."""
    wall = guard.wall()

    def read(connection: sqlite3.Connection) -> tuple[list[sqlite3.Row], list[sqlite3.Row]]:
        connection.execute("DELETE FROM login_strikes WHERE expires < ?", (wall,))
        strikes = connection.execute("SELECT kind, key, failures, locked_until, last FROM login_strikes").fetchall()
        known = connection.execute("SELECT pair, at FROM login_known ORDER BY at DESC LIMIT ?", (KNOWN_PAIRS,)).fetchall()
        return strikes, known

    strikes, known = await db.call(read)
    for row in strikes:
        guard.restore_strikes(row["kind"], row["key"], row["failures"], row["locked_until"], row["last"])
    for row in known:
        guard.restore_known(row["pair"], row["at"])


async def forgiven_elsewhere(db: SqliteThread, guard: LoginGuard, username: str) -> bool:
    """Forgive ``username`` in ``guard`` when its stored entry is gone (True if so).

    ``luot user reset`` runs in its own process beside the server: it deletes the user's entry
    from the database, but the running server's guard would still hold the person back from
    signing in with the new one-time password until the window ended. Called only when the guard
    says wait (a rare, already slow path): one indexed read. An entry with changes not yet saved is
    left alone, as its absence from the database means nothing then."""
    if not guard.user_held_as_saved(username):
        return False
    key = user_key(username)
    row = await db.call(lambda connection: connection.execute(
        "SELECT 1 FROM login_strikes WHERE kind = 'user' AND key = ?", (key,)).fetchone())
    if row is not None:
        return False
    guard.forgive_user(username)
    return True


async def save(db: SqliteThread, guard: LoginGuard) -> None:
    """Write what changed in ``guard`` since the last save (nothing to do: no SQLite at all).

    The changes are taken and handed to the SQLite thread in one step, so two saves in flight
    reach the database in the order their states were taken."""
    changes = guard.changes()
    if changes:
        await db.call(_write, changes)


def _write(connection: sqlite3.Connection, changes: GuardChanges) -> None:
    connection.execute("BEGIN")
    try:
        connection.executemany(
            "INSERT INTO login_strikes (kind, key, failures, locked_until, last, expires) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (kind, key) DO UPDATE SET failures = excluded.failures, locked_until = excluded.locked_until, "
            "last = excluded.last, expires = excluded.expires",
            [(s.kind, s.key, s.failures, s.locked_until, s.last, s.expires) for s in changes.strikes])
        connection.executemany("DELETE FROM login_strikes WHERE kind = ? AND key = ?", changes.forgiven)
        connection.executemany("INSERT OR REPLACE INTO login_known (pair, at) VALUES (?, ?)", changes.known)
        connection.executemany("DELETE FROM login_known WHERE pair = ?", [(pair,) for pair in changes.unknown])
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
