"""Staff accounts (officers, managers), their password hashes and login sessions.

Kept apart from :mod:`server.storage` (the queue's event log and reports): the tables ``users``
and ``sessions`` live in the same SQLite file (schema migration 1, plus the columns
:meth:`Accounts._ready` adds), as do the login guard's (:mod:`server.login_store`), and are reached
through the storage's connection, but nothing about the queue depends on them.

Passwords are hashed with argon2id (argon2-cffi): the encoded string carries its own cost
parameters, so the cost can be raised later and old hashes still verify; a hash made with weaker
parameters, or an old ``scrypt$`` hash, is re-hashed on the next successful sign-in. Hashing is
deliberately slow (~0.1 s), so it never runs on the event loop that also runs the queue and its
commits: it goes to :data:`HASH_POOL`, one thread on a two-core PC (two at most on bigger ones),
so a flood of logins cannot take every core. An unknown username is checked against a dummy hash, so it costs the same time as a known
one and names cannot be listed by timing.

Session tokens are stored only as their SHA-256, so a copied database holds no usable token. A
session ends when unused for the role's idle time (sliding), after ``session_hours``, on logout,
when its user's password changes (the session that changed it stays) and when a manager resets it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets
import sqlite3
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from luot.config import StaffSettings
from server import login_store
from server.login_guard import LoginGuard

if TYPE_CHECKING:
    from server.storage import Storage

T = TypeVar("T")
SESSION_CACHE_SECONDS = 30.0
"""How long a looked-up staff session is trusted from memory (changes made by another process,
``luot user``, take effect within this time; changes made through this process at once)."""
LAST_SEEN_WRITE_SECONDS = 60.0
"""A session's last use is kept in memory and written to SQLite at most this often."""
HASH_WORKERS = max(1, min(2, (os.cpu_count() or 1) - 1))
"""Threads hashing at once: on the centre's usual two-core PC one, so the event loop (the queue,
its commits) always keeps a core however many sign-ins arrive; two on a bigger machine."""
HASH_QUEUE_LIMIT = 16  # ~1.6 s of hashing on one thread
# OWASP's argon2id baseline (19 MiB, 2 passes, 1 lane): ~0.1 s on the centre's small PC. One lane
# = one thread per hash, so HASH_WORKERS really bounds the cores hashing may take.
HASHER = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
# One-time passwords are read off a screen or a note and typed by hand, often on a phone: no
# look-alike symbols (0/o, 1/l/i, -/_) and no case to get wrong; 12 symbols of 31 (59 bits, behind
# argon2 and the login lockout), shown in groups of four.
ONE_TIME_PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
ONE_TIME_PASSWORD_GROUPS = 3
ONE_TIME_PASSWORD_GROUP_LENGTH = 4


class AccountError(Exception):
    """A refusal about accounts in plain words (the app turns it into the usual JSON)."""

    def __init__(self, status: int, code: str, message: str, message_en: str, retry_after: int | None = None) -> None:
        super().__init__(message_en)
        self.status, self.code, self.message, self.message_en = status, code, message, message_en
        self.retry_after = retry_after


class HashPool:
    """Runs password hashing on its own few threads, off the event loop.

    At most ``workers`` hashes run at once; the rest wait in line, urgent ones (a person signing
    in from a PC they have used before) ahead of the others, so a flood of guesses does not keep
    the officer at the counter waiting. When ``queue_limit`` attempts are already in, a new one
    gets a quick "busy" instead of a wait that grows for minutes."""

    def __init__(self, workers: int = HASH_WORKERS, queue_limit: int = HASH_QUEUE_LIMIT) -> None:
        self.workers, self.queue_limit = workers, queue_limit
        self._executor: ThreadPoolExecutor | None = None
        self._free = workers
        self._waiting: tuple[deque[asyncio.Future[None]], deque[asyncio.Future[None]]] = (deque(), deque())
        self.pending = 0

    async def run(self, function: Callable[..., T], *args: Any, urgent: bool = False) -> T:
        if self.pending >= self.queue_limit and not urgent:
            raise AccountError(503, "login_busy", "Hệ thống đang bận xử lý đăng nhập, xin thử lại sau ít giây.",
                               "Too many sign-ins at once; try again in a few seconds.", retry_after=2)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="luot-hash")
        self.pending += 1
        try:
            await self._acquire(urgent)
            try:
                return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)
            finally:
                self._release()
        finally:
            self.pending -= 1

    async def _acquire(self, urgent: bool) -> None:
        if self._free > 0:
            self._free -= 1
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[0 if urgent else 1].append(turn)
        try:
            await turn  # _release hands its slot over by resolving this
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._release()  # the slot was handed over just as the caller gave up
            raise

    def _release(self) -> None:
        for line in self._waiting:
            while line:
                turn = line.popleft()
                if not turn.done():
                    turn.set_result(None)
                    return
        self._free += 1


HASH_POOL = HashPool()


def hash_password(password: str) -> str:
    """The argon2id encoded hash of ``password`` (``$argon2id$v=19$m=...,t=...,p=...$salt$hash``)."""
    return HASHER.hash(password)


def _scrypt(password: str, salt: bytes) -> str:
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return f"scrypt${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Does ``password`` match the stored hash: argon2 (any parameters) or the old ``scrypt$``."""
    if stored.startswith("scrypt$"):
        try:
            _, salt_hex, _ = stored.split("$")
            return hmac.compare_digest(_scrypt(password, bytes.fromhex(salt_hex)), stored)
        except ValueError:
            return False
    try:
        return HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """An old scheme, or argon2 parameters other than today's."""
    if not stored.startswith("$argon2"):
        return True
    try:
        return HASHER.check_needs_rehash(stored)
    except InvalidHashError:
        return True


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def one_time_password() -> str:
    """A password to hand over once ("k7qm-3rta-w9xp"): easy to read aloud and type, see the alphabet."""
    return "-".join(
        "".join(secrets.choice(ONE_TIME_PASSWORD_ALPHABET) for _ in range(ONE_TIME_PASSWORD_GROUP_LENGTH))
        for _ in range(ONE_TIME_PASSWORD_GROUPS))


@dataclass(frozen=True)
class User:
    username: str
    name: str
    role: str
    must_change_password: bool = False
    last_counter: int | None = None


@dataclass(frozen=True)
class Session:
    """A signed-in person: who, at which counter this sign-in works (if any), and its key."""

    user: User
    key: str  # the token's SHA-256: what the database stores
    counter: int | None


@dataclass
class _Cached:
    session: Session
    expires: datetime
    cached_at: float


# columns added after schema migration 1 (idempotent; accounts own their tables)
_COLUMNS = {
    "users": [("must_change_password", "INTEGER NOT NULL DEFAULT 0"), ("last_counter", "INTEGER"),
              ("password_changed_at", "TEXT")],
    "sessions": [("counter", "INTEGER"), ("last_seen", "TEXT"), ("created_at", "TEXT")],
}


class Accounts:
    """Users and sessions of one centre, on the connection of its :class:`Storage`."""

    def __init__(self, storage: Storage, settings: StaffSettings | None = None,
                 pool: HashPool = HASH_POOL) -> None:
        self.storage = storage
        self.settings = settings or StaffSettings()
        self.pool = pool
        self.guard = LoginGuard(self.settings)
        self._sessions: dict[str, _Cached] = {}  # token hash -> looked-up session
        self._last_seen: dict[str, tuple[datetime, datetime]] = {}  # token hash -> (last use, last written)
        self._ready_done = False
        self._dummy_hash: str | None = None

    # ------------------------------------------------------------------ schema
    async def prepare(self) -> None:
        """Ready the tables and load the login guard's stored locks (the server calls this at
        start-up, so its door, :mod:`server.login_gate`, refuses a locked address from the first
        request; every other method also does it on first use)."""
        await self._ready()

    async def _ready(self) -> None:
        """Add the columns this version needs to migration 1's tables and give the login guard
        its stored counters back (once per process)."""
        if self._ready_done:
            return
        await login_store.load(self.storage.db, self.guard)
        for table, columns in _COLUMNS.items():
            have = {row["name"] for row in await (await self.storage.db.execute(f"PRAGMA table_info({table})")).fetchall()}
            for name, declaration in columns:
                if name not in have:
                    try:
                        await self.storage.db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declaration}")
                    except sqlite3.OperationalError as error:  # another process added it meanwhile
                        if "duplicate column" not in str(error):
                            raise
        self._ready_done = True

    # ------------------------------------------------------------------ users
    async def add_user(self, username: str, name: str, role: str, password: str, must_change: bool = False) -> None:
        """Create the account, or reset its name, role and password (ending its sessions).
        ``must_change``: the password is a one-time one; the first sign-in must replace it."""
        await self._ready()
        hashed = await self.pool.run(hash_password, password)
        now = datetime.now(timezone.utc).isoformat()
        await self.storage.db.execute(
            "INSERT INTO users (username, name, role, password_hash, created_at, must_change_password, password_changed_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (username) DO UPDATE SET name = excluded.name, role = excluded.role, "
            "password_hash = excluded.password_hash, must_change_password = excluded.must_change_password, "
            "password_changed_at = excluded.password_changed_at",
            (username, name, role, hashed, now, int(must_change), now),
        )
        await self.end_sessions(username)

    async def count_users(self, role: str | None = None) -> int:
        db = self.storage.db
        if role:
            row = await (await db.execute("SELECT COUNT(*) FROM users WHERE role = ?", (role,))).fetchone()
        else:
            row = await (await db.execute("SELECT COUNT(*) FROM users")).fetchone()
        return int(row[0])

    async def get_user(self, username: str) -> User | None:
        await self._ready()
        row = await (await self.storage.db.execute("SELECT * FROM users WHERE username = ?", (username,))).fetchone()
        return _user(row) if row is not None else None

    async def list_users(self) -> list[User]:
        await self._ready()
        rows = await (await self.storage.db.execute("SELECT * FROM users ORDER BY username")).fetchall()
        return [_user(row) for row in rows]

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await self.pool.run(hash_password, secrets.token_urlsafe(16))
        return self._dummy_hash

    async def verify_user(self, username: str, password: str, urgent: bool = False) -> User | None:
        """The user if the password matches, hashing off the event loop. An unknown name is checked
        against a dummy hash (same cost); a hash of an old scheme or cost is replaced on success."""
        await self._ready()
        dummy = await self._dummy()  # made on the first attempt, whoever it names: no one-off difference
        row = await (await self.storage.db.execute("SELECT * FROM users WHERE username = ?", (username,))).fetchone()
        stored = row["password_hash"] if row is not None else dummy
        matches = await self.pool.run(verify_password, password, stored, urgent=urgent)
        if row is None or not matches:
            return None
        if needs_rehash(stored):
            rehashed = await self.pool.run(hash_password, password)
            await self.storage.db.execute("UPDATE users SET password_hash = ? WHERE username = ? AND password_hash = ?",
                                          (rehashed, username, stored))
        return _user(row)

    async def login(self, username: str, password: str, address: str) -> User:
        """Check a sign-in attempt from ``address`` against the guard, then the password; what
        the outcome changed in the guard is stored (nothing, for an ordinary sign-in)."""
        await self._ready()
        wait = self.guard.wait_seconds(username, address)
        if wait > 0 and await login_store.forgiven_elsewhere(self.storage.db, self.guard, username):
            wait = self.guard.wait_seconds(username, address)  # reset by `luot user reset` meanwhile
        if wait > 0:
            raise locked(wait)
        self.guard.begin(username, address)
        try:
            user = await self.verify_user(username, password, urgent=self.guard.is_known(username, address))
        finally:
            self.guard.end(username, address)
        if user is None:
            self.guard.failed(username, address)
            await login_store.save(self.storage.db, self.guard)
            raise AccountError(401, "bad_login", "Sai tên đăng nhập hoặc mật khẩu.", "Wrong username or password.")
        self.guard.succeeded(username, address)
        await login_store.save(self.storage.db, self.guard)
        return user

    def check_new_password(self, username: str, new: str, old: str | None = None) -> None:
        """Refuse a new password that is short, the username, or the old one."""
        minimum = self.settings.min_password_length
        if len(new) < minimum:
            raise AccountError(400, "password_too_short", f"Mật khẩu mới cần ít nhất {minimum} ký tự.",
                               f"The new password needs at least {minimum} characters.")
        if new.strip().lower() == username.lower():
            raise AccountError(400, "password_is_username", "Mật khẩu không được trùng tên đăng nhập.",
                               "The password must not be the username.")
        if old is not None and new == old:
            raise AccountError(400, "password_unchanged", "Mật khẩu mới phải khác mật khẩu cũ.",
                               "The new password must differ from the old one.")

    async def change_password(self, username: str, old: str, new: str, address: str, keep: str | None) -> int:
        """Replace the password after checking the old one (a wrong old one counts as a failed
        sign-in); every other session of the user ends. Returns how many ended."""
        self.check_new_password(username, new, old)
        try:
            await self.login(username, old, address)
        except AccountError as error:
            if error.code != "bad_login":
                raise
            raise AccountError(401, "wrong_password", "Mật khẩu hiện tại không đúng.",
                               "The current password is wrong.") from None
        hashed = await self.pool.run(hash_password, new)
        await self.storage.db.execute(
            "UPDATE users SET password_hash = ?, must_change_password = 0, password_changed_at = ? WHERE username = ?",
            (hashed, datetime.now(timezone.utc).isoformat(), username))
        return await self.end_sessions(username, keep=keep)

    async def reset_password(self, username: str) -> str:
        """A manager's reset: a one-time password the user must replace at sign-in; their
        sessions end. Returns the one-time password (shown once, stored only hashed)."""
        await self._ready()
        if await self.get_user(username) is None:
            raise AccountError(404, "user_not_found", f"Không có tài khoản {username}.", f"There is no account {username}.")
        password = one_time_password()
        hashed = await self.pool.run(hash_password, password)
        await self.storage.db.execute(
            "UPDATE users SET password_hash = ?, must_change_password = 1, password_changed_at = ? WHERE username = ?",
            (hashed, datetime.now(timezone.utc).isoformat(), username))
        await self.end_sessions(username)
        self.guard.forgive_user(username)
        await login_store.save(self.storage.db, self.guard)
        return password

    # ------------------------------------------------------------------ sessions
    def idle_limit(self, role: str) -> timedelta:
        minutes = self.settings.manager_idle_minutes if role == "manager" else self.settings.officer_idle_minutes
        return timedelta(minutes=minutes)

    async def create_session(self, username: str, now: datetime, counter: int | None = None) -> str:
        await self._ready()
        token = secrets.token_urlsafe(24)
        await self.storage.db.execute("DELETE FROM sessions WHERE expires_at < ?", (now.isoformat(),))
        await self.storage.db.execute(
            "INSERT INTO sessions (token_hash, username, expires_at, counter, last_seen, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (token_hash(token), username, (now + timedelta(hours=self.settings.session_hours)).isoformat(), counter,
             now.isoformat(), now.isoformat()),
        )
        if counter is not None:
            await self._remember_counter(username, counter)
        return token

    async def session(self, token: str, now: datetime, touch: bool = True) -> Session | None:
        """The session of a token, or None if unknown, expired or idle too long (then it ends).

        Every request of a counter console carries its session: a hit is answered from memory for
        up to ``SESSION_CACHE_SECONDS`` (no SQLite round trip per click). Each use with ``touch``
        moves the idle deadline on (sliding); the last use is written to SQLite at most once a
        minute. ``touch=False``: a page refreshing itself, which is not activity."""
        await self._ready()
        key = token_hash(token)
        cached = self._sessions.get(key)
        if cached is None or time.monotonic() - cached.cached_at >= SESSION_CACHE_SECONDS:
            cursor = await self.storage.db.execute(
                "SELECT u.*, s.expires_at, s.counter AS session_counter, s.last_seen FROM sessions s "
                "JOIN users u USING (username) WHERE s.token_hash = ?", (key,))
            row = await cursor.fetchone()
            if row is None:
                self._forget(key)
                return None
            cached = _Cached(Session(_user(row), key, row["session_counter"]), datetime.fromisoformat(row["expires_at"]),
                             time.monotonic())
            if len(self._sessions) >= 10_000:  # bounded: stale entries of a long day go
                self._sessions.clear()
            self._sessions[key] = cached
            if row["last_seen"]:
                stored = datetime.fromisoformat(row["last_seen"])
                mine = self._last_seen.get(key)
                if mine is None or mine[0] < stored:
                    self._last_seen[key] = (stored, stored)
        last_seen, written = self._last_seen.get(key, (now, now))
        if cached.expires < now or now - last_seen > self.idle_limit(cached.session.user.role):
            await self._end(key)
            return None
        if not touch:
            return cached.session
        if len(self._last_seen) >= 20_000:  # bounded: abandoned sessions' entries go (SQLite keeps theirs)
            self._last_seen.clear()
        self._last_seen[key] = (max(now, last_seen), written)
        if (now - written).total_seconds() >= LAST_SEEN_WRITE_SECONDS:
            self._last_seen[key] = (max(now, last_seen), now)
            await self.storage.db.execute("UPDATE sessions SET last_seen = ? WHERE token_hash = ?", (now.isoformat(), key))
        return cached.session

    def forget_cached_sessions(self) -> None:
        """Read every session from SQLite on its next use (another process, ``luot user``, has
        changed accounts and the ``SESSION_CACHE_SECONDS`` wait is not wanted)."""
        self._sessions.clear()

    async def session_user(self, token: str, now: datetime) -> User | None:
        found = await self.session(token, now)
        return found.user if found else None

    async def bind_counter(self, key: str, username: str, counter: int | None) -> None:
        """This sign-in now works at ``counter`` (None: no counter); it is also the user's last."""
        await self.storage.db.execute("UPDATE sessions SET counter = ? WHERE token_hash = ?", (counter, key))
        cached = self._sessions.get(key)
        if cached is not None:
            cached.session = replace(cached.session, counter=counter)
        if counter is not None:
            await self._remember_counter(username, counter)

    async def _remember_counter(self, username: str, counter: int) -> None:
        await self.storage.db.execute("UPDATE users SET last_counter = ? WHERE username = ?", (counter, username))
        for cached in self._sessions.values():
            if cached.session.user.username == username:
                cached.session = replace(cached.session, user=replace(cached.session.user, last_counter=counter))

    async def end_session(self, token: str) -> None:
        await self._end(token_hash(token))

    async def _end(self, key: str) -> None:
        self._forget(key)
        await self.storage.db.execute("DELETE FROM sessions WHERE token_hash = ?", (key,))

    def _forget(self, key: str) -> None:
        self._sessions.pop(key, None)
        self._last_seen.pop(key, None)

    async def end_sessions(self, username: str, keep: str | None = None) -> int:
        """End every session of ``username`` but the one whose key is ``keep``; how many ended."""
        await self._ready()
        rows = await (await self.storage.db.execute("SELECT token_hash FROM sessions WHERE username = ?", (username,))).fetchall()
        ended = [row["token_hash"] for row in rows if row["token_hash"] != keep]
        for key in ended:
            await self._end(key)
        # the kept session's cached user (its must-change flag) is stale now
        for key, cached in list(self._sessions.items()):
            if cached.session.user.username == username:
                self._sessions.pop(key, None)
        return len(ended)


def locked(wait: int) -> AccountError:
    return AccountError(429, "login_locked",
                        f"Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau {wait} giây.",
                        f"Too many failed sign-ins. Try again in {wait} seconds.", retry_after=wait)


def _user(row: Any) -> User:
    return User(row["username"], row["name"], row["role"], bool(row["must_change_password"]), row["last_counter"])
