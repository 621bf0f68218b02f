"""``luot backup``: an online backup of the centre's database now (the server may be running)."""

from __future__ import annotations

HELP = "back up the centre's database now (online; prints JSON: path, size, checksum, duration)"

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="centre TOML file (default: the shipped sample centre)")
    parser.add_argument("--data", default="var", help="the server's data directory (default: var)")


def run(args: argparse.Namespace) -> int:
    import os

    from luot.config import load_config
    from server.backup import BackupError, run_backup

    os.umask(0o077)
    config = load_config(args.config)
    try:
        result = run_backup(config, Path(args.data))
    except BackupError as error:
        print(json.dumps({"ok": False, "message": error.message, "message_en": error.message_en},
                         ensure_ascii=False), file=sys.stderr)
        return 1
    print(json.dumps({"ok": True, **result.as_dict()}, ensure_ascii=False, indent=2))
    return 0
