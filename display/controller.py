"""Glue between the MQTT client, the display model and the announcer. No Kivy, no threads of its own.

Messages are folded in on paho's thread, under :attr:`DisplayController.lock`, and a live call goes
to the announcer at once: the voice never waits for the screen's next frame (a software-rendered
1080p frame can take 100+ ms). The view reads the model under the same lock on its own thread.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Callable, Protocol

from display.model import Call, DisplayModel, Update

log = logging.getLogger(__name__)


class Speaker(Protocol):
    def submit(self, event_id: str, number: int, counter: int) -> bool: ...


class DisplayController:
    """Feeds MQTT messages to the model and live calls to the announcer; notifies the view."""

    def __init__(self, model: DisplayModel, announcer: Speaker | None = None,
                 on_change: Callable[[Update], None] | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.model = model
        self.announcer = announcer
        self.on_change = on_change
        self.monotonic = monotonic
        self.lock = threading.RLock()
        self.announced: list[Call] = []
        """Calls handed to the announcer, in order (what the hall will hear)."""

    def handle(self, topic: str, payload: bytes, retained: bool) -> Update:
        with self.lock:
            update = self.model.apply(topic, payload, retained, self.monotonic())
            for call in update.announce:
                self._announce(call)
        if update.changed and self.on_change is not None:
            self.on_change(update)
        return update

    def connection(self, connected: bool) -> Update:
        with self.lock:
            update = self.model.set_connected(connected)
        if update.changed and self.on_change is not None:
            self.on_change(update)
        return update

    def _announce(self, call: Call) -> None:
        if self.announcer is None:
            return
        try:
            if self.announcer.submit(call.event_id, call.number, call.counter):
                self.announced.append(call)
        except ValueError as error:  # a number the voice cannot read: show it, do not speak it
            log.warning("call %s not announced: %s", call.event_id, error)


def make_announcer(settings: object, out_dir: Path) -> object | None:
    """The real Announcer, or None (and a logged reason) when speech cannot start: the screen must
    keep working without a voice."""
    try:
        from display.announcer import Announcer

        return Announcer(settings, out_dir)  # type: ignore[arg-type]
    except Exception as error:  # noqa: BLE001 - espeak-ng missing, a bad voice name...
        log.error("voice disabled: %s", error)
        return None
