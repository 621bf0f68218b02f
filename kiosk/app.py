"""The kiosk: ticket flow, guided flow for elderly and disabled visitors, and the greeter.

Screens (layout in ``kiosk_screens.kv``):

* ``attract`` → ``language`` → ``group`` → ``priority`` → ``confirm`` → ``ticket`` → back to ``attract``;
* guided: ``attract`` →(1) ``guided_group`` (every group, up to 8, those elderly and disabled visitors
  need first — Bảo trợ xã hội — then the most used, guidance last) →(2) ``guided_confirm``
  →(3) ``guided_ticket``: a priority ticket in three taps, larger text, high contrast, each screen
  read aloud, and a "Gọi cán bộ hỗ trợ" button on every guided screen;
* greeter: ``greeter`` (face, keyboard, suggestions) → ``greeter_answer`` (the procedure in large type,
  a "Mang theo" checklist, time, fee, counter; one big button per close procedure; where to go for
  another agency's work) → ``ticket`` on "Lấy số".

All networking runs on the :class:`~kiosk.backend.AsyncRunner` loop; results come back to the main
thread through ``Clock.schedule_once``. The app class is ``KioskApp`` and its kv file is *not*
``kiosk.kv``, so Kivy's automatic load of a kv named after the app cannot apply the rules twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kivy.app import App
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.properties import BooleanProperty, DictProperty, ListProperty, NumericProperty, ObjectProperty, StringProperty
from kivy.uix.screenmanager import FadeTransition, NoTransition, Screen, ScreenManager

from kiosk.backend import AsyncRunner, stop_networking, CentreLink, DeviceIdentity, IssuedTicket, KioskError, new_request_id, on_main_thread, \
    popular_groups, since_days
from kiosk.device_mqtt import DeviceMqtt
from kiosk.voice import Speaker
from kiosk.widgets import CodeButton, GroupButton, load_kv, texture_from_pil

log = logging.getLogger("luot.kiosk")

OFFLINE_NOTICE = "Đang mất kết nối – vé vẫn hợp lệ"
OFFLINE_NOTICE_EN = "Offline – your ticket is still valid"
ASSIST_SENT = "Đã gọi cán bộ. Xin ông/bà chờ tại đây, cán bộ sẽ đến ngay."
ASSIST_FAILED = "Chưa gọi được cán bộ. Xin mời đến quầy hướng dẫn."
SCAN_GAP = 0.25
"""Seconds of quiet after an Enter before a scanned text is routed: a scanner types a multi-line
QR's line breaks as Enter a few milliseconds apart; a hand pressing Enter waits this long."""


@dataclass
class KioskOptions:
    server_url: str
    device_id: str
    secret: str
    data_dir: Path
    printer: str = "none"
    printer_profile: str = "default"
    printer_width: int = 576
    mqtt_host: str | None = None
    mqtt_port: int = 18830
    centre_id: str = ""
    fallback_centre: dict[str, Any] | None = None
    timezone: str = "Asia/Ho_Chi_Minh"
    ticket_seconds: float = 25.0
    idle_seconds: float = 60.0
    speech: bool = True
    voice: str = "vi"
    voice_rate: int = 140
    transitions: bool = True
    fullscreen: bool = False
    lease_size: int = 30
    guided_priority: str | None = None  # default: "elderly" when configured, else the first class
    guided_first: tuple[str, ...] = ("bao-tro-xa-hoi",)  # groups elderly/disabled visitors need, shown first
    config: Any = None  # a CentreConfig when the kiosk was given the centre file (greeter, offline start)
    mqtt_secret: str | None = None  # an enrolled kiosk's MQTT password (its HTTP token is `secret`)


class KioskScreen(Screen):
    """A screen that may be read aloud when it appears (``speech`` set in kv)."""

    speech = StringProperty("")

    def on_enter(self, *args: Any) -> None:
        app = App.get_running_app()
        if app is not None and self.speech:
            app.say(self.speech)


class KioskApp(App):
    title = "Lượt – Kiosk lấy số"
    lang = StringProperty("vi")
    u = NumericProperty(1.0)  # layout unit: 1.0 on a 720x1280 portrait screen
    online = BooleanProperty(True)
    busy = BooleanProperty(False)
    centre = DictProperty({})
    centre_name = StringProperty("")
    centre_notice = StringProperty("")
    results_group = StringProperty("")  # [centre] results_group: empty hides "Nhận kết quả hồ sơ"
    chosen_group = DictProperty({})
    chosen_priority = ObjectProperty(None, allownone=True)
    chosen_procedure = ObjectProperty(None, allownone=True)  # the greeter's procedure: {"name", "documents", "group"}
    priority_classes = ListProperty([])
    ticket = ObjectProperty(None, allownone=True)
    ticket_qr = ObjectProperty(None, allownone=True)
    message = StringProperty("")  # error or status shown on the current screen
    scan_text = StringProperty("")  # what the receipt scanner (or a keyboard) has typed so far
    _scan_event: Any = None  # the pending routing of scan_text after an Enter (see _scanned_key)
    printer_message = StringProperty("")
    assist_message = StringProperty("")
    assist_via = StringProperty("")  # "mqtt" or "http": how the last call for staff went
    greeter_reply = StringProperty("")
    greeter_group = StringProperty("")
    suggestions = ListProperty([])
    speaking = BooleanProperty(False)
    guided_codes = ListProperty([])
    answer_title = StringProperty("")      # greeter answer screen: the procedure (or the question)
    answer_checklist = StringProperty("")  # "Mang theo" lines
    answer_details = StringProperty("")    # time and fee
    answer_where = StringProperty("")      # counter, or the agency to go to
    answer_choices = ListProperty([])      # big buttons: dicts with kind, id, label, group
    closing_warning = StringProperty("")   # confirm screen: unlikely to be served before closing today
    booking_available = BooleanProperty(False)  # the server offers tomorrow's appointment (issue 15)
    booking_offer = DictProperty({})       # the slot the outlook offered: group, slot, day, time
    appointment = DictProperty({})         # the appointment booked here: the slip's day, time, code
    checkin_code = StringProperty("")      # what was typed or scanned on the check-in screen
    checkin_result = StringProperty("")    # the number and where to wait, once checked in

    def __init__(self, options: KioskOptions, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.options = options
        self.runner = AsyncRunner()
        self.link = CentreLink(options.server_url, DeviceIdentity(options.device_id, options.secret),
                               options.data_dir, lease_size=options.lease_size,
                               fallback_centre=options.fallback_centre, timezone_name=options.timezone)
        self.mqtt: DeviceMqtt | None = None
        self.speaker = Speaker(options.data_dir / "voice", voice=options.voice, rate=options.voice_rate,
                               on_speaking=lambda s: Clock.schedule_once(lambda _dt: setattr(self, "speaking", s), 0),
                               enabled=options.speech)
        self.greeter = None
        self.printed_view = None  # the TicketView of the last ticket sent to the printer
        self.issued: list[IssuedTicket] = []  # this session's tickets, newest last (tests, bench)
        self._idle_event = None
        self._ticket_event = None

    # ------------------------------------------------------------------ text helpers used in kv
    def t(self, lang: str, vi: str, en: str) -> str:
        """Vietnamese first; English when the visitor chose it. kv passes ``app.lang`` to rebind."""
        return en if lang == "en" and en else vi

    def offer_label(self, offer: dict[str, Any], lang: str) -> str:
        """The appointment button: "Đặt lịch hẹn ngày mai (07:30)", or the weekday and date when the
        next working day is not tomorrow (a Saturday's offer is Monday's)."""
        from datetime import date, timedelta

        from kiosk.ticket_render import WEEKDAYS_VI

        when = f" ({offer['time']})" if offer.get("time") else ""
        try:
            day = date.fromisoformat(offer.get("day", ""))
            tomorrow = date.fromisoformat(self.link.service_day()) + timedelta(days=1)
        except (TypeError, ValueError):
            return self.t(lang, "Đặt lịch hẹn ngày mai", "Book an appointment for tomorrow")
        if day == tomorrow:
            return self.t(lang, f"Đặt lịch hẹn ngày mai{when}", f"Book an appointment for tomorrow{when}")
        return self.t(lang, f"Đặt lịch hẹn {WEEKDAYS_VI[day.weekday()]} {day:%d/%m}{when}",
                      f"Book an appointment for {day:%A %d/%m}{when}")

    def slip(self, appointment: dict[str, Any], key: str, lang: str = "vi") -> str:
        """One line of the appointment screen (``appointment`` is passed so kv re-reads it when it
        changes): ``day``, ``time``, ``group``, ``code`` or ``advice``, in the chosen language."""
        if key == "advice":
            since = appointment.get("checkin_from")
            return self.t(lang, "Giữ phiếu này. Khi đến, quét mã hoặc nhập mã tại máy lấy số" + (f" (từ {since})." if since else "."),
                          "Keep this slip. On arrival, scan it or type the code at the kiosk" + (f" (from {since})." if since else "."))
        return str(appointment.get(f"{key}_en" if lang == "en" and f"{key}_en" in appointment else key, ""))

    def group_name(self, group: dict[str, Any], lang: str) -> str:
        return self.t(lang, group.get("name", ""), group.get("name_en", ""))

    def group_label(self, code: str, lang: str, u: float) -> str:
        """A group button: its letter large, then its name."""
        group = self.group_by_code(code)
        if not group:
            return ""
        return f"[size={int(60 * u)}]{group['letter']}[/size]\n{self.group_name(group, lang)}"

    def ticket_lines(self, ticket: IssuedTicket | None, lang: str) -> str:
        """People ahead and expected wait (unknown for a ticket issued offline)."""
        if ticket is None:
            return ""
        if ticket.ahead is None:
            return self.t(lang, "Số người chờ trước: chưa biết (mất kết nối)", "People ahead: unknown (offline)")
        lines = [self.t(lang, f"Số người chờ trước: {ticket.ahead}", f"People ahead of you: {ticket.ahead}")]
        if ticket.returns_dossier:
            lines.insert(0, self.t(lang, f"Nhận kết quả hồ sơ {ticket.returns_dossier}", f"Result of dossier {ticket.returns_dossier}"))
            if ticket.appointment:
                shown = appointment_text(ticket.appointment)
                lines.insert(1, self.t(lang, f"Ngày hẹn trả kết quả: {shown}", f"Appointment date: {shown}"))
        if ticket.after_closing and ticket.wait_text:
            lines.append(self.t(lang, f"Lưu ý: {ticket.wait_text}", f"Note: {ticket.wait_text_en or ticket.wait_text}"))
        elif ticket.wait_text:  # the server's range ("khoảng 20-35 phút") or time after a break
            lines.append(self.t(lang, f"Thời gian chờ dự kiến: {ticket.wait_text}",
                                f"Expected wait: {ticket.wait_text_en or ticket.wait_text}"))
        elif ticket.wait_minutes is not None and ticket.wait_minutes < 1:
            lines.append(self.t(lang, "Sắp đến lượt của ông/bà", "You will be called soon"))
        elif ticket.wait_minutes is not None:
            minutes = max(1, int(round(ticket.wait_minutes)))
            lines.append(self.t(lang, f"Thời gian chờ dự kiến: khoảng {minutes} phút", f"Expected wait: about {minutes} min"))
        return "\n".join(lines)

    # ------------------------------------------------------------------ start and stop
    def load_kv(self, filename: str | None = None) -> bool:
        load_kv("common.kv")
        load_kv("kiosk_screens.kv")
        return True

    def build(self) -> ScreenManager:
        Window.clearcolor = (0.04, 0.09, 0.17, 1)
        if self.options.fullscreen:
            Window.fullscreen = "auto"
        Window.bind(size=self._resize, on_touch_down=self._touched, on_key_down=self._scanned_key)
        self._resize(Window, Window.size)
        manager = ScreenManager(transition=FadeTransition(duration=0.15) if self.options.transitions else NoTransition())
        for name in ("attract", "language", "group", "priority", "confirm", "ticket",
                     "guided_group", "guided_confirm", "guided_ticket", "greeter", "greeter_answer", "check_in", "return_scan", "appointment"):
            manager.add_widget(KioskScreenFactory.make(name))
        self.link.listeners.append(lambda online: Clock.schedule_once(lambda _dt: self._link_changed(online), 0))
        self.runner.call(self.link.start(), timeout=30)
        self.online = self.link.online
        Clock.schedule_once(lambda _dt: self._centre_loaded(), 0)  # once self.root is set
        centre_id = self.link.centre.get("id") or (self.options.config.centre.id if self.options.config else "")
        if self.options.mqtt_host and centre_id:
            self.mqtt = DeviceMqtt(centre_id, self.options.device_id, self.options.mqtt_secret or self.options.secret,
                                   self.options.mqtt_host, self.options.mqtt_port)
            self.mqtt.start()
        # the greeter's learned model trains for a few seconds: do it now, off the main thread, so
        # the first "Trợ lý" tap does not freeze the screen (the greeter built then finds it trained)
        threading.Thread(target=self._warm_greeter, name="luot-greeter-warm", daemon=True).start()
        return manager

    def _warm_greeter(self) -> None:
        from kiosk.greeter import Greeter

        try:
            Greeter(self.options.config or _config_from_centre(self.centre))
        except Exception:  # noqa: BLE001 - start_greeter builds it again and logs the cause
            log.debug("greeter warm-up failed", exc_info=True)

    def on_stop(self) -> None:
        try:
            stop_networking(self.mqtt, self.runner, self.link)
        finally:
            self.speaker.stop()

    def _resize(self, _window: Any, size: tuple[int, int]) -> None:
        width, height = size
        self.u = max(0.4, min(width / 720.0, height / 1280.0))

    def _link_changed(self, online: bool) -> None:
        self.online = online
        if online:
            self._centre_loaded()

    def _centre_loaded(self) -> None:
        centre = self.link.centre
        if not centre:
            self.message = "Chưa có thông tin trung tâm. Xin mời đến quầy hướng dẫn."
            return
        self.centre = centre
        self.centre_name = centre.get("name", "")
        self.centre_notice = centre.get("notice", "")
        self.results_group = centre.get("results_group") or ""
        self.priority_classes = list(centre.get("priority_classes", []))
        self._build_group_buttons()
        self.runner.submit(self.link.outbox.popularity(since_days(30)), self._popularity_loaded)

    def _popularity_loaded(self, counts: dict[str, int] | None, error: BaseException | None) -> None:
        groups = self.centre.get("groups", [])
        other = self.other_group_code()
        self.guided_codes = guided_order(counts or {}, groups, self.options.guided_first, other)

    def other_group_code(self) -> str | None:
        codes = [g["code"] for g in self.centre.get("groups", [])]
        return "khac" if "khac" in codes else (codes[-1] if codes else None)

    def group_by_code(self, code: str | None) -> dict[str, Any]:
        for group in self.centre.get("groups", []):
            if group["code"] == code:
                return group
        return {}

    def _build_group_buttons(self) -> None:
        grid = self.root.get_screen("group").ids.groups if self.root else None
        if grid is None:
            return
        grid.clear_widgets()
        for group in self.centre.get("groups", []):
            button = GroupButton(code=group["code"], letter=group["letter"], scale=1.0)
            button.bind(on_release=lambda b: self.choose_group(b.code))
            grid.add_widget(button)
        classes = self.root.get_screen("priority").ids.classes
        classes.clear_widgets()
        for item in [*self.priority_classes, {"code": None}]:
            button = CodeButton(code=item["code"] or "", kind="primary" if item["code"] else "light", scale=0.95)
            button.bind(on_release=lambda b: self.choose_priority(b.code or None))
            button.text = self.priority_name(item["code"], self.lang)
            self.bind(lang=lambda _a, lang, b=button, c=item["code"]: setattr(b, "text", self.priority_name(c, lang)))
            classes.add_widget(button)

    # ------------------------------------------------------------------ navigation
    def go(self, name: str) -> None:
        self.message = ""
        self.assist_message = ""
        if self.root.current != name:
            self.root.current = name
        self._arm_idle()

    def _touched(self, *_args: Any) -> None:
        self._arm_idle()

    def _arm_idle(self) -> None:
        if self._idle_event:
            self._idle_event.cancel()
        if self.root and self.root.current not in ("attract", "ticket", "guided_ticket"):
            self._idle_event = Clock.schedule_once(lambda _dt: self.restart(), self.options.idle_seconds)

    def restart(self) -> None:
        if self._ticket_event:
            self._ticket_event.cancel()
        self.chosen_group = {}
        self.chosen_priority = None
        self.chosen_procedure = None
        self.lang = "vi"
        self.greeter_reply = ""
        self.greeter_group = ""
        self.answer_choices = []
        self.go("attract")

    def start_ticket(self) -> None:
        self.go("language")

    def choose_language(self, lang: str) -> None:
        self.lang = lang
        self.go("group")

    def choose_group(self, code: str) -> None:
        self.chosen_group = self.group_by_code(code)
        self.chosen_priority = None
        self.chosen_procedure = None
        if self.priority_classes:
            self.go("priority")
        else:
            self.go_confirm()

    def choose_priority(self, code: str | None) -> None:
        self.chosen_priority = code
        self.go_confirm()

    def go_confirm(self) -> None:
        """The confirm screen, after asking the server what this ticket would be told: when the call
        is unlikely before closing, the citizen is told so before taking it (and offered tomorrow's
        appointment when the server has bookings)."""
        self.closing_warning, self.booking_available, self.booking_offer = "", False, {}
        self.go("confirm")
        if self.chosen_group:
            self.runner.submit(self.link.outlook(self.chosen_group["code"]),
                               lambda answer, _error: on_main_thread(self._outlook, answer))

    def _outlook(self, answer: dict[str, Any] | None) -> None:
        if not answer or not answer.get("after_closing"):
            return
        clock = str(answer.get("expected_at") or "")[11:16]  # local "HH:MM" of the expected call
        around_vi, around_en = (f" (dự kiến khoảng {clock})", f" (expected around {clock})") if clock else ("", "")
        self.closing_warning = self.t(
            self.lang, f"Có thể không kịp phục vụ trong giờ làm việc hôm nay{around_vi}. Ông/bà vẫn có thể lấy số.",
            f"You may not be served before closing today{around_en}. You can still take a ticket.")
        offer = answer.get("booking") or {}
        self.booking_offer = offer
        self.booking_available = bool(answer.get("booking_available")) and bool(offer.get("slot"))

    def book_tomorrow(self) -> None:
        """"Đặt lịch hẹn ngày mai": book the slot the outlook offered for the citizen standing here
        (no phone; the kiosk's own identity and daily cap), then show and print the slip."""
        if self.busy or not self.booking_offer.get("slot") or not self.chosen_group:
            return
        self.busy = True
        self.message = self.t(self.lang, "Đang đặt lịch hẹn…", "Booking…")
        self.runner.submit(self.link.book_appointment(self.chosen_group["code"], self.booking_offer["slot"]),
                           self._booked)

    def _booked(self, booking: dict[str, Any] | None, error: BaseException | None) -> None:
        self.busy = False
        if error is not None or booking is None:
            self.message = (self.t(self.lang, error.message, error.message_en) if isinstance(error, KioskError)
                            else self.t(self.lang, "Không đặt được lịch hẹn, xin thử lại.", "Could not book; please try again."))
            log.warning("kiosk appointment not booked: %s", error)
            return
        self.message = ""
        from kiosk.ticket_render import AppointmentSlip, qr_png

        group = self.group_by_code(booking.get("group")) or self.chosen_group
        slip = AppointmentSlip(
            group_code=booking["group"], group_name=group.get("name", ""), group_name_en=group.get("name_en", ""),
            letter=group.get("letter", ""), day=booking["day"], slot_time=booking.get("slot_time") or "",
            code_display=booking.get("code_display") or "", centre_name=self.centre.get("name", ""),
            tracking_url=booking["tracking_url"], checkin_from=booking.get("checkin_from") or "")
        self.appointment = {"day": slip.day_label, "day_en": slip.day_label_en, "time": slip.slot_time,
                            "code": slip.code_display, "group": f"{slip.letter} – {slip.group_name}",
                            "group_en": f"{slip.letter} – {slip.group_name_en or slip.group_name}",
                            "checkin_from": slip.checkin_from, "id": booking.get("id", "")}
        self.ticket_qr = texture_from_pil(qr_png(slip.tracking_url, box_size=8, border=2))
        self.printer_message = ""
        self.go("appointment")
        self._print_view(slip, f"appointment-{slip.day}-{slip.slot_time.replace(':', '')}-{slip.group_code}")
        if self._ticket_event:
            self._ticket_event.cancel()
        self._ticket_event = Clock.schedule_once(lambda _dt: self.restart(), self.options.ticket_seconds)

    def priority_name(self, code: str | None, lang: str) -> str:
        for p in self.priority_classes:
            if p["code"] == code:
                return self.t(lang, p["name"], p.get("name_en", ""))
        return self.t(lang, "Không ưu tiên", "No priority")

    # ------------------------------------------------------------------ guided flow
    # ------------------------------------------------------------------ bookings: check-in (docs/bookings.md)
    def start_check_in(self) -> None:
        """"Tôi có số hẹn / số trực tuyến": type the code on the keypad, or scan the QR (a USB
        scanner types the tracking URL and Enter into the focused field)."""
        self.checkin_code = ""
        self.checkin_result = ""
        self.go("check_in")
        screen = self.root.get_screen("check_in")
        self._build_code_keys(screen.ids.keypad)
        screen.ids.scan.focus = True

    def _build_code_keys(self, grid: Any) -> None:
        if grid.children:
            return
        from luot.protocol import BOOKING_CODE_ALPHABET

        for char in [*BOOKING_CODE_ALPHABET, "<"]:
            button = CodeButton(code=char, kind="light" if char != "<" else "secondary", scale=1.0)
            button.text = "Xoá" if char == "<" else char
            button.bind(on_release=lambda b: self.code_key(b.code))
            grid.add_widget(button)

    @staticmethod
    def code_display(code: str) -> str:
        """The code typed so far as two groups of four, blanks as '_': "K7QM _ _ _ _"."""
        padded = code.ljust(8, "_")[:8]
        return " ".join(padded[:4]) + "    " + " ".join(padded[4:])

    def code_key(self, char: str) -> None:
        if char == "<":
            self.checkin_code = self.checkin_code[:-1]
        elif len(self.checkin_code) < 8:
            self.checkin_code += char

    def check_in(self, typed: str | None = None) -> None:
        text = (typed if typed is not None else self.checkin_code).strip()
        if self.busy or not text:
            return
        self.busy = True
        self.message = "Đang xác nhận…"
        self.runner.submit(self.link.check_in(text), self._checked_in)

    def _checked_in(self, booking: dict[str, Any] | None, error: BaseException | None) -> None:
        self.busy = False
        screen = self.root.get_screen("check_in")
        screen.ids.scan.text = ""
        if error is not None or booking is None:
            self.message = error.message if isinstance(error, KioskError) else "Không xác nhận được, xin thử lại."
            self.checkin_code = ""
            return
        self.message = ""
        ticket = booking.get("ticket") or {}
        counters = " hoặc ".join(str(c) for c in ticket.get("counters", []))
        self.checkin_result = (f"[b]Đã xác nhận có mặt[/b]\nSố của ông/bà: [b]{ticket.get('number', booking.get('number'))}[/b]\n"
                               f"Mời ngồi chờ, quầy {counters} sẽ gọi.\n"
                               f"[size={int(28 * self.u)}]Checked in: number {ticket.get('number')}, "
                               f"counter {counters.replace(' hoặc ', ' or ')} will call you.[/size]")
        if self._ticket_event:
            self._ticket_event.cancel()
        self._ticket_event = Clock.schedule_once(lambda _dt: self.restart(), self.options.ticket_seconds)

    def start_guided(self) -> None:
        self.lang = "vi"
        self.go("guided_group")

    def guided_choose(self, code: str | None) -> None:
        self.chosen_group = self.group_by_code(code)
        self.chosen_priority = self.guided_priority()
        self.go("guided_confirm")

    def guided_priority(self) -> str | None:
        codes = [p["code"] for p in self.priority_classes]
        wanted = self.options.guided_priority
        if wanted in codes:
            return wanted
        if "elderly" in codes:
            return "elderly"
        return codes[0] if codes else None

    def call_staff(self, reason: str = "guided") -> None:
        """Ask a staff member to come: MQTT (QoS 1, own identity), HTTP when the broker is away."""
        self.assist_message = "Đang gọi cán bộ…"
        self.say("Đang gọi cán bộ hỗ trợ.")
        data = {"request_id": new_request_id(), "reason": reason}

        async def send() -> str:
            import asyncio

            if self.mqtt is not None:
                sent = await asyncio.get_running_loop().run_in_executor(None, self.mqtt.send, "assistance", data)
                if sent:
                    return "mqtt"
            await self.link.post_request("assistance", data)
            return "http"

        def done(via: str | None, error: BaseException | None) -> None:
            if error is not None:
                log.warning("assistance request failed: %s", error)
                self.assist_message = ASSIST_FAILED
            else:
                log.info("assistance requested via %s", via)
                self.assist_via = via or ""
                self.assist_message = ASSIST_SENT
            self.say(self.assist_message)

        self.runner.submit(send(), done)

    # ------------------------------------------------------------------ issuing
    def take_ticket(self, guided: bool = False) -> None:
        if self.busy or not self.chosen_group:
            return
        self.busy = True
        self.message = "Đang lấy số…"
        target = "guided_ticket" if guided else "ticket"
        procedure = self.chosen_procedure if not guided else None  # printed as the "Mang theo" checklist
        self.runner.submit(self.link.issue(self.chosen_group["code"], self.chosen_priority),
                           lambda ticket, error: self._issued(ticket, error, target, procedure))

    def _issued(self, ticket: IssuedTicket | None, error: BaseException | None, target: str,
                procedure: dict[str, Any] | None = None) -> None:
        self.busy = False
        if error is not None or ticket is None:
            message = error.message if isinstance(error, KioskError) else "Không lấy được số, xin thử lại."
            log.warning("ticket not issued: %s", error)
            self.message = message
            if target == "guided_ticket":
                self.say(message)
            return
        self.issued.append(ticket)
        self.ticket = ticket
        self.online = self.link.online
        from kiosk.ticket_render import qr_png

        self.ticket_qr = texture_from_pil(qr_png(ticket.tracking_url, box_size=8, border=2))
        self.printer_message = ""
        self.go(target)
        self._print(ticket, procedure)
        if self._ticket_event:
            self._ticket_event.cancel()
        self._ticket_event = Clock.schedule_once(lambda _dt: self.restart(), self.options.ticket_seconds)

    # ------------------------------------------------------------------ coming back for a result
    def _scanned_key(self, _window: Any, key: int, _scancode: int, codepoint: str | None, _modifiers: Any) -> bool:
        """A USB scanner is a keyboard: it types the QR's text and presses Enter. On the attract and
        return screens the keys gather in :attr:`scan_text`; the text is routed by its content
        (:meth:`route_scan`) once Enter was the last key for :data:`SCAN_GAP` seconds. Why wait: a
        receipt QR may hold one labelled item a line ("Mã hồ sơ: …" then "Ngày hẹn trả: …"), and
        the scanner types each line break as Enter, far faster than a hand; routed at the first
        Enter, a receipt would go out one line at a time. Elsewhere the keys are left alone (the
        greeter and the check-in screen have their own fields)."""
        if self.root is None or self.root.current not in ("attract", "return_scan"):
            return False
        if self._scan_event is not None:  # more keys after an Enter: the QR has more lines
            self._scan_event.cancel()
            self._scan_event = None
        if key in (13, 271):  # Enter, keypad Enter
            if self.scan_text.strip():  # routed even when full (the reader refuses it), never left hanging
                if len(self.scan_text) < 1000:
                    self.scan_text += "\n"
                self._scan_event = Clock.schedule_once(lambda _dt: self._scan_ended(), SCAN_GAP)
            return True
        if key == 8:
            self.scan_text = self.scan_text[:-1]
            return True
        if codepoint and len(self.scan_text) < 1000:
            self.scan_text += codepoint
            return True
        return False

    def _scan_ended(self) -> None:
        self._scan_event = None
        text, self.scan_text = self.scan_text.strip(), ""
        if text:
            self.route_scan(text)

    def route_scan(self, text: str) -> None:
        """A booking's QR or check-in code → check-in; anything else → the server's receipt reader
        (a results ticket, or its plain refusal) when this centre gives results tickets; otherwise
        a plain refusal here, on the screen the citizen is looking at."""
        from kiosk.scan_route import BOOKING, scan_kind

        if self.busy:
            return
        if scan_kind(text) == BOOKING:
            self.start_check_in()
            self.check_in(text)
        elif self.results_group:
            self.return_result(text)
        else:
            self.message = ("Mã vừa quét không phải số hẹn hay mã xác nhận. Xin chạm \"Tôi có số hẹn\" hoặc hỏi "
                            "quầy hướng dẫn.\n[size=%d]This code is not a booking. Touch \"I have an appointment\" "
                            "or ask at the help desk.[/size]" % int(24 * self.u))

    def start_return(self) -> None:
        self.scan_text = ""
        self.go("return_scan")
        self.root.get_screen("return_scan").ids.keyboard.text = ""

    def return_result(self, text: str) -> None:
        """The receipt's text (or a typed dossier code) to a results ticket with its appointment date."""
        if self.busy:
            return
        self.busy = True
        self.message = "Đang đọc biên nhận…"
        if self.root is not None and self.root.current != "return_scan":
            self.go("return_scan")
        self.runner.submit(self.link.issue_return(text), lambda ticket, error: self._issued(ticket, error, "ticket"))

    def ticket_speech(self, ticket: IssuedTicket | None) -> str:
        if ticket is None:
            return ""
        from luot.vinumber import read_number, read_ticket  # espeak-ng misreads digits: spell them

        counters = " hoặc ".join(read_number(c) for c in ticket.counters)
        words = f"Số của ông bà là {read_ticket(ticket.number)}. Mời ông bà ngồi chờ, quầy số {counters} sẽ gọi."
        if ticket.appointment:
            year, month, day = (int(part) for part in ticket.appointment.split("-"))
            words += f" Ngày hẹn trả kết quả: ngày {read_number(day)} tháng {read_number(month)} năm {read_number(year)}."
        return words + (" Đang mất kết nối, vé vẫn hợp lệ." if ticket.offline else "")

    def ticket_view(self, ticket: IssuedTicket, procedure: dict[str, Any] | None = None):
        """The printed ticket; ``procedure`` (the greeter's, for this ticket's group) adds its checklist."""
        from kiosk.ticket_render import TicketView

        if procedure is not None and procedure.get("group") != ticket.group:
            procedure = None

        wait = ticket.wait_minutes
        return TicketView(
            number=ticket.number, group_code=ticket.group, group_name=ticket.group_name,
            group_name_en=ticket.group_name_en, letter=ticket.letter, counters=ticket.counters,
            people_ahead=ticket.ahead or 0, estimated_wait_minutes=None if wait is None else int(round(wait)),
            issued_at=ticket.issued_at, priority=ticket.priority, centre_name=self.centre.get("name", ""),
            tracking_url=ticket.tracking_url, offline=ticket.offline, timezone=self.options.timezone,
            procedure=procedure["name"] if procedure else "", checklist=tuple(procedure["documents"]) if procedure else (),
            returns_dossier=ticket.returns_dossier, appointment=ticket.appointment,
            wait_text=ticket.wait_text, wait_text_en=ticket.wait_text_en, after_closing=ticket.after_closing)

    def _print(self, ticket: IssuedTicket, procedure: dict[str, Any] | None = None) -> None:
        """Save a PNG of the ticket and send it to the printer, off the main thread."""
        stamp = ticket.issued_at.strftime("%Y%m%d-%H%M%S")
        self._print_view(self.ticket_view(ticket, procedure), f"{stamp}-{ticket.group}-{ticket.number}")

    def _print_view(self, view: Any, name: str) -> None:
        """Save ``view`` (a TicketView or an AppointmentSlip) as ``<data>/tickets/<name>.png`` and
        send it to the printer, off the main thread; a printer problem is shown, never raised."""
        self.printed_view = view  # what was printed last (a ticket's checklist too), for the staff and tests
        out_dir = self.options.data_dir / "tickets"

        def work() -> None:
            from kiosk.ticket_render import PrinterError, print_ticket, render_png

            try:
                out_dir.mkdir(parents=True, exist_ok=True)
                render_png(view, self.options.printer_width).save(out_dir / f"{name}.png")
                print_ticket(view, self.options.printer, profile=self.options.printer_profile,
                             width_px=self.options.printer_width)
            except PrinterError as error:
                log.warning("printer: %s (%s)", error, error.detail)
                message = str(error)
                Clock.schedule_once(lambda _dt: setattr(self, "printer_message", message), 0)
            except Exception as error:  # noqa: BLE001 - the ticket is issued; printing is best effort
                log.exception("ticket image or print failed")
                text = f"Không in được vé ({type(error).__name__}). Vé trên màn hình vẫn hợp lệ."
                Clock.schedule_once(lambda _dt: setattr(self, "printer_message", text), 0)

        threading.Thread(target=work, name="luot-kiosk-print", daemon=True).start()

    # ------------------------------------------------------------------ greeter
    def start_greeter(self) -> None:
        self.lang = "vi"
        if self.greeter is None:
            self._make_greeter()
        self.suggestions = self.greeter.suggestions()[:4] if self.greeter else []
        self.greeter_reply = "Xin chào! Tôi là trợ lý của trung tâm. Ông/bà cần làm thủ tục gì? Hãy gõ hoặc chọn bên dưới."
        self.greeter_group = ""
        self.go("greeter")
        screen = self.root.get_screen("greeter")
        screen.ids.keyboard.text = ""
        self.say(self.greeter_reply)

    def _make_greeter(self) -> None:
        from kiosk.greeter import Greeter

        try:
            self.greeter = Greeter(self.options.config or _config_from_centre(self.centre))
        except Exception:  # noqa: BLE001
            log.exception("greeter unavailable")
            self.greeter = None

    def greet_again(self) -> None:
        self.say(self.greeter_reply)

    def ask(self, text: str) -> None:
        if not text.strip():
            self.say(self.greeter_reply)
            return
        if self.greeter is None:
            self._make_greeter()
        if self.greeter is None:
            self.greeter_reply = "Xin lỗi, trợ lý đang bận. Xin mời đến quầy hướng dẫn."
            return
        answer = self.greeter.understand(text)
        self.greeter_reply = answer.reply_vi
        self.greeter_group = answer.group or ""
        if answer.question:
            self.suggestions = list(answer.suggestions)[:4]
        if answer.group or answer.procedure or answer.outside or answer.choices:
            self.show_answer(answer)
        self.say(answer.reply_vi)

    def show_answer(self, answer: Any) -> None:
        """The answer screen: large type for people a metre away, what to bring as a checklist."""
        self.greeter_group = answer.group or ""
        self.answer_choices = list(answer.choices)
        # what the ticket prints under "Mang theo" if the citizen takes this group's ticket from here
        self.chosen_procedure = ({"name": answer.procedure["name"], "documents": list(answer.documents),
                                  "group": answer.group} if answer.procedure and answer.group else None)
        if answer.outside:
            self.answer_title = f"[b]{answer.outside['name']}[/b]\nkhông làm tại trung tâm này"
            self.answer_checklist = ""
            self.answer_details = ""
            self.answer_where = f"Xin mời đến: {answer.outside['where']}"
        elif answer.procedure:
            self.answer_title = f"[b]{answer.procedure['name']}[/b]"
            self.answer_checklist = "\n".join(f"{i}. {d}" for i, d in enumerate(answer.documents, start=1))
            self.answer_details = f"Thời hạn: {answer.legal_time}\nLệ phí: {answer.fee or 'hỏi cán bộ'}"
            self.answer_where = self._where(answer)
        else:
            group = self.group_by_code(answer.group) if answer.group else {}
            self.answer_title = f"[b]{group.get('name', '')}[/b]" if group else answer.reply_vi
            self.answer_checklist = "\n".join(f"{i}. {d}" for i, d in enumerate(answer.documents, start=1))
            self.answer_details = ""
            self.answer_where = self._where(answer) if answer.group else ""
            if answer.question and answer.choices:
                self.answer_title = answer.reply_vi.split(" Mời chọn")[0]
        self.go("greeter_answer")

    def _where(self, answer: Any) -> str:
        group = self.group_by_code(answer.group)
        counters = " hoặc ".join(answer.counters)
        return f"Lấy số nhóm {group.get('letter', '')} – {group.get('name', '')}" + (f"\n{counters}" if counters else "")

    def pick_choice(self, index: int) -> None:
        """One big button of the answer screen: a procedure's full answer, or a group's ticket."""
        if index >= len(self.answer_choices) or self.greeter is None:
            return
        choice = self.answer_choices[index]
        if choice["kind"] == "group":
            self.greeter_group = choice["id"]
            self.greeter_take()
            return
        answer = self.greeter.explain(choice["id"])
        self.greeter_reply = answer.reply_vi
        self.show_answer(answer)
        self.say(answer.reply_vi)

    def greeter_take(self) -> None:
        if not self.greeter_group:
            return
        self.chosen_group = self.group_by_code(self.greeter_group)
        self.chosen_priority = None
        self.take_ticket()

    # ------------------------------------------------------------------ voice
    def say(self, text: str) -> None:
        self.speaker.say(text)


def appointment_text(iso: str) -> str:
    """'2026-12-20' as the date a Vietnamese citizen reads: '20/12/2026'."""
    year, month, day = iso.split("-")
    return f"{day}/{month}/{year}"


def guided_order(counts: dict[str, int], groups: list[dict[str, Any]], first: Sequence[str], other: str | None,
                 slots: int = 8) -> list[str]:
    """Every group for the guided screen (up to ``slots``): ``first`` (what elderly and disabled visitors
    need, e.g. Bảo trợ xã hội), then the most used, then the guidance group last."""
    codes = {g["code"] for g in groups}
    pinned = [c for c in first if c in codes and c != other]
    rest = [c for c in popular_groups(counts, groups, len(groups), other) if c not in pinned]
    ordered = pinned + rest
    if other in codes:
        ordered = ordered[:slots - 1] + [other]
    return ordered[:slots]


def _config_from_centre(centre: dict[str, Any]):
    """A CentreConfig rebuilt from ``GET /api/v1/centre`` so the greeter knows this centre's groups."""
    from luot.config import parse_config

    groups = [{k: g[k] for k in ("code", "letter", "name", "name_en", "description", "service_minutes",
                                 "legal_days", "documents") if k in g} | {"first_number": 1 + 1000 * i}
              for i, g in enumerate(centre.get("groups", []))]  # numbering is the server's business
    counters = [{"number": c["number"], "name": c.get("name", ""), "groups": c["groups"]} for c in centre.get("counters", [])]
    return parse_config({"centre": {"id": centre.get("id", "centre"), "name": centre.get("name", "Trung tâm")},
                         "groups": groups, "counters": counters,
                         "priority_classes": centre.get("priority_classes", [])}, "centre description")


class KioskScreenFactory:
    """Screen classes by name; their layout is in kiosk_screens.kv (``<AttractScreen>`` ...)."""

    @staticmethod
    def make(name: str) -> Screen:
        from kivy.factory import Factory

        class_name = "".join(part.title() for part in name.split("_")) + "Screen"
        return getattr(Factory, class_name)(name=name)


for _name in ("Attract", "Language", "Group", "Priority", "Confirm", "Ticket", "GuidedGroup", "GuidedConfirm",
              "GuidedTicket", "Greeter", "GreeterAnswer", "CheckIn", "ReturnScan", "Appointment"):
    globals()[f"{_name}Screen"] = type(f"{_name}Screen", (KioskScreen,), {})
    from kivy.factory import Factory as _F

    _F.register(f"{_name}Screen", cls=globals()[f"{_name}Screen"])
