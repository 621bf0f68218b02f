"""The thin Kivy view of the hall and counter displays (layout in display/screens.kv).

Everything shown comes from :class:`display.model.DisplayModel`; this module only copies the model
into widget properties. MQTT arrives on paho's thread, is folded into the model there
(under the controller's lock, so a call is spoken without waiting for a frame) and the redraw hops
to Kivy's main thread with ``Clock.schedule_once`` (widgets are touched only there). The clock is computed on every tick in
the centre's time zone; the newest call flashes for a few seconds after a live call.

Import this module only after the Kivy environment is set (``prepare_kivy_env``): Kivy reads its
environment variables at import time.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from pathlib import Path
from typing import Any, Callable

from kivy.app import App
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.lang import Builder
from kivy.core.text import Label as CoreLabel
from kivy.properties import BooleanProperty, ListProperty, NumericProperty, StringProperty
from kivy.uix.label import Label
from kivy.uix.widget import Widget

from display.controller import DisplayController
from display.model import Call, DisplayModel, Update, notice_pages

log = logging.getLogger(__name__)

KV_FILE = Path(__file__).with_name("screens.kv")
TICK_SECONDS = 0.25
FLASH_PERIOD = 0.5
NOTICE_PAGE_SECONDS = 8.0
"""How long each line of the notice stays: time to read a line of about 70 letters twice."""
CALL_ROWS = 5


class Scaled(Widget):
    u = NumericProperty(10.0)
    """1 % of the screen height, in pixels: every size in screens.kv is a multiple of it."""


class StatusBadge(Label):
    u = NumericProperty(10.0)


class NoticePager(Scaled):
    """The centre's notice at the bottom of the hall: one still line at a time, turned every
    NOTICE_PAGE_SECONDS (see :func:`display.model.notice_pages` for why it does not scroll)."""

    texts = ListProperty([])
    """The notice in Vietnamese, then English (empty ones left out)."""
    page = StringProperty("")
    font_size = NumericProperty(40.0)
    _pages: list[str] = []
    _index = 0

    def on_texts(self, *_: Any) -> None:
        self.paginate()

    def on_size(self, *_: Any) -> None:
        self.paginate()

    def on_font_size(self, *_: Any) -> None:
        self.paginate()

    def paginate(self) -> None:
        measure = CoreLabel(font_size=self.font_size, bold=True)
        room = self.width - 4 * self.u
        pages = notice_pages(list(self.texts), lambda line: measure.get_extents(line)[0] <= room)
        if pages != self._pages:
            self._pages, self._index = pages, 0
        self.page = self._pages[self._index] if self._pages else ""

    def turn(self, _dt: float = 0.0) -> None:
        """The next page; nothing (no redraw) when the notice fits on one."""
        if len(self._pages) > 1:
            self._index = (self._index + 1) % len(self._pages)
            self.page = self._pages[self._index]


class CounterTile(Scaled):
    counter = NumericProperty(0)
    title = StringProperty("")
    number_text = StringProperty("")
    status_text = StringProperty("")
    status = StringProperty("closed")
    highlight = BooleanProperty(False)


class CallRow(Scaled):
    number_text = StringProperty("")
    counter_text = StringProperty("")


class GroupRow(Scaled):
    code = StringProperty("")
    name = StringProperty("")
    waiting_text = StringProperty("")


class NewestCall(Scaled):
    number_text = StringProperty("")
    counter_text = StringProperty("")
    event_id = StringProperty("")
    flash_on = BooleanProperty(False)


def _counter_cols(count: int) -> int:
    if count <= 3:
        return max(count, 1)
    if count <= 6:
        return 3
    if count <= 12:
        return 4
    return 5


def _badge_text(model: DisplayModel) -> str:
    badge = model.badge
    return f"{badge[0]}  ·  {badge[1]}" if badge else ""


class HallScreen(Scaled):
    centre_name = StringProperty("")
    centre_name_en = StringProperty("")
    clock_text = StringProperty("")
    date_text = StringProperty("")
    counter_cols = NumericProperty(3)
    counter_rows = NumericProperty(1)
    no_counter_text = StringProperty("")
    waiting_total_text = StringProperty("")
    notice_text = StringProperty("")
    badge_text = StringProperty("")

    def on_size(self, *_: Any) -> None:
        self.u = self.height / 100.0

    def show(self, model: DisplayModel) -> None:
        self.centre_name = model.config.centre.name
        self.centre_name_en = model.config.centre.name_en
        self._show_counters(model)
        self._show_calls(model)
        self._show_groups(model)
        notice = [t for t in (model.notice_vi, model.notice_en) if t]
        self.notice_text = "     ·     ".join(notice)
        if list(self.ids.notice.texts) != notice:
            self.ids.notice.texts = notice
        self.badge_text = _badge_text(model)

    def _show_counters(self, model: DisplayModel) -> None:
        grid = self.ids.counters
        views = model.open_counters
        tiles = {tile.counter: tile for tile in grid.children}
        if [v.counter for v in views] != sorted(tiles):
            grid.clear_widgets()
            tiles = {}
            for view in views:
                tile = CounterTile(counter=view.counter, u=self.u)
                self.bind(u=tile.setter("u"))
                grid.add_widget(tile)
                tiles[view.counter] = tile
        self.counter_cols = _counter_cols(len(views))
        self.counter_rows = math.ceil(len(views) / self.counter_cols) if views else 1
        newest = model.newest_call
        for view in views:
            tile = tiles[view.counter]
            tile.title = f"QUẦY {view.counter}"
            tile.number_text = str(view.number) if view.number is not None and view.status in ("calling", "serving") else "—"
            tile.status_text = f"{view.status_vi} · {view.status_en}"
            tile.status = view.status
            tile.highlight = bool(newest and newest.counter == view.counter and newest.number == view.number
                                  and view.status == "calling")
        self.no_counter_text = "" if views else "Chưa có quầy nào mở\n[size=%d]No counter open yet[/size]" % int(self.u * 2.6)

    def _show_calls(self, model: DisplayModel) -> None:
        newest, rows = self.ids.newest, self.ids.calls
        first = model.newest_call
        newest.number_text = str(first.number) if first else ""
        newest.counter_text = str(first.counter) if first else ""
        newest.event_id = first.event_id if first else ""
        if not rows.children:
            for _ in range(CALL_ROWS):
                row = CallRow(u=self.u)
                self.bind(u=row.setter("u"))
                rows.add_widget(row)
        previous = model.recent_calls[1:1 + CALL_ROWS]
        for index, row in enumerate(reversed(rows.children)):  # children are stored last-first
            call: Call | None = previous[index] if index < len(previous) else None
            row.number_text = str(call.number) if call else ""
            row.counter_text = str(call.counter) if call else ""

    def _show_groups(self, model: DisplayModel) -> None:
        grid = self.ids.groups
        if not grid.children:
            for group in model.groups.values():
                row = GroupRow(code=group.code, u=self.u)
                self.bind(u=row.setter("u"))
                grid.add_widget(row)
        for row in grid.children:
            group = model.groups[row.code]
            row.name = group.name
            row.waiting_text = str(group.waiting)
        self.waiting_total_text = f"{model.waiting_total} người" if model.has_state else ""

    def tick(self, model: DisplayModel, now_monotonic: float) -> None:
        self.clock_text, self.date_text = model.clock_text()
        flashing = model.flashing(now_monotonic)
        self.ids.newest.flash_on = flashing and int(now_monotonic / FLASH_PERIOD) % 2 == 0


class CounterScreen(Scaled):
    title = StringProperty("")
    subtitle = StringProperty("")
    number_text = StringProperty("")
    status_text = StringProperty("")
    status = StringProperty("closed")
    clock_text = StringProperty("")
    badge_text = StringProperty("")

    def on_size(self, *_: Any) -> None:
        self.u = min(self.height, self.width) / 100.0

    def show(self, model: DisplayModel) -> None:
        view = model.own_counter
        assert view is not None
        self.title = f"QUẦY {view.counter}"
        groups = [model.group_name(code) for code in _counter_groups(model, view.counter)]
        self.subtitle = ", ".join(groups)
        self.status = view.status
        showing = view.number is not None and view.status in ("calling", "serving")
        self.number_text = str(view.number) if showing else "—"
        if view.status == "calling":
            self.status_text = "Mời công dân  ·  Now calling"
        elif showing:
            self.status_text = "Đang phục vụ  ·  Now serving"
        else:
            self.status_text = f"{view.status_vi}  ·  {view.status_en}"
        self.badge_text = _badge_text(model)

    def tick(self, model: DisplayModel, now_monotonic: float) -> None:
        self.clock_text = model.clock_text()[0]


def _counter_groups(model: DisplayModel, number: int) -> list[str]:
    try:
        return list(model.config.counter(number).groups)
    except KeyError:
        return []


def describe(root: Widget) -> dict[str, Any]:
    """What is on the screen, read from the widget tree (for tests and the benchmark)."""
    tiles = {int(w.counter): {"number": w.number_text, "status": w.status, "title": w.title, "highlight": w.highlight}
             for w in root.walk() if isinstance(w, CounterTile)}
    rows = [(w.number_text, w.counter_text) for w in root.walk() if isinstance(w, CallRow) and w.number_text]
    newest = next((w for w in root.walk() if isinstance(w, NewestCall)), None)
    groups = {w.code: w.waiting_text for w in root.walk() if isinstance(w, GroupRow)}
    badge = next((w for w in root.walk() if isinstance(w, StatusBadge)), None)
    texts = [w.text for w in root.walk() if isinstance(w, Label) and w.text]
    result: dict[str, Any] = {
        "mode": "counter" if isinstance(root, CounterScreen) else "hall",
        "tiles": tiles,
        "previous_calls": rows,
        "newest": {"number": newest.number_text, "counter": newest.counter_text, "flash": newest.flash_on,
                   "event_id": newest.event_id} if newest else None,
        "groups": groups,
        "badge": badge.text if badge is not None and badge.opacity > 0 else "",
        "clock": getattr(root, "clock_text", ""),
        "notice": getattr(root, "notice_text", ""),
        "notice_page": root.ids.notice.page if isinstance(root, HallScreen) else "",
        "texts": texts,
        "size": list(Window.size),
    }
    if isinstance(root, CounterScreen):
        result["number"] = root.number_text
        result["title"] = root.title
    return result


class LuotDisplayApp(App):
    """Hall display (``counter=None``) or one counter's display, fed by a DisplayController.

    Named so that Kivy's automatic kv loading (``<name>.kv`` beside the module) finds nothing:
    screens.kv is loaded exactly once, explicitly.
    """

    def __init__(self, model: DisplayModel, announcer: Any = None, *,
                 start_client: Callable[["LuotDisplayApp"], Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model = model
        self.title = f"Luot – {model.config.centre.name}"
        self.controller = DisplayController(model, announcer, on_change=self._on_change)
        self.announcer = announcer
        self._start_client = start_client
        self.client: Any = None
        self.view_updates: list[tuple[float, Update]] = []
        """(monotonic time the widgets were updated, what changed): for tests and the benchmark."""
        self._pending: list[Update] = []
        self._pending_lock = threading.Lock()

    def build(self) -> Widget:
        if str(KV_FILE) not in Builder.files:
            Builder.load_file(str(KV_FILE))
        self.root_widget = CounterScreen() if self.model.counter_mode is not None else HallScreen()
        with self.controller.lock:
            self.root_widget.show(self.model)
            self.root_widget.tick(self.model, time.monotonic())
        Clock.schedule_interval(self._tick, TICK_SECONDS)
        if isinstance(self.root_widget, HallScreen):
            Clock.schedule_interval(self.root_widget.ids.notice.turn, NOTICE_PAGE_SECONDS)
        return self.root_widget

    def on_start(self) -> None:
        if self._start_client is not None:
            self.client = self._start_client(self)

    def on_stop(self) -> None:
        if self.client is not None:
            self.client.stop()
        if self.announcer is not None:
            self.announcer.close(timeout=5)

    # -- paho's thread: fold the message in (and speak) now, redraw on the main thread ----------
    def post_message(self, topic: str, payload: bytes, retained: bool) -> None:
        self.controller.handle(topic, payload, retained)

    def post_status(self, connected: bool) -> None:
        self.controller.connection(connected)

    def _on_change(self, update: Update) -> None:
        # Updates arriving within one frame are drawn once; widgets are touched only in _redraw
        # (main thread). Scheduling on Kivy's Clock is thread-safe.
        with self._pending_lock:
            self._pending.append(update)
        Clock.schedule_once(self._redraw, -1)

    # -- main thread ------------------------------------------------------------------------------
    def _redraw(self, _dt: float = 0.0) -> None:
        root = getattr(self, "root_widget", None)
        with self._pending_lock:
            updates, self._pending = self._pending, []
        if root is None or not updates:
            return
        with self.controller.lock:
            root.show(self.model)
            if any(update.announce for update in updates):
                root.tick(self.model, time.monotonic())  # start the flash now, not at the next tick
        now = time.monotonic()
        self.view_updates.extend((now, update) for update in updates)
        del self.view_updates[:-1000]

    def _tick(self, _dt: float) -> None:
        with self.controller.lock:
            self.root_widget.tick(self.model, time.monotonic())
