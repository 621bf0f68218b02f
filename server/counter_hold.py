"""Who may act at a counter: the officer who opened it (or was handed it), and nobody else.

The holder is the engine's ``counter.officer`` of today's open counter, so it survives restarts
(it is folded from the events). Checks run inside the engine command given to
:meth:`CentreService.run`, so no other command can slip between the check and the action.
A counter opened without a person (the demo's simulation) holds nobody back.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Callable, TypeVar

from server.engine import CLOSED, Event, QueueEngine
from server.http_common import ApiError

if TYPE_CHECKING:
    from server.accounts import Accounts
    from server.service import CentreService

T = TypeVar("T")
Command = Callable[[QueueEngine, datetime], tuple[T, list[Event]]]


def holder(engine: QueueEngine, number: int, now: datetime) -> str | None:
    """The person holding open counter ``number`` today, or None (closed, yesterday's, nobody)."""
    counter = engine.counter(number)
    if counter.status == CLOSED or engine.day != engine.config.service_day(now):
        return None
    return counter.officer


def held_counters(engine: QueueEngine, username: str, now: datetime) -> list[int]:
    """The counters ``username`` holds open today."""
    return [n for n in engine.counters if holder(engine, n, now) == username]


def held_error(number: int, officer: str) -> ApiError:
    return ApiError(403, "counter_held", f"Quầy {number} đang do {officer} phụ trách.",
                    f"Counter {number} is held by {officer}.")


def check(engine: QueueEngine, number: int, username: str, now: datetime) -> None:
    """Refuse (403) when someone else holds the counter."""
    officer = holder(engine, number, now)
    if officer is not None and officer != username:
        raise held_error(number, officer)


def guarded(number: int, username: str, command: Command[T]) -> Command[T]:
    """``command`` run only if ``username`` may act at counter ``number``."""
    def run(engine: QueueEngine, now: datetime) -> tuple[T, list[Event]]:
        check(engine, number, username, now)
        return command(engine, now)
    return run


def opening(number: int, username: str, role: str) -> Command[None]:
    """Open counter ``number`` for ``username``. An officer holds one counter at a time (a
    manager may hold several, e.g. covering while officers are away)."""
    def run(engine: QueueEngine, now: datetime) -> tuple[None, list[Event]]:
        check(engine, number, username, now)
        if role != "manager":
            others = [n for n in held_counters(engine, username, now) if n != number]
            if others:
                raise ApiError(409, "holds_other_counter",
                               f"Bạn đang phụ trách quầy {others[0]}; hãy đóng quầy đó trước khi mở quầy {number}.",
                               f"You hold counter {others[0]}; close it before opening counter {number}.")
        return None, engine.open_counter(number, username, now)
    return run


async def open_for(service: CentreService, accounts: Accounts, username: str, role: str, session: str | None,
                   number: int) -> None:
    """Open ``number`` for ``username`` and bind their sign-in (``session``, its key) to it: what
    signing in at a counter and pressing "Mở quầy" both do."""
    await service.run(opening(number, username, role), actor=username)
    if session is not None:
        await accounts.bind_counter(session, username, number)
