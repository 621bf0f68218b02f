"""A small learned ranker for the greeter: multinomial naive Bayes over character and word n-grams.

Why: when the rules find two or three close procedures at one counter they ask with buttons, and
the citizen must read and choose. Measured on probe batches the rules never saw
(bench/bench_greeter_learned.py), this model, trained only on the catalogue's own phrasings and
names, often picked the right procedure where the rules had only a group. On its own, or as a
fallback where the rules ask, it sent more people to the wrong counter than the rules did (fresh-c:
4 wrong instead of 2). So it never decides a counter: when the rules give a group-level answer and
the text says more than the group's name, it names the group's likeliest procedure (posterior
>= 0.9; the others stay as buttons), and it orders the buttons of close procedures. Measured with
the catalogue as it was before fresh-c was tuned on: procedure level 0.641 -> 0.703 on fresh-c,
0.950 -> 0.967 on fresh-d, counter-level figures unchanged. Pure Python; the calibrated linear model
of kiosk/linear.py (scikit-learn) now comes after it in Greeter.understand.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable

from kiosk.textnorm import normalise


def features(text: str) -> Counter[str]:
    """Character 3-5-grams inside word boundaries, words and word pairs of the normalised text."""
    plain = normalise(text)
    grams: Counter[str] = Counter()
    tokens = plain.split()
    for word in tokens:
        padded = f"<{word}>"
        for n in (3, 4, 5):
            grams.update(padded[i:i + n] for i in range(len(padded) - n + 1))
        grams[f"w:{word}"] += 1
    grams.update(f"b:{a}_{b}" for a, b in zip(tokens, tokens[1:]))
    return grams


class NaiveBayes:
    """Multinomial naive Bayes with Laplace smoothing and uniform priors (one label per entry)."""

    def __init__(self, documents: Iterable[tuple[str, str]], alpha: float = 0.5) -> None:
        self.counts: dict[str, Counter[str]] = defaultdict(Counter)
        for label, text in documents:
            self.counts[label].update(features(text))
        self.vocabulary = {f for c in self.counts.values() for f in c}
        self.totals = {label: sum(c.values()) for label, c in self.counts.items()}
        self.alpha = alpha

    def posteriors(self, text: str, labels: Iterable[str] | None = None) -> list[tuple[str, float]]:
        """(label, posterior) best first, over ``labels`` (all when None)."""
        observed = [(f, n) for f, n in features(text).items() if f in self.vocabulary]
        size = len(self.vocabulary)
        logs: dict[str, float] = {}
        for label in (labels if labels is not None else self.counts):
            counts = self.counts.get(label)
            if counts is None:
                continue
            denominator = self.totals[label] + self.alpha * size
            logs[label] = sum(n * math.log((counts.get(f, 0) + self.alpha) / denominator) for f, n in observed)
        if not logs:
            return []
        top = max(logs.values())
        weights = {label: math.exp(value - top) for label, value in logs.items()}
        total = sum(weights.values())
        return sorted(((label, w / total) for label, w in weights.items()), key=lambda item: (-item[1], item[0]))
