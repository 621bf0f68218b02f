"""Slows down password guessing: per-address first, per-username with a cap. In memory only.

Why two counters: one machine guessing many passwords is stopped by its address alone, without
touching the account it attacks, so a guessing PC in the hall cannot lock the manager out. Many
machines guessing one account are stopped by the per-username counter, but its wait is capped
(``user_lock_max_seconds``) and an address that has signed in as that user before (the counter's
own PC) is not held back by it: the right password after the window always works.

After ``free`` failures, each further failure doubles the wait (``lock_base_seconds``, 2x, 4x...)
up to the cap; a counter untouched for twice its cap starts again from zero. Refused attempts are
not hashed at all, so a locked attacker costs the server nothing but the refusal. The guard is
pure bookkeeping with an injected monotonic clock; :class:`server.accounts.Accounts` calls it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

from luot.config import StaffSettings

MAX_ENTRIES = 10_000  # per table: a flood of made-up usernames or addresses must not grow memory
KNOWN_PAIRS = 10_000
PENDING_WAIT_SECONDS = 1.0


@dataclass
class _Strikes:
    failures: int = 0
    locked_until: float = 0.0
    last: float = 0.0


class _Counter:
    """Failures per key (an address or a username) and the wait they earned."""

    def __init__(self, free: int, base: float, cap: float) -> None:
        self.free, self.base, self.cap = free, base, cap
        self.table: dict[str, _Strikes] = {}

    def _get(self, key: str, now: float) -> _Strikes | None:
        entry = self.table.get(key)
        if entry is not None and now - entry.last > 2 * self.cap and now >= entry.locked_until:
            del self.table[key]  # quiet for long enough: forgiven
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

    def clear(self, key: str) -> None:
        self.table.pop(key, None)

    def _trim(self, now: float) -> None:
        """Drop entries that no longer hold anyone back, oldest first, down to half the limit."""
        free_entries = sorted((e.last, k) for k, e in self.table.items() if e.locked_until <= now)
        for _, key in free_entries[: max(1, len(self.table) - MAX_ENTRIES // 2)]:
            del self.table[key]
        if len(self.table) >= MAX_ENTRIES:  # all locked: keep the newest half
            for _, key in sorted((e.last, k) for k, e in self.table.items())[: len(self.table) // 2]:
                del self.table[key]


class LoginGuard:
    """Answers "may this address try this username now?" and learns from each outcome."""

    def __init__(self, settings: StaffSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.addresses = _Counter(settings.address_free_failures, settings.lock_base_seconds,
                                  settings.address_lock_max_seconds)
        self.users = _Counter(settings.user_free_failures, settings.lock_base_seconds,
                              settings.user_lock_max_seconds)
        self.known: dict[tuple[str, str], float] = {}  # (username, address) -> last good login
        self.pending_addresses: dict[str, int] = {}
        self.pending_users: dict[str, int] = {}

    def is_known(self, username: str, address: str) -> bool:
        """Has this address signed in as this user before (the person's own PC)?"""
        return (username.lower(), address) in self.known

    def wait_seconds(self, username: str, address: str) -> int:
        """Whole seconds to wait before trying (0: go ahead)."""
        now, key = self.clock(), username.lower()
        wait = self.addresses.wait(address, now, self.pending_addresses.get(address, 0))
        if not self.is_known(username, address):
            wait = max(wait, self.users.wait(key, now, self.pending_users.get(key, 0)))
        return math.ceil(wait)

    def address_wait_seconds(self, address: str) -> int:
        """Whole seconds ``address`` must wait whatever name it tries (the door's quick check)."""
        return math.ceil(self.addresses.wait(address, self.clock(), self.pending_addresses.get(address, 0)))

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
        self.addresses.fail(address, now)
        self.users.fail(username.lower(), now)

    def succeeded(self, username: str, address: str) -> None:
        """The right password: the user's failures go and this address is trusted for this user.

        The address keeps its own failures (they fade with time): signing in to one's own account
        must not buy more guesses at someone else's."""
        key = username.lower()
        self.users.clear(key)
        if len(self.known) >= KNOWN_PAIRS:
            for pair, _ in sorted(self.known.items(), key=lambda item: item[1])[: KNOWN_PAIRS // 2]:
                del self.known[pair]
        self.known[(key, address)] = self.clock()
