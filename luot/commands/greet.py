"""``luot greet TEXT``: what the kiosk greeter understands from a sentence, as JSON.

The answer names the catalogue procedure (documents, legal time, fee, counter) when one is clear, or
where to go for another agency's work. ``luot greet --evaluate FILE`` measures the greeter on labelled
lines instead, so a centre that extends the lexicon (``--lexicon FILE``) or the procedure catalogue
(``--catalogue FILE``) can check it on its own lines before deploying it. Three-column files are
measured per group; four-column files (``text, group|OUT|NONE, procedure id|-, batch``) per batch:
right / asked back / confidently wrong at the counter, and right at the procedure. The learned model
(kiosk/linear.py, when scikit-learn is installed) trains at start, a few seconds; ``--rules-only``
answers without it, ``--training FILE`` adds a centre's labelled lines to what it learns from.
"""

from __future__ import annotations

HELP = "what the kiosk greeter understands from a sentence (JSON)"

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", nargs="?", help='what the citizen typed or said, e.g. "dang ky ket hon"')
    parser.add_argument("--config", help="centre TOML file (default: the shipped sample centre)")
    parser.add_argument("--lexicon", action="append", default=[], metavar="FILE",
                        help="extra greeter lexicon TOML adding a centre's own phrases (repeatable)")
    parser.add_argument("--catalogue", action="append", default=[], metavar="FILE",
                        help="extra procedure catalogue TOML adding a centre's procedures or phrasings (repeatable)")
    parser.add_argument("--rules-only", action="store_true",
                        help="the lexicon and catalogue alone, without the learned model (to compare, or without scikit-learn)")
    parser.add_argument("--training", action="append", default=[], metavar="TSV",
                        help="extra labelled lines (text<TAB>group<TAB>procedure-id) the learned model trains on (repeatable)")
    parser.add_argument("--evaluate", metavar="TSV",
                        help="labelled lines: text<TAB>group|NONE<TAB>split, or text<TAB>group|OUT|NONE<TAB>procedure|-<TAB>batch; "
                             "print the figures")


def run(args: argparse.Namespace) -> int:
    from kiosk.greeter import Greeter
    from kiosk.greeter_eval import evaluate, evaluate_probes, is_probe_file, load_phrases, load_probe_lines
    from luot.config import load_config

    if not args.text and not args.evaluate:
        print('luot greet: give the text to understand, e.g. luot greet "dang ky ket hon", or --evaluate FILE', file=sys.stderr)
        return 2
    try:
        greeter = Greeter(load_config(args.config), extra_lexicons=args.lexicon, extra_catalogues=args.catalogue,
                          training=args.training, learned=not args.rules_only)
    except (OSError, ValueError) as error:  # unreadable or malformed lexicon or catalogue file
        print(f"luot greet: cannot load the lexicon or catalogue: {error}", file=sys.stderr)
        return 1
    if args.evaluate:
        try:
            if is_probe_file(args.evaluate):
                lines = load_probe_lines(args.evaluate)
                unknown = sorted({l.procedure for l in lines if l.procedure and l.procedure not in greeter.catalogue.entries})
                if unknown:
                    raise ValueError(f"procedure ids not in the catalogue: {', '.join(unknown)}")
                result = evaluate_probes(greeter, lines)
            else:
                result = evaluate(greeter, load_phrases(args.evaluate))
        except (OSError, ValueError) as error:
            print(f"luot greet: cannot read {args.evaluate}: {error}", file=sys.stderr)
            return 1
    else:
        answer = greeter.understand(args.text).to_json()
        order = ["text", "group", "procedure", "outside", "choices", "confidence", "alternatives", "reply_vi", "reply_en",
                 "documents", "legal_days"]
        result = {key: answer[key] for key in order} | {k: v for k, v in answer.items() if k not in order}
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0
