"""Which words of a citizen's sentence are negated, so a negated phrase does not count for its procedure.

Why: "ông già tui hổng có lương hưu, nghe nói nhà nước cho tiền" (has NO pension) was sent to the
Social Insurance office because "lương hưu" matched. One job here: mark, per clause, the words that
follow a negation ("không có", "hổng có", "ko phải", "không để lại"...), so the lexicon, the
catalogue and the learned model can leave them out. Pure functions over the greeter's normalised,
diacritic-free words; no I/O.

What is NOT treated as negation, on purpose (each would turn a right answer into a wrong one):
- "chưa" (not yet): "chưa có giấy khai sinh" is exactly a birth registration, "chưa có sổ đỏ" a
  first land certificate;
- "không ... nữa" (no longer): "không buôn bán nữa" is still the household business counter
  (closing it), "không lãnh trợ cấp nữa" still social protection (stopping an allowance);
- "không biết / hiểu / rõ / nhớ" (don't know...): "tui không biết làm khai sinh ở đâu" asks for it;
- "không (muốn) nhận / lấy" (refusing): "không muốn nhận phần thừa kế" is the refusal of an estate;
- a question's last "không" ("có phải xin phép không"): nothing follows it in its clause;
- a phrase that itself holds the negation ("không nhận thừa kế", "khai sinh ~ không có tên bố"):
  the catalogue wrote it so, and it counts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

# "hổng"/"hông" (Southern "không") read "hong", which is also "hồng" (sổ hồng) and "hỏng" (broken):
# it negates only before one of these words
HONG_BEFORE = frozenset({"co", "phai", "lay", "muon", "nhan", "can", "lam", "con", "di", "de", "duoc"})
# "đâu phải", "đâu có" (it is not...)
DAU_BEFORE = frozenset({"phai", "co"})
NOT_NEGATING = frozenset({"biet", "hieu", "ro", "nho", "sao", "nua", "a", "vay", "ha", "nhi", "nhe", "ak", "ah"})
# words that end a negation's reach inside a clause ("hổng có lương hưu mà nhà nước có cho tiền")
BREAKS = frozenset({"ma", "nhung", "nen", "thi", "vi", "de", "chi", "gio", "con", "nhu"})
# "không (muốn) nhận / lấy": refusing is an act ("từ chối nhận di sản"), not the absence of one
REFUSING = frozenset({"nhan", "lay"})
STOP_AFTER = "nua"  # "không ... nữa": no longer doing it, the same field
SCOPE_MAX = 6
CLAUSE = re.compile(r"[,.;:!?()\n]+")


def is_negator(tokens: Sequence[str], i: int) -> bool:
    """True when ``tokens[i]`` starts a negation. "ko", "k", "hok"... reach here as "khong" (the
    lexicon's abbreviations); "hong" only before a verb-like word, "dau" only before "phai"/"co"."""
    word = tokens[i]
    following = tokens[i + 1] if i + 1 < len(tokens) else ""
    after = tokens[i + 2] if i + 2 < len(tokens) else ""
    if following in REFUSING or (following == "muon" and after in REFUSING):
        return False
    if word == "khong" or word == "chang":
        return following not in NOT_NEGATING and following != ""
    if word in ("hong", "hok", "hem"):
        return following in HONG_BEFORE
    if word == "dau":
        return following in DAU_BEFORE
    return False


def clause_scope(tokens: Sequence[str]) -> set[int]:
    """Indices of the negated words of one clause (the words after a negator, up to a break)."""
    negated: set[int] = set()
    for i in range(len(tokens)):
        if not is_negator(tokens, i):
            continue
        reach: list[int] = []
        for j in range(i + 1, min(len(tokens), i + 1 + SCOPE_MAX)):
            if tokens[j] in BREAKS and j > i + 1:
                break
            reach.append(j)
        if STOP_AFTER in tokens[i + 1:i + 2 + SCOPE_MAX]:
            continue  # "không kinh doanh nữa": stopping, the same field
        negated.update(reach)
    return negated


def negated_positions(text: str, tokenize: Callable[[str], list[str]]) -> tuple[list[str], set[int]]:
    """(tokens of ``text``, indices of the negated ones), clause by clause.

    ``tokenize`` is the greeter's repairing tokenizer; it works word by word, so the clauses'
    tokens put together are the tokens of the whole text."""
    tokens: list[str] = []
    negated: set[int] = set()
    for clause in CLAUSE.split(text):
        part = tokenize(clause)
        negated.update(len(tokens) + j for j in clause_scope(part))
        tokens.extend(part)
    return tokens, negated


def holds_negation(phrase_words: Sequence[str]) -> bool:
    """A phrase that says the negation itself ("khong nhan thua ke") is not voided by it."""
    return any(w in ("khong", "chang", "hong", "chua", "ko") for w in phrase_words)


def without_negated(tokens: Sequence[str], negated: set[int]) -> list[str]:
    """The tokens with the negated ones left out (what the learned model reads)."""
    return [t for i, t in enumerate(tokens) if i not in negated]


__all__ = ["clause_scope", "holds_negation", "is_negator", "negated_positions", "without_negated"]
