"""``luot greet TEXT``: what the kiosk greeter understands from a sentence, as JSON.

``luot greet --evaluate FILE`` measures the greeter on labelled phrasings instead, so a centre that
extends the lexicon (``--lexicon FILE``) can check it did not break anything before deploying it.
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
    parser.add_argument("--evaluate", metavar="TSV",
                        help="labelled phrasings (text<TAB>group|NONE<TAB>tuned|heldout|probe|probe2); print accuracy figures")


def run(args: argparse.Namespace) -> int:
    from kiosk.greeter import Greeter
    from kiosk.greeter_eval import evaluate, load_phrases
    from luot.config import load_config

    if not args.text and not args.evaluate:
        print('luot greet: give the text to understand, e.g. luot greet "dang ky ket hon", or --evaluate FILE', file=sys.stderr)
        return 2
    try:
        greeter = Greeter(load_config(args.config), extra_lexicons=args.lexicon)
    except (OSError, ValueError) as error:  # unreadable or malformed lexicon file
        print(f"luot greet: cannot load the lexicon: {error}", file=sys.stderr)
        return 1
    if args.evaluate:
        try:
            phrases = load_phrases(args.evaluate)
        except (OSError, ValueError) as error:
            print(f"luot greet: cannot read {args.evaluate}: {error}", file=sys.stderr)
            return 1
        result = evaluate(greeter, phrases)
    else:
        answer = greeter.understand(args.text).to_json()
        order = ["text", "group", "confidence", "alternatives", "reply_vi", "reply_en", "documents", "legal_days"]
        result = {key: answer[key] for key in order} | {k: v for k, v in answer.items() if k not in order}
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0
