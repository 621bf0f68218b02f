"""Everything a running centre needs to reach citizens' phones, built and stopped in one place:
the phone vault, the notifier and its sender task, the one-time codes, the "your turn is near"
listener (once the booking side gives its contact look-up) and the hourly retention sweep.

A channel whose configuration is broken (no Gammu SMSD file, say) is left out with a clear log
line and listed in :attr:`CitizenMessages.problems`; the server still starts, and with no channel
left the one-time codes are refused (``no-channel``) rather than promised and never sent.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from luot.aio import cancel_and_wait
from luot.config import CentreConfig
from server.notify.channel import Channel
from server.notify.gammu import GammuConfigError, GammuSmsdChannel
from server.notify.notifier import OUTBOX_FILE, Notifier
from server.notify.outbox import Outbox
from server.notify.turn import ContactLookup, TurnMessages
from server.notify.zalo import ZaloOAChannel
from server.otp import OneTimeCodes
from server.phones import PhoneVault
from server.service import CentreService

log = logging.getLogger("luot.notify")
SWEEP_SECONDS = 3600.0


def build_channels(config: CentreConfig, data_dir: Path) -> tuple[list[Channel], list[str]]:
    """The channels ``[notify] channels`` names, in order, and a problem line for each left out."""
    channels: list[Channel] = []
    problems: list[str] = []
    for name in config.notify.channels:
        try:
            if name == "sms":
                channels.append(GammuSmsdChannel.from_settings(config.notify, data_dir))
            elif name == "zalo":
                channels.append(ZaloOAChannel.from_settings(config.notify, data_dir))
        except (GammuConfigError, OSError) as error:
            problems.append(f"[notify] channel {name!r} left out: {error}")
            log.error("[notify] channel %r left out: %s (docs/notifications.md)", name, error)
    return channels, problems


class CitizenMessages:
    def __init__(self, config: CentreConfig, data_dir: str | Path, service: CentreService) -> None:
        data = Path(data_dir)
        self.service = service
        self.vault = PhoneVault.for_data_dir(data)
        channels, self.problems = build_channels(config, data)
        self.notifier = Notifier(Outbox(data / OUTBOX_FILE), self.vault, channels, config.notify, clock=service.clock)
        self.codes = OneTimeCodes.for_data_dir(data, self.vault, self.notifier, config.otp)
        self.turns: TurnMessages | None = None
        self._sweeper: asyncio.Task[None] | None = None

    def start(self) -> "CitizenMessages":
        self.notifier.start()
        self._sweeper = asyncio.create_task(self._sweep_hourly(), name="luot-phone-retention")
        return self

    def listen_for_turns(self, contact_for_ticket: ContactLookup) -> TurnMessages:
        """Start "your turn is near" messages; the booking side says which tickets have a contact."""
        if self.turns is None:
            self.turns = TurnMessages(self.service, self.notifier, contact_for_ticket)
        return self.turns

    def sweep(self) -> dict[str, int]:
        """Retention now: outbox rows and Gammu spool files past ``keep_phone_days``, day-old code rows."""
        now = self.service.now()
        counts = self.notifier.sweep(now)
        counts["otp"] = self.codes.sweep(now)
        return counts

    async def _sweep_hourly(self) -> None:
        while True:
            try:
                removed = self.sweep()
                if any(removed.values()):
                    log.info("phone retention sweep removed %s", removed)
            except Exception:
                log.exception("the phone retention sweep failed; it runs again in an hour")
            await asyncio.sleep(SWEEP_SECONDS)

    async def stop(self) -> None:
        await cancel_and_wait(self._sweeper)
        await self.notifier.stop()
        self.notifier.close()
        self.codes.close()
