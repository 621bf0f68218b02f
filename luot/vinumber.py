"""Spell whole numbers as words, in Northern (Hanoi) standard Vietnamese and in English.

Why this exists: espeak-ng reads digits the Southern way and sometimes wrongly ("mười năm" for 15,
"một ngàn" for 1000), and num2words' Vietnamese says "lẻ" (see shared platform findings). A hall
announcer in a Hanoi-standard public service centre must say what a citizen expects to hear, so
the announcer spells every number into words itself and hands espeak-ng words only.

Northern rules applied (one reading per number, so a ticket number is never ambiguous):

* thousands are "nghìn" (never Southern "ngàn"); a zero tens digit before a unit is "linh"
  (never "lẻ"): 101 = "một trăm linh một";
* a group of three digits that follows a larger group is read in full, so a zero hundreds is said
  as "không trăm": 1005 = "một nghìn không trăm linh năm", 2014 = "hai nghìn không trăm mười bốn";
  an all-zero group is skipped: 1 000 001 = "một triệu không trăm linh một";
* 10-19 use "mười", 20+ use "mươi"; after "mươi" a 1 is "mốt" and a 4 is "tư"; after any tens a 5
  is "lăm" ("mười lăm", "hai mươi lăm"), but a 5 after "linh" stays "năm" ("một trăm linh năm").
"""

from __future__ import annotations

MAX_NUMBER = 999_999_999
"""Largest number read: nine digits cover every ticket, counter and day count the centre needs."""

_DIGITS_VI = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")
_SCALES_VI = ("", "nghìn", "triệu")

VOCABULARY_VI: frozenset[str] = frozenset(_DIGITS_VI + _SCALES_VI[1:] + ("mười", "mươi", "mốt", "tư", "lăm", "linh", "trăm"))
"""Every word ``read_number`` may produce; tests check output stays inside it."""


def _check(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"expected an int, got {type(n).__name__}")
    if not 0 <= n <= MAX_NUMBER:
        raise ValueError(f"{n} is outside 0..{MAX_NUMBER:,}")


def _tens_and_units_vi(tens: int, units: int, after_hundreds: bool) -> list[str]:
    """Read the last two digits of a group; ``after_hundreds`` means a "trăm" was (or is) said."""
    if tens == 0:
        if units == 0:
            return []
        # "linh" only joins a unit to a hundreds; a bare unit is just its digit.
        return ["linh", _DIGITS_VI[units]] if after_hundreds else [_DIGITS_VI[units]]
    words = ["mười"] if tens == 1 else [_DIGITS_VI[tens], "mươi"]
    if units == 5:
        words.append("lăm")
    elif units == 1 and tens >= 2:
        words.append("mốt")
    elif units == 4 and tens >= 2:
        words.append("tư")
    elif units:
        words.append(_DIGITS_VI[units])
    return words


def _group_vi(value: int, leading: bool) -> list[str]:
    """Read one three-digit group; a non-leading group says its zero hundreds ("không trăm")."""
    hundreds, rest = divmod(value, 100)
    tens, units = divmod(rest, 10)
    words: list[str] = []
    if hundreds or not leading:
        words += [_DIGITS_VI[hundreds], "trăm"]
    return words + _tens_and_units_vi(tens, units, after_hundreds=bool(words))


def read_number(n: int) -> str:
    """Spell ``n`` (0..999,999,999) in Northern standard Vietnamese words, e.g. 1023 ->
    "một nghìn không trăm hai mươi ba"."""
    _check(n)
    if n == 0:
        return _DIGITS_VI[0]
    groups: list[int] = []
    while n:
        n, group = divmod(n, 1000)
        groups.append(group)
    words: list[str] = []
    for index in range(len(groups) - 1, -1, -1):
        group = groups[index]
        if group == 0:
            continue  # an all-zero group is not said: 1 000 001 = "một triệu không trăm linh một"
        words += _group_vi(group, leading=not words)
        if _SCALES_VI[index]:
            words.append(_SCALES_VI[index])
    return " ".join(words)


def read_ticket(n: int) -> str:
    """Spell a ticket number for the announcer.

    Kept as its own name so the way tickets are read (today: like any number) can change in one
    place, e.g. if a centre wants digit-by-digit reading of long numbers.
    """
    return read_number(n)


_ONES_EN = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS_EN = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES_EN = ("", "thousand", "million")


def _group_en(value: int) -> list[str]:
    hundreds, rest = divmod(value, 100)
    words = [_ONES_EN[hundreds], "hundred"] if hundreds else []
    if rest >= 20:
        tens, units = divmod(rest, 10)
        words.append(_TENS_EN[tens] + (f"-{_ONES_EN[units]}" if units else ""))
    elif rest:
        words.append(_ONES_EN[rest])
    return words


def read_number_en(n: int) -> str:
    """Spell ``n`` in (American-style, no "and") English words for the second-language announcement:
    1023 -> "one thousand twenty-three"."""
    _check(n)
    if n == 0:
        return _ONES_EN[0]
    words: list[str] = []
    for index, scale in reversed(list(enumerate(_SCALES_EN))):
        group = n // 1000**index % 1000
        if group:
            words += _group_en(group) + ([scale] if scale else [])
    return " ".join(words)
