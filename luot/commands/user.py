"""``luot user add USERNAME --role officer|manager``: create or reset a staff account."""

from __future__ import annotations

HELP = "add or reset an officer or manager account"

import argparse
import asyncio
import getpass
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["add"], help="add (or reset) a staff account")
    parser.add_argument("username")
    parser.add_argument("--name", help="full name shown in reports (default: the username)")
    parser.add_argument("--role", choices=["officer", "manager"], default="officer")
    parser.add_argument("--password", help="password (default: asked for, or read from stdin when piped)")
    parser.add_argument("--config", help="centre TOML file")
    parser.add_argument("--data", default="var", help="data directory of the centre (default: var)")


def run(args: argparse.Namespace) -> int:
    from luot.config import load_config
    from server.accounts import Accounts
    from server.storage import Storage

    config = load_config(args.config)
    password = args.password
    if password is None:
        password = getpass.getpass("Mật khẩu / password: ") if sys.stdin.isatty() else sys.stdin.readline().strip()
    if len(password) < 8:
        print("Mật khẩu cần ít nhất 8 ký tự / the password needs at least 8 characters", file=sys.stderr)
        return 1

    async def add() -> None:
        storage = await Storage.open(Path(args.data) / Path(config.storage.path).name, config.zone)
        try:
            await Accounts(storage).add_user(args.username, args.name or args.username, args.role, password)
        finally:
            await storage.close()

    asyncio.run(add())
    print(json.dumps({"ok": True, "username": args.username, "role": args.role}))
    return 0
