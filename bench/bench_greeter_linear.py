"""The greeter's rules alone against the rules with the linear model (kiosk/linear.py), on lines it never trained on.

Two measurements, printed, never asserted:

1. **Folds of tune-i** (``kiosk/greeter_training_i.tsv``, which the rules were never tuned on): the
   model is trained on the catalogue, the other training files and four fifths of tune-i, and both
   greeters answer the fifth. With (2), this is how the round-2 thresholds of kiosk/greeter.py were
   chosen (issue 16, round 2: fewest asked back + 3 x confidently wrong over both). Since round 3 they
   are chosen by bench/select_greeter_thresholds.py (every training file, cost asked + W x wrong),
   which supersedes this script; it is kept for its rules-alone vs rules + model comparison.
2. **Dev batches** fresh-a..g (``tests/data/greeter_procedure_probes.tsv`` and
   ``greeter_probes_fresh_{e,f,g}.tsv``) with the shipped model, which never trained on them (the
   rules were tuned on them, so they flatter the rules).

The fresh batches fresh-i and fresh-j are measured with ``luot greet --evaluate`` only, once.

    PYTHONPATH=$PWD .venv/bin/python bench/bench_greeter_linear.py
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections import Counter
from pathlib import Path

from kiosk import linear
from kiosk.greeter import Greeter
from kiosk.greeter_eval import judge, load_probe_lines
from kiosk.textnorm import normalise
from luot.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def tally(greeter: Greeter, lines) -> Counter:
    counts: Counter = Counter()
    for line in lines:
        verdict, procedure_right = judge(greeter, line)
        counts[verdict] += 1
        counts["procedure"] += procedure_right
    return counts


def show(name: str, counts: Counter, n: int) -> None:
    print(f"  {name:<22} right {counts['right']:>3} / asked {counts['asked']:>3} / wrong {counts['wrong']:>3}"
          f"   procedure {counts['procedure']:>3}   of {n}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "assets" / "centre.sample.toml"))
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {platform.node()} {platform.python_version()} cpus={os.cpu_count()} load={os.getloadavg()}")
    config = load_config(args.config)
    rules = Greeter(config, learned=False)
    started = time.perf_counter()
    learned = Greeter(config)
    print(f"greeter with the linear model built in {time.perf_counter() - started:.2f} s "
          f"(temperature {learned.linear.temperature})")
    base = learned.learning_documents(linear.TRAINING_PATHS[:2])
    lines = load_probe_lines(linear.TUNING_I_PATH)
    documents = learned.learning_documents([linear.TUNING_I_PATH])[len(learned.learning_documents()):]
    by_rules: Counter = Counter()
    by_both: Counter = Counter()
    for fold in range(args.folds):
        held = [line for i, line in enumerate(lines) if i % args.folds == fold]
        learned.linear = linear.LinearModel(base + [d for i, d in enumerate(documents) if i % args.folds != fold])
        by_rules += tally(rules, held)
        by_both += tally(learned, held)
    print(f"{args.folds}-fold on {linear.TUNING_I_PATH.name} ({len(lines)} lines):")
    show("rules", by_rules, len(lines))
    show("rules + linear", by_both, len(lines))
    shipped = Greeter(config)
    data = ROOT / "tests" / "data"
    probes = [line for path in [data / "greeter_procedure_probes.tsv",
                                *(data / f"greeter_probes_fresh_{b}.tsv" for b in "efg")]
              for line in load_probe_lines(path)]
    for batch in sorted({line.batch for line in probes}):
        chosen = [line for line in probes if line.batch == batch]
        print(f"dev {batch} ({len(chosen)} lines):")
        show("rules", tally(rules, chosen), len(chosen))
        show("rules + linear", tally(shipped, chosen), len(chosen))

if __name__ == "__main__":
    main()
