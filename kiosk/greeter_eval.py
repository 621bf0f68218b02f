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

from kiosk.greeter import Greeter, GreeterAnswer

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


# -- procedure-level probes (issue 16) ----------------------------------------------------------
OUT_LABEL = "OUT"


@dataclass(frozen=True)
class ProbeLine:
    """One labelled line: the counter group (or OUT / NONE), the catalogue id (or "-"), the batch."""

    text: str
    group: str
    procedure: str | None
    batch: str
    line: int


def load_probe_lines(path: str | Path) -> list[ProbeLine]:
    """Read ``text<TAB>group|OUT|NONE<TAB>procedure-or-outside-id|-<TAB>batch``; '#' starts a comment."""
    lines: list[ProbeLine] = []
    for number, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip() or raw.startswith("#"):
            continue
        parts = raw.split("\t")
        if len(parts) != 4 or not all(p.strip() for p in parts):
            raise ValueError(f"{path}:{number}: expected text<TAB>group<TAB>procedure<TAB>batch, got {len(parts)} column(s)")
        text, group, procedure, batch = (p.strip() for p in parts)
        lines.append(ProbeLine(unicodedata.normalize("NFC", text), group, None if procedure == "-" else procedure, batch, number))
    return lines


def is_probe_file(path: str | Path) -> bool:
    """True when the file's first labelled line has the four procedure-level columns."""
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        if raw.strip() and not raw.startswith("#"):
            return len(raw.split("\t")) == 4
    return False


def judge(greeter: Greeter, line: ProbeLine) -> tuple[str, bool]:
    """(counter-level verdict: "right" | "asked" | "wrong", right at the procedure level).

    Counter level: the right group's ticket (a procedure or group answer), or for another agency's work
    the right agency. Asking back, or offering only the guidance ticket, is "asked". Anything else
    that sends the citizen somewhere is "wrong" (confidently wrong: a second wait). For a line that is
    no procedure, asking back is right and naming any group or agency is wrong.
    """
    return judge_answer(greeter, line, greeter.understand(line.text))


def judge_answer(greeter: Greeter, line: ProbeLine, answer: GreeterAnswer) -> tuple[str, bool]:
    """:func:`judge` of an answer already given (bench/select_greeter_thresholds.py tries thresholds
    on answers computed once)."""
    named = (answer.procedure or answer.outside or {}).get("id")
    sent_out = answer.outside is not None
    if line.group == NONE_LABEL:
        verdict = "right" if answer.group is None and not sent_out else "wrong"
        return verdict, verdict == "right"
    if line.group == OUT_LABEL:
        expected = greeter.catalogue.entries.get(line.procedure or "")
        if sent_out:
            agency = answer.outside["agency"]
            verdict = "right" if expected is not None and agency == expected.agency else "wrong"
        elif answer.group is None or answer.group == "khac":
            verdict = "asked"
        else:
            verdict = "wrong"
        return verdict, named == line.procedure
    if answer.group == line.group:
        return "right", named == line.procedure
    if answer.group is None and not sent_out:
        return "asked", False
    return "wrong", False


def evaluate_probes(greeter: Greeter, lines: list[ProbeLine]) -> dict[str, Any]:
    """Per batch: right / asked back / confidently wrong (counter level), right at the procedure level,
    and every line that was not right."""
    batches: dict[str, dict[str, Any]] = {}
    misses: list[dict[str, Any]] = []
    for line in lines:
        verdict, procedure_right = judge(greeter, line)
        tally = batches.setdefault(line.batch, {"lines": 0, "right": 0, "asked": 0, "wrong": 0, "procedure_right": 0})
        tally["lines"] += 1
        tally[verdict] += 1
        tally["procedure_right"] += procedure_right
        if verdict != "right" or not procedure_right:
            answer = greeter.understand(line.text)
            misses.append({"line": line.line, "batch": line.batch, "text": line.text, "verdict": verdict,
                           "expected": f"{line.group}/{line.procedure or '-'}",
                           "got": f"{answer.group or ('OUT' if answer.outside else 'ASK')}/"
                                  f"{(answer.procedure or answer.outside or {}).get('id', '-')}",
                           "choices": [c["id"] for c in answer.choices]})
    for tally in batches.values():
        n = tally["lines"]
        tally.update({f"{k}_rate": round(tally[k] / n, 3) for k in ("right", "asked", "wrong", "procedure_right")})
    return {"batches": batches, "misses": misses}
