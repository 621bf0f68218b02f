"""A learned method against the greeter's rules: multinomial naive Bayes over character and word n-grams.

Issue 16 asks to try one learned method against the lexicon and keep what measures better on
batches it never saw. scikit-learn is not installed, so ``kiosk/learned.py`` is a small pure-Python
multinomial naive Bayes (character 3-5-grams inside word boundaries, words, word pairs), trained
here only on the catalogue: each entry's phrasings (``say``, gaps read as spaces) and its names. It
is tried three ways on one probe batch: alone (below ``--margins`` it asks); as a fallback asked
only when the rules ask back; and picking among the procedures the rules offer as buttons.
Figures are printed, never asserted.

"rules" means the greeter of the tree on PYTHONPATH. To compare with the rules *before* the ranker
was built into the greeter, on a batch the catalogue was never tuned on (fresh-c), run it against
the tree as it was when fresh-c was measured, with this ranker module copied in:

    git worktree add /tmp/gp-old 67240ce && cp kiosk/learned.py /tmp/gp-old/kiosk/
    PYTHONPATH=/tmp/gp-old .venv/bin/python bench/bench_greeter_learned.py --batch fresh-c \
        --probes /tmp/gp-old/tests/data/greeter_procedure_probes.tsv

Measured 2026-12-06 that way (fresh-c, 64 lines): rules 53 right / 9 asked / 2 wrong, procedure 41;
NB alone at 0.5: 55 / 0 / 9, procedure 50; rules + NB where the rules ask: 60 / 0 / 4 (more wrong
counters: rejected); NB picking among the rules' buttons: procedure 49, counters unchanged. What
the greeter kept (kiosk/learned.py docstring) measures 0.641 -> 0.703 at the procedure level there.
"""

from __future__ import annotations

import argparse
import platform
from collections import Counter
from pathlib import Path

from kiosk.greeter import Greeter
from kiosk.greeter_eval import judge, load_probe_lines
from kiosk.learned import NaiveBayes
from luot.config import load_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", default="fresh-c")
    parser.add_argument("--probes", default=str(Path(__file__).resolve().parent.parent / "tests" / "data"
                                                / "greeter_procedure_probes.tsv"))
    parser.add_argument("--margins", default="0.5,0.8,0.95,0.99", help="posterior needed to answer (comma list)")
    args = parser.parse_args()
    config = load_config()
    greeter = Greeter(config)
    documents = []
    for entry in greeter.catalogue.entries.values():
        documents += [(entry.id, " ".join(" ".join(part) for part in phrase)) for phrase in entry.phrases]
        documents += [(entry.id, entry.name), (entry.id, entry.name_en)]
    model = NaiveBayes(documents)
    lines = [line for line in load_probe_lines(args.probes) if line.batch == args.batch]
    from kiosk.procedures import group_for

    def target(entry_id: str) -> tuple[str, str]:
        entry = greeter.catalogue.entries[entry_id]
        return ("OUT", entry.agency) if entry.outside else (group_for(entry, config), "")

    def verdict(line, entry_id: str | None) -> str:
        if entry_id is None:
            return "right" if line.group == "NONE" else "asked"
        if line.group == "NONE":
            return "wrong"
        got = target(entry_id)
        want = target(line.procedure) if line.procedure in greeter.catalogue.entries else (line.group, "")
        return "right" if got == want else "wrong"

    print(f"machine: {platform.platform()}, python {platform.python_version()}; batch {args.batch}: {len(lines)} lines; "
          f"naive Bayes trained on {len(documents)} catalogue phrasings of {len(model.counts)} entries")
    rules = Counter(judge(greeter, line)[0] for line in lines)
    rules_procedure = sum(judge(greeter, line)[1] for line in lines)
    print(f"rules alone:            right {rules['right']}, asked {rules['asked']}, wrong {rules['wrong']}")
    for margin in (float(m) for m in args.margins.split(",")):
        alone: Counter[str] = Counter()
        fallback: Counter[str] = Counter()
        procedure_alone = 0
        picked_right = 0
        for line in lines:
            best, p = model.posteriors(line.text)[0]
            guess = best if p >= margin else None
            alone[verdict(line, guess)] += 1
            procedure_alone += guess == line.procedure
            ruled = judge(greeter, line)[0]
            fallback[verdict(line, guess) if ruled == "asked" else ruled] += 1
            # third way: the rules decide the counter; NB only picks among the rules' close buttons
            answer = greeter.understand(line.text)
            named = (answer.procedure or answer.outside or {}).get("id")
            offered = [c["id"] for c in answer.choices if c["kind"] != "group"]
            if named is None and guess in offered:
                named = guess
            picked_right += named == line.procedure
        print(f"margin {margin:4}: NB alone right {alone['right']}, asked {alone['asked']}, wrong {alone['wrong']} "
              f"(procedure {procedure_alone}); rules + NB when rules ask: right {fallback['right']}, "
              f"asked {fallback['asked']}, wrong {fallback['wrong']}; procedure right when NB picks among the "
              f"rules' buttons: {picked_right} (rules alone {rules_procedure})")


if __name__ == "__main__":
    main()
