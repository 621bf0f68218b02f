"""The greeter's rules alone against the rules with the linear model (kiosk/linear.py), on lines it never trained on.

Two measurements, printed, never asserted:

1. **Folds of the tuning lines** (``kiosk/greeter_training.tsv``, which the rules were never tuned
   on before the model was added): the model is trained on the catalogue and three quarters of
   the lines, and both greeters answer the fourth quarter. This is how the thresholds
   ``LINEAR_VETO`` and ``LINEAR_PICK`` were chosen.
2. **Dev batches** (``tests/data/greeter_procedure_probes.tsv``: fresh-a..d) with the shipped model,
   which never trained on them (the rules were tuned on them earlier, so they flatter the rules).

The final fresh batch (fresh-e) is measured with ``luot greet --evaluate`` only, once.

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
    parser.add_argument("--folds", type=int, default=4)
    args = parser.parse_args()
    print(f"machine: {platform.node()} {platform.python_version()} cpus={os.cpu_count()} load={os.getloadavg()}")
    config = load_config(args.config)
    rules = Greeter(config, learned=False)
    started = time.perf_counter()
    learned = Greeter(config)
    print(f"greeter with the linear model built in {time.perf_counter() - started:.2f} s "
          f"(temperature {learned.linear.temperature})")
    base = learned.learning_documents()
    lines = load_probe_lines(linear.TRAINING_PATH)
    by_rules: Counter = Counter()
    by_both: Counter = Counter()
    for fold in range(args.folds):
        held = [line for i, line in enumerate(lines) if i % args.folds == fold]
        learned.linear = linear.LinearModel(base + [(line.procedure or linear.NONE_LABEL, normalise(line.text))
                                                    for i, line in enumerate(lines) if i % args.folds != fold])
        by_rules += tally(rules, held)
        by_both += tally(learned, held)
    print(f"{args.folds}-fold on {linear.TRAINING_PATH.name} ({len(lines)} lines):")
    show("rules", by_rules, len(lines))
    show("rules + linear", by_both, len(lines))
    shipped = Greeter(config)
    probes = load_probe_lines(ROOT / "tests" / "data" / "greeter_procedure_probes.tsv")
    for batch in sorted({line.batch for line in probes}):
        chosen = [line for line in probes if line.batch == batch]
        print(f"dev {batch} ({len(chosen)} lines):")
        show("rules", tally(rules, chosen), len(chosen))
        show("rules + linear", tally(shipped, chosen), len(chosen))


if __name__ == "__main__":
    main()
