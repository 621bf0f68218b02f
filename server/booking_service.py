"""Bookings through the one write path: engine command → commit → answer (docs/bookings.md).

The engine decides (limits, capacity, check-in, lapse); this adapter gives it what only I/O can
know: this phone's no-shows on earlier days (storage), the keyed hash of the caller's network
address, and the clock for the periodic tick. It also keeps the encrypted phone of each booking in
``booking_contacts`` (never in an event) and deletes it after ``booking.keep_phone_days``.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date, datetime, timedelta
from typing import Any

from luot.aio import cancel_and_wait
from server.booking_slots import checkin_window
from server.devices import AttemptLimiter
from server.engine import Booking, NotFound, QueueEngine, QueueError, RateLimited
from server.phones import PhoneVault
from server.service import CentreService

log = logging.getLogger("luot.bookings")

TICK_SECONDS = 20.0
"""How often lapses are looked for: a remote number's grace is minutes, so 20 s is on time."""
CHECKIN_FAILURES = 10
CHECKIN_WINDOW = timedelta(minutes=1)
"""Unknown check-in codes one device or officer may give a minute: a citizen mistypes a few times,
a script guessing 37-bit codes is stopped at 10 guesses a minute (about 10^-8 of the space a day)."""
CHECKIN_FAILURES_ALL = 60
"""Unknown codes the whole centre may see a minute (every kiosk and officer together): the callers
are signed-in devices and staff, so this only bounds a guesser holding several identities."""


class BookingDesk:
    """Make, check in and cancel bookings for one centre; run the clock's part (lapses)."""

    def __init__(self, service: CentreService, vault: PhoneVault) -> None:
        self.service = service
        self.vault = vault
        self._sealed: dict[str, str] = {}
        """booking id -> sealed phone of today's and later bookings: "your turn is near" asks for
        contacts synchronously on every commit (server/notify/turn.py), so they are in memory."""
        self._task: asyncio.Task[None] | None = None
        self._failures = AttemptLimiter(per_caller=CHECKIN_FAILURES, total=CHECKIN_FAILURES_ALL, window=CHECKIN_WINDOW)
        """Recent unknown codes per actor (device or officer), for :meth:`check_in`."""

    def address_key(self, address: str) -> str:
        """A keyed hash of a client address: enough to count bookings per address, not to find it."""
        return self.vault.keyed("address", address)

    def contact_for_ticket(self, ticket_id: str) -> str | None:
        """The sealed phone of the booking ``ticket_id`` came from (server/notify/turn.py asks)."""
        ticket = self.service.engine.tickets.get(ticket_id)
        if ticket is None or ticket.booking_id is None:
            return None
        return self._sealed.get(ticket.booking_id)

    async def load_contacts(self) -> None:
        """At start-up: the sealed phones of today's and later bookings, from the database."""
        today = self.service.config.service_day(self.service.now()).isoformat()
        self._sealed = await self.service.storage.booking_contacts_from(today)

    # ------------------------------------------------------------------ commands
    async def _no_shows(self, phone_key: str) -> int:
        config = self.service.config
        today = config.service_day(self.service.now())
        first = (today - timedelta(days=config.booking.no_show_days)).isoformat()
        return await self.service.storage.booking_no_shows(phone_key, first, today.isoformat())

    async def precheck(self, kind: str, group: str, phone_key: str, address: str | None,
                       slot: datetime | None = None) -> None:
        """Raise the refusal :meth:`make` would give, changing nothing: asked before the citizen's
        one-time code is used up, so a full slot does not cost a code."""
        no_shows = await self._no_shows(phone_key)
        self.service.engine.booking_allowed(kind, group, phone_key, self.service.now(), slot,
                                            self.address_key(address) if address else None, no_shows)

    async def make(self, kind: str, group: str, phone_key: str, sealed_phone: str | None, address: str | None,
                   actor: str, slot: datetime | None = None) -> dict[str, Any]:
        """A booking; its answer carries the raw code and token (shown once, never stored)."""
        no_shows = await self._no_shows(phone_key)
        address_key = self.address_key(address) if address else None

        def command(engine: QueueEngine, now: datetime) -> tuple[tuple[Booking, dict[str, Any]], list[Any]]:
            booking, events = engine.make_booking(kind, group, phone_key, now, slot=slot, address_key=address_key,
                                                  recent_no_shows=no_shows)
            return (booking, self.view(booking)), events

        booking, view = await self.service.run(command, actor=actor)
        if sealed_phone:
            await self.service.storage.save_contact(booking.id, sealed_phone, booking.day.isoformat())
            self._sealed[booking.id] = sealed_phone
        return self._with_keys(booking, view)

    async def make_at_kiosk(self, group: str, kiosk: str, slot: datetime | None) -> dict[str, Any]:
        """An appointment booked by ``kiosk`` for the citizen standing at it: no phone, no contact
        kept (the slip it prints is the citizen's copy); the kiosk's daily cap applies."""
        def command(engine: QueueEngine, now: datetime) -> tuple[tuple[Booking, dict[str, Any]], list[Any]]:
            booking, events = engine.make_kiosk_booking(group, kiosk, now, slot)
            return (booking, self.view(booking)), events

        booking, view = await self.service.run(command, actor=kiosk)
        assert booking.slot is not None
        early, _ = checkin_window(self.service.config, booking.slot)
        return {**self._with_keys(booking, view), "checkin_from": early.astimezone(self.service.config.zone).strftime("%H:%M")}

    def _with_keys(self, booking: Booking, view: dict[str, Any]) -> dict[str, Any]:
        """The answer to whoever made the booking: the raw code and token (shown once, never stored)."""
        token = booking.token or ""
        return {**view, "code": booking.code, "code_display": f"{booking.code[:4]}-{booking.code[4:]}" if booking.code else None,
                "token": token, "tracking_url": self.service.tracking_url(token)}

    async def check_in(self, actor: str, code: str | None = None, token: str | None = None,
                       booking_id: str | None = None) -> dict[str, Any]:
        """Check a booking in. A device or officer that gives :data:`CHECKIN_FAILURES` unknown
        codes within :data:`CHECKIN_WINDOW` is refused for the rest of it (429): codes are 37 bits,
        so guessing them through a kiosk is measured in failures and stopped."""
        now = self.service.now()
        guess = booking_id is None  # a code or token can be guessed; the help desk's pick from its list cannot
        if guess and not self._failures.allowed(actor, now):
            raise RateLimited("checkin_rate", "Nhập sai mã quá nhiều lần; xin chờ một phút hoặc đến quầy hướng dẫn.",
                              "Too many wrong codes; wait a minute or go to the help desk.")

        def command(engine: QueueEngine, now: datetime) -> tuple[dict[str, Any], list[Any]]:
            booking, events = engine.check_in_booking(now, code=code, token=token, booking_id=booking_id)
            return self.view(booking), events

        try:
            return await self.service.run(command, actor=actor)
        except NotFound:
            if guess:
                self._failures.failed(actor, now)
            raise

    async def cancel(self, booking_id: str, actor: str, reason: str) -> dict[str, Any]:
        def command(engine: QueueEngine, now: datetime) -> tuple[dict[str, Any], list[Any]]:
            booking, events = engine.cancel_booking(booking_id, now, reason=reason)
            return self.view(booking), events

        return await self.service.run(command, actor=actor)

    def by_token(self, token: str) -> dict[str, Any]:
        engine = self.service.engine
        return self.view(engine.find_booking(self.service.now(), token=token))

    def view(self, booking: Booking) -> dict[str, Any]:
        """The booking view plus, once it has a ticket in today's line, that ticket's view."""
        engine = self.service.engine
        view = engine.booking_view(booking)
        ticket = engine.tickets.get(booking.ticket_id or "")
        view["ticket"] = self.service.ticket_view(ticket.id) if ticket is not None else None
        return view

    async def day_list(self, day: str) -> dict[str, Any]:
        """Staff list of a day's bookings: the engine's when it holds the day, else the stored rows."""
        engine = self.service.engine
        held = [b for b in engine.bookings.values() if b.day.isoformat() == day]
        if held or (engine.day is not None and day >= engine.day.isoformat()):
            bookings = [self.view(b) for b in sorted(held, key=lambda b: (b.slot or b.made_at, b.made_at))]
        else:
            bookings = await self.service.storage.bookings_of_day(day)
        return {"day": day, "bookings": bookings, "slots": engine.slot_table(date.fromisoformat(day))}

    # ------------------------------------------------------------------ the clock's part
    async def tick(self) -> list[str]:
        """Lapse what is due and delete old contacts; returns the lapsed booking ids. The deletion
        runs even when the lapses are refused (a suspect clock waits for a manager; phones must
        not wait with it)."""
        lapsed: list[str] = []
        try:
            if self.service.engine.day is not None:
                def command(engine: QueueEngine, now: datetime) -> tuple[list[str], list[Any]]:
                    bookings, events = engine.booking_tick(now)
                    return [b.id for b in bookings], events

                lapsed = await self.service.run(command, actor="server")
        finally:
            await self.forget_old_phones()
        return lapsed

    async def forget_old_phones(self) -> None:
        """Delete the sealed phones of bookings for days more than ``booking.keep_phone_days`` ago,
        from the database and from memory (the running server does it every tick)."""
        config = self.service.config
        keep = config.booking.keep_phone_days
        cutoff = config.service_day(self.service.now()) - timedelta(days=keep)
        await self.service.storage.forget_contacts(cutoff.isoformat())
        held = self.service.engine.bookings
        self._sealed = {bid: sealed for bid, sealed in self._sealed.items() if bid in held and held[bid].day >= cutoff}

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="luot-booking-tick")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            try:
                await self.tick()
            except QueueError as error:  # e.g. a suspect clock: nothing lapses until it is confirmed
                log.warning("booking tick refused: %s", error.message_en)
            except Exception:
                log.exception("booking tick failed")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
