"""A learned second opinion for the greeter: a linear classifier over character and word n-grams.

Why: the rules (lexicon + catalogue phrasings) answer only what their phrases cover. A classifier
over character 2-5-grams (inside words) and words/word pairs generalises to phrasings nobody wrote
down ("ba má cho đất, giờ đứng tên trên sổ"), but on its own it is confidently wrong more often than
the rules. So the greeter uses it only under a probability threshold chosen on batches it never
trained on (``kiosk.greeter``: ``Combination``, chosen by bench/select_greeter_thresholds.py), to veto a rules answer it strongly disagrees with (the
greeter then asks with one button each) and to answer where the rules would only ask back.

Trained at start-up (about two seconds on one core, no model file to ship or trust) on the catalogue's
own phrasings and names and the labelled lines of every ``kiosk/greeter_training*.tsv`` file
(``TRAINING_PATHS``, found by that glob: ``greeter_training.tsv`` and the tuning batches ``_h``,
``_i``, ``_m``, ``_n``, several thousand everyday lines over every entry; a file dropped next to them
is used too; a centre may add its own: ``Greeter(..., training=[path])``). Labels are catalogue entry ids, plus ``NONE`` for lines
that are no procedure at all.

scikit-learn is optional: without it ``available()`` is False and the greeter runs on its rules and
the pure-Python ranker alone (``kiosk.learned``), as before.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
TRAINING_GLOB = "greeter_training*.tsv"
TRAINING_PATH = HERE / "greeter_training.tsv"
# tune-h: lines written after fresh-f/g, with negations and life events (issue 16, third pass)
TUNING_PATH = HERE / "greeter_training_h.tsv"
# tune-i: several hundred everyday lines per catalogue entry, written after fresh-i/j (issue 16, round 2)
TUNING_I_PATH = HERE / "greeter_training_i.tsv"
# every training file, sorted by name (tune-m, tune-n… join when they are merged)
TRAINING_PATHS = tuple(sorted(HERE.glob(TRAINING_GLOB)))
# files kept out of the cross-validation that chooses how rules and model combine
# (bench/select_greeter_thresholds.py): tune-h's misses became catalogue phrasings, and tune-f holds
# the "no procedure" lines the lexicon was tuned with; every other training file is cross-validated
RULES_TUNED_PATHS = (TRAINING_PATH, TUNING_PATH)
NONE_LABEL = "NONE"
FOLDS = 3
RECENT = 512  # answers remembered per model


def available() -> bool:
    """True when scikit-learn can be imported on this kiosk."""
    try:
        import sklearn  # noqa: F401
    except ImportError:
        return False
    return True


def load_training(path: str | Path) -> list[tuple[str, str]]:
    """(label, text) from ``text<TAB>group|OUT|NONE<TAB>entry-id|-[<TAB>batch]`` lines ('#': comment)."""
    pairs: list[tuple[str, str]] = []
    for number, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip() or raw.startswith("#"):
            continue
        parts = raw.split("\t")
        if len(parts) < 3:
            raise ValueError(f"{path}:{number}: expected text<TAB>group<TAB>entry-id, got {len(parts)} column(s)")
        label = parts[2].strip()
        pairs.append((NONE_LABEL if label == "-" else label, parts[0]))
    return pairs


class LinearModel:
    """TF-IDF character 2-5-grams and word 1-2-grams, a linear SVM, calibrated by temperature scaling.

    ``texts`` are expected already normalised by the caller, so the n-grams compare like with like.
    Calibration: the SVM's margins on lines it did not train on (3-fold, stratified) fit one
    temperature ``t`` so that ``softmax(t * margins)`` has the least log-loss on those lines; the
    greeter's thresholds are probabilities, not raw margins. (Per-class Platt scaling took 3 s of
    the kiosk's start for no better answers.)
    """

    def __init__(self, documents: Sequence[tuple[str, str]], c: float = 1.0) -> None:
        import numpy as np
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.model_selection import StratifiedKFold, cross_val_predict
        from sklearn.pipeline import FeatureUnion
        from sklearn.svm import LinearSVC

        # every label needs FOLDS lines for the folds: a centre's procedure with one or two
        # phrasings has them repeated
        counts = Counter(label for label, _ in documents)
        documents = list(documents) + [doc for doc in documents for _ in range(max(0, FOLDS - counts[doc[0]]))]
        labels = [label for label, _ in documents]
        self.features = FeatureUnion([
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)),
            ("words", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"\S+")),
        ])
        matrix = self.features.fit_transform([text for _, text in documents])
        self.svm = LinearSVC(C=c).fit(matrix, labels)
        self.labels: list[str] = [str(label) for label in self.svm.classes_]
        folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=0)
        margins = _columns(cross_val_predict(LinearSVC(C=c), matrix, labels, cv=folds, method="decision_function"))
        truth = np.searchsorted(self.svm.classes_, labels)
        self.temperature = min(TEMPERATURES, key=lambda t: _log_loss(t * margins, truth))
        self._recent: dict[str, list[tuple[str, float]]] = {}

    def _probabilities(self, texts: list[str]):  # -> numpy array, one row per text
        import numpy as np

        scaled = self.temperature * _columns(self.svm.decision_function(self.features.transform(texts)))
        scaled = np.exp(scaled - scaled.max(axis=1, keepdims=True))
        return scaled / scaled.sum(axis=1, keepdims=True)

    def posteriors(self, text: str) -> list[tuple[str, float]]:
        """(label, probability) best first; the last answers are remembered (a kiosk hears the same
        few sentences all day, and every spelling of one sentence reaches here as the same words)."""
        if text not in self._recent:
            if len(self._recent) >= RECENT:
                self._recent.pop(next(iter(self._recent)))
            self._recent[text] = self.posteriors_many([text])[0]
        return self._recent[text]

    def posteriors_many(self, texts: Iterable[str]) -> list[list[tuple[str, float]]]:
        rows = self._probabilities(list(texts))
        return [sorted(zip(self.labels, (float(p) for p in row)), key=lambda item: (-item[1], item[0])) for row in rows]


TEMPERATURES = tuple(round(0.5 * 1.15 ** i, 3) for i in range(30))  # 0.5 .. about 29


def _columns(margins):  # -> numpy array (rows, labels)
    """With two labels the SVM gives one margin per row (for the second): make it one column each."""
    import numpy as np

    return margins if margins.ndim == 2 else np.stack([-margins, margins], axis=1)


def _log_loss(scores, truth) -> float:
    """Mean negative log-probability of the true labels under softmax(scores)."""
    import numpy as np

    shifted = scores - scores.max(axis=1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_probabilities[np.arange(len(truth)), truth].mean())


@functools.lru_cache(maxsize=4)
def trained(documents: tuple[tuple[str, str], ...]) -> LinearModel:
    """One model per set of training lines in a process: every Greeter of a centre shares it."""
    return LinearModel(documents)
