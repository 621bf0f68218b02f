"""``luot number N``: how the announcer reads a number, in Vietnamese (Northern) and English, as JSON."""

from __future__ import annotations

HELP = "how the announcer reads a number, Vietnamese (Northern) and English (JSON)"

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("number", type=int, help="a whole number from 0 to 999999999")


def run(args: argparse.Namespace) -> int:
    from luot.vinumber import read_number, read_number_en

    try:
        result = {"number": args.number, "vi": read_number(args.number), "en": read_number_en(args.number)}
    except ValueError as error:
        print(f"luot number: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result, ensure_ascii=False))
    return 0
