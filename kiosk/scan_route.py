"""What a USB scanner (or a keyboard) typed on the kiosk's first screens, by its content.

A scanner is a keyboard: it types the QR's text and Enter into whatever screen is showing, so the
kiosk cannot know from the screen what was scanned. It tells by the text: a booking's QR is its
tracking link (``…/t/<token>``), a typed or scanned check-in code is 8 characters of
:data:`luot.protocol.BOOKING_CODE_ALPHABET` (``K7QM-3XRA``); anything else may be a dossier receipt,
which only the server reads (server/receipt.py, one reader for every device), and is refused
there in plain words when it is not one.
"""

from __future__ import annotations

import re

from luot.protocol import BOOKING_CODE_ALPHABET, BOOKING_CODE_LENGTH

BOOKING = "booking"
OTHER = "other"
_TRACKING = re.compile(r"^(https?://[^\s/]+)?/t/[A-Za-z0-9_-]{16,64}/?$")


def scan_kind(text: str) -> str:
    """:data:`BOOKING` for a tracking link or a check-in code, else :data:`OTHER` (a receipt, a
    dossier code, or something the kiosk cannot use). Dossier codes (``H29-261206-0007``) hold
    digits a check-in code never has (0, 1, 2, 5, 6, 8), so the two cannot be confused."""
    text = text.strip()
    if _TRACKING.match(text):
        return BOOKING
    code = re.sub(r"[\s-]", "", text).upper()
    if len(code) == BOOKING_CODE_LENGTH and all(c in BOOKING_CODE_ALPHABET for c in code):
        return BOOKING
    return OTHER
