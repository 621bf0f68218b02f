"""``luot user add USERNAME --role officer|manager``: create or reset a staff account."""

from __future__ import annotations

HELP = "add or reset an officer or manager account"

import argparse
import asyncio
import getpass
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["add"], help="add (or reset) a staff account")
    parser.add_argument("username")
    parser.add_argument("--name", help="full name shown in reports (default: the username)")
    parser.add_argument("--role", choices=["officer", "manager"], default="officer")
    parser.add_argument("--password", help="password (default: asked for, or read from stdin when piped)")
    parser.add_argument("--config", help="centre TOML file (found like `luot server` finds it: $LUOT_CONFIG, /etc/luot/centre.toml, the sample)")
    parser.add_argument("--data", help="data directory of the centre (found like `luot server` finds it: $LUOT_DATA, [storage] path)")


def run(args: argparse.Namespace) -> int:
    from luot.paths import centre_config, data_dir, database_file
    from server.accounts import Accounts
    from server.storage import Storage

    config = centre_config(args.config)
    database = database_file(data_dir(args.data, config), config)
    if not database.exists():  # never start a second, empty database the server does not read
        print(f"Không thấy cơ sở dữ liệu của trung tâm ở {database}; chạy `luot server` trước, hoặc chỉ đúng --data / LUOT_DATA.\n"
              f"No centre database at {database}; start `luot server` first, or give the right --data / LUOT_DATA.",
              file=sys.stderr)
        return 1
    password = args.password
    if password is None:
        password = getpass.getpass("Mật khẩu / password: ") if sys.stdin.isatty() else sys.stdin.readline().strip()
    if len(password) < 8:
        print("Mật khẩu cần ít nhất 8 ký tự / the password needs at least 8 characters", file=sys.stderr)
        return 1

    async def add() -> None:
        storage = await Storage.open(database, config.zone)
        try:
            await Accounts(storage).add_user(args.username, args.name or args.username, args.role, password)
        finally:
            await storage.close()

    asyncio.run(add())
    print(json.dumps({"ok": True, "username": args.username, "role": args.role, "database": str(database.resolve())}))
    return 0
