"""Widgets shared by the kiosk and the pad: big buttons, the greeter's face, the on-screen keyboard.

Styles live in ``common.kv``; this module holds only behaviour and drawing logic.
"""

from __future__ import annotations

import math
import unicodedata
from io import BytesIO
from pathlib import Path

from kivy.clock import Clock
from kivy.core.image import Image as CoreImage
from kivy.graphics import Color, Ellipse, Line, Rectangle, RoundedRectangle
from kivy.lang import Builder
from kivy.properties import BooleanProperty, ListProperty, NumericProperty, ObjectProperty, OptionProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.button import Button
from kivy.uix.widget import Widget

HERE = Path(__file__).resolve().parent


def load_kv(name: str) -> None:
    """Load a kv file of this package exactly once (loading twice applies every rule twice)."""
    path = str(HERE / name)
    if path not in Builder.files:
        Builder.load_file(path)


PALETTE = {
    # kind: (background, pressed background, text). Every pair has a contrast ratio >= 4.5 (WCAG AA).
    "primary": ((0.08, 0.40, 0.75, 1), (0.05, 0.28, 0.55, 1), (1, 1, 1, 1)),
    "secondary": ((0.20, 0.25, 0.30, 1), (0.12, 0.15, 0.18, 1), (1, 1, 1, 1)),
    "guided": ((1.0, 0.84, 0.0, 1), (0.85, 0.70, 0.0, 1), (0.0, 0.0, 0.0, 1)),
    "help": ((0.72, 0.11, 0.11, 1), (0.50, 0.07, 0.07, 1), (1, 1, 1, 1)),
    "key": ((0.93, 0.94, 0.95, 1), (0.70, 0.72, 0.74, 1), (0.0, 0.0, 0.0, 1)),
    "vowel": ((0.70, 0.90, 0.99, 1), (0.50, 0.70, 0.80, 1), (0.0, 0.0, 0.0, 1)),
    "tone": ((1.0, 0.88, 0.51, 1), (0.85, 0.72, 0.35, 1), (0.0, 0.0, 0.0, 1)),
    "action": ((0.33, 0.43, 0.48, 1), (0.22, 0.30, 0.34, 1), (1, 1, 1, 1)),
    "light": ((1, 1, 1, 1), (0.85, 0.85, 0.85, 1), (0.04, 0.09, 0.17, 1)),
}


class BigButton(Button):
    """A large touch target with wrapped, centred text; ``kind`` picks its colours (PALETTE)."""

    kind = StringProperty("primary")
    bg = ListProperty(PALETTE["primary"][0])
    bg_down = ListProperty(PALETTE["primary"][1])
    fg = ListProperty(PALETTE["primary"][2])
    scale = NumericProperty(1.0)

    def on_kind(self, _widget, kind: str) -> None:
        self.bg, self.bg_down, self.fg = PALETTE.get(kind, PALETTE["primary"])


class CodeButton(BigButton):
    """A button standing for one code (a group, a priority class)."""

    code = StringProperty("")


class GroupButton(CodeButton):
    """A group on the ordinary group screen; its text (letter + name) comes from common rules."""

    letter = StringProperty("")


def texture_from_pil(image) -> object:  # PIL.Image -> kivy Texture
    data = BytesIO()
    image.convert("RGB").save(data, "PNG")
    data.seek(0)
    return CoreImage(data, ext="png").texture


class Face(Widget):
    """A friendly robot face drawn with canvas instructions: it blinks now and then and moves its
    mouth while it speaks (``speaking``). Drawing is redone on size changes and animation ticks."""

    __events__ = ("on_press",)
    speaking = BooleanProperty(False)
    face_color = ListProperty([0.99, 0.83, 0.25, 1])
    blink = NumericProperty(0.0)  # 0 open .. 1 closed
    mouth = NumericProperty(0.25)  # 0 closed .. 1 wide open

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._t = 0.0
        self._next_blink = 2.5
        self.bind(pos=self._draw, size=self._draw, blink=self._draw, mouth=self._draw, speaking=self._draw)
        self._tick = Clock.schedule_interval(self._animate, 1 / 20)

    def on_parent(self, _widget, parent) -> None:
        if parent is None and self._tick:
            self._tick.cancel()

    def _animate(self, dt: float) -> None:
        self._t += dt
        # blink: close over 0.08 s, open over 0.12 s, every few seconds
        phase = self._t - self._next_blink
        if 0 <= phase < 0.2:
            self.blink = 1.0 - abs(phase - 0.08) / 0.12 if phase > 0.08 else phase / 0.08
        elif phase >= 0.2:
            self.blink = 0.0
            self._next_blink = self._t + 2.5 + (self._t * 7.3) % 2.0
        self.mouth = (0.35 + 0.65 * abs(math.sin(self._t * 9.0))) if self.speaking else 0.12

    def _draw(self, *_args) -> None:
        self.canvas.clear()
        size = min(self.width, self.height)
        cx, cy = self.center
        r = size / 2
        with self.canvas:
            Color(0.15, 0.35, 0.75, 1)  # antenna
            Line(points=[cx, cy + r * 0.82, cx, cy + r * 0.98], width=max(2, r * 0.04))
            Ellipse(pos=(cx - r * 0.08, cy + r * 0.92), size=(r * 0.16, r * 0.16))
            Color(*self.face_color)
            RoundedRectangle(pos=(cx - r * 0.9, cy - r * 0.78), size=(r * 1.8, r * 1.6), radius=[r * 0.45])
            Color(0.08, 0.08, 0.12, 1)  # eyes
            eye_h = r * 0.32 * (1.0 - 0.9 * self.blink)
            for side in (-1, 1):
                ex = cx + side * r * 0.38
                Ellipse(pos=(ex - r * 0.14, cy + r * 0.12 - eye_h / 2 + r * 0.05), size=(r * 0.28, max(2, eye_h)))
            Color(0.95, 0.45, 0.45, 0.6)  # cheeks
            for side in (-1, 1):
                Ellipse(pos=(cx + side * r * 0.62 - r * 0.1, cy - r * 0.2), size=(r * 0.2, r * 0.12))
            Color(0.08, 0.08, 0.12, 1)  # mouth: a smile, open while speaking
            mw, mh = r * 0.7, r * 0.08 + r * 0.3 * self.mouth
            if self.speaking:
                RoundedRectangle(pos=(cx - mw / 2, cy - r * 0.45 - mh / 2), size=(mw, mh), radius=[mh / 2])
            else:
                Line(ellipse=(cx - mw / 2, cy - r * 0.62, mw, r * 0.4, 115, 245), width=max(2, r * 0.04))

    def on_touch_down(self, touch):
        if self.collide_point(*touch.pos):
            self.dispatch("on_press")
            return True
        return super().on_touch_down(touch)

    def on_press(self) -> None:
        pass


TONES = {"sắc": "\u0301", "huyền": "\u0300", "hỏi": "\u0309", "ngã": "\u0303", "nặng": "\u0323"}
SHAPES = {"ă": "ă", "â": "â", "đ": "đ", "ê": "ê", "ô": "ô", "ơ": "ơ", "ư": "ư"}
ROWS = ["qwertyuiop", "asdfghjkl", "zxcvbnm"]
CODE_ROWS = ["1234567890", "QWERTYUIOP", "ASDFGHJKL.", "ZXCVBNM-"]
"""The code keyboard: what a dossier code (``000.00.12.H29-261206-0007``) is made of."""


def add_tone(text: str, mark: str) -> str:
    """Put a tone mark on the last vowel of the word being typed, replacing any tone it had (a
    simple rule, good enough: the greeter also understands text without any marks)."""
    tones = set(TONES.values())
    chars = list(unicodedata.normalize("NFC", text))
    for index in range(len(chars) - 1, -1, -1):
        if chars[index] == " ":
            break
        base = "".join(c for c in unicodedata.normalize("NFD", chars[index]) if c not in tones)
        if unicodedata.normalize("NFC", base).lower() in "aăâeêioôơuưy":
            chars[index] = unicodedata.normalize("NFC", base + mark)
            return "".join(chars)
    return text


class VietKeyboard(BoxLayout):
    """An on-screen keyboard: Latin letters, a row of Vietnamese letters (ă â đ ê ô ơ ư), a row of
    tone marks applied to the last vowel, space, delete and clear. Typing without any marks is fine:
    the greeter understands it."""

    text = StringProperty("")
    target = ObjectProperty(None, allownone=True)
    key_height = NumericProperty(60)
    mode = OptionProperty("vietnamese", options=["vietnamese", "code"])
    """"code": digits, capital letters, '.' and '-' (a dossier code on the results screen), no tones."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.orientation = "vertical"
        Clock.schedule_once(lambda _dt: self._build(), 0)

    def _row(self, keys: list[tuple[str, str]], kind: str = "key") -> BoxLayout:
        row = BoxLayout(spacing=6)
        for label, value in keys:
            button = BigButton(text=label, kind=kind, scale=0.8)
            button.key_value = value
            button.bind(on_release=self._press)
            row.add_widget(button)
        return row

    def _build(self) -> None:
        self.clear_widgets()
        self.spacing = 6
        if self.mode == "code":
            for letters in CODE_ROWS:
                self.add_widget(self._row([(c, c) for c in letters]))
            self.add_widget(self._row([("Xoá hết", "clear"), ("Xoá lùi", "back")], "action"))
            return
        self.add_widget(self._row([(t, "tone:" + m) for t, m in
                                   [("´ sắc", TONES["sắc"]), ("` huyền", TONES["huyền"]), ("? hỏi", TONES["hỏi"]),
                                    ("~ ngã", TONES["ngã"]), (". nặng", TONES["nặng"])]], "tone"))
        self.add_widget(self._row([(c, c) for c in SHAPES], "vowel"))
        for letters in ROWS:
            self.add_widget(self._row([(c, c) for c in letters]))
        self.add_widget(self._row([("Xoá hết", "clear"), ("Dấu cách", " "), ("Xoá lùi", "back")], "action"))

    def _press(self, button: BigButton) -> None:
        value = button.key_value
        if value == "back":
            self.text = unicodedata.normalize("NFC", self.text)[:-1]
        elif value == "clear":
            self.text = ""
        elif value.startswith("tone:"):
            self.text = add_tone(self.text, value[5:])
        else:
            self.text = unicodedata.normalize("NFC", self.text + value)


class MoodFace(ButtonBehavior, Widget):
    """One of the pad's faces on the five-level scale, drawn with canvas instructions: 5 a broad
    smile on green, 4 a smile on light green, 3 a straight mouth on yellow, 2 a frown on orange,
    1 a deep frown on red (the four-face pad shows levels 5 to 2). Colour is never the only cue:
    each face also has its mouth and its words."""

    mood = NumericProperty(5)
    COLOURS = {5: (0.18, 0.62, 0.25, 1), 4: (0.55, 0.78, 0.29, 1), 3: (1.0, 0.80, 0.18, 1),
               2: (0.93, 0.42, 0.16, 1), 1: (0.80, 0.16, 0.14, 1)}

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.bind(pos=self._draw, size=self._draw, mood=self._draw, state=self._draw)

    def _draw(self, *_args) -> None:
        self.canvas.clear()
        r = min(self.width, self.height) / 2 * (0.92 if self.state == "down" else 1.0)
        cx, cy = self.center
        ink = (0.05, 0.05, 0.05, 1)
        mood = int(self.mood)
        with self.canvas:
            Color(*self.COLOURS.get(mood, (0.5, 0.5, 0.5, 1)))
            Ellipse(pos=(cx - r, cy - r), size=(2 * r, 2 * r))
            Color(*ink)
            for side in (-1, 1):
                Ellipse(pos=(cx + side * r * 0.35 - r * 0.1, cy + r * 0.2), size=(r * 0.2, r * 0.26))
            w = max(3, r * 0.09)
            if mood >= 4:
                depth = 0.5 if mood == 5 else 0.32
                Line(ellipse=(cx - r * 0.5, cy - r * 0.25 - r * depth, r, r * depth * 2, 100, 260), width=w)
            elif mood == 3:
                Line(points=[cx - r * 0.4, cy - r * 0.38, cx + r * 0.4, cy - r * 0.38], width=w)
            else:
                depth = 0.3 if mood == 2 else 0.45
                Line(ellipse=(cx - r * 0.45, cy - r * 0.3 - r * depth * 2, r * 0.9, r * depth * 2, -70, 70), width=w)


class Rect(Widget):
    """A plain coloured block (kv sets ``bg``)."""

    bg = ListProperty([0, 0, 0, 1])


__all__ = ["BigButton", "GroupButton", "Face", "VietKeyboard", "load_kv", "texture_from_pil", "add_tone",
           "Rectangle", "Color"]
