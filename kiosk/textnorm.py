"""Vietnamese text normalisation shared by the greeter's lexicon and its procedure catalogue.

One job: make "Sổ Đỏ", "so do" and "sổ đỏ" (NFC or NFD) the same words, so every matcher compares
like with like. Kept apart from ``kiosk.greeter`` so ``kiosk.procedures`` can use it without an
import cycle.
"""

from __future__ import annotations

import re
import unicodedata


def strip_diacritics(text: str) -> str:
    """Remove Vietnamese tone and vowel marks (``đ`` -> ``d``), keeping case and everything else."""
    text = unicodedata.normalize("NFC", text).replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn"))


def normalise(text: str) -> str:
    """Lowercase ASCII words separated by single spaces: the form every comparison uses."""
    plain = strip_diacritics(text).lower()
    plain = re.sub(r"[^0-9a-z]+", " ", plain)
    return " ".join(plain.split())


def words(text: str) -> list[str]:
    return normalise(text).split()
