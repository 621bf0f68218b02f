"""Greeter ("AI robot") mode: understand what a citizen types or says and name the procedure group.

Everything runs offline: centres have unstable internet and the kiosk must answer at once, so there
is no cloud service and no downloaded model. The rules below are pure Python; a linear classifier
(``kiosk/linear.py``, scikit-learn, trained at start) then makes their answer more careful (ask, with
one button each, instead of a counter it finds unlikely), more precise (the procedure inside the
same counter), or, only when it is sure, answers where the rules would ask back or overrules them
(the rules' pick stays a button); see ``Greeter.understand`` and ``Combination``. The rules:

1. **Normalise** the text: NFC/NFD alike, lowercase, strip diacritics (``đ`` -> ``d``), drop
   punctuation. Many visitors type without diacritics or with a half-working keyboard; after this
   step "Sổ đỏ", "so do" and "SỔ ĐỎ" are the same.
2. **Repair tokens** that are not known words: expand abbreviations ("dk" -> "dang ky"), undo raw
   Telex/VNI keystrokes ("ddawng" -> "dang"), teen code ("fép" -> "phep"), glued words
   ("khaisinh"), and finally one-letter typos against the lexicon's own words.
3. **Match phrases** from ``greeter_lexicon.toml`` (data a centre can extend), longest first and
   without overlap, so "hộ kinh doanh" is not also read as "hộ ..." of another group. A second,
   weaker pass compares phrases by sound (tr/ch, s/x, d/gi/r, final n/ng, c/t are confused in
   writing all over Vietnam: "tạm chú" means "tạm trú"). A phrase may name a word class
   ("{kin} {mine} mất": "mẹ tôi mất", "chồng em mất"), and a phrase ending in a ``[not_before]``
   word does not count when one of its listed words follows ("mẹ tôi mất sổ đỏ" is a lost title).
4. **Score** each group by the weights found; a *fallback* group (guidance) only counts when no
   specific procedure was recognised. Confidence grows with the evidence and shrinks with
   competing groups; below ``THRESHOLD`` the greeter asks back instead of guessing, because a
   wrong ticket costs the citizen a second wait.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiosk import linear
from kiosk.learned import NaiveBayes
from kiosk.procedures import Catalogue, Entry, group_for, guidance_group
from kiosk.negation import holds_negation, negated_positions, without_negated
from kiosk.textnorm import normalise, strip_diacritics, words
from luot.config import CentreConfig, Group

__all__ = ["Combination", "Greeter", "GreeterAnswer", "Lexicon", "THRESHOLD", "legal_time_en", "legal_time_vi", "normalise",
           "strip_diacritics", "words"]

LEXICON_PATH = Path(__file__).resolve().parent / "greeter_lexicon.toml"
THRESHOLD = 0.5          # below this confidence the greeter asks instead of answering
SATURATION = 2.5         # score at which evidence is "1 - 1/e" convincing
FALLBACK_DAMPING = 0.25  # weight left to a fallback group once a specific one is recognised
SPECIFIC_ENOUGH = 2.0    # score of a specific group that silences the fallback group
SOUND_WEIGHT = 0.75      # a phrase matched only by sound counts less than an exact one
FUZZY_WEIGHT = 0.75      # a phrase matched with one typo across its letters counts less
FUZZY_MIN_LETTERS = 6    # shorter phrases are too alike for a one-typo match to mean anything
OBJECT_DAMPING = 0.3     # weight left to a document named after "công chứng"-like verbs
MAX_PHRASE_WORDS = 5
PROCEDURE_MIN = 2.0      # catalogue evidence below this names no procedure (group-level answer instead)
PROCEDURE_CLOSE = 0.5    # entries within this of the best are "close": the greeter asks with one button each
PROCEDURE_STRONG = 3.0   # a procedure this well evidenced overrides a confident group-level disagreement
GROUP_DISAGREES = 0.7    # group-level confidence at which a weakly evidenced procedure is asked about instead
MAX_CHOICES = 3
LEARNED_PICK = 0.9       # posterior at which the learned ranker names the procedure of a group-level answer
# The linear model (kiosk/linear.py) and the rules combine under the thresholds of ``Combination``,
# read from kiosk/greeter_combination.toml: chosen on lines the model never trained on (the dev probe
# batches with the shipped model, and k-fold cross-validation of the training files the rules were
# never tuned on) by the fewest asked-back + W x confidently wrong lines, by
# ``bench/select_greeter_thresholds.py`` (which rewrites that file with --write); docs/greeter.md.
COMBINATION_PATH = Path(__file__).resolve().parent / "greeter_combination.toml"


@dataclass(frozen=True)
class Combination:
    """How far the linear model may change the rules' answer (probabilities are calibrated; 2.0: never).

    The model may question a rules answer for another counter (a question with both buttons is not
    a second wait), answer instead when very sure (the rules' pick left as a button), answer where the
    rules ask back, turn chit-chat the rules took for a procedure into a question, and name the
    procedure inside the counter the rules chose (unless the rules ask between close procedures: then
    it only puts its choice first)."""

    veto: float = 0.4            # another counter: ask with both buttons (the rules found a catalogue phrasing)
    veto_weak: float = 0.2       # the same when the rules' answer rests on the lexicon alone
    override: float = 0.95       # another counter: answer with it, the rules' pick a button ...
    override_strong: float = 0.95  # ... the same when the rules' procedure is well evidenced (>= PROCEDURE_STRONG)
    fill: float = 0.7            # where the rules ask back: answer with the model's procedure ...
    fill_min_words: int = 3      # ... when the text has this many words that are not function words ("tôi mất")
    pick: float = 0.5            # same counter: name the model's procedure, the rules' one a button
    none_weak: float = 0.6       # "no procedure" turns a lexicon-only answer into a question ...
    none_backing: float = 0.05   # ... (and every "no procedure" veto) when the model gives that counter less than this
    none_thin: float = 2.0       # "no procedure" turns a catalogue answer of little evidence into a question ...
    thin_evidence: float = 2.0   # ... when its best catalogue score is at most this (one phrase of one or two words)
    guidance_veto: float = 2.0   # the rules give the guidance group, the model another counter: ask with both
    guidance_override: float = 2.0  # ... or answer with the model's, the guidance ticket a button
    guidance_none: float = 2.0   # the rules give the guidance group, the model "no procedure": ask

    @classmethod
    def load(cls, path: str | Path = COMBINATION_PATH) -> "Combination":
        """The thresholds in ``path`` (``[combination]`` table), the defaults above for keys it lacks."""
        path = Path(path)
        if not path.exists():
            return cls()
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("combination", {})
        unknown = set(table) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"{path}: unknown key(s) in [combination]: {', '.join(sorted(unknown))}")
        return cls(**table)


# -- text normalisation: kiosk.textnorm (re-exported here) -------------------------------
_INITIAL_SOUNDS = (("ngh", "ng"), ("gh", "g"), ("tr", "ch"), ("gi", "d"), ("s", "x"), ("r", "d"), ("z", "d"), ("l", "n"), ("k", "c"))
_FINAL_SOUNDS = (("ng", "n"), ("nh", "n"), ("ch", "t"), ("c", "t"), ("y", "i"))


def sound_key(word: str) -> str:
    """Fold the spelling pairs Vietnamese writers confuse (regional pronunciation) into one key."""
    for written, key in _INITIAL_SOUNDS:
        if word.startswith(written):
            word = key + word[len(written):]
            break
    for written, key in _FINAL_SOUNDS:
        if word.endswith(written):
            word = word[: -len(written)] + key
            break
    return word


def _damerau_within_one(a: str, b: str) -> bool:
    """True when ``a`` becomes ``b`` with at most one insertion, deletion, change or swap."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    for i in range(len(long_)):
        if long_[:i] + long_[i + 1:] == short:
            return True
    return False


_TELEX_VOWELS = (("uow", "uo"), ("dd", "d"), ("aa", "a"), ("ee", "e"), ("oo", "o"), ("aw", "a"), ("ow", "o"), ("uw", "u"))


def _untelex(word: str) -> str:
    """Undo raw Telex keystrokes typed with the input method off ("ddawngs" -> "dang")."""
    out = word
    for keys, letter in _TELEX_VOWELS:
        out = out.replace(keys, letter)
    tone = re.sub(r"(?<=[a-z])[sfrxj](?=[a-z]*$)", "", out, count=1) if len(out) > 2 else out
    return tone.replace("w", "u")


_TEEN_INITIALS = (("f", "ph"), ("j", "gi"), ("z", "d"), ("w", "qu"), ("k", "c"), ("dz", "d"))


# -- the lexicon -----------------------------------------------------------------------------
@dataclass
class Lexicon:
    """Phrases per group code plus typing aids, merged from one or more TOML files."""

    phrases: dict[str, dict[tuple[str, ...], float]] = field(default_factory=dict)
    fallback: set[str] = field(default_factory=set)
    takes_object: dict[tuple[str, ...], str] = field(default_factory=dict)
    clarify: dict[tuple[str, ...], list[str]] = field(default_factory=dict)
    spelling: dict[tuple[str, ...], str] = field(default_factory=dict)  # phrase as written, with diacritics
    abbreviations: dict[str, list[str]] = field(default_factory=dict)
    known_words: set[str] = field(default_factory=set)
    function_words: set[str] = field(default_factory=set)
    suggestions: list[dict[str, str]] = field(default_factory=list)
    word_classes: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)
    # group code -> phrase naming word classes ("{kin} {mine} mất") -> (weight, file it came from)
    patterns: dict[str, dict[str, tuple[float, str]]] = field(default_factory=dict)
    not_before: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)

    @classmethod
    def load(cls, paths: Iterable[Path]) -> "Lexicon":
        lexicon = cls()
        for path in paths:
            lexicon.merge(tomllib.loads(Path(path).read_text(encoding="utf-8")), str(path))
        lexicon.expand_patterns()
        return lexicon

    def expand_patterns(self) -> None:
        """Turn each phrase naming word classes into one phrase per choice of words (after every file
        is merged, so a centre's file may add words to a class). A phrase written out in full keeps
        its own weight. Expanded phrases are not echoed back to the citizen ("Ông/bà cần: …"): they
        name a life event ("mẹ tôi mất"), not the procedure."""
        for code, table in self.patterns.items():
            phrases = self.phrases.setdefault(code, {})
            for pattern, (weight, source) in table.items():
                choices: list[list[tuple[str, ...]]] = []
                for part in pattern.split():
                    name = re.fullmatch(r"\{(\w+)\}", part)
                    if name and name.group(1) not in self.word_classes:
                        raise ValueError(f"{source}: groups.{code}.phrases[{pattern!r}] names the word class "
                                         f"{name.group(1)!r}, which [word_classes] does not define")
                    choices.append(self.word_classes[name.group(1)] if name else [tuple(words(part))])
                for choice in itertools.product(*choices):
                    key = tuple(w for part in choice for w in part)
                    if len(key) > MAX_PHRASE_WORDS:
                        raise ValueError(f"{source}: groups.{code}.phrases[{pattern!r}] gives {' '.join(key)!r}, "
                                         f"longer than {MAX_PHRASE_WORDS} words")
                    phrases.setdefault(key, weight)

    def merge(self, data: dict[str, Any], source: str = "lexicon") -> None:
        for name, members in data.get("word_classes", {}).items():
            known = self.word_classes.setdefault(name, [])
            for member in members:
                if words(member) and tuple(words(member)) not in known:  # "bà" and "ba" are one entry
                    known.append(tuple(words(member)))
        for word, followers in data.get("not_before", {}).items():
            self.not_before.setdefault(normalise(word), []).extend(tuple(words(f)) for f in followers if words(f))
        for short, long_ in data.get("abbreviations", {}).items():
            self.abbreviations[normalise(short)] = words(str(long_))
        self.known_words.update(normalise(w) for w in data.get("known_words", {}).get("words", []))
        self.function_words.update(normalise(w) for w in data.get("known_words", {}).get("function", []))
        self.known_words |= self.function_words
        for item in data.get("suggestions", []):
            if not {"text", "group"} <= item.keys():
                raise ValueError(f"{source}: each [[suggestions]] needs 'text' and 'group'")
            self.suggestions.append({"text": item["text"], "text_en": item.get("text_en", ""), "group": item["group"]})
        for phrase, codes in data.get("clarify", {}).items():
            self.clarify[tuple(words(phrase))] = [str(code) for code in codes]
        for code, entry in data.get("groups", {}).items():
            if entry.get("fallback"):
                self.fallback.add(code)
            for verb in entry.get("takes_object", []):
                self.takes_object[tuple(words(verb))] = code
            table = self.phrases.setdefault(code, {})
            spelled: dict[tuple[str, ...], str] = {}
            for phrase, weight in entry.get("phrases", {}).items():
                key = tuple(words(phrase))
                if not key or not isinstance(weight, (int, float)) or weight <= 0:
                    raise ValueError(f"{source}: groups.{code}.phrases[{phrase!r}] needs words and a positive weight")
                if "{" in phrase:  # names a word class: expanded once every file is merged
                    self.patterns.setdefault(code, {})[" ".join(phrase.split())] = (float(weight), source)
                    continue
                if key in spelled:  # one would silently overwrite the other
                    raise ValueError(
                        f"{source}: groups.{code}.phrases {spelled[key]!r} and {phrase!r} are the same once "
                        "diacritics are stripped; keep one"
                    )
                spelled[key] = phrase
                self.spelling[key] = phrase
                table[key] = float(weight)


def _derived_phrases(group: Group, known: set[str], spelling: dict[tuple[str, ...], str]) -> dict[tuple[str, ...], float]:
    """Phrases read from a group's own name and description, for groups the lexicon lacks."""
    table: dict[tuple[str, ...], float] = {}
    for part in re.split(r"[,;()/]", group.description):
        key = tuple(words(part))
        if len(key) >= 2:
            table.setdefault(key, 3.0)
            spelling.setdefault(key, part.strip().lower())
        for word in key:
            if len(word) >= 3 and word not in known:
                table.setdefault((word,), 1.5)
    return table


# -- answers ---------------------------------------------------------------------------------
def legal_time_vi(days: int) -> str:
    return "trong ngày" if days == 0 else f"{days} ngày làm việc"


def legal_time_en(days: int) -> str:
    return "the same day" if days == 0 else f"{days} working day{'s' if days != 1 else ''}"


@dataclass(frozen=True)
class GreeterAnswer:
    """What the kiosk shows and says; ``group`` is None when the greeter asks back instead."""

    text: str
    group: str | None
    confidence: float
    alternatives: list[tuple[str, float]]
    reply_vi: str
    reply_en: str
    documents: list[str] = field(default_factory=list)
    legal_days: int | None = None
    question: bool = False
    suggestions: list[str] = field(default_factory=list)
    procedure: dict[str, Any] | None = None   # the catalogue procedure named (documents, time, fee)
    outside: dict[str, Any] | None = None     # another agency's work: where to go instead
    choices: list[dict[str, str]] = field(default_factory=list)  # big buttons: kind, id, label, group
    counters: list[str] = field(default_factory=list)            # counters serving ``group``
    fee: str = ""
    legal_time: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "group": self.group,
            "confidence": round(self.confidence, 3),
            "alternatives": [{"group": code, "score": round(score, 3)} for code, score in self.alternatives],
            "reply_vi": self.reply_vi,
            "reply_en": self.reply_en,
            "documents": list(self.documents),
            "legal_days": self.legal_days,
            "question": self.question,
            "suggestions": list(self.suggestions),
            "procedure": self.procedure,
            "outside": self.outside,
            "choices": [dict(c) for c in self.choices],
            "counters": list(self.counters),
            "fee": self.fee,
            "legal_time": self.legal_time,
        }


@dataclass(frozen=True)
class _Match:
    start: int
    end: int
    phrase: tuple[str, ...]
    kind: str  # "exact", "sound" (spelling confusions) or "fuzzy" (one typo)


# -- the greeter -----------------------------------------------------------------------------
class Greeter:
    """Maps free text to one of the centre's procedure groups, or asks a question back."""

    def __init__(self, config: CentreConfig, extra_lexicons: Sequence[str | Path] = (),
                 extra_catalogues: Sequence[str | Path] = (), training: Sequence[str | Path] = (),
                 learned: bool = True, combination: Combination | None = None) -> None:
        self.config = config
        self.combination = combination or Combination.load()
        self.catalogue = Catalogue.load(extra_catalogues)
        lexicon = Lexicon.load([LEXICON_PATH, *map(Path, extra_lexicons)])
        self.abbreviations = lexicon.abbreviations
        self.known_words = lexicon.known_words
        self.function_words = lexicon.function_words
        self.not_before = lexicon.not_before
        self.fallback = set(lexicon.fallback)
        self.spelling = dict(lexicon.spelling)
        self._suggestions = [s for s in lexicon.suggestions if self._has_group(s["group"])]
        # phrase -> {group code: weight}, only for groups this centre has
        self.index: dict[tuple[str, ...], dict[str, float]] = {}
        for group in config.groups:
            table = dict(lexicon.phrases.get(group.code) or _derived_phrases(group, self.known_words, self.spelling))
            for part in re.split(r"[,;()/]", group.name):  # the name on the kiosk button always works
                if words(part):
                    table.setdefault(tuple(words(part)), 4.0)
                    self.spelling.setdefault(tuple(words(part)), part.strip().lower())
            for phrase, weight in table.items():
                self.index.setdefault(phrase[:MAX_PHRASE_WORDS], {})[group.code] = weight
        self.sound_index: dict[tuple[str, ...], dict[str, float]] = {}
        for phrase, weights in self.index.items():
            if len(phrase) >= 2:
                key = tuple(sound_key(w) for w in phrase)
                slot = self.sound_index.setdefault(key, {})
                for code, weight in weights.items():
                    slot[code] = max(slot.get(code, 0.0), weight * SOUND_WEIGHT)
        self.object_verbs: dict[tuple[str, ...], str] = {}
        for verb, code in lexicon.takes_object.items():
            if self._has_group(code):
                self.object_verbs[verb] = code
                self.object_verbs[tuple(sound_key(w) for w in verb)] = code
        self.clarify = {phrase: [c for c in codes if self._has_group(c)] for phrase, codes in lexicon.clarify.items()}
        # multi-word phrases by their letters, for one-typo matches across a whole phrase ("ket hpn")
        self.joined = {"".join(p): p for p in self.index if len(p) >= 2 and len("".join(p)) >= FUZZY_MIN_LETTERS}
        self.lexicon_words = {w for phrase in self.index for w in phrase}
        self.vocabulary = self.lexicon_words | self.known_words | {w for exp in self.abbreviations.values() for w in exp}
        self.vocabulary |= self.catalogue.vocabulary()  # catalogue words are spelled right, never "corrected"
        # ranks close procedures of one counter (kiosk/learned.py); trained on the catalogue only
        self.ranker = NaiveBayes([(e.id, " ".join(" ".join(part) for part in phrase))
                                  for e in self.catalogue.entries.values() for phrase in e.phrases]
                                 + [(e.id, name) for e in self.catalogue.entries.values() for name in (e.name, e.name_en) if name])
        self._catalogue_words = self.catalogue.vocabulary() - self.function_words
        self.linear = self._train_linear([*linear.TRAINING_PATHS, *map(Path, training)]) if learned else None
        # groups the catalogue's procedures lead to; any other group is the centre's own speciality
        self._catalogue_groups = {group_for(e, config) for e in self.catalogue.procedures}
        # the shipped lexicon's rules, to tell where a centre's own lexicon changed the answer: the model
        # learns the catalogue's phrasings (the centre's too) but never the lexicon's, so it must not
        # question what the centre's own words decided ("nghĩa vụ quân sự" to its guidance desk)
        self._shipped_rules = Greeter(config, extra_catalogues=extra_catalogues, learned=False) if extra_lexicons else None

    def _has_group(self, code: str) -> bool:
        return any(g.code == code for g in self.config.groups)

    def _train_linear(self, paths: Sequence[Path]) -> "linear.LinearModel | None":
        """The linear model over :meth:`learning_documents`; None without scikit-learn."""
        if not linear.available():
            return None
        return linear.trained(tuple(self.learning_documents(paths)))

    def learning_documents(self, paths: Sequence[Path] = ()) -> list[tuple[str, str]]:
        """(entry id, text) the linear model learns from: the catalogue's phrasings and names, and the
        labelled lines in ``paths``. Lines naming an id this catalogue lacks are skipped (another
        centre's lines may name its own procedures). Plain normalised words, not this centre's token
        repair, so every centre with the same catalogue and lines shares one trained model."""
        documents = [(e.id, " ".join(" ".join(part) for part in phrase))
                     for e in self.catalogue.entries.values() for phrase in e.phrases]
        documents += [(e.id, normalise(name)) for e in self.catalogue.entries.values() for name in (e.name, e.name_en) if name]
        for path in paths:
            documents += [(label, self.learning_text(text)) for label, text in linear.load_training(path)
                          if label == linear.NONE_LABEL or label in self.catalogue.entries]
        return documents

    @staticmethod
    def learning_text(text: str) -> str:
        """A training line as the model learns it: normalised words, the negated ones left out."""
        return " ".join(without_negated(*negated_positions(text, words)))

    def _target(self, entry_id: str) -> str | None:
        """Where an entry sends the citizen: its counter group, "out:<agency>", or None (no procedure)."""
        entry = self.catalogue.entries.get(entry_id)
        if entry is None:
            return None
        if entry.outside and entry.id not in self.config.greeter.procedure_groups:
            return f"out:{entry.agency}"
        return self.config.greeter.procedure_groups.get(entry.id) or group_for(entry, self.config)

    # -- token repair ------------------------------------------------------------------------
    def tokens(self, text: str) -> list[str]:
        """Normalised words of ``text`` with abbreviations expanded and typos repaired."""
        out: list[str] = []
        for word in words(text):
            out.extend(self._repair(word))
        return out

    def reading(self, text: str) -> tuple[list[str], frozenset[int]]:
        """(:meth:`tokens`, the indices of the negated ones): "hổng có lương hưu" names no pension
        (kiosk/negation.py), so the lexicon, the catalogue and the learned model leave them out."""
        tokens, negated = negated_positions(text, self.tokens)
        return tokens, frozenset(negated)

    def _repair(self, word: str) -> list[str]:
        if word in self.abbreviations:
            return list(self.abbreviations[word])
        if word in self.vocabulary or word.isdigit():
            return [word]
        candidates = [_untelex(word), re.sub(r"\d", "", word)]
        candidates += [new + word[len(old):] for old, new in _TEEN_INITIALS if word.startswith(old)]
        for candidate in candidates:
            if candidate in self.abbreviations:
                return list(self.abbreviations[candidate])
            if candidate in self.vocabulary:
                return [candidate]
        for cut in range(2, len(word) - 1):  # glued words: "khaisinh", "tamtru"
            head, tail = word[:cut], word[cut:]
            if head in self.lexicon_words and tail in self.lexicon_words and (head, tail) in self.index:
                return [head, tail]
        if len(word) >= 4:
            close = {w for w in self.lexicon_words if len(w) >= 3 and _damerau_within_one(word, w)}
            if len(close) == 1:
                return [close.pop()]
        return [word]

    # -- matching ----------------------------------------------------------------------------
    def _matches(self, tokens: list[str], negated: frozenset[int] = frozenset()) -> list[_Match]:
        found: list[_Match] = []
        keys = [sound_key(t) for t in tokens]
        for start in range(len(tokens)):
            for end in range(start + 1, min(len(tokens), start + MAX_PHRASE_WORDS) + 1):
                phrase = tuple(tokens[start:end])
                if phrase in self.index:
                    found.append(_Match(start, end, phrase, "exact"))
                elif tuple(keys[start:end]) in self.sound_index and self._may_sound_alike(phrase):
                    found.append(_Match(start, end, tuple(keys[start:end]), "sound"))
                elif end - start >= 2 and not set(phrase) <= self.vocabulary:
                    # only when a word is misspelled: "số thứ tự" is one letter from "thủ tục"
                    letters = "".join(phrase)
                    if len(letters) < FUZZY_MIN_LETTERS:
                        continue
                    close = {self.joined[j] for j in self.joined if _damerau_within_one(letters, j)}
                    if len(close) == 1:
                        found.append(_Match(start, end, close.pop(), "fuzzy"))
        found = [match for match in found if not self._object_follows(tokens, match.end)
                 and not (match.start in negated and not holds_negation(tokens[match.start:match.end]))]
        # Longest phrases first, exact before sound before fuzzy, then the heavier one; no overlaps.
        rank = {"exact": 0, "sound": 1, "fuzzy": 2}
        found.sort(key=lambda m: (-(m.end - m.start), rank[m.kind], -max(self._weights(m).values()), m.start))
        taken: set[int] = set()
        chosen: list[_Match] = []
        for match in found:
            span = set(range(match.start, match.end))
            if not span & taken:
                taken |= span
                chosen.append(match)
        return sorted(chosen, key=lambda m: m.start)

    def _object_follows(self, tokens: list[str], end: int) -> bool:
        """The phrase ending before ``end`` means something else before these words ("mất sổ": lost)."""
        followers = self.not_before.get(tokens[end - 1], ())
        return any(tuple(tokens[end:end + len(f)]) == f for f in followers)

    def _may_sound_alike(self, phrase: tuple[str, ...]) -> bool:
        """A grammatical word spelled right ("cho") is not a misspelling ("nhà cho" is not "nhà trọ")."""
        return not any(word in self.function_words for word in phrase)

    def _weights(self, match: _Match) -> dict[str, float]:
        if match.kind == "sound":
            return self.sound_index[match.phrase]
        weights = self.index[match.phrase]
        return weights if match.kind == "exact" else {code: w * FUZZY_WEIGHT for code, w in weights.items()}

    def scores(self, text: str) -> dict[str, float]:
        """Evidence per group code (after fallback damping); empty when nothing was recognised."""
        return self._evidence(*self.reading(text))[0]

    def _evidence(self, tokens: list[str], negated: frozenset[int] = frozenset()
                  ) -> tuple[dict[str, float], dict[str, tuple[str, ...]]]:
        """Scores per group and, per group, the phrase that weighed most (to name it back)."""
        totals: dict[str, float] = {}
        best: dict[str, tuple[float, tuple[str, ...]]] = {}
        verb_group: str | None = None  # set once a document-taking verb was read
        for match in self._matches(tokens, negated):
            for code, weight in self._weights(match).items():
                damped = verb_group is not None and code != verb_group
                weight *= OBJECT_DAMPING if damped else 1.0
                totals[code] = totals.get(code, 0.0) + weight
                if match.kind != "sound" and weight > best.get(code, (0.0, ()))[0]:
                    best[code] = (weight, match.phrase)
            verb_group = self.object_verbs.get(match.phrase, verb_group)
        if any(score >= SPECIFIC_ENOUGH for code, score in totals.items() if code not in self.fallback):
            for code in self.fallback & totals.keys():
                totals[code] *= FALLBACK_DAMPING
        return totals, {code: phrase for code, (_, phrase) in best.items()}

    @staticmethod
    def _confidences(scores: dict[str, float]) -> list[tuple[str, float]]:
        total = sum(scores.values())
        ranked = [(code, (1 - math.exp(-s / SATURATION)) * s / total) for code, s in scores.items() if s > 0]
        return sorted(ranked, key=lambda item: (-item[1], item[0]))

    def understand(self, text: str) -> GreeterAnswer:
        """Answer one utterance: the procedure with what to bring, where to go for another agency's work,
        a question with one button per close procedure, or (no procedure clear) the group-level answer.
        The rules answer first; the linear model (when installed) may then make that answer more
        careful (ask instead of sending to a counter it finds unlikely, or instead of a guidance ticket
        or a one-phrase answer when it is sure of something else) or more precise (name the procedure
        inside the same counter), answer where the rules ask back, or answer instead of them when very
        sure (the rules' pick a button): :meth:`combine`, thresholds in :class:`Combination`."""
        reading = self.reading(text)  # tokenised (and repaired) once, for the rules and the model
        answer, evidence = self._rules(text, reading)
        if self.linear is None or self._centre_words_decided(text, answer):
            return answer
        return self.combine(text, answer, evidence, self.linear.posteriors(" ".join(without_negated(*reading))))

    def _centre_words_decided(self, text: str, answer: GreeterAnswer) -> bool:
        """Did the centre's own lexicon change the rules' answer (another counter, agency or procedure
        than the shipped lexicon gives)? Then it stands as the rules gave it: the centre checked its
        words with ``luot greet --evaluate``, the model never saw them."""
        if self._shipped_rules is None:
            return False
        shipped = self._shipped_rules._understand_rules(text)

        def where(a: GreeterAnswer) -> tuple[object, ...]:
            return (a.group, (a.outside or {}).get("id"), (a.procedure or {}).get("id"), a.question)
        return where(shipped) != where(answer)

    def combine(self, text: str, answer: GreeterAnswer, evidence: float,
                posteriors: Sequence[tuple[str, float]], combination: "Combination | None" = None) -> GreeterAnswer:
        """The rules' ``answer`` (``evidence``: its best catalogue score, 0 when it rests on the lexicon
        alone) with the model's ``posteriors`` (best first), under ``combination`` (default: this
        greeter's). Separate from :meth:`understand` so bench/select_greeter_thresholds.py can try
        thresholds on answers and posteriors computed once."""
        c = combination or self.combination
        label, probability = posteriors[0]
        weak = evidence <= 0.0
        rules_target = f"out:{answer.outside['agency']}" if answer.outside else answer.group
        if rules_target is None:
            return self._fill(text, answer, label, probability, c.fill, c)
        learned_target = self._target(label)
        guidance = guidance_group(self.config)  # the guidance desk is where the unsure go anyway
        ours = rules_target.startswith("out:") or rules_target in self._catalogue_groups  # not a centre's speciality
        if weak and not self._says_more_than_the_group(text, rules_target):
            ours = False  # the citizen named a counter ("Bảo trợ xã hội", "hướng dẫn"): that is where they go
        if label == linear.NONE_LABEL and ours and self._backing(posteriors, rules_target) < c.none_backing:
            # the rules heard a procedure in chit-chat: the lexicon alone ("chỗ photo ở đâu"), one short
            # catalogue phrase ("bấm số ở đâu": "số" is a number plate), or the guidance group's words
            # ("cho tôi hỏi nhà vệ sinh ở đâu")
            if rules_target == guidance:
                needed = c.guidance_none
            elif weak:
                needed = c.none_weak
            else:
                needed = c.none_thin if evidence <= c.thin_evidence else 2.0
            if probability >= needed:  # a question naming the counter heard (another agency's work: none)
                return self._ask(text, [] if answer.outside else [(rules_target, 0.0)])
        if rules_target == guidance:
            veto, override = c.guidance_veto, c.guidance_override
        else:
            veto = c.veto_weak if weak else c.veto
            override = c.override_strong if evidence >= PROCEDURE_STRONG else c.override
        if (learned_target is not None and learned_target != rules_target and probability >= veto and ours):
            named = (answer.procedure or answer.outside or {}).get("id")
            extra = [] if named else [{"kind": "group", "id": answer.group, "label": self.config.group(answer.group).name,
                                       "group": answer.group}]
            if probability >= override:
                filled = self._fill(text, answer, label, probability, override, c)
                if filled is not answer:
                    rules_pick = [self._button(self.catalogue.entries[named])] if named else extra
                    return dataclasses.replace(filled, choices=rules_pick)
            offered = [self.catalogue.entries[i] for i in (named, label) if i]
            return self._choose(text, offered, extra=extra)
        named = (answer.procedure or {}).get("id")
        if answer.question:  # close procedures: the buttons stay (the learned one first), nothing is named
            first = [choice for choice in answer.choices if choice["id"] == label]
            return dataclasses.replace(answer, choices=first + [choice for choice in answer.choices if choice["id"] != label])
        if (learned_target == rules_target and not answer.outside and label != named and probability >= c.pick
                and (named or self._says_more_than_the_group(text, rules_target))):
            picked = self._procedure(text, self.catalogue.entries[label], answer.confidence)
            others = [choice for choice in answer.choices if choice["id"] != label]
            if named:
                others.insert(0, self._button(self.catalogue.entries[named]))
            return dataclasses.replace(picked, choices=others[:MAX_CHOICES])
        return answer

    def _backing(self, posteriors: Sequence[tuple[str, float]], target: str) -> float:
        """The model's probability that the citizen belongs at ``target`` (its entries summed)."""
        return sum(p for label, p in posteriors if self._target(label) == target)

    def _fill(self, text: str, answer: GreeterAnswer, label: str, probability: float, needed: float,
              combination: "Combination") -> GreeterAnswer:
        """The model's own answer, where the rules ask back (``needed``: ``Combination.fill``) or where it
        overrules them (``override``, ``guidance_override``); ``answer`` itself when the model is
        below ``needed``, the text too short, or it names nothing a citizen can go to."""
        entry = self.catalogue.entries.get(label)
        if entry is None or probability < needed:
            return answer
        if len([w for w in words(text) if w not in self.function_words]) < combination.fill_min_words:
            return answer  # "vâng" (yes) shares its letters with "tạm vắng", "mất" alone is no death
        if self._target(label) is None:
            return answer
        if entry.outside:  # a centre that does this matter itself maps it to a group: the rules say so
            return self._outside(text, entry, probability) if entry.id not in self.config.greeter.procedure_groups else answer
        return self._procedure(text, entry, probability)

    def _understand_rules(self, text: str) -> GreeterAnswer:
        """The answer of the lexicon and the catalogue's phrasings alone."""
        return self._rules(text, self.reading(text))[0]

    def _rules(self, text: str, reading: tuple[list[str], frozenset[int]]) -> tuple[GreeterAnswer, float]:
        """The rules' answer to ``text`` (read by :meth:`reading`), and its evidence: the best catalogue
        score (one two-word phrase scores 2), or 0 when no catalogue phrasing was found and the answer
        rests on the lexicon's group alone (the model may then overrule it more easily,
        ``Combination.veto_weak``)."""
        tokens, negated = reading
        by_group = self._understand_group(text, tokens, negated)
        ranked = [(e, s) for e, s in self.catalogue.rank(tokens, self.not_before, negated) if s >= PROCEDURE_MIN]
        if not ranked:
            return self._with_group_choices(by_group), 0.0
        return self._from_ranked(text, by_group, ranked), ranked[0][1]

    def _from_ranked(self, text: str, by_group: GreeterAnswer, ranked: list[tuple[Entry, float]]) -> GreeterAnswer:
        """The answer when catalogue phrasings were found: a procedure, close procedures, or another agency."""
        top, best = ranked[0]
        close = [e for e, s in ranked if s >= best - PROCEDURE_CLOSE][:MAX_CHOICES]
        if len(close) >= 2:
            targets = {"outside" if e.outside else group_for(e, self.config) for e in close}
            if len(targets) == 1 and "outside" not in targets:  # one counter does all of them
                # the ranker only orders the buttons here: naming one of equally close procedures
                # ("giấy khai sinh bị mất": a copy, or re-registration?) would print the wrong papers
                order = [label for label, _ in self.ranker.posteriors(text, [e.id for e in close])]
                close = sorted(close, key=lambda e: order.index(e.id))
                return self._choose(text, close, group=targets.pop())
            return self._choose(text, close)
        if top.outside:
            if top.id in self.config.greeter.procedure_groups:  # this centre does it after all
                return self._with_group_choices(self._answer(text, self.config.group(
                    self.config.greeter.procedure_groups[top.id]), min(1.0, best / (best + 1.0)), []))
            if by_group.group and by_group.group not in self._catalogue_groups:  # the centre's own group
                return by_group
            return self._outside(text, top, best)
        code = group_for(top, self.config)
        if by_group.group and by_group.group != code and by_group.confidence >= GROUP_DISAGREES and best < PROCEDURE_STRONG:
            group = self.config.group(by_group.group)
            return self._choose(text, [top], extra=[{"kind": "group", "id": group.code, "label": group.name, "group": group.code}])
        return self._procedure(text, top, min(1.0, best / (best + 1.0)))

    def _with_group_choices(self, answer: GreeterAnswer) -> GreeterAnswer:
        """A group-level answer also offers the group's first procedures as buttons, to be precise."""
        if answer.group is None:
            return answer
        ids = [e.id for e in self.catalogue.procedures if group_for(e, self.config) == answer.group]
        ranked = self.ranker.posteriors(answer.text, ids) if ids else []
        if ranked and ranked[0][1] >= LEARNED_PICK and self._says_more_than_the_group(answer.text, answer.group):
            # the counter is the rules'; the ranker names its procedure
            named = self._procedure(answer.text, self.catalogue.entries[ranked[0][0]], answer.confidence)
            entries = [self.catalogue.entries[i] for i, _ in ranked[1:MAX_CHOICES]]
        else:
            named = answer
            entries = [self.catalogue.entries[i] for i, _ in ranked[:MAX_CHOICES]]
        choices = [{"kind": "procedure", "id": e.id, "label": e.name, "group": answer.group} for e in entries]
        return dataclasses.replace(named, choices=choices, counters=self.counters_for(answer.group))

    def _says_more_than_the_group(self, text: str, code: str) -> bool:
        """True when the text has a catalogue word beyond the group's name and description: "Hộ tịch"
        or "trợ cấp" alone names no procedure, however sure the ranker is."""
        group = self.config.group(code)
        plain = set(words(f"{group.name} {group.description}")) | self.function_words
        if code in self.fallback:  # the guidance group's own words: "hỏi thủ tục, cần hướng dẫn" is asking for it
            plain |= {w for phrase, weights in self.index.items() if code in weights for w in phrase}
        return any(w not in plain and w in self._catalogue_words for w in words(text))

    def explain(self, entry_id: str) -> GreeterAnswer:
        """The full answer for a catalogue entry the citizen picked from the buttons."""
        entry = self.catalogue.entries[entry_id]
        return self._outside(entry.name, entry, 1.0) if entry.outside else self._procedure(entry.name, entry, 1.0)

    def _understand_group(self, text: str, tokens: list[str], negated: frozenset[int] = frozenset()) -> GreeterAnswer:
        """The group-level answer (the lexicon), used when no catalogue procedure is clear."""
        scores, named = self._evidence(tokens, negated)
        ranked = self._confidences(scores)
        if ranked and ranked[0][1] >= THRESHOLD:
            code, confidence = ranked[0]
            phrase = self.spelling.get(named.get(code, ()), "")
            return self._answer(text, self.config.group(code), confidence, ranked[1:4], phrase)
        if not ranked:  # "đăng ký", "xác nhận": ask which one, naming the groups it could be
            ranked = [(code, 0.0) for code in self._clarifying_groups(tokens)][:3]
        return self._ask(text, ranked[:3])

    def _clarifying_groups(self, tokens: list[str]) -> list[str]:
        codes: list[str] = []
        for start in range(len(tokens)):
            for end in range(start + 1, min(len(tokens), start + MAX_PHRASE_WORDS) + 1):
                for code in self.clarify.get(tuple(tokens[start:end]), []):
                    if code not in codes:
                        codes.append(code)
        return codes

    def _answer(self, text: str, group: Group, confidence: float, alternatives: list[tuple[str, float]],
                phrase: str = "") -> GreeterAnswer:
        documents = list(group.documents)
        about = f" ({group.description})" if group.description else ""
        bring_vi = f" Giấy tờ cần mang: {'; '.join(documents)}." if documents else ""
        bring_en = f" Please bring (names as on the forms): {'; '.join(documents)}." if documents else ""
        heard = f"Ông/bà cần: \u201c{phrase}\u201d. " if phrase else ""
        reply_vi = (
            f"{heard}Thủ tục thuộc nhóm {group.name}{about}.{bring_vi} "
            f"Thời hạn giải quyết theo quy định: {legal_time_vi(group.legal_days)}. "
            f"Mời ông/bà lấy số nhóm {group.letter}."
        )
        name_en = group.name_en or group.name
        reply_en = (
            f"Your request belongs to {name_en}.{bring_en} "
            f"Legal processing time: {legal_time_en(group.legal_days)}. "
            f"Please take a ticket for group {group.letter}."
        )
        return GreeterAnswer(text, group.code, confidence, alternatives, reply_vi, reply_en, documents, group.legal_days)

    def counters_for(self, code: str) -> list[str]:
        return [c.label for c in self.config.counters if code in c.groups]

    def _procedure(self, text: str, entry: Entry, confidence: float) -> GreeterAnswer:
        group = self.config.group(group_for(entry, self.config))
        counters = self.counters_for(group.code)
        where_vi = f"nhóm {group.letter} ({group.name})" + (f", {'; '.join(counters)}" if counters else "")
        where_en = f"group {group.letter} ({group.name_en or group.name})" + (f", {'; '.join(counters)}" if counters else "")
        unmapped = group_for(entry, self.config) == guidance_group(self.config) and entry.field != group.code
        note_vi = " Trung tâm chưa xếp thủ tục này vào quầy riêng, cán bộ hướng dẫn sẽ tiếp nhận." if unmapped else ""
        numbered = " ".join(f"{i}) {d}." for i, d in enumerate(entry.documents, start=1))
        legal = entry.legal_time or (legal_time_vi(entry.legal_days) if entry.legal_days is not None else "hỏi cán bộ")
        reply_vi = (f"Thủ tục: {entry.name}. Mang theo: {numbered} Thời hạn: {legal}. "
                    f"Lệ phí: {entry.fee or 'hỏi cán bộ'}. Mời ông/bà lấy số {where_vi}.{note_vi}")
        legal_en = legal_time_en(entry.legal_days) if entry.legal_days is not None else "ask the officer"
        reply_en = (f"Procedure: {entry.name_en or entry.name}. Please bring (names as on the forms): "
                    f"{'; '.join(entry.documents)}. Legal time: {legal_en}. Fee: {entry.fee or 'ask the officer'}. "
                    f"Please take a ticket for {where_en}.")
        return GreeterAnswer(text, group.code, confidence, [], reply_vi, reply_en, list(entry.documents), entry.legal_days,
                             procedure=entry.to_json(), counters=counters, fee=entry.fee, legal_time=legal)

    def _outside(self, text: str, entry: Entry, score: float) -> GreeterAnswer:
        guide = self.config.group(guidance_group(self.config))
        reply_vi = (f"Việc \u201c{entry.name}\u201d không làm tại trung tâm này. Ông/bà đến: {entry.where}. "
                    f"Nếu cần hỏi thêm, mời lấy số nhóm {guide.letter} ({guide.name}) để cán bộ hướng dẫn.")
        reply_en = (f"\u201c{entry.name_en or entry.name}\u201d is not handled here. Please go to: {entry.where_en or entry.where}. "
                    f"For help, take a guidance ticket (group {guide.letter}).")
        choice = {"kind": "group", "id": guide.code, "label": f"Lấy số hướng dẫn ({guide.letter})", "group": guide.code}
        return GreeterAnswer(text, None, min(1.0, score / (score + 1.0)), [], reply_vi, reply_en,
                             outside=entry.to_json(), choices=[choice], counters=self.counters_for(guide.code))

    def _button(self, entry: Entry) -> dict[str, str]:
        """One big button for a catalogue entry."""
        return {"kind": "outside" if entry.outside else "procedure", "id": entry.id, "label": entry.name,
                "group": "" if entry.outside else group_for(entry, self.config)}

    def _choose(self, text: str, entries: list[Entry], group: str | None = None,
                extra: Sequence[dict[str, str]] = ()) -> GreeterAnswer:
        """Two or three procedures are close: one big button each (the group is kept when one counter does all)."""
        choices = [self._button(e) for e in entries] + list(extra)
        names = " hay ".join(f"\u201c{c['label']}\u201d" for c in choices)
        reply_vi = f"Ông/bà cần {names}? Mời chọn một nút bên dưới."
        reply_en = "Which one do you need? Please choose a button below."
        counters = self.counters_for(group) if group else []
        if group:
            g = self.config.group(group)
            reply_vi += f" Các việc này đều lấy số nhóm {g.letter} ({g.name})."
        return GreeterAnswer(text, group, 0.5 if group else 0.0, [], reply_vi, reply_en, question=True,
                             suggestions=[c["label"] for c in choices], choices=choices, counters=counters)

    def _ask(self, text: str, candidates: list[tuple[str, float]]) -> GreeterAnswer:
        if candidates:
            names = [self.config.group(code) for code, _ in candidates]
            reply_vi = "Xin lỗi, tôi chưa rõ. Ông/bà muốn làm thủ tục nào: " + ", ".join(g.name for g in names) + "?"
            reply_en = "Sorry, I am not sure. Which do you need: " + ", ".join(g.name_en or g.name for g in names) + "?"
            offered = [g.name for g in names]
        else:
            reply_vi = "Xin chào! Ông/bà cần làm thủ tục gì? Hãy nói hoặc gõ, ví dụ: \u201clàm giấy khai sinh\u201d, hoặc chọn một nút bên dưới."
            reply_en = "Hello! Which procedure do you need? Say or type it, e.g. \u201cregister a birth\u201d, or choose a button below."
            offered = self.suggestions()
        return GreeterAnswer(text, None, candidates[0][1] if candidates else 0.0, candidates, reply_vi, reply_en,
                             question=True, suggestions=offered)

    def suggestions(self) -> list[str]:
        """Common phrasings to show as buttons (only for groups this centre serves)."""
        return [s["text"] for s in self._suggestions][:8]
