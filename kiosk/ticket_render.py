"""Render a queue ticket for the kiosk screen, a thermal printer and a file (PNG, PDF, ESC/POS).

Why it is built this way:

* Vietnamese text is drawn by Pillow with Noto Sans and sent to the printer as a raster bitmap.
  Printer code pages (CP1258, TCVN-3) print ``?`` on the common 58 mm Xprinter-type printers, so the
  bitmap is the only way to get "Ư", "ệ", "ở" right on every printer (platform notes, "Tickets").
* The QR code holds the tracking URL and nothing else: no name, no number, no group. The token in
  the URL is >= 96 random bits, so the URL cannot be guessed and says nothing about the visitor.
* On paper the QR is printed natively (``GS ( k``): the printer draws sharp modules at its own
  resolution, and the payload stays small (about 11 KB a ticket instead of more raster).
* One layout serves every output: the ticket is three blocks (text above the QR, the QR, text below
  it); ``render_png`` stacks all three, ``escpos_bytes`` sends the text blocks as rasters and the QR
  natively, so screen, PDF and paper always say the same thing.
* Everything is black on white with no greys that matter, so thresholding to 1 bit for the printer
  keeps the text crisp (no dithering noise around letters).
"""

from __future__ import annotations

import contextlib
import io
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import qrcode
from PIL import Image, ImageDraw, ImageFont

WIDTH_80MM = 576
"""Printable dots across 80 mm paper at 203 dpi."""
WIDTH_58MM = 384
"""Printable dots across 58 mm paper at 203 dpi."""

TOKEN_MIN_CHARS = 16
"""A urlsafe base64 token of 16 characters carries 96 bits; ``secrets.token_urlsafe(16)`` gives 22."""
TRACKING_URL = re.compile(r"^https?://[A-Za-z0-9.:\[\]-]+(/[A-Za-z0-9._~-]+)*/t/(?P<token>[A-Za-z0-9_-]+)$")
"""Host, optional plain path prefix, ``/t/<token>``: no query string or fragment where data could hide."""

PRINTER_NOT_READY = "Máy in hết giấy hoặc chưa kết nối / Printer not ready"
PRINTER_SETTING_WRONG = "Cài đặt máy in không đúng / Printer setting is wrong"

_FONT_DIRS = (
    ("/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf", "/usr/share/fonts/truetype/noto/NotoSans-Bold.ttf"),
    ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
)
_BLACK = 0
_WHITE = 255


class PrinterError(Exception):
    """The ticket could not be printed.

    ``str(error)`` is a plain Vietnamese + English sentence that the kiosk can show to a visitor or
    the staff; ``detail`` keeps the technical cause for the log (it never holds the tracking URL).
    """

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


@dataclass(frozen=True)
class TicketView:
    """Everything printed on one ticket, already resolved from the configuration and the queue.

    It is a plain value so the renderer needs no database, no MQTT and no configuration file.
    """

    number: int
    group_code: str
    group_name: str
    group_name_en: str
    letter: str
    counters: list[int]
    people_ahead: int
    estimated_wait_minutes: int | None
    issued_at: datetime
    priority: bool
    centre_name: str
    tracking_url: str
    offline: bool = False
    timezone: str = "Asia/Ho_Chi_Minh"
    returns_dossier: str | None = None  # a results ticket (trả kết quả): the dossier code on the receipt
    appointment: str | None = None  # that dossier's appointment date, YYYY-MM-DD
    # the procedure the kiosk greeter named, and what to bring for it: printed as a "Mang theo"
    # checklist so the citizen can check their papers while waiting (never personal data)
    procedure: str = ""
    checklist: tuple[str, ...] = ()
    # the server's wording of the wait, the same on the kiosk's screen, the tracking page and the
    # console: a range ("khoảng 20-35 phút") or a clock time after a break; None (offline, or an old
    # server): the point ``estimated_wait_minutes`` is printed instead
    wait_text: str | None = None
    wait_text_en: str | None = None
    after_closing: bool = False  # unlikely to be called before closing today: printed as a warning

    def __post_init__(self) -> None:
        if self.issued_at.tzinfo is None or self.issued_at.utcoffset() is None:
            raise ValueError("issued_at must be an aware datetime (with a time zone), e.g. datetime.now(UTC)")
        check_tracking_url(self.tracking_url)

    @property
    def counters_label(self) -> str:
        return ", ".join(str(c) for c in self.counters)

    @property
    def issued_local(self) -> str:
        """Issue time in the centre's clock, as visitors read it: ``HH:MM dd/mm/yyyy``."""
        return self.issued_at.astimezone(ZoneInfo(self.timezone)).strftime("%H:%M %d/%m/%Y")


WEEKDAYS_VI = ("Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ Nhật")


@dataclass(frozen=True)
class AppointmentSlip:
    """An appointment booked at the kiosk (issues 15 and 17): the citizen has no phone on file, so
    this paper is their copy. The check-in code and the QR (tracking link only) open the booking
    at the kiosk on the day; nothing personal is on it."""

    group_code: str
    group_name: str
    group_name_en: str
    letter: str
    day: str  # YYYY-MM-DD
    slot_time: str  # HH:MM, the centre's clock
    code_display: str  # "K7QM-3XRA"
    centre_name: str
    tracking_url: str
    checkin_from: str = ""  # HH:MM: the earliest check-in (booking.checkin_early_minutes before the slot)

    def __post_init__(self) -> None:
        check_tracking_url(self.tracking_url)

    @property
    def day_label(self) -> str:
        """"Thứ Ba, 03/03/2026" (the weekday as a citizen plans by)."""
        day = date.fromisoformat(self.day)
        return f"{WEEKDAYS_VI[day.weekday()]}, {day:%d/%m/%Y}"

    @property
    def day_label_en(self) -> str:
        return date.fromisoformat(self.day).strftime("%A %d/%m/%Y")


def new_token() -> str:
    """A fresh tracking token: 128 random bits, urlsafe (22 characters)."""
    return secrets.token_urlsafe(16)


def tracking_url(public_url: str, token: str) -> str:
    """The only thing a ticket's QR code may contain: ``{public_url}/t/{token}``."""
    url = f"{public_url.rstrip('/')}/t/{token}"
    check_tracking_url(url)
    return url


def check_tracking_url(url: str) -> str:
    """Refuse a URL that is not ``…/t/<token>`` with a token of at least 96 bits.

    Checked here, at the last step before paper, because a short or missing token would let anyone
    enumerate other visitors' tickets, and anything else in the URL could leak personal data.
    """
    match = TRACKING_URL.match(url)
    if not match:
        raise ValueError(f"tracking URL must look like 'http://host/t/<token>', got {url!r}")
    if len(match["token"]) < TOKEN_MIN_CHARS:
        raise ValueError(
            f"tracking token has {len(match['token'])} characters; at least {TOKEN_MIN_CHARS} "
            "(96 random bits) are required, use secrets.token_urlsafe(16)"
        )
    return url


# -- fonts and text --------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _font_paths() -> tuple[str, str]:
    for regular, bold in _FONT_DIRS:
        if Path(regular).is_file() and Path(bold).is_file():
            return regular, bold
    raise RuntimeError(
        "no font with Vietnamese letters found; install fonts-noto-core (Noto Sans) or fonts-dejavu-core"
    )


@lru_cache(maxsize=64)
def _font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    """Basic layout on purpose: Vietnamese needs no shaping once composed (NFC), and libraqm is not
    present in every Pillow build, so the same ticket comes out pixel-identical on every kiosk."""
    regular, heavy = _font_paths()
    return ImageFont.truetype(heavy if bold else regular, max(8, int(size)), layout_engine=ImageFont.Layout.BASIC)


def _nfc(text: str) -> str:
    """Compose combining marks (NFD text from some keyboards and Mac files) so each letter is one
    precomposed glyph; basic layout would otherwise place the marks beside the letters."""
    return unicodedata.normalize("NFC", text)


def _greedy(words: list[str], font: ImageFont.FreeTypeFont, max_width: float, joiner: str = " ") -> list[str]:
    lines: list[str] = []
    current = ""
    for word in words:
        candidate = f"{current}{joiner}{word}" if current else word
        if current and font.getlength(candidate.strip()) > max_width:
            lines.append(current.strip())
            current = word
        else:
            current = candidate
    if current:
        lines.append(current.strip())
    return lines


def _balanced(text: str, font: ImageFont.FreeTypeFont, max_width: float) -> list[str]:
    """Word-wrap into as few lines as greedy wrapping needs, but with lines of similar length, so a
    lone word ("bạn", "phút") is never left on a line of its own."""
    words = [word for word in text.split(" ") if word]  # not split(): that would break at NBSP too
    lines = _greedy(words, font, max_width)
    low, high = max_width / 2, max_width
    while high - low > 2:
        middle = (low + high) / 2
        if len(_greedy(words, font, middle)) == len(lines):
            high = middle
        else:
            low = middle
    return _greedy(words, font, high)


def _wrap(text: str, font: ImageFont.FreeTypeFont, max_width: float) -> list[str]:
    """Lines that fit ``max_width``, breaking first where the sense breaks: after "label:" and at
    " · " between English facts, then between ordinary spaces (never at a no-break space).
    A single over-long word keeps its own line."""
    if font.getlength(text) <= max_width:
        return [text]
    if " · " in text:
        return [line for part in _greedy(text.split(" · "), font, max_width, " · ") for line in _balanced(part, font, max_width)]
    label, colon, value = text.partition(": ")
    if colon and font.getlength(label + ":") <= max_width:
        return _balanced(label + ":", font, max_width) + _balanced(value, font, max_width)
    return _balanced(text, font, max_width) or [""]


def _text_block(
    text: str,
    width: int,
    size: int,
    bold: bool = False,
    inverse: bool = False,
    tight: bool = False,
    margin: int = 0,
) -> Image.Image:
    """Centred, word-wrapped text as an image exactly ``width`` wide.

    Each line's box is the larger of the font's ascent/descent and the real ink of that line, so
    stacked Vietnamese marks ("Ễ", "Ở") never get clipped. ``tight`` uses the ink only, for the huge
    number whose font ascent would leave a wide empty band above the digits.
    """
    font = _font(size, bold)
    ascent, descent = font.getmetrics()
    foreground, background = (_WHITE, _BLACK) if inverse else (_BLACK, _WHITE)
    rendered: list[Image.Image] = []
    for line in _wrap(_nfc(text), font, width - 2 * margin):
        left, top, right, bottom = font.getbbox(line, anchor="ls")
        above = -top if tight else max(ascent, -top)
        below = bottom if tight else max(descent, bottom)
        image = Image.new("L", (width, max(1, above + below)), background)
        x = (width - (right - left)) / 2 - left
        ImageDraw.Draw(image).text((x, above), line, font=font, fill=foreground, anchor="ls")
        rendered.append(image)
    return _stack(rendered, width, background=background)


def _stack(blocks: list[Image.Image], width: int, gap: int = 0, background: int = _WHITE) -> Image.Image:
    height = sum(b.height for b in blocks) + gap * max(0, len(blocks) - 1)
    canvas = Image.new("L", (width, max(1, height)), background)
    y = 0
    for block in blocks:
        canvas.paste(block, ((width - block.width) // 2, y))
        y += block.height + gap
    return canvas


def _space(width: int, height: int) -> Image.Image:
    return Image.new("L", (width, max(1, int(height))), _WHITE)


def _rule(width: int, margin: int, thickness: int, pad: int) -> Image.Image:
    image = _space(width, 2 * pad + thickness)
    ImageDraw.Draw(image).rectangle((margin, pad, width - margin - 1, pad + thickness - 1), fill=_BLACK)
    return image


def _framed(block: Image.Image, width: int, margin: int, pad: int, border: int, fill: int) -> Image.Image:
    """Put a block in a box: a filled black badge (priority) or an outlined notice (offline)."""
    inner = width - 2 * margin
    box = Image.new("L", (inner, block.height + 2 * pad), fill)
    box.paste(block.crop(((block.width - inner) // 2, 0, (block.width + inner) // 2, block.height)), (0, pad))
    if border:
        ImageDraw.Draw(box).rectangle((0, 0, inner - 1, box.height - 1), outline=_BLACK, width=border)
    return _stack([box], width)


# -- the three blocks of a ticket ------------------------------------------------------------------


@dataclass(frozen=True)
class _Scale:
    """Sizes for one paper width. Text never shrinks below what an older visitor reads on 58 mm."""

    width: int

    @property
    def s(self) -> float:
        return max(self.width / WIDTH_80MM, 0.8)

    def px(self, value: float) -> int:
        return max(1, round(value * self.s))

    @property
    def margin(self) -> int:
        return max(8, round(self.width * 0.04))


def wait_lines(view: TicketView) -> tuple[str, str] | None:
    """The printed wait (Vietnamese line, English words for the summary): the server's wording when
    it sent one, so the paper promises what the screen said; else the point in minutes."""
    if view.wait_text:
        english = view.wait_text_en or view.wait_text
        if view.after_closing:
            return f"Lưu ý: {view.wait_text}", f"note: {english}"
        return f"Thời gian chờ dự kiến: {view.wait_text}", f"wait: {english}"
    minutes = view.estimated_wait_minutes
    if minutes is None:
        return None
    if minutes <= 0:
        return "Thời gian chờ dự kiến: sắp đến lượt bạn", "almost your turn"
    return f"Thời gian chờ dự kiến: khoảng {minutes} phút", f"about {minutes} min wait"


def _english_summary(view: TicketView) -> str:
    parts = []
    if view.counters:
        parts.append(("Counter " if len(view.counters) == 1 else "Counters ") + view.counters_label)
    parts.append(f"{view.people_ahead} {'person' if view.people_ahead == 1 else 'people'} ahead")
    wait = wait_lines(view)
    if wait:
        parts.append(wait[1])
    return " · ".join(parts)


def _number_size(view: TicketView, sc: _Scale) -> int:
    """Largest bold size (capped) at which the number fills the paper without touching the edges."""
    text = str(view.number)
    size = sc.px(230)
    available = sc.width - 2 * sc.margin
    while size > 20 and _font(size, True).getlength(text) > available:
        size -= 4
    return size


def _top_block(view: TicketView, sc: _Scale) -> Image.Image:
    w, m, px = sc.width, sc.margin, sc.px
    blocks = [
        _space(w, px(10)),
        _text_block(view.centre_name, w, px(26), bold=True, margin=m),
        _rule(w, m, px(3), px(10)),
        _text_block("SỐ THỨ TỰ", w, px(34), bold=True, margin=m),
        _text_block("Your number", w, px(22), margin=m),
        _space(w, px(14)),
        _text_block(str(view.number), w, _number_size(view, sc), bold=True, tight=True, margin=m),
        _space(w, px(18)),
    ]
    if view.priority:
        badge = _stack(
            [
                _text_block("ƯU TIÊN", w - 2 * m, px(40), bold=True, inverse=True),
                _text_block("Priority", w - 2 * m, px(22), inverse=True),
            ],
            w - 2 * m,
            background=_BLACK,
        )
        blocks += [_framed(badge, w, m, px(6), 0, _BLACK), _space(w, px(12))]
    blocks += [
        # No-break spaces keep the letter with the first word: "H" alone on a line reads as a typo.
        _text_block(f"{view.letter}\u00a0·\u00a0{view.group_name}", w, px(34), bold=True, margin=m),
    ]
    if view.group_name_en:
        blocks.append(_text_block(view.group_name_en, w, px(22), margin=m))
    if view.returns_dossier:  # the citizen came back for a result: which dossier, and what was promised
        blocks += [_space(w, px(6)), _text_block(f"Nhận kết quả hồ sơ {view.returns_dossier}", w, px(24), margin=m)]
        if view.appointment:
            year, month, day = view.appointment.split("-")
            blocks += [_text_block(f"Ngày hẹn trả: {day}/{month}/{year}", w, px(30), bold=True, margin=m),
                       _text_block("Appointment date", w, px(21), margin=m)]
    blocks += [
        _rule(w, m, px(2), px(10)),
        _text_block(f"Quầy: {view.counters_label}", w, px(36), bold=True, margin=m),
        _space(w, px(4)),
        _text_block(f"Số người đang chờ trước bạn: {view.people_ahead}", w, px(26), margin=m),
    ]
    wait = wait_lines(view)
    if wait:
        blocks.append(_text_block(wait[0], w, px(26), margin=m))
    blocks += [
        _text_block(_english_summary(view), w, px(21), margin=m),
        _space(w, px(6)),
        _text_block(f"Giờ lấy số: {view.issued_local}", w, px(24), margin=m),
        _rule(w, m, px(2), px(10)),
    ]
    return _stack(blocks, w)


def _bottom_block(view: TicketView, sc: _Scale) -> Image.Image:
    w, m, px = sc.width, sc.margin, sc.px
    blocks = [
        _text_block("Quét mã để theo dõi lượt của bạn", w, px(26), bold=True, margin=m),
        _text_block("Scan to follow your turn", w, px(22), margin=m),
    ]
    if view.offline:
        notice = _stack(
            [
                _text_block("Vé cấp khi mất kết nối", w - 2 * m, px(26), bold=True, margin=px(10)),
                _text_block("Issued while offline", w - 2 * m, px(21), margin=px(10)),
            ],
            w - 2 * m,
        )
        blocks += [_space(w, px(14)), _framed(notice, w, m, px(8), px(3), _WHITE)]
    if view.checklist:
        blocks += [_space(w, px(6)), _checklist_block(view, sc)]
    blocks.append(_space(w, px(16)))
    return _stack(blocks, w)


def _slip_top_block(slip: AppointmentSlip, sc: _Scale) -> Image.Image:
    """When (day and slot in large type), for which group, and the check-in code in the largest."""
    w, m, px = sc.width, sc.margin, sc.px
    return _stack([
        _space(w, px(10)),
        _text_block(slip.centre_name, w, px(26), bold=True, margin=m),
        _rule(w, m, px(3), px(10)),
        _text_block("LỊCH HẸN", w, px(40), bold=True, margin=m),
        _text_block("Appointment", w, px(22), margin=m),
        _space(w, px(10)),
        _text_block(slip.day_label, w, px(34), bold=True, margin=m),
        _text_block(f"Lúc {slip.slot_time}", w, px(56), bold=True, margin=m),
        _text_block(f"{slip.day_label_en}, {slip.slot_time}", w, px(21), margin=m),
        _space(w, px(8)),
        _text_block(f"{slip.letter}\u00a0·\u00a0{slip.group_name}", w, px(32), bold=True, margin=m),
        *([_text_block(slip.group_name_en, w, px(21), margin=m)] if slip.group_name_en else []),
        _rule(w, m, px(2), px(10)),
        _text_block("MÃ XÁC NHẬN", w, px(28), bold=True, margin=m),
        _text_block("Check-in code", w, px(21), margin=m),
        _space(w, px(6)),
        _text_block(slip.code_display, w, px(60), bold=True, tight=True, margin=m),
        _space(w, px(14)),
        _rule(w, m, px(2), px(10)),
    ], w)


def _slip_bottom_block(slip: AppointmentSlip, sc: _Scale) -> Image.Image:
    w, m, px = sc.width, sc.margin, sc.px
    return _stack([
        _text_block("Khi đến, quét mã này hoặc nhập mã xác nhận tại máy lấy số", w, px(24), bold=True, margin=m),
        _text_block("On arrival, scan this or type the code at the kiosk", w, px(21), margin=m),
        *([_text_block(f"Xác nhận từ {slip.checkin_from} / Check in from {slip.checkin_from}", w, px(22), margin=m)]
          if slip.checkin_from else []),
        _space(w, px(16)),
    ], w)


def _blocks(view: TicketView | AppointmentSlip, sc: _Scale) -> tuple[Image.Image, Image.Image]:
    """The text above and below the QR, for a ticket or an appointment slip."""
    if isinstance(view, AppointmentSlip):
        return _slip_top_block(view, sc), _slip_bottom_block(view, sc)
    return _top_block(view, sc), _bottom_block(view, sc)


def _checklist_block(view: TicketView, sc: _Scale) -> Image.Image:
    """"MANG THEO" and one box per paper, large enough to tick with a pen while waiting."""
    w, m, px = sc.width, sc.margin, sc.px
    blocks = [
        _rule(w, m, px(2), px(10)),
        _text_block("MANG THEO", w, px(32), bold=True, margin=m),
        _text_block("Please bring", w, px(21), margin=m),
    ]
    if view.procedure:
        blocks += [_space(w, px(4)), _text_block(view.procedure, w, px(24), bold=True, margin=m)]
    blocks.append(_space(w, px(6)))
    for number, paper in enumerate(view.checklist, start=1):
        blocks += [_tick_item(f"{number}. {paper}", w, px(24), m), _space(w, px(6))]
    return _stack(blocks, w)


def _tick_item(text: str, width: int, size: int, margin: int) -> Image.Image:
    """One paper: an empty box to tick, the text left-aligned beside it with a hanging indent (drawn,
    not a "☐" character: ticket fonts such as Noto Sans have no such glyph)."""
    font = _font(size)
    ascent, descent = font.getmetrics()
    box = int(ascent * 0.8)
    indent = box + size // 2
    lines = _greedy(_nfc(text).split(), font, width - 2 * margin - indent)
    line_height = ascent + descent
    image = Image.new("L", (width, max(1, line_height * len(lines))), _WHITE)
    draw = ImageDraw.Draw(image)
    top = ascent - box
    draw.rectangle((margin, top, margin + box, top + box), outline=_BLACK, width=max(2, size // 12))
    for row, line in enumerate(lines):
        draw.text((margin + indent, row * line_height + ascent), line, font=font, fill=_BLACK, anchor="ls")
    return image


def _qr_box_size(width: int) -> int:
    """Module size in dots: 6 on 80 mm, 5 on 58 mm, so a 33-module code is 25-30 mm across,
    comfortably read by a phone camera at arm's length."""
    return 6 if width >= WIDTH_80MM else 5


# -- public API ------------------------------------------------------------------------------------


def qr_png(url: str, box_size: int = 6, border: int = 4) -> Image.Image:
    """The tracking QR code alone: error correction M (survives a crease or smudge), 4-module quiet
    zone as the standard asks, pure black on white (mode ``L``)."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=box_size, border=border)
    code.add_data(url)
    code.make(fit=True)
    return code.make_image(fill_color="black", back_color="white").get_image().convert("L")


def render_png(view: TicketView | AppointmentSlip, width_px: int = WIDTH_80MM) -> Image.Image:
    """The whole ticket (or appointment slip) as shown on the kiosk screen and saved to PNG/PDF (mode ``L``)."""
    sc = _Scale(width_px)
    qr = qr_png(view.tracking_url, box_size=_qr_box_size(width_px))
    top, bottom = _blocks(view, sc)
    return _stack([top, qr, bottom], width_px)


def render_pdf(view: TicketView, path: str | Path, width_px: int = WIDTH_80MM) -> Path:
    """A one-page PDF at 203 dpi, so it prints at the real ticket size (for staff or a laser printer)."""
    return save_pdf(render_png(view, width_px), path)


def save_pdf(image: Image.Image, path: str | Path) -> Path:
    """Save an already rendered ticket as PDF at the printer's 203 dpi (real paper size)."""
    target = Path(path)
    image.convert("RGB").save(target, "PDF", resolution=203.0)
    return target


def _one_bit(image: Image.Image) -> Image.Image:
    """Threshold (not dither) to pure black and white, so letter edges stay clean on paper."""
    return image.point(lambda v: _WHITE if v >= 128 else _BLACK, mode="L")


def escpos_bytes(view: TicketView | AppointmentSlip, profile: str = "default", width_px: int = WIDTH_80MM) -> bytes:
    """The ESC/POS job for one ticket: init, text raster, native QR, text raster, cut.

    Raises ``ValueError`` for an unknown profile or a ticket wider than the profile's paper.
    """
    from escpos.constants import QR_ECLEVEL_M
    from escpos.exceptions import ImageWidthError
    from escpos.printer import Dummy

    sc = _Scale(width_px)
    try:
        printer = Dummy(profile=profile)
    except KeyError:
        raise ValueError(f"unknown printer profile {profile!r}; e.g. default, TM-T20II, POS-5890") from None
    # python-escpos prints a warning to stdout for profiles without a known paper width; that
    # would corrupt the JSON of `luot ticket`, so it is swallowed here.
    with contextlib.redirect_stdout(io.StringIO()):
        printer.hw("INIT")
        top, bottom = _blocks(view, sc)
        try:
            printer.image(_one_bit(top), impl="bitImageRaster")
            printer.set(align="center")
            printer.qr(view.tracking_url, ec=QR_ECLEVEL_M, size=_qr_box_size(width_px), native=True)
            printer.set(align="left")
            printer.image(_one_bit(bottom), impl="bitImageRaster")
        except ImageWidthError:
            paper = printer.profile.profile_data["media"]["width"]["pixels"]
            raise ValueError(
                f"ticket is {width_px} dots wide but printer profile {profile!r} prints at most {paper}; "
                f"use width {WIDTH_58MM} for 58 mm paper"
            ) from None
        printer.cut()
    return printer.output


def _open_printer(target: str, profile: str):  # -> escpos.escpos.Escpos
    """Build the python-escpos printer named by a target string (see ``print_ticket``)."""
    kind, _, rest = target.partition(":")
    if kind == "file" and rest:
        from escpos.printer import File

        return File(rest, profile=profile)
    if kind == "network":
        host, _, port = rest.rpartition(":")
        if not host:
            host, port = rest, "9100"
        from escpos.printer import Network

        return Network(host, int(port), timeout=5, profile=profile)
    if kind == "usb":
        vendor, _, product = rest.partition(":")
        from escpos.printer import Usb

        if not Usb.is_usable():
            # Checked before building the printer: python-escpos's Usb raises from __del__ otherwise.
            raise PrinterError(PRINTER_NOT_READY, detail="USB printing needs pyusb, which is not installed")

        return Usb(int(vendor, 16), int(product, 16), profile=profile)
    raise ValueError(f"unknown printer target {target!r}")


def print_ticket(view: TicketView | AppointmentSlip, target: str, profile: str = "default", width_px: int = WIDTH_80MM) -> int:
    """Send one ticket to a printer; return the bytes sent (0 for ``"none"``).

    ``target`` is ``"file:/dev/usb/lp0"``, ``"network:192.168.1.50:9100"``, ``"usb:0x0416:0x5011"``
    or ``"none"`` (a kiosk with no printer still shows the ticket on screen). Any failure becomes a
    ``PrinterError`` with a sentence the visitor understands, so the kiosk keeps running and the
    ticket, already issued by the server, is not lost: it stays on screen with its QR.
    """
    if target.strip().lower() == "none":
        return 0
    try:
        data = escpos_bytes(view, profile=profile, width_px=width_px)
    except ValueError as error:  # unknown profile, or paper narrower than the ticket
        raise PrinterError(f"{PRINTER_SETTING_WRONG}: profile {profile!r}", detail=str(error)) from None
    try:
        printer = _open_printer(target.strip(), profile)
    except (ValueError, TypeError) as error:
        raise PrinterError(
            f"{PRINTER_SETTING_WRONG}: {target!r} (file:/dev/usb/lp0, network:192.168.1.50:9100, "
            "usb:0x0416:0x5011, none)",
            detail=str(error),
        ) from None
    try:
        printer.open()
        printer._raw(data)
    except Exception as error:  # noqa: BLE001 - any driver failure must reach the kiosk as PrinterError
        raise PrinterError(PRINTER_NOT_READY, detail=" ".join(f"{type(error).__name__}: {error}".split())) from None
    finally:
        with contextlib.suppress(Exception):
            printer.close()
    return len(data)
