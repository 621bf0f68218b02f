"""The satisfaction pad at a counter (``luot pad``): four faces after each finished service.

It listens to its counter's retained state (``Topics.counter_state(n)``). When the ticket the
counter was serving is released (the state shows it as ``last_ticket_id`` while the counter has
moved on or is free), the pad asks "Ông/bà có hài lòng không?" with four faces. A tap sends one
:class:`~luot.protocol.FeedbackData` (with a fresh ``request_id``) on ``Topics.feedback(own id)``,
QoS 1 with the pad's own MQTT user, or ``POST /api/v1/feedback`` when the broker is away. A ticket
is rated once: the pad remembers the tickets it asked about, and the server refuses a second
rating anyway. A stale retained state (older than ``fresh_seconds``) never opens the faces.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kivy.app import App
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.properties import NumericProperty, StringProperty
from kivy.uix.screenmanager import FadeTransition, NoTransition, Screen, ScreenManager

from kiosk.backend import AsyncRunner, CentreLink, DeviceIdentity, new_request_id, stop_networking
from kiosk.device_mqtt import DeviceMqtt
from kiosk.widgets import load_kv
from luot.protocol import RATING_LABELS

log = logging.getLogger("luot.pad")


@dataclass
class PadOptions:
    server_url: str
    device_id: str
    secret: str
    data_dir: Path
    counter: int
    mqtt_host: str | None = None
    mqtt_port: int = 18830
    thanks_seconds: float = 5.0
    rate_seconds: float = 60.0
    fresh_seconds: float = 600.0
    transitions: bool = True
    fullscreen: bool = False
    mqtt_secret: str | None = None  # an enrolled pad's MQTT password (its HTTP token is `secret`)


class PadScreen(Screen):
    pass


class PadApp(App):
    title = "Lượt – Đánh giá mức độ hài lòng"
    u = NumericProperty(1.0)
    counter_name = StringProperty("")
    pending_ticket = StringProperty("")
    pending_number = StringProperty("")
    sent_via = StringProperty("")
    error = StringProperty("")

    def __init__(self, options: PadOptions, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.options = options
        self.runner = AsyncRunner("luot-pad-net")
        self.link = CentreLink(options.server_url, DeviceIdentity(options.device_id, options.secret), options.data_dir,
                               lease_size=0, refill_below=0)
        self.mqtt: DeviceMqtt | None = None
        self.asked: set[str] = set()  # tickets already offered for rating: one rating per ticket
        self.rated: dict[str, int] = {}
        self._previous: dict[str, Any] = {}
        self._timer = None

    def labels(self, rating: int) -> str:
        vi, en = RATING_LABELS[rating]
        return f"{vi}\n[size={int(30 * self.u)}]{en}[/size]"

    def load_kv(self, filename: str | None = None) -> bool:
        load_kv("common.kv")
        load_kv("pad_screens.kv")
        return True

    def build(self) -> ScreenManager:
        Window.clearcolor = (0.04, 0.09, 0.17, 1)
        if self.options.fullscreen:
            Window.fullscreen = "auto"
        Window.bind(size=lambda _w, size: setattr(self, "u", max(0.4, min(size[0] / 1280.0, size[1] / 800.0))))
        self.u = max(0.4, min(Window.width / 1280.0, Window.height / 800.0))
        manager = ScreenManager(transition=FadeTransition(duration=0.15) if self.options.transitions else NoTransition())
        for name in ("idle", "rate", "thanks"):
            manager.add_widget(PadScreen(name=name))
        self.runner.call(self.link.start(), timeout=30)
        centre = self.link.centre
        for counter in centre.get("counters", []):
            if counter["number"] == self.options.counter:
                self.counter_name = counter.get("name") or f"Quầy {self.options.counter}"
        self.counter_name = self.counter_name or f"Quầy {self.options.counter}"
        if self.options.mqtt_host and centre.get("id"):
            self.mqtt = DeviceMqtt(centre["id"], self.options.device_id, self.options.mqtt_secret or self.options.secret, self.options.mqtt_host,
                                   self.options.mqtt_port, on_state=self._mqtt_state)
            self.mqtt.subscriptions = [self.mqtt.topics.counter_state(self.options.counter)]
            self.mqtt.start()
        return manager

    def on_stop(self) -> None:
        stop_networking(self.mqtt, self.runner, self.link)

    # ------------------------------------------------------------------ counter state
    def _mqtt_state(self, topic: str, message: dict[str, Any], retained: bool) -> None:
        Clock.schedule_once(lambda _dt: self.counter_state(message["data"], message.get("at"), retained), 0)

    def counter_state(self, data: dict[str, Any], at: str | None = None, retained: bool = False) -> None:
        """A new retained state of this pad's counter (main thread)."""
        previous, self._previous = self._previous, data
        if data.get("counter") not in (None, self.options.counter):
            return
        if retained and at and not self._fresh(at):
            return  # a state from long ago (pad rebooted): nobody is standing there to rate it
        ended = None
        before = previous.get("ticket_id")
        if before and data.get("ticket_id") != before:
            ended = before  # the ticket we saw being served has been released
        elif not data.get("ticket_id") and data.get("last_ticket_id"):
            ended = data["last_ticket_id"]  # counter free, showing the ticket it last served
        if ended and ended not in self.asked:
            self.asked.add(ended)
            number = previous.get("number") if before == ended else None
            self.ask(ended, number)

    def _fresh(self, at: str) -> bool:
        try:
            when = datetime.fromisoformat(at)
        except ValueError:
            return False
        return (datetime.now(timezone.utc) - when).total_seconds() <= self.options.fresh_seconds

    def ask(self, ticket_id: str, number: int | None = None) -> None:
        self.pending_ticket = ticket_id
        self.pending_number = str(number or "")
        self.error = ""
        self.root.current = "rate"
        self._schedule(self.options.rate_seconds, self.idle)

    def idle(self) -> None:
        self.pending_ticket = ""
        self.root.current = "idle"

    def _schedule(self, seconds: float, what: Any) -> None:
        if self._timer:
            self._timer.cancel()
        self._timer = Clock.schedule_once(lambda _dt: what(), seconds)

    # ------------------------------------------------------------------ rating
    def rate(self, rating: int) -> None:
        ticket = self.pending_ticket
        if not ticket or ticket in self.rated:
            return
        self.rated[ticket] = rating
        self.pending_ticket = ""
        data = {"ticket_id": ticket, "rating": rating, "request_id": new_request_id()}

        async def send() -> str:
            import asyncio

            if self.mqtt is not None:
                if await asyncio.get_running_loop().run_in_executor(None, self.mqtt.send, "feedback", data):
                    return "mqtt"
            await self.link.post_request("feedback", {"ticket_id": ticket, "rating": rating})
            return "http"

        def done(via: str | None, error: BaseException | None) -> None:
            if error is not None:
                log.warning("rating of %s not recorded: %s", ticket, error)
                self.error = getattr(error, "message", str(error))
            else:
                self.sent_via = via or ""
                log.info("rating %d for %s sent via %s", rating, ticket, via)

        self.runner.submit(send(), done)
        self.root.current = "thanks"
        self._schedule(self.options.thanks_seconds, self.idle)
