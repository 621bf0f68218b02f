"""``luot receipt TEXT``: what Luot reads from a dossier receipt's QR text (server/receipt.py):
the dossier code, procedure code and appointment date as JSON, or the plain refusal."""

from __future__ import annotations

HELP = "read a dossier receipt's QR text (Circular 01/2023): code, procedure, appointment date"

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", nargs="?", help="the QR's text as a scanner types it (default: read one line from stdin)")


def run(args: argparse.Namespace) -> int:
    from server.receipt import ReceiptError, parse_receipt

    text = args.text if args.text is not None else sys.stdin.readline().rstrip("\n")
    try:
        print(json.dumps({"ok": True, **parse_receipt(text).to_dict()}, ensure_ascii=False))
        return 0
    except ReceiptError as error:
        print(json.dumps({"ok": False, "message": error.message, "message_en": error.message_en}, ensure_ascii=False))
        return 2
