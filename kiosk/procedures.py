"""The procedure catalogue: which administrative procedure a citizen means, not only which group.

A group answer ("Hộ tịch: bring the birth certificate") told people who came to marry to bring a
birth paper. The catalogue (``procedure_catalogue.toml``, data a centre can extend) names each
procedure with its own documents, legal time and fee, and lists what people ask a ward that another
agency does (identity cards, divorce, social insurance…) with where to go instead.

Matching is deliberately simple and explainable, on the greeter's repaired, diacritic-free tokens:
each phrase weighs its number of words (at least 2), so "đăng ký lại khai sinh" outweighs
"khai sinh"; a phrase may have gaps ("khai sinh ~ sai": both, in order, anything between); an entry
scores its best phrase plus a quarter of its other phrases. After "chứng thực"-like verbs the paper
named next is the object of a certification, so other fields' phrases there count for little.

Which counter serves a procedure is the centre's business: ``[greeter.procedure_groups]`` in its
centre file maps fields or procedure ids to its groups; a field named like a group goes there;
anything else goes to the guidance group.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiosk.negation import holds_negation
from kiosk.textnorm import words
from luot.config import CentreConfig

CATALOGUE_PATH = Path(__file__).resolve().parent / "procedure_catalogue.toml"
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,60}$")
CODE_PATTERN = re.compile(r"^$|^[0-9]\.[0-9]{6}$")  # e.g. 1.001193; empty when not known reliably
GAP = "~"
GAP_PENALTY = 0.25      # a phrase with gaps counts a little less than the same words in a row
OTHER_PHRASES = 0.25    # share of an entry's further matched phrases added to its best one
OBJECT_DAMPING = 0.3    # weight left to another field's phrase named after a certification verb
MIN_WORD_WEIGHT = 2.0   # a single distinctive word ("tuất", "cccd") counts like a two-word phrase

Phrase = tuple[tuple[str, ...], ...]  # parts, each a run of words


@dataclass(frozen=True)
class Entry:
    """A procedure the ward handles, or (``outside``) a matter another agency handles."""

    id: str
    name: str
    name_en: str
    phrases: tuple[Phrase, ...]
    field: str = ""                     # procedures: lĩnh vực, mapped to a centre group
    code: str = ""                      # national catalogue code; empty when not known reliably
    documents: tuple[str, ...] = ()
    legal_days: int | None = None
    legal_time: str = ""
    fee: str = ""
    authority: str = ""
    outside: bool = False
    agency: str = ""                    # outside: who does it (entries with one agency send to one place)
    where: str = ""
    where_en: str = ""

    def to_json(self) -> dict[str, Any]:
        if self.outside:
            return {"id": self.id, "name": self.name, "name_en": self.name_en, "agency": self.agency,
                    "where": self.where, "where_en": self.where_en}
        return {"id": self.id, "name": self.name, "name_en": self.name_en, "field": self.field, "code": self.code,
                "documents": list(self.documents), "legal_days": self.legal_days, "legal_time": self.legal_time,
                "fee": self.fee, "authority": self.authority}


def parse_phrase(text: str) -> Phrase:
    """``"khai sinh ~ sai"`` -> ``(("khai", "sinh"), ("sai",))``; empty parts are refused."""
    parts = tuple(tuple(words(part)) for part in text.split(GAP))
    if not parts or any(not part for part in parts):
        raise ValueError(f"phrase {text!r} has an empty part (write words on both sides of {GAP!r})")
    return parts


def phrase_weight(phrase: Phrase) -> float:
    count = sum(len(part) for part in phrase)
    return max(MIN_WORD_WEIGHT, float(count)) - GAP_PENALTY * (len(phrase) - 1)


@dataclass
class Catalogue:
    """Procedures and outside matters merged from the shipped file and a centre's own files."""

    entries: dict[str, Entry] = field(default_factory=dict)
    object_verbs: list[tuple[str, ...]] = field(default_factory=list)
    object_field: str = "chung-thuc"

    @classmethod
    def load(cls, paths: Iterable[str | Path] = ()) -> "Catalogue":
        catalogue = cls()
        for path in [CATALOGUE_PATH, *map(Path, paths)]:
            with open(path, "rb") as handle:
                catalogue.merge(tomllib.load(handle), str(path))
        return catalogue

    @property
    def procedures(self) -> list[Entry]:
        return [e for e in self.entries.values() if not e.outside]

    @property
    def outside(self) -> list[Entry]:
        return [e for e in self.entries.values() if e.outside]

    def merge(self, data: dict[str, Any], source: str) -> None:
        """Add a file's entries; an existing id gains the new phrases and takes the other keys given.

        Every problem is reported at once, with the file and entry, so a centre fixes its file in one go.
        """
        meta = data.get("meta", {})
        for verb in meta.get("object_verbs", []):
            self.object_verbs.append(tuple(words(verb)))
        self.object_field = meta.get("object_field", self.object_field)
        problems: list[str] = []
        for kind in ("procedures", "outside"):
            for index, raw in enumerate(data.get(kind, [])):
                where = f"{source}: {kind}[{index}]"
                try:
                    entry = self._entry(raw, kind == "outside", where)
                except (ValueError, TypeError) as error:
                    problems.append(f"{where}: {error}")
                    continue
                old = self.entries.get(entry.id)
                if old is not None and old.outside != entry.outside:
                    problems.append(f"{where}: id {entry.id!r} is already used by a{'n outside matter' if old.outside else ' procedure'}")
                    continue
                self.entries[entry.id] = entry
        if problems:
            raise ValueError("\n".join(problems))

    def _entry(self, raw: dict[str, Any], outside: bool, where: str) -> Entry:
        known = {"id", "name", "name_en", "say", "field", "code", "documents", "legal_days", "legal_time", "fee",
                 "authority", "agency", "where", "where_en"}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(known))}")
        ident = str(raw.get("id", ""))
        if not ID_PATTERN.match(ident):
            raise ValueError(f"id {ident!r} must be lowercase letters, digits and dashes")
        old = self.entries.get(ident)
        base: dict[str, Any] = {} if old is None else {k: getattr(old, k) for k in old.__dataclass_fields__}
        phrases = list(base.get("phrases", ()))
        for text in raw.get("say", []):
            phrase = parse_phrase(str(text))
            if phrase not in phrases:
                phrases.append(phrase)
        if not phrases:
            raise ValueError(f"{ident}: give at least one phrasing in 'say'")
        values = {**base, **{k: v for k, v in raw.items() if k not in ("say", "documents")}}
        if "documents" in raw:
            values["documents"] = tuple(str(d) for d in raw["documents"])
        if not str(values.get("name", "")).strip():
            raise ValueError(f"{ident}: 'name' is required")
        code = str(values.get("code", ""))
        if not CODE_PATTERN.match(code):
            raise ValueError(f"{ident}: code {code!r} is not a national catalogue code like 1.001193 (leave it empty when unsure)")
        days = values.get("legal_days")
        if days is not None and (not isinstance(days, int) or not 0 <= days <= 365):
            raise ValueError(f"{ident}: legal_days must be a whole number of working days 0-365, or left out")
        if outside:
            if not values.get("where") or not values.get("agency"):
                raise ValueError(f"{ident}: an outside matter needs 'agency' and 'where' (where to go instead)")
        elif not values.get("field") or not values.get("documents"):
            raise ValueError(f"{ident}: a procedure needs 'field' and 'documents'")
        values.update(id=ident, phrases=tuple(phrases), outside=outside)
        values.setdefault("name_en", "")
        return Entry(**values)

    def vocabulary(self) -> set[str]:
        """Every word the catalogue's phrases use (the greeter must not 'correct' them away)."""
        return {w for e in self.entries.values() for phrase in e.phrases for part in phrase for w in part}

    # -- matching -------------------------------------------------------------------------------
    def rank(self, tokens: Sequence[str], not_before: Mapping[str, Sequence[tuple[str, ...]]] | None = None,
             negated: Set[int] = frozenset()) -> list[tuple[Entry, float]]:
        """Entries with evidence in ``tokens`` (already normalised and repaired), best first.

        ``not_before`` (the greeter lexicon's table) voids a phrase whose last word is followed by one of
        the listed words: "mẹ tôi mất" is a death, "tôi mới mất ví" is not. A phrase that starts on a
        ``negated`` index (kiosk/negation.py: "hổng có lương hưu") does not count, unless the phrase
        says the negation itself ("không nhận thừa kế").
        """
        verb_ends = [start + len(verb) for verb in self.object_verbs for start in _find(tokens, verb, 0)]
        not_before = not_before or {}
        scored: list[tuple[Entry, float]] = []
        for entry in self.entries.values():
            weights = []
            for phrase in entry.phrases:
                span = _find_phrase(tokens, phrase)
                if span is None:
                    continue
                start, end = span
                if start in negated and not holds_negation([w for part in phrase for w in part]):
                    continue
                followers = not_before.get(tokens[end - 1], ())
                if any(tuple(tokens[end:end + len(f)]) == f for f in followers):
                    continue
                weight = phrase_weight(phrase)
                if entry.field != self.object_field and any(end <= start for end in verb_ends):
                    weight *= OBJECT_DAMPING
                weights.append(weight)
            if weights:
                weights.sort(reverse=True)
                scored.append((entry, weights[0] + OTHER_PHRASES * sum(weights[1:])))
        return sorted(scored, key=lambda item: (-item[1], item[0].id))


def _find(tokens: Sequence[str], part: tuple[str, ...], start: int) -> list[int]:
    n = len(part)
    return [i for i in range(start, len(tokens) - n + 1) if tuple(tokens[i:i + n]) == part]


def _find_phrase(tokens: Sequence[str], phrase: Phrase) -> tuple[int, int] | None:
    """(start, end) of the first occurrence of the phrase's parts in order, or None."""
    first = _find(tokens, phrase[0], 0)
    for begin in first:
        position = begin + len(phrase[0])
        for part in phrase[1:]:
            found = _find(tokens, part, position)
            if not found:
                break
            position = found[0] + len(part)
        else:
            return begin, position
    return None


def group_for(entry: Entry, config: CentreConfig) -> str:
    """The centre group whose counter handles this procedure (the guidance group when unmapped)."""
    codes = {g.code for g in config.groups}
    mapping = config.greeter.procedure_groups
    for key in (entry.id, entry.field):
        if key in mapping and mapping[key] in codes:
            return mapping[key]
    if entry.field in codes:
        return entry.field
    return guidance_group(config)


def guidance_group(config: CentreConfig) -> str:
    """Where a citizen is helped when no counter is known: the configured one, else "khac", else the last."""
    codes = [g.code for g in config.groups]
    wanted = config.greeter.guidance_group
    if wanted in codes:
        return wanted
    return "khac" if "khac" in codes else codes[-1]
