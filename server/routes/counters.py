"""What officers do at a counter (open, call, serve, transfer...), and closing the day.

A counter is held by whoever opened it (opening binds the sign-in to it): while it is open only
that person acts on it, others get 403 ``counter_held`` (server/counter_hold.py); a manager may
take it over (``counter.taken_over``). Every command's events carry ``actor``, the caller's id."""

# No "from __future__ import annotations": FastAPI must see the real types used in Depends().

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path
from pydantic import Field

from server import counter_hold
from server.accounts import Accounts
from server.estimates import wait_view
from server.http_common import ApiError, Body, Principal, get_accounts, get_service, manager, staff
from server.service import CentreService

router = APIRouter(tags=["counters"])

CounterAction = Literal["open", "close", "pause", "resume", "call-next", "recall", "no-show", "start", "finish"]
CounterNumber = Annotated[int, Path(ge=1, le=999)]


class PauseBody(Body):
    reason: str | None = Field(None, max_length=200)
    minutes: int | None = Field(None, ge=1, le=240)  # how long the officer expects to be away (wait estimates)


class CallBody(Body):
    ticket_id: str = Field(min_length=1, max_length=64)


class TransferBody(Body):
    group: str | None = Field(None, max_length=40)
    counter: int | None = Field(None, ge=1, le=999)


class TakeOverBody(Body):
    officer: str | None = Field(None, min_length=1, max_length=64, description="hand it to this person (default: you)")


@router.get("/api/v1/counters/{number}/waiting")
async def counter_waiting(number: CounterNumber, who: Annotated[Principal, Depends(staff)],
                          service: Annotated[CentreService, Depends(get_service)]) -> dict[str, Any]:
    """The tickets this counter may call, in calling order, with their expected waits."""
    engine = service.engine
    counter = engine.counter(number)
    now = service.now()
    estimates = engine.estimates(now)
    rows = []
    for t in engine.waiting():
        if engine.eligible(t, counter):
            est = estimates.get(t.id)
            rows.append({"id": t.id, "number": t.number, "group": t.group, "priority": t.priority is not None,
                         "waited_minutes": round((now - t.queue_since).total_seconds() / 60, 1),
                         "transferred": t.transfers > 0,
                         **wait_view(service.config, est, now),  # the tracking page's words and range
                         # remote/appointment tickets are marked; a remote one not here yet cannot be called
                         "booking": t.booking, "checked_in": not t.awaiting, "held": t.held_since is not None and t.awaiting})
    return {"counter": engine.counter_view(number), "waiting": rows}


@router.post("/api/v1/counters/{number}/call")
async def counter_call(number: CounterNumber, body: CallBody, who: Annotated[Principal, Depends(staff)],
                       service: Annotated[CentreService, Depends(get_service)]) -> dict[str, Any]:
    """Call one chosen ticket from the counter's waiting list."""
    ticket = await service.run(counter_hold.guarded(number, who.id, lambda e, now: e.call_ticket(number, body.ticket_id, now)),
                               actor=who.id)
    return {"counter": service.engine.counter_view(number), "ticket": {"id": ticket.id, "number": ticket.number}}


@router.post("/api/v1/counters/{number}/transfer")
async def counter_transfer(number: CounterNumber, body: TransferBody, who: Annotated[Principal, Depends(staff)],
                           service: Annotated[CentreService, Depends(get_service)]) -> dict[str, Any]:
    """Send the current ticket to another group or counter; it keeps its place in line."""
    ticket = await service.run(counter_hold.guarded(
        number, who.id, lambda e, now: e.transfer(number, now, to_group=body.group, to_counter=body.counter)), actor=who.id)
    return {"counter": service.engine.counter_view(number), "ticket": service.ticket_view(ticket.id)}


@router.post("/api/v1/counters/{number}/take-over")
async def counter_take_over(number: CounterNumber, who: Annotated[Principal, Depends(manager)],
                            service: Annotated[CentreService, Depends(get_service)],
                            accounts: Annotated[Accounts, Depends(get_accounts)],
                            body: TakeOverBody | None = None) -> dict[str, Any]:
    """A manager takes an open counter over (or hands it to ``officer``); recorded as the event
    ``counter.taken_over`` with from/to/by. The previous holder can no longer act on it."""
    to = body.officer if body and body.officer else who.id
    if to != who.id and await accounts.get_user(to) is None:
        raise ApiError(404, "user_not_found", f"Không có tài khoản {to}.", f"There is no account {to}.")
    await service.run(lambda e, now: (None, e.take_over(number, to, who.id, now)), actor=who.id)
    if to == who.id and who.session is not None:
        await accounts.bind_counter(who.session, who.id, number)
    return {"counter": service.engine.counter_view(number)}


# registered after /call, /transfer and /take-over: the generic {action} route would shadow them
@router.post("/api/v1/counters/{number}/{action}")
async def counter_action(
    number: CounterNumber,
    action: CounterAction,
    who: Annotated[Principal, Depends(staff)],
    service: Annotated[CentreService, Depends(get_service)],
    accounts: Annotated[Accounts, Depends(get_accounts)],
    pause: PauseBody | None = None,
) -> dict[str, Any]:
    """Open, close, pause, resume, call next, recall, mark absent, start or finish at a counter.
    Opening binds this sign-in to the counter; only its holder may do the rest."""
    service.engine.counter(number)  # 404 for an unknown counter before anything else
    if action == "open":
        await counter_hold.open_for(service, accounts, who.id, who.role, who.session, number)
        return {"counter": service.engine.counter_view(number), "ticket": None}
    commands = {
        "close": lambda e, now: (None, e.close_counter(number, now)),
        "pause": lambda e, now: (None, e.pause(number, now, reason=pause.reason if pause else None,
                                               minutes=pause.minutes if pause else None)),
        "resume": lambda e, now: (None, e.resume(number, now)),
        "call-next": lambda e, now: e.call_next(number, now),
        "recall": lambda e, now: e.recall(number, now),
        "no-show": lambda e, now: e.no_show(number, now),
        "start": lambda e, now: e.start(number, now),
        "finish": lambda e, now: e.finish(number, now),
    }
    ticket = await service.run(counter_hold.guarded(number, who.id, commands[action]), actor=who.id)
    return {"counter": service.engine.counter_view(number),
            "ticket": {"id": ticket.id, "number": ticket.number, "group": ticket.group, "status": ticket.status}
            if ticket else None}


@router.post("/api/v1/day/close")
async def close_day(who: Annotated[Principal, Depends(manager)],
                    service: Annotated[CentreService, Depends(get_service)]) -> dict[str, Any]:
    """End of day: tickets still open expire, counters close. Numbers are not reused today."""
    await service.run(lambda e, now: (None, e.close_day(now)), actor=who.id)
    return {"ok": True, "day": service.engine.day.isoformat() if service.engine.day else None}


@router.get("/api/v1/day/clock")
async def clock_status(who: Annotated[Principal, Depends(staff)],
                       service: Annotated[CentreService, Depends(get_service)]) -> dict[str, Any]:
    """The server clock as the engine judges it: whether commands are being refused as
    ``clock_suspect`` (``needs_confirmation``, with the refusal's words) and what a manager's
    confirmation would be measured against (the last recorded event). Reads only."""
    engine, now = service.engine, service.now()
    refusal = engine.clock_refusal(now)
    return {"now": now.isoformat(), "now_local": now.astimezone(service.config.zone).isoformat(),
            "day": engine.day.isoformat() if engine.day else None, "day_closed": engine.day_closed,
            "last_event_at": engine.last_at.isoformat() if engine.last_at else None,
            "needs_confirmation": refusal is not None,
            "reason": {"error": refusal.code, "message": refusal.message, "message_en": refusal.message_en}
            if refusal else None}


@router.post("/api/v1/day/confirm-clock")
async def confirm_clock(who: Annotated[Principal, Depends(manager)],
                        service: Annotated[CentreService, Depends(get_service)]) -> dict[str, Any]:
    """A manager has checked the server clock against a real one: commands refused as
    ``clock_suspect`` are judged against this time from now on (docs/architecture.md, "Time and
    commits"). Never reopens an earlier service day."""
    await service.run(lambda e, now: (None, e.confirm_clock(now)))
    return {"ok": True, "at": service.now().isoformat(),
            "day": service.engine.day.isoformat() if service.engine.day else None}
