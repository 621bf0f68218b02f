"""``luot backup``: an online backup of the centre's database now (the server may be running)."""

from __future__ import annotations

HELP = "back up the centre's database now (online; prints JSON: path, size, checksum, duration)"

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="centre file (found like `luot server` finds it: $LUOT_CONFIG, /etc/luot/centre.toml)")
    parser.add_argument("--data", help="the server's data directory (found like `luot server` finds it: $LUOT_DATA, [storage] path)")


def run(args: argparse.Namespace) -> int:
    import os

    from luot.paths import centre_config, data_dir
    from server.backup import BackupError, run_backup

    os.umask(0o077)
    config = centre_config(args.config)
    try:
        result = run_backup(config, data_dir(args.data, config))
    except BackupError as error:
        print(json.dumps({"ok": False, "message": error.message, "message_en": error.message_en},
                         ensure_ascii=False), file=sys.stderr)
        return 1
    print(json.dumps({"ok": True, **result.as_dict()}, ensure_ascii=False, indent=2))
    return 0
