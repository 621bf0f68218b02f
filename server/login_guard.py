"""Slows down password guessing: per-address first, per-username with a cap. Kept across restarts.

Why two counters: one machine guessing many passwords is stopped by its address alone, without
touching the account it attacks, so a guessing PC in the hall cannot lock the manager out. Many
machines guessing one account are stopped by the per-username counter, but its wait is capped
(``user_lock_max_seconds``) and an address that has signed in as that user before (the counter's
own PC) is not held back by it: the right password after the window always works.

After ``free`` failures, each further failure doubles the wait (``lock_base_seconds``, 2x, 4x...)
up to the cap; a counter untouched for twice its cap starts again from zero. Refused attempts are
not hashed at all, so a locked attacker costs the server nothing but the refusal. The guard is
pure bookkeeping with an injected monotonic clock; :class:`server.accounts.Accounts` calls it.

Why it remembers what changed: a restart must not hand a guesser fresh attempts, so
:mod:`server.login_store` writes the changed entries to SQLite after each outcome
(:meth:`LoginGuard.changes`) and gives them back at start-up (:meth:`LoginGuard.restore_strikes`).
Stored times are wall-clock seconds, but a restored wait is never longer than its cap, so a clock
set back cannot lock anyone out for longer than the settings allow. Names and addresses are keyed
by their SHA-256 (:func:`digest`): a password typed into the username field never lands on disk.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable

from luot.config import StaffSettings

MAX_ENTRIES = 10_000  # per table: a flood of made-up usernames or addresses must not grow memory
KNOWN_PAIRS = 10_000
PENDING_WAIT_SECONDS = 1.0
ADDRESS, USER = "address", "user"  # the two counters' names in storage


def digest(text: str) -> str:
    """The key a name or address is counted (and stored) under."""
    return hashlib.sha256(text.encode()).hexdigest()


def user_key(username: str) -> str:
    """The key a username is counted (and stored) under: any case counts as the same account."""
    return digest(username.lower())


@dataclass
class _Strikes:
    failures: int = 0
    locked_until: float = 0.0
    last: float = 0.0


@dataclass(frozen=True)
class StoredStrikes:
    """One counter entry as stored: wall-clock times (seconds since the epoch)."""

    kind: str
    key: str
    failures: int
    locked_until: float
    last: float
    expires: float  # after this the entry holds no one back and is forgiven: it may be deleted


@dataclass
class GuardChanges:
    """What changed since the last :meth:`LoginGuard.changes`: entries to write, to delete."""

    strikes: list[StoredStrikes] = field(default_factory=list)
    forgiven: list[tuple[str, str]] = field(default_factory=list)  # (kind, key)
    known: list[tuple[str, float]] = field(default_factory=list)  # (pair key, wall time)
    unknown: list[str] = field(default_factory=list)  # pair keys dropped from the known list

    def __bool__(self) -> bool:
        return bool(self.strikes or self.forgiven or self.known or self.unknown)


class _Counter:
    """Failures per key (an address's or a username's digest) and the wait they earned."""

    def __init__(self, kind: str, free: int, base: float, cap: float) -> None:
        self.kind, self.free, self.base, self.cap = kind, free, base, cap
        self.table: dict[str, _Strikes] = {}
        self.changed: set[str] = set()  # keys whose entry changed or went since the last save

    def _get(self, key: str, now: float) -> _Strikes | None:
        entry = self.table.get(key)
        if entry is not None and now - entry.last > 2 * self.cap and now >= entry.locked_until:
            self.clear(key)  # quiet for long enough: forgiven
            return None
        return entry

    def wait(self, key: str, now: float, pending: int = 0) -> float:
        """Seconds ``key`` must wait; ``pending``: its attempts still being checked, which count
        as failures in advance (else a burst of parallel guesses all pass before the first fails)."""
        entry = self._get(key, now)
        locked = max(0.0, entry.locked_until - now) if entry else 0.0
        if locked == 0.0 and pending and (entry.failures if entry else 0) + pending >= self.free:
            return PENDING_WAIT_SECONDS
        return locked

    def fail(self, key: str, now: float) -> None:
        entry = self._get(key, now)
        if entry is None:
            if len(self.table) >= MAX_ENTRIES:
                self._trim(now)
            entry = self.table[key] = _Strikes()
        entry.failures += 1
        entry.last = now
        over = entry.failures - self.free
        if over >= 0:
            entry.locked_until = now + min(self.cap, self.base * 2 ** min(over, 30))
        self.changed.add(key)

    def clear(self, key: str) -> None:
        if self.table.pop(key, None) is not None:
            self.changed.add(key)

    def restore(self, key: str, failures: int, locked_for: float, quiet_for: float, now: float) -> None:
        """Put back a stored entry: locked for ``locked_for`` more seconds (at most the cap),
        last failure ``quiet_for`` seconds ago (at most twice the cap: older ones are forgiven)."""
        locked_for = min(max(locked_for, 0.0), self.cap)
        quiet_for = min(max(quiet_for, 0.0), 2 * self.cap)
        if len(self.table) < MAX_ENTRIES:
            self.table[key] = _Strikes(max(0, failures), now + locked_for, now - quiet_for)

    def _trim(self, now: float) -> None:
        """Drop entries that no longer hold anyone back, oldest first, down to half the limit."""
        free_entries = sorted((e.last, k) for k, e in self.table.items() if e.locked_until <= now)
        for _, key in free_entries[: max(1, len(self.table) - MAX_ENTRIES // 2)]:
            self.clear(key)
        if len(self.table) >= MAX_ENTRIES:  # all locked: keep the newest half
            for _, key in sorted((e.last, k) for k, e in self.table.items())[: len(self.table) // 2]:
                self.clear(key)


class LoginGuard:
    """Answers "may this address try this username now?" and learns from each outcome."""

    def __init__(self, settings: StaffSettings, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.clock, self.wall = clock, wall
        self.addresses = _Counter(ADDRESS, settings.address_free_failures, settings.lock_base_seconds,
                                  settings.address_lock_max_seconds)
        self.users = _Counter(USER, settings.user_free_failures, settings.lock_base_seconds,
                              settings.user_lock_max_seconds)
        self.known: dict[str, float] = {}  # digest of (username, address) -> last good login
        self.pending_addresses: dict[str, int] = {}
        self.pending_users: dict[str, int] = {}
        self._known_added: set[str] = set()
        self._known_dropped: set[str] = set()

    @staticmethod
    def _pair(username: str, address: str) -> str:
        return digest(f"{username.lower()}\n{address}")

    def is_known(self, username: str, address: str) -> bool:
        """Has this address signed in as this user before (the person's own PC)?"""
        return self._pair(username, address) in self.known

    def wait_seconds(self, username: str, address: str) -> int:
        """Whole seconds to wait before trying (0: go ahead)."""
        now, user, place = self.clock(), user_key(username), digest(address)
        wait = self.addresses.wait(place, now, self.pending_addresses.get(address, 0))
        if not self.is_known(username, address):
            wait = max(wait, self.users.wait(user, now, self.pending_users.get(username.lower(), 0)))
        return math.ceil(wait)

    def address_wait_seconds(self, address: str) -> int:
        """Whole seconds ``address`` must wait whatever name it tries (the door's quick check)."""
        return math.ceil(self.addresses.wait(digest(address), self.clock(), self.pending_addresses.get(address, 0)))

    def begin(self, username: str, address: str) -> None:
        """An attempt is being checked (call :meth:`end` when it is decided)."""
        key = username.lower()
        self.pending_addresses[address] = self.pending_addresses.get(address, 0) + 1
        self.pending_users[key] = self.pending_users.get(key, 0) + 1

    def end(self, username: str, address: str) -> None:
        key = username.lower()
        for table, name in ((self.pending_addresses, address), (self.pending_users, key)):
            left = table.get(name, 0) - 1
            if left > 0:
                table[name] = left
            else:
                table.pop(name, None)

    def failed(self, username: str, address: str) -> None:
        now = self.clock()
        self.addresses.fail(digest(address), now)
        self.users.fail(user_key(username), now)

    def succeeded(self, username: str, address: str) -> None:
        """The right password: the user's failures go and this address is trusted for this user.

        The address keeps its own failures (they fade with time): signing in to one's own account
        must not buy more guesses at someone else's."""
        self.forgive_user(username)
        pair = self._pair(username, address)
        if pair not in self.known:
            if len(self.known) >= KNOWN_PAIRS:
                for old, _ in sorted(self.known.items(), key=lambda item: item[1])[: KNOWN_PAIRS // 2]:
                    del self.known[old]
                    self._known_added.discard(old)
                    self._known_dropped.add(old)
            self._known_added.add(pair)
            self._known_dropped.discard(pair)
        self.known[pair] = self.clock()

    def user_held_as_saved(self, username: str) -> bool:
        """Does the username have failures here, all of them already handed to the store? Then
        the store's copy can be compared: if another process (``luot user reset``) forgave it
        there, this guard should forgive it too (:func:`server.login_store.forgiven_elsewhere`)."""
        key = user_key(username)
        return key in self.users.table and key not in self.users.changed

    def forgive_user(self, username: str) -> None:
        """The username's failures go (a manager has reset its password, or it signed in)."""
        self.users.clear(user_key(username))

    # ------------------------------------------------------------------ kept across restarts
    def changes(self) -> GuardChanges:
        """What changed since the last call, in wall-clock times, for :mod:`server.login_store`.

        A sign-in that changes nothing (no earlier failures, a PC already known) gives nothing to
        write: an ordinary sign-in costs no extra SQLite write."""
        now, wall = self.clock(), self.wall()
        out = GuardChanges()
        for counter in (self.addresses, self.users):
            for key in counter.changed:
                entry = counter.table.get(key)
                if entry is None:
                    out.forgiven.append((counter.kind, key))
                    continue
                locked_until = wall + max(0.0, entry.locked_until - now)
                last = wall - max(0.0, now - entry.last)
                out.strikes.append(StoredStrikes(counter.kind, key, entry.failures, locked_until, last,
                                                 max(locked_until, last + 2 * counter.cap)))
            counter.changed.clear()
        out.known = [(pair, wall - max(0.0, now - self.known[pair])) for pair in self._known_added if pair in self.known]
        out.unknown = sorted(self._known_dropped)
        self._known_added.clear()
        self._known_dropped.clear()
        return out

    def restore_strikes(self, kind: str, key: str, failures: int, locked_until: float, last: float) -> None:
        """Put back a stored counter entry (wall-clock times; waits capped, see the module doc)."""
        counter = self.addresses if kind == ADDRESS else self.users
        wall = self.wall()
        counter.restore(key, failures, locked_until - wall, wall - last, self.clock())

    def restore_known(self, pair: str, at: float) -> None:
        """Put back a stored known (username, address) pair, signed in at wall time ``at``."""
        if len(self.known) < KNOWN_PAIRS:
            self.known[pair] = self.clock() - max(0.0, self.wall() - at)
