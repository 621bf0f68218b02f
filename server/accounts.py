"""Staff accounts (officers, managers), their password hashes and login sessions.

Kept apart from :mod:`server.storage` (the queue's event log and reports): the tables ``users``
and ``sessions`` live in the same SQLite file (schema migration 1) and are reached through the
storage's connection, but nothing about the queue depends on them. Passwords are hashed with
scrypt; session tokens are stored only as their SHA-256, so a copied database holds no usable
token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from server.storage import Storage

SESSION_CACHE_SECONDS = 30.0
"""How long a looked-up staff session is trusted from memory."""


@dataclass(frozen=True)
class User:
    username: str
    name: str
    role: str


def hash_password(password: str, salt: bytes | None = None) -> str:
    """``scrypt$<salt hex>$<digest hex>`` of ``password`` (a fresh random salt unless given)."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return f"scrypt${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Does ``password`` match the stored hash (compared in constant time)."""
    try:
        scheme, salt_hex, digest_hex = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hash_password(password, bytes.fromhex(salt_hex))
    return hmac.compare_digest(candidate, stored)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts:
    """Users and sessions of one centre, on the connection of its :class:`Storage`."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._sessions: dict[str, tuple[User, datetime, float]] = {}  # token -> (user, expiry, cached at)

    async def add_user(self, username: str, name: str, role: str, password: str) -> None:
        """Create the account, or reset its name, role and password."""
        await self.storage.db.execute(
            "INSERT INTO users (username, name, role, password_hash, created_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (username) DO UPDATE SET name = excluded.name, role = excluded.role, "
            "password_hash = excluded.password_hash",
            (username, name, role, hash_password(password), datetime.now(timezone.utc).isoformat()),
        )

    async def count_users(self, role: str | None = None) -> int:
        db = self.storage.db
        if role:
            row = await (await db.execute("SELECT COUNT(*) FROM users WHERE role = ?", (role,))).fetchone()
        else:
            row = await (await db.execute("SELECT COUNT(*) FROM users")).fetchone()
        return int(row[0])

    async def verify_user(self, username: str, password: str) -> User | None:
        """The user if the password matches; an unknown name costs the same hashing time."""
        row = await (await self.storage.db.execute("SELECT * FROM users WHERE username = ?", (username,))).fetchone()
        if row is None:
            verify_password(password, hash_password("timing-equaliser"))
            return None
        if not verify_password(password, row["password_hash"]):
            return None
        return User(row["username"], row["name"], row["role"])

    async def create_session(self, username: str, now: datetime, hours: int = 12) -> str:
        token = secrets.token_urlsafe(24)
        await self.storage.db.execute(
            "INSERT INTO sessions (token_hash, username, expires_at) VALUES (?, ?, ?)",
            (token_hash(token), username, (now + timedelta(hours=hours)).isoformat()),
        )
        return token

    async def session_user(self, token: str, now: datetime) -> User | None:
        """The user a session token belongs to, or None if unknown or expired.

        Every request of a counter console carries its session: a hit is answered from memory for
        up to ``SESSION_CACHE_SECONDS`` (no SQLite round trip per click), so a user removed or a
        session deleted by another process (``luot user``) stops working within that time."""
        cached = self._sessions.get(token)
        if cached is not None and time.monotonic() - cached[2] < SESSION_CACHE_SECONDS:
            user, expires = cached[0], cached[1]
        else:
            cursor = await self.storage.db.execute(
                "SELECT u.username, u.name, u.role, s.expires_at FROM sessions s JOIN users u USING (username) "
                "WHERE s.token_hash = ?", (token_hash(token),))
            row = await cursor.fetchone()
            if row is None:
                self._sessions.pop(token, None)
                return None
            user, expires = User(row["username"], row["name"], row["role"]), datetime.fromisoformat(row["expires_at"])
            if len(self._sessions) >= 10_000:  # bounded: stale entries of a long day go
                self._sessions.clear()
            self._sessions[token] = (user, expires, time.monotonic())
        return None if expires < now else user

    async def end_session(self, token: str) -> None:
        self._sessions.pop(token, None)
        await self.storage.db.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash(token),))
