"""The notifier: queue a message durably, then a background task hands it to the first channel
that takes it, retrying with a doubling wait (``[notify] retry_base_seconds`` … ``retry_max_seconds``).

Callers never wait for a gateway: :meth:`Notifier.enqueue` is one short SQLite write. The sender
opens the sealed phone only at the moment of sending, and logs message ids and kinds, never a
number or a text (a text may hold a one-time code).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable, Sequence

from luot.aio import cancel_and_wait
from luot.config import CentreConfig, NotifySettings
from server.engine import utc_now
from server.notify.channel import Channel, SendFailed
from server.notify.outbox import Outbox, OutboxMessage
from server.phones import PhoneVault, SealBroken

log = logging.getLogger("luot.notify")
OUTBOX_FILE = "notify-outbox.sqlite3"
IDLE_SECONDS = 30.0
"""Longest sleep of the sender with nothing due (a new message wakes it at once)."""
SWEEP_SECONDS = 3600.0
"""How often the sender runs the retention sweep (``[notify] keep_phone_days``)."""


def build_channels(config: CentreConfig, data_dir: str | Path) -> tuple[list[Channel], list[str]]:
    """The channels ``[notify] channels`` names, in that order, and one problem line for each that
    cannot be set up (a missing Gammu SMSD file, say). Such a channel is left out with a log line:
    the server still starts, and with no channel left one-time codes are refused (``no-channel``)
    rather than promised and never sent."""
    from server.notify.gammu import GammuConfigError, GammuSmsdChannel
    from server.notify.zalo import ZaloOAChannel

    data = Path(data_dir)
    channels: list[Channel] = []
    problems: list[str] = []
    for name in config.notify.channels:
        try:
            if name == "sms":
                channels.append(GammuSmsdChannel.from_settings(config.notify, data))
            elif name == "zalo":
                channels.append(ZaloOAChannel.from_settings(config.notify, data))
        except (GammuConfigError, OSError) as error:
            problems.append(f"[notify] channel {name!r} left out: {error}")
            log.error("[notify] channel %r left out: %s (docs/notifications.md)", name, error)
    return channels, problems


class Notifier:
    def __init__(self, outbox: Outbox, vault: PhoneVault, channels: Sequence[Channel], settings: NotifySettings,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.outbox = outbox
        self.vault = vault
        self.channels = list(channels)
        self.settings = settings
        self.clock = clock
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self.sent = 0
        self.failed = 0
        self.problems: list[str] = []
        """Channels of the centre file that could not be set up (:func:`build_channels`)."""
        self._last_sweep: float | None = None

    @classmethod
    def for_centre(cls, config: CentreConfig, data_dir: str | Path, vault: PhoneVault,
                   clock: Callable[[], datetime] = utc_now) -> "Notifier":
        """The notifier of a centre: its outbox in the data directory (``notify-outbox.sqlite3``)
        and the channels ``[notify] channels`` names, in that order (broken ones left out, see
        :attr:`problems`)."""
        channels, problems = build_channels(config, data_dir)
        notifier = cls(Outbox(Path(data_dir) / OUTBOX_FILE), vault, channels, config.notify, clock)
        notifier.problems = problems
        return notifier

    @property
    def can_send(self) -> bool:
        """Is there any channel at all? Without one a one-time code can never arrive."""
        return bool(self.channels)

    # ------------------------------------------------------------------ queueing
    def enqueue(self, dedupe_key: str, sealed_phone: str, text: str, kind: str,
                expires_at: datetime | None = None) -> bool:
        """Queue ``text`` for the phone ``sealed_phone`` holds (from :meth:`PhoneVault.seal`).
        Returns False (and changes nothing) when ``dedupe_key`` was queued before. ``kind``:
        ``otp``, ``near``, ``called``, ``turn`` (chooses the Zalo template; shows in the counts). Messages
        not sent by ``expires_at`` (default: ``[notify] give_up_minutes`` from now) are dropped."""
        now = self.clock()
        expires_at = expires_at or now + timedelta(minutes=self.settings.give_up_minutes)
        added = self.outbox.add(dedupe_key, sealed_phone, text, kind, now, expires_at)
        if added:
            self._poke()
        return added

    def _poke(self) -> None:
        if self._wake is None or self._loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._wake.set()
        else:  # enqueued from another thread (a worker, the CLI)
            self._loop.call_soon_threadsafe(self._wake.set)

    # ------------------------------------------------------------------ sending
    async def deliver_due(self) -> int:
        """Try every message due now once; how many were sent."""
        sent = 0
        now = self.clock()
        for message in self.outbox.due(now):
            if await self._deliver(message):
                sent += 1
        return sent

    async def _deliver(self, message: OutboxMessage) -> bool:
        now = self.clock()
        if message.expires_at is not None and now >= message.expires_at:
            self.outbox.mark_failed(message.id, now, "expired before it could be sent")
            self.failed += 1
            log.info("message %s (%s) dropped: expired unsent", message.message_id, message.kind)
            return False
        try:
            phone = self.vault.open(message.sealed_phone)
        except SealBroken:
            self.outbox.mark_failed(message.id, now, "sealed phone cannot be opened with this centre's key")
            self.failed += 1
            log.warning("message %s (%s) dropped: its sealed phone cannot be opened", message.message_id, message.kind)
            return False
        errors: list[str] = []
        retry = False
        for channel in self.channels:
            try:
                await channel.send(message.message_id, phone, message.text, message.kind)
            except SendFailed as error:
                errors.append(f"{channel.name}: {error.reason}")
                retry = retry or error.retry
                continue
            self.outbox.mark_sent(message.id, channel.name, self.clock())
            self.sent += 1
            log.info("message %s (%s) handed to %s", message.message_id, message.kind, channel.name)
            return True
        reason = "; ".join(errors) or "no channel configured"
        if retry or not self.channels:
            wait = Outbox.backoff(message.attempts, self.settings.retry_base_seconds, self.settings.retry_max_seconds)
            self.outbox.retry_later(message.id, self.clock() + wait, reason)
            log.info("message %s (%s) not sent (%s); next try in %.0f s", message.message_id, message.kind,
                     reason, wait.total_seconds())
        else:
            self.outbox.mark_failed(message.id, self.clock(), reason)
            self.failed += 1
            log.warning("message %s (%s) refused by every channel: %s", message.message_id, message.kind, reason)
        return False

    # ------------------------------------------------------------------ background task
    def start(self) -> None:
        """Start the sender on the running loop (server/app.py at start-up)."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="luot-notifier")

    async def stop(self) -> None:
        """Stop the sender (what is pending stays in the outbox for the next start)."""
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    async def _run(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            try:
                await self.deliver_due()
                if self._last_sweep is None or loop.time() - self._last_sweep >= SWEEP_SECONDS:
                    self._last_sweep = loop.time()
                    removed = self.sweep()
                    if any(removed.values()):
                        log.info("phone retention sweep removed %s", removed)
            except Exception:  # a broken outbox file must not end the task silently
                log.exception("the notifier's sender failed; trying again shortly")
            upcoming = self.outbox.next_due()
            pause = IDLE_SECONDS
            if upcoming is not None:
                pause = min(IDLE_SECONDS, max(0.05, (upcoming - self.clock()).total_seconds()))
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=pause)
            except asyncio.TimeoutError:
                pass

    # ------------------------------------------------------------------ retention
    def sweep(self, now: datetime | None = None) -> dict[str, int]:
        """Delete messages and channel copies older than ``[notify] keep_phone_days``."""
        older_than = (now or self.clock()) - timedelta(days=self.settings.keep_phone_days)
        counts = {"outbox": self.outbox.sweep(older_than)}
        for channel in self.channels:
            counts[channel.name] = channel.sweep(older_than)
        return counts

    def close(self) -> None:
        self.outbox.close()
