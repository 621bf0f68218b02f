"""The satisfaction pad at a counter (``luot pad``): the province's five levels after each service.

It listens to its counter's retained state (``Topics.counter_state(n)``). When the ticket the
counter was serving is released (the state shows it as ``last_ticket_id`` while the counter has
moved on or is free), the pad asks "Ông/bà có hài lòng không?" with five faces and their words
(rất hài lòng … rất không hài lòng), read aloud; below 'bình thường' it asks why (waiting time,
attitude, guidance, documents asked, other; several may be chosen, or none). A centre whose
``[centre] rating_scale`` is 4 keeps the four faces without reasons. The answer goes as one
:class:`~luot.protocol.FeedbackData` (with a fresh ``request_id``) on ``Topics.feedback(own id)``,
QoS 1 with the pad's own MQTT user, or ``POST /api/v1/feedback`` when the broker is away. A ticket
is rated once: the pad remembers the tickets it asked about, and the server refuses a second
rating anyway. A stale retained state (older than ``fresh_seconds``) never opens the faces. A
citizen who leaves the reasons screen unanswered still has the level sent when it times out.
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
from kivy.properties import ListProperty, NumericProperty, StringProperty
from kivy.uix.screenmanager import FadeTransition, NoTransition, Screen, ScreenManager

from kiosk.backend import AsyncRunner, CentreLink, DeviceIdentity, new_request_id, stop_networking
from kiosk.device_mqtt import DeviceMqtt
from kiosk.widgets import load_kv
from kiosk.voice import Speaker
from luot.protocol import DISSATISFIED_BELOW, LEVELS, REASONS

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
    speech: bool = True  # read the question, the reasons and the thanks aloud (espeak-ng, kiosk/voice.py)
    voice: str = "vi"


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
    scale = NumericProperty(5)  # the centre's [centre] rating_scale: 5 levels, or the four faces
    level = NumericProperty(0)  # the level chosen, while the reasons are asked
    reasons = ListProperty([])  # the reasons ticked on the reasons screen

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
        self.speaker = Speaker(options.data_dir / "voice", voice=options.voice, enabled=options.speech)

    def labels(self, level: int) -> str:
        vi, en = LEVELS[level]
        return f"{vi}\n[size={int(26 * self.u)}]{en}[/size]"

    def reason_label(self, code: str, chosen: bool = False) -> str:
        """A reason's words; a chosen one says so in words too (not by its colour alone)."""
        vi, en = REASONS[code]
        mark = "[b]ĐÃ CHỌN[/b] · " if chosen else ""
        return f"{vi}\n[size={int(24 * self.u)}]{mark}{en}[/size]"

    def offered(self) -> list[int]:
        """The levels this centre's pad offers, best first: five, or the four faces' 5..2."""
        return [5, 4, 3, 2, 1] if self.scale == 5 else [5, 4, 3, 2]

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
        for name in ("idle", "rate", "reasons", "thanks"):
            manager.add_widget(PadScreen(name=name))
        self.runner.call(self.link.start(), timeout=30)
        centre = self.link.centre
        self.scale = 4 if centre.get("rating_scale") == 4 else 5
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
        self.speaker.stop()
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
        self.level, self.reasons = 0, []
        self.root.current = "rate"
        self.speaker.say("Mời ông bà đánh giá mức độ hài lòng: "
                         + ", ".join(LEVELS[level][0].lower() for level in self.offered()) + ".")
        self._schedule(self.options.rate_seconds, self.idle)

    def idle(self) -> None:
        self.pending_ticket = ""
        self.root.current = "idle"

    def _schedule(self, seconds: float, what: Any) -> None:
        if self._timer:
            self._timer.cancel()
        self._timer = Clock.schedule_once(lambda _dt: what(), seconds)

    # ------------------------------------------------------------------ rating
    def choose(self, level: int) -> None:
        """A face was tapped. Below 'bình thường' on the five levels, ask why before sending."""
        if not self.pending_ticket or self.pending_ticket in self.rated or self.root.current != "rate":
            return
        if self.scale == 5 and level < DISSATISFIED_BELOW:
            self.level, self.reasons = level, []
            self.root.current = "reasons"
            self.speaker.say("Ông bà chưa hài lòng về điều gì? "
                             + ", ".join(vi.lower() for vi, _ in REASONS.values()) + ". Chọn rồi bấm gửi.")
            self._schedule(self.options.rate_seconds, self.send_reasons)  # unanswered: the level still counts
            return
        self.rate(level)

    def toggle_reason(self, code: str) -> None:
        self.reasons = [r for r in self.reasons if r != code] if code in self.reasons else [*self.reasons, code]

    def send_reasons(self) -> None:
        if self.level:
            self.rate(self.level, list(self.reasons))

    def rate(self, level: int, reasons: list[str] | None = None) -> None:
        """Send one rating for the pending ticket: ``level`` on the five levels (the four-face
        pad sends its own 1..4 value, level - 1, with scale 4)."""
        ticket = self.pending_ticket
        if not ticket or ticket in self.rated:
            return
        scale = int(self.scale)
        rating = level if scale == 5 else level - 1
        self.rated[ticket] = level
        self.pending_ticket, self.level = "", 0
        fields: dict[str, Any] = {"ticket_id": ticket, "rating": rating, "scale": scale, "reasons": reasons or []}
        data = {**fields, "request_id": new_request_id()}

        async def send() -> str:
            import asyncio

            if self.mqtt is not None:
                if await asyncio.get_running_loop().run_in_executor(None, self.mqtt.send, "feedback", data):
                    return "mqtt"
            await self.link.post_request("feedback", fields)
            return "http"

        def done(via: str | None, error: BaseException | None) -> None:
            if error is not None:
                log.warning("rating of %s not recorded: %s", ticket, error)
                self.error = getattr(error, "message", str(error))
            else:
                self.sent_via = via or ""
                log.info("rating level %d for %s sent via %s", level, ticket, via)

        self.runner.submit(send(), done)
        self.root.current = "thanks"
        self.speaker.say("Cảm ơn ông bà.")
        self._schedule(self.options.thanks_seconds, self.idle)
