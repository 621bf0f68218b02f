"""``luot restore FILE``: put a verified backup in place of the centre's database (server stopped)."""

from __future__ import annotations

HELP = "restore a backup into the data directory (refused while the server runs; checks checksum and integrity; prints JSON)"

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="the backup file (its .sha256 file must be beside it)")
    parser.add_argument("--config", help="centre file (found like `luot server` finds it: $LUOT_CONFIG, /etc/luot/centre.toml)")
    parser.add_argument("--data", help="the data directory to restore into (found like `luot server` finds it: $LUOT_DATA, [storage] path)")


def run(args: argparse.Namespace) -> int:
    import os

    from luot.paths import centre_config, data_dir
    from server.backup import BackupError, restore

    os.umask(0o077)
    config = centre_config(args.config)
    try:
        result = restore(config, data_dir(args.data, config), Path(args.file))
    except BackupError as error:
        print(json.dumps({"ok": False, "message": error.message, "message_en": error.message_en},
                         ensure_ascii=False), file=sys.stderr)
        return 1
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0
