"""Reading a dossier receipt's QR code (Circular 01/2023/TT-VPCP) as a USB scanner types it.

What the circular fixes (Article 26; see docs/export.md for the sources read): the QR is printed at
the top left of every paper the provincial dossier system publishes, follows TCVN 7322:2009
(ISO/IEC 18004), and holds at least the dossier code (mã số hồ sơ), the procedure code (mã thủ tục
hành chính), the identifier of the person or organisation (mã định danh), the paper's name, the
name of the system and the time of publication; on a receipt (giấy tiếp nhận hồ sơ và hẹn trả kết
quả) also the appointment date (ngày hẹn trả kết quả). What it does NOT fix is how these items are
written inside the QR, and no province's byte layout could be read while this was written. So this
reader takes the items by their names in the layouts a system can plausibly print, and refuses
anything else with a plain message (never a guess):

- a bare dossier code: ``000.00.12.H29-261206-0007``;
- a link with query parameters: ``https://dichvucong.example.gov.vn/tra-cuu?maHoSo=...&maTTHC=...&ngayHenTra=...``;
- a JSON object with such keys: ``{"maHoSo": "...", "maTTHC": "...", "ngayHenTra": "..."}``;
- labelled pairs, the labels as camelCase keys or as the circular's Vietnamese words, with or
  without diacritics (``maHoSo=...;maTTHC=...``, ``Mã hồ sơ: ...`` one item a line): ``=`` or
  ``:`` after the label, items separated by ``;``, ``|``, ``&`` or new lines;
- three positional fields: ``dossier code|procedure code|appointment date`` (``|`` or ``;``).

Dates: ``YYYY-MM-DD``, ``DD/MM/YYYY``, ``DD-MM-YYYY``, ``YYYYMMDD`` (a time after them is ignored).
Only the three items Luot needs are kept. The identifier the circular puts in the QR is personal
data: it is read past, never kept, returned or logged, like every other item.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from urllib.parse import parse_qsl, urlsplit

MAX_RECEIPT = 1000
CODE_KEYS = {"mahoso", "masohoso", "hoso", "sohoso", "dossiercode", "dossier", "code"}
PROCEDURE_KEYS = {"mathutuc", "matthc", "mathutuchanhchinh", "thutuc", "procedurecode", "procedure"}
DATE_KEYS = {"ngayhentra", "ngayhentraketqua", "hentra", "hentraketqua", "ngayhen", "appointment", "appointmentdate",
             "duedate"}
"""Labels as :func:`_key` folds them: camelCase keys and the circular's words (Article 26) alike."""
_LABEL = re.compile(r"^\s*[^\W\d_][^\W_]*(?:[ _][^\W_]+)*\s*[=:]")
"""An item that starts with a label (letters in any script, words split by spaces) and ``=`` or ``:``."""
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{2,39}$")


class ReceiptError(ValueError):
    """A scanned text that is not a receipt Luot can read; ``message`` is Vietnamese, ``message_en`` English."""

    def __init__(self, message: str, message_en: str) -> None:
        super().__init__(message_en)
        self.message, self.message_en = message, message_en


@dataclass(frozen=True)
class Receipt:
    code: str
    procedure: str | None = None
    appointment: date | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "procedure": self.procedure,
                "appointment": self.appointment.isoformat() if self.appointment else None}


def _key(name: str) -> str:
    """A label folded to plain lower-case letters: "Mã hồ sơ", "Ma ho so" and "maHoSo" are all
    ``mahoso`` (diacritics dropped, đ read as d), so labels match however the QR spells them."""
    plain = unicodedata.normalize("NFKD", name.lower().replace("đ", "d"))
    return re.sub(r"[^a-z]", "", "".join(c for c in plain if not unicodedata.combining(c)))


def parse_date(text: str) -> date:
    text = text.strip()
    patterns = [(r"^(\d{4})-(\d{2})-(\d{2})", (1, 2, 3)), (r"^(\d{2})[/-](\d{2})[/-](\d{4})", (3, 2, 1)),
                (r"^(\d{4})(\d{2})(\d{2})$", (1, 2, 3))]
    for pattern, (y, m, d) in patterns:
        match = re.match(pattern, text)
        if match:
            try:
                return date(int(match.group(y)), int(match.group(m)), int(match.group(d)))
            except ValueError:
                break
    raise ReceiptError(f"Ngày hẹn trả trên biên nhận không hợp lệ: {text[:20]!r}.",
                       f"The receipt's appointment date is not a valid date: {text[:20]!r}.")


def _pairs(text: str) -> dict[str, str] | None:
    """Key/value pairs from a link, a JSON object or ``k=v;k=v`` text; None when it is none of them."""
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return None
        return {_key(k): str(v) for k, v in value.items() if v is not None} if isinstance(value, dict) else None
    if re.match(r"^https?://", text, re.I):
        return {_key(k): v for k, v in parse_qsl(urlsplit(text).query)}
    parts = [p for p in re.split(r"[;|&\n\r]+", text) if p.strip()]
    if parts and all(_LABEL.match(p) for p in parts):
        return {_key(re.split(r"[=:]", p, maxsplit=1)[0]): re.split(r"[=:]", p, maxsplit=1)[1].strip() for p in parts}
    return None


def parse_receipt(text: str) -> Receipt:
    """The dossier code, procedure code and appointment date of a scanned receipt, or ReceiptError."""
    text = (text or "").strip()
    if not text:
        raise ReceiptError("Chưa có mã hồ sơ.", "No dossier code given.")
    if len(text) > MAX_RECEIPT:
        raise ReceiptError("Mã QR quá dài, không phải biên nhận hồ sơ.", "The scanned text is too long for a receipt.")
    if _CODE.match(text):
        return Receipt(text)
    pairs = _pairs(text)
    if pairs is None:
        fields = [f.strip() for f in re.split(r"[|;]", text)]
        if len(fields) == 3 and _CODE.match(fields[0]):
            return Receipt(fields[0], fields[1] or None, parse_date(fields[2]) if fields[2] else None)
        raise ReceiptError("Không đọc được mã QR: đây không phải biên nhận hồ sơ hay mã hồ sơ.",
                           "Unreadable QR: this is neither a dossier receipt nor a dossier code.")
    code = next((pairs[k] for k in CODE_KEYS if pairs.get(k)), None)
    if not code or not _CODE.match(code.strip()):
        raise ReceiptError("Mã QR không có mã hồ sơ hợp lệ.", "The QR holds no valid dossier code.")
    procedure = next((pairs[k].strip() for k in PROCEDURE_KEYS if pairs.get(k)), None)
    when = next((pairs[k] for k in DATE_KEYS if pairs.get(k)), None)
    if procedure is not None and not re.match(r"^[A-Za-z0-9._-]{1,40}$", procedure):
        raise ReceiptError("Mã thủ tục trên biên nhận không hợp lệ.", "The receipt's procedure code is not valid.")
    return Receipt(code.strip(), procedure, parse_date(when) if when else None)
