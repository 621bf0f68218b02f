"""The waiting tickets of a day, always in calling order.

Calling order is: priority tickets first, then by the time the citizen joined the queue
(``queue_since``, which a transfer keeps), then by number. Ties fall back to the order tickets
joined the line, as the engine's old ``sorted(dict.values())`` did.

Why a sorted line and not a dict that is sorted when read: a ticket's expected wait, the next
ticket a counter calls and the counter console's list are all read on every issue and call, and
on a busy afternoon the line holds hundreds of tickets. Keeping it sorted on insert (a binary
search and a C-level list insert) makes those reads a walk from the front instead of a sort of the
whole day each time (bench/bench_load.py: the sort and the estimate were a third of the server's
time with 500 waiting).

A ticket's sort key must not change while it is in the line; the engine only changes ``group``
and ``target_counter`` of a waiting ticket, which are not part of the key.
"""

from __future__ import annotations

from bisect import bisect_left
from datetime import datetime
from itertools import count
from typing import Generic, Iterator, Protocol, TypeVar


class Queued(Protocol):
    id: str
    number: int
    queue_since: datetime
    priority: str | None


Key = tuple[bool, datetime, int, int]
T = TypeVar("T", bound=Queued)


class WaitingLine(Generic[T]):
    """Tickets in calling order, with O(log n) look-up of a ticket's place."""

    def __init__(self) -> None:
        self._keys: list[Key] = []
        self._tickets: list[T] = []
        self._key_of: dict[str, Key] = {}
        self._joined = count()

    def add(self, ticket: T) -> None:
        """Put ``ticket`` at its place; a ticket already in the line stays where it is."""
        if ticket.id in self._key_of:
            return
        key = (ticket.priority is None, ticket.queue_since, ticket.number, next(self._joined))
        index = bisect_left(self._keys, key)
        self._keys.insert(index, key)
        self._tickets.insert(index, ticket)
        self._key_of[ticket.id] = key

    def discard(self, ticket_id: str) -> None:
        key = self._key_of.pop(ticket_id, None)
        if key is None:
            return
        index = bisect_left(self._keys, key)
        del self._keys[index]
        del self._tickets[index]

    def clear(self) -> None:
        self._keys.clear()
        self._tickets.clear()
        self._key_of.clear()

    def __len__(self) -> int:
        return len(self._tickets)

    def __iter__(self) -> Iterator[T]:
        return iter(self._tickets)

    def ticket_at(self, index: int) -> T:
        """The ticket at ``index`` in calling order (0 is called next), in O(1).

        The estimate model's resumed walk (server/estimates.py) checks that the ticket it walked
        last is still at the same place; iterating from the front to find it cost O(n) per new
        ticket's estimate (27 us with 10,000 waiting)."""
        return self._tickets[index]

    def from_place(self, index: int) -> list[T]:
        """The tickets from ``index`` on, in calling order: a copy of that tail only, so resuming
        a walk after its first ``index`` tickets does not step over them one by one."""
        return self._tickets[index:]

    def in_order(self) -> list[T]:
        """A copy, safe to keep while the line changes."""
        return list(self._tickets)
