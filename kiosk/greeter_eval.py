"""Measure the greeter on labelled phrasings (tests/data/greeter_phrases.tsv).

Shared by the tests and ``luot greet --evaluate`` so the figure in the docs, the CLI and the test
suite is one computation. Splits: ``tuned`` lines may guide the lexicon; ``heldout`` lines (drawn by hash
before the lexicon existed) never do. ``probe`` and ``probe2`` are fresh batches written later, by
someone who had not seen them answered, and measured as they are; a probe batch is never tuned on
while it is a probe (once its misses are used to tune the lexicon, its lines move to ``tuned`` and
the next batch becomes the honest figure). The newest probe figure is the most honest estimate for
phrasings nobody anticipated.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.greeter import Greeter

NONE_LABEL = "NONE"
SPLITS = ("tuned", "heldout", "probe", "probe2")


@dataclass(frozen=True)
class Phrase:
    text: str
    expected: str | None  # None: the greeter should ask back
    split: str
    line: int


def load_phrases(path: str | Path) -> list[Phrase]:
    """Read ``text<TAB>group-or-NONE<TAB>split`` lines (a split of ``SPLITS``, ``tuned`` when left out);
    '#' starts a comment line."""
    phrases: list[Phrase] = []
    for number, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip() or raw.startswith("#"):
            continue
        parts = raw.split("\t")
        if len(parts) not in (2, 3):
            raise ValueError(f"{path}:{number}: expected text<TAB>group<TAB>split, got {len(parts)} column(s)")
        split = parts[2].strip() if len(parts) == 3 and parts[2].strip() else "tuned"
        if split not in SPLITS:
            raise ValueError(f"{path}:{number}: split must be one of {SPLITS}, got {split!r}")
        label = parts[1].strip()
        phrases.append(Phrase(unicodedata.normalize("NFC", parts[0]), None if label == NONE_LABEL else label, split, number))
    return phrases


def evaluate(greeter: Greeter, phrases: list[Phrase]) -> dict[str, Any]:
    """Accuracy overall and per split (None for a split without lines), plus every miss."""
    hits = {split: 0 for split in SPLITS}
    counts = {split: 0 for split in SPLITS}
    misses: list[dict[str, Any]] = []
    for phrase in phrases:
        answer = greeter.understand(phrase.text)
        counts[phrase.split] += 1
        if answer.group == phrase.expected:
            hits[phrase.split] += 1
        else:
            misses.append({
                "line": phrase.line, "split": phrase.split, "text": phrase.text,
                "expected": phrase.expected or NONE_LABEL, "got": answer.group or NONE_LABEL,
                "confidence": round(answer.confidence, 3),
            })
    total = sum(counts.values())

    def ratio(hit: int, count: int) -> float | None:
        return round(hit / count, 4) if count else None

    return {
        "phrases": total,
        "overall": ratio(sum(hits.values()), total),
        **{split: ratio(hits[split], counts[split]) for split in SPLITS},
        "counts": counts,
        "confusion": misses,
    }
