"""What every way of reaching a citizen's phone offers the notifier: one ``send``.

A channel is told a ``message_id`` that stays the same for every retry of one message, so a
channel that can tell it already handed a message over (Gammu's spool keeps the id in the file
name) does not send it twice after a crash between its send and the outbox's mark.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class SendFailed(Exception):
    """A message the channel did not hand over. ``retry``: worth trying again later (the gateway is
    down, a timeout); False when it never will be (a refused number, a missing template)."""

    def __init__(self, reason: str, retry: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry


class Channel(Protocol):
    name: str

    async def send(self, message_id: str, phone: str, text: str, kind: str) -> None:
        """Hand one message over for ``phone`` (``+84…``); raise :class:`SendFailed` when not done."""
        ...

    def sweep(self, older_than: datetime) -> int:
        """Delete what the channel itself keeps about phones sent to before ``older_than``; how many."""
        ...
