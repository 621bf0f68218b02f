"""``luot restore FILE``: put a verified backup in place of the centre's database (server stopped)."""

from __future__ import annotations

HELP = "restore a backup into the data directory (refused while the server runs; checks checksum and integrity; prints JSON)"

import argparse
import json
import sys
from pathlib import Path

from luot.paths import add_location_arguments


def numbers_to_skip(text: str) -> int:
    """``--skip-numbers``: a whole number from 0 (argparse prints the refusal and exits 2)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"phải là số nguyên từ 0 / must be a whole number from 0: {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="the backup file (its .sha256 file must be beside it)")
    parser.add_argument("--skip-numbers", type=numbers_to_skip, default=None, metavar="N",
                        help="numbers to skip in each group today (default: estimated from the hours since the "
                             "backup and the group's busiest hour, so no slip given out since is issued again)")
    add_location_arguments(parser, "the data directory to restore into")


def run(args: argparse.Namespace) -> int:
    import os

    from luot.paths import centre_config, data_dir
    from server.backup import BackupError, restore

    os.umask(0o077)
    config = centre_config(args.config)
    try:
        result = restore(config, data_dir(args.data, config), Path(args.file), skip_numbers=args.skip_numbers)
    except BackupError as error:
        print(json.dumps({"ok": False, "message": error.message, "message_en": error.message_en},
                         ensure_ascii=False), file=sys.stderr)
        return 1
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0
