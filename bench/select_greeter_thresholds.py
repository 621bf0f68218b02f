"""Choose how the greeter's rules and linear model combine (kiosk/greeter.py ``Combination``), on
development lines only, and print the dev / cross-validation table. One command:

    PYTHONPATH=$PWD .venv/bin/python bench/select_greeter_thresholds.py          # print only
    PYTHONPATH=$PWD .venv/bin/python bench/select_greeter_thresholds.py --write  # and rewrite kiosk/greeter_combination.toml

Re-run it whenever a training file is added (every ``kiosk/greeter_training*.tsv`` is used; about a
minute on one core). What it measures, on lines the model never trained on:

1. **Dev batches** (``DEV_FILES``: ``tests/data/greeter_procedure_probes.tsv`` = fresh-a..d and
   ``greeter_probes_fresh_{e,f,g,i,j}.tsv``), answered by the shipped model (which never trains on a
   probe line: tests/test_greeter_linear.py). The rules were tuned on most of them, so they flatter
   the rules. A fresh batch that is being reported (fresh-k, fresh-l…) must NOT be added here.
2. **k-fold cross-validation** of every training file except ``linear.RULES_TUNED_PATHS`` (tune-i
   today, tune-m and tune-n once merged): the model trains on the catalogue, the other files and
   k-1 folds, and answers the held-out fold (the rules were never tuned on these files).

The rules answer each line once and the model's posteriors are computed once per line; then
thresholds are chosen by coordinate descent (``GRID``) for the fewest ``asked + W x wrong`` over dev
and CV pooled (a confidently wrong answer costs the citizen a second wait, asking back one tap),
ties broken by more lines right at the procedure. It prints, for each W of ``--weights``, the
thresholds and right / asked / wrong / procedure per dev batch, per CV file and pooled, beside the
thresholds in use (``kiosk/greeter_combination.toml``) and the round-2 thresholds (new vetoes
off). ``--write`` saves the thresholds chosen for ``--weight`` (default 8).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import time
import unicodedata
from collections import Counter
from pathlib import Path

from kiosk import linear
from kiosk.greeter import COMBINATION_PATH, Combination, Greeter
from kiosk.greeter_eval import ProbeLine, judge_answer, load_probe_lines
from luot.config import load_config

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
DEV_FILES = (DATA / "greeter_procedure_probes.tsv",
             *(DATA / f"greeter_probes_fresh_{b}.tsv" for b in ("e", "f", "g", "i", "j")))
MIN_GAIN = 0.0  # cost a threshold's change must save to be taken
NEVER = 2.0  # a probability threshold no calibrated probability reaches: the rule is off
_P = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.98, NEVER)
# "no procedure" is learnt from chit-chat lines: it may veto only when the model prefers it to every
# procedure together (>= 0.5) and gives the rules' counter almost nothing (a centre's own lexicon
# phrase, "mẹ kế tôi mất", is no chit-chat because the model never saw it)
_NONE = tuple(p for p in _P if p >= 0.5)
GRID: dict[str, tuple[float, ...]] = {
    "veto": _P,
    "veto_weak": _P,
    "override": (0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, NEVER),
    "override_strong": (0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, NEVER),
    "fill": _P,
    "fill_min_words": (1, 2, 3, 4),
    "pick": _P,
    "none_weak": _NONE,
    "none_backing": (0.02, 0.05, 0.1),
    "none_thin": _NONE,
    "thin_evidence": (2.0, 2.5, 3.0),
    "guidance_veto": _P,
    "guidance_override": (0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, NEVER),
    "guidance_none": _NONE,
}
ROUND_2 = Combination(veto=0.4, veto_weak=0.2, override=0.95, override_strong=0.95, fill=0.7, fill_min_words=3, pick=0.5, none_weak=0.6,
                      none_backing=0.05, none_thin=NEVER, thin_evidence=2.0, guidance_veto=NEVER,
                      guidance_override=NEVER, guidance_none=NEVER)


@dataclasses.dataclass
class Case:
    """One line: the rules' answer and evidence, the model's posteriors (from a model that never saw it)."""

    line: ProbeLine
    source: str  # "dev <batch>" or "cv <file>"
    answer: object
    evidence: float
    posteriors: list


def cases_for(greeter: Greeter, lines: list[ProbeLine], sources: list[str], posteriors: list) -> list[Case]:
    out = []
    for line, source, post in zip(lines, sources, posteriors):
        answer, evidence = greeter._rules(line.text, greeter.reading(line.text))
        out.append(Case(line, source, answer, evidence, post))
    return out


def training_lines(path: Path) -> list[ProbeLine]:
    """A training file's lines (text, group, id, batch); a line without the batch column (load_training
    accepts three) takes the file's name as its batch."""
    lines = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip() or raw.startswith("#"):
            continue
        parts = [p.strip() for p in raw.split("\t")]
        if len(parts) < 3:
            raise ValueError(f"{path}:{number}: expected text<TAB>group<TAB>entry-id[<TAB>batch]")
        lines.append(ProbeLine(unicodedata.normalize("NFC", parts[0]), parts[1],
                               None if parts[2] == "-" else parts[2], parts[3] if len(parts) > 3 else path.stem, number))
    return lines


def model_text(greeter: Greeter, text: str) -> str:
    """What the model reads of ``text`` in ``Greeter.understand``: the repaired tokens, negated ones out."""
    from kiosk.negation import without_negated

    return " ".join(without_negated(*greeter.reading(text)))


def tally(greeter: Greeter, cases: list[Case], combination: Combination) -> dict[str, Counter]:
    by: dict[str, Counter] = {}
    for case in cases:
        answer = greeter.combine(case.line.text, case.answer, case.evidence, case.posteriors, combination)
        verdict, procedure_right = judge_answer(greeter, case.line, answer)
        for key in (case.source, case.source.split()[0], "all"):
            counts = by.setdefault(key, Counter())
            counts[verdict] += 1
            counts["procedure"] += procedure_right
            counts["lines"] += 1
    return by


def cost(counts: Counter, weight: float) -> tuple[float, int]:
    return counts["asked"] + weight * counts["wrong"], -counts["procedure"]


def required_cases(greeter: Greeter) -> list[Case]:
    """The kiosk's own suggestion buttons (the lexicon's ``[[suggestions]]``): each must answer its group,
    whatever the thresholds (tests/test_greeter.py checks it too)."""
    texts = greeter.suggestions()
    meant = {s["text"]: s["group"] for s in greeter._suggestions}
    lines = [ProbeLine(text, meant[text], None, "suggestions", 0) for text in texts]
    return cases_for(greeter, lines, ["required"] * len(lines),
                     greeter.linear.posteriors_many([model_text(greeter, line.text) for line in lines]))


def allowed(greeter: Greeter, required: list[Case], combination: Combination) -> bool:
    return all(judge_answer(greeter, case.line, greeter.combine(case.line.text, case.answer, case.evidence,
                                                                case.posteriors, combination))[0] == "right"
               for case in required)


def select(greeter: Greeter, cases: list[Case], start: Combination, weight: float, rounds: int = 4,
           min_gain: float = MIN_GAIN, required: list[Case] = ()) -> Combination:
    """Coordinate descent over ``GRID`` from ``start``: each threshold in turn takes the grid value of
    least cost with the others fixed, if it saves at least ``min_gain`` (a change that saves less is
    as likely noise) and every ``required`` line stays right, until a round changes nothing."""
    best = start
    best_cost = cost(tally(greeter, cases, best)["all"], weight)
    for _ in range(rounds):
        changed = False
        for name, values in GRID.items():
            trials = [dataclasses.replace(best, **{name: value}) for value in values if value != getattr(best, name)]
            trials = [trial for trial in trials if allowed(greeter, required, trial)]
            scored = [(cost(tally(greeter, cases, trial)["all"], weight), trial) for trial in trials]
            if not scored:
                continue
            trial_cost, trial = min(scored, key=lambda item: item[0])
            if trial_cost[0] <= best_cost[0] - min_gain or (min_gain == 0 and trial_cost < best_cost):
                best, best_cost, changed = trial, trial_cost, True
        if not changed:
            break
    return best


def row(name: str, counts: Counter) -> str:
    n = counts["lines"] or 1
    return (f"| {name} | {counts['lines']} | {counts['right']} / {counts['asked']} / {counts['wrong']}, {counts['procedure']} "
            f"({counts['right'] / n:.3f} / {counts['asked'] / n:.3f} / {counts['wrong'] / n:.3f}, {counts['procedure'] / n:.3f}) |")


def write(combination: Combination, weight: float, path: Path = COMBINATION_PATH) -> None:
    lines = [f"# How the greeter's rules and linear model combine (kiosk/greeter.py: Combination). Written by",
             f"# bench/select_greeter_thresholds.py --write (W = {weight:g}: fewest asked + W x confidently wrong over",
             "# the dev batches and cross-validated training files); 2.0 means never. Re-run it, do not hand-tune.",
             "[combination]"]
    lines += [f"{f.name} = {getattr(combination, f.name)!r}" for f in dataclasses.fields(combination)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "assets" / "centre.sample.toml"))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--weights", default="3,5,8,10", help="the W values to report (comma-separated)")
    parser.add_argument("--weight", type=float, default=8.0, help="the W whose thresholds --write saves")
    parser.add_argument("--write", action="store_true", help=f"rewrite {COMBINATION_PATH.name} with them")
    args = parser.parse_args()
    print(f"machine: {platform.node()} {platform.python_version()} cpus={os.cpu_count()} load={os.getloadavg()}")
    config = load_config(args.config)
    started = time.perf_counter()
    greeter = Greeter(config)
    print(f"greeter with the linear model built in {time.perf_counter() - started:.2f} s on "
          f"{len(greeter.learning_documents(linear.TRAINING_PATHS))} lines "
          f"({', '.join(p.name for p in linear.TRAINING_PATHS)}; temperature {greeter.linear.temperature})")

    started = time.perf_counter()
    dev = [line for path in DEV_FILES for line in load_probe_lines(path)]
    cases = cases_for(greeter, dev, [f"dev {line.batch}" for line in dev],
                      greeter.linear.posteriors_many([model_text(greeter, line.text) for line in dev]))
    cv_files = [p for p in linear.TRAINING_PATHS if p not in linear.RULES_TUNED_PATHS]
    fixed = greeter.learning_documents()  # the catalogue's phrasings and names
    fixed += greeter.learning_documents(linear.RULES_TUNED_PATHS)[len(fixed):]
    held: list[tuple[int, str, ProbeLine]] = []
    for path in cv_files:
        held += [(i, path.name, line) for i, line in enumerate(training_lines(path))
                 if line.procedure is None or line.procedure in greeter.catalogue.entries]
    documents = [(line.procedure or linear.NONE_LABEL, greeter.learning_text(line.text)) for _, _, line in held]
    for fold in range(args.folds):
        model = linear.LinearModel(fixed + [d for (i, _, _), d in zip(held, documents) if i % args.folds != fold])
        chosen = [(name, line) for i, name, line in held if i % args.folds == fold]
        posteriors = model.posteriors_many([model_text(greeter, line.text) for _, line in chosen])
        cases += cases_for(greeter, [line for _, line in chosen], [f"cv {name}" for name, _ in chosen], posteriors)
    print(f"answers and posteriors of {len(cases)} lines ({len(dev)} dev, {len(held)} cross-validated in "
          f"{args.folds} folds of {', '.join(p.name for p in cv_files) or 'no file'}) in {time.perf_counter() - started:.1f} s")

    required = required_cases(greeter)
    weights = [float(w) for w in args.weights.split(",")]
    if args.weight not in weights:
        weights.append(args.weight)
    columns = {"round 2 (new vetoes off)": ROUND_2, "in use": Combination.load()}
    for weight in weights:
        started = time.perf_counter()
        columns[f"W = {weight:g}"] = select(greeter, cases, ROUND_2, weight, required=required)
        print(f"W = {weight:g} chosen in {time.perf_counter() - started:.1f} s")
    print("\nthresholds (2.0 = never):")
    names = [f.name for f in dataclasses.fields(Combination)]
    print("| threshold | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for name in names:
        print(f"| {name} | " + " | ".join(f"{getattr(c, name):g}" for c in columns.values()) + " |")
    tallies = {title: tally(greeter, cases, c) for title, c in columns.items()}
    keys = sorted({k for t in tallies.values() for k in t if " " in k}) + ["dev", "cv", "all"]
    for title, by in tallies.items():
        print(f"\n{title}: right / asked / wrong at the counter, right at the procedure")
        print("| lines | n | counts (rates) |\n|---|---|---|")
        for key in keys:
            if key in by:
                print(row(key, by[key]))
        print("cost asked + W x wrong: " + ", ".join(f"W={w:g}: {cost(by['all'], w)[0]:g}" for w in weights))
    chosen = columns[f"W = {args.weight:g}"]
    print(f"\nlines whose verdict changed from round 2 to W = {args.weight:g} (source, expected -> got):")
    for case in cases:
        before, after = (judge_answer(greeter, case.line, greeter.combine(case.line.text, case.answer, case.evidence,
                                                                            case.posteriors, c))[0]
                         for c in (ROUND_2, chosen))
        if before != after:
            answer = greeter.combine(case.line.text, case.answer, case.evidence, case.posteriors, chosen)
            got = answer.group or ("OUT" if answer.outside else "ASK")
            print(f"  {before:>5} -> {after:<5} {case.source}: {case.line.text[:70]!r} {case.line.group}/"
                  f"{case.line.procedure or '-'} -> {got}/{(answer.procedure or answer.outside or {}).get('id', '-')}"
                  f" (model {case.posteriors[0][0]} {case.posteriors[0][1]:.2f})")
    print(f"\ncross-check at W = {args.weight:g} (is the selection itself over-fitted?): chosen on one pool, measured on the other")
    print(row("round 2, measured on dev", tallies["round 2 (new vetoes off)"]["dev"]))
    print(row("round 2, measured on cv", tallies["round 2 (new vetoes off)"]["cv"]))
    for fit, check in (("dev", "cv"), ("cv", "dev")):
        part = [case for case in cases if case.source.startswith(fit)]
        if part and len(part) < len(cases):
            picked = select(greeter, part, ROUND_2, args.weight, required=required)
            print(row(f"chosen on {fit}, measured on {check}", tally(greeter, cases, picked)[check]))
    if args.write:
        write(chosen, args.weight)
        print(f"\nwrote {COMBINATION_PATH}")


if __name__ == "__main__":
    main()
