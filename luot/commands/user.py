"""``luot user add|reset|list``: staff accounts from the command line (prints JSON).

``add`` creates (or resets) an account with a one-time password: the first sign-in must choose a
new one (``--permanent``: it need not). ``reset`` gives an existing account a fresh one-time
password and ends its sessions (the same as a manager's reset in the web API). A running server
notices within 30 s.
"""

from __future__ import annotations

HELP = "add, reset or list officer and manager accounts"

import argparse
import asyncio
import getpass
import json
import sys
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["add", "reset", "list"],
                        help="add (or reset) an account with a given password; reset: a one-time password; list")
    parser.add_argument("username", nargs="?")
    parser.add_argument("--name", help="full name shown in reports (default: the username)")
    parser.add_argument("--role", choices=["officer", "manager"], default="officer")
    parser.add_argument("--password", help="add: the one-time password (default: asked for, or read from stdin when piped)")
    parser.add_argument("--permanent", action="store_true",
                        help="add: the password need not be changed at the first sign-in")
    parser.add_argument("--config", help="centre TOML file (found like `luot server` finds it: $LUOT_CONFIG, /etc/luot/centre.toml, the sample)")
    parser.add_argument("--data", help="data directory of the centre (found like `luot server` finds it: $LUOT_DATA, [storage] path)")


def run(args: argparse.Namespace) -> int:
    from luot.paths import centre_config, data_dir, database_file
    from server.accounts import AccountError, Accounts
    from server.storage import Storage

    config = centre_config(args.config)
    database = database_file(data_dir(args.data, config), config)
    if not database.exists():  # never start a second, empty database the server does not read
        print(f"Không thấy cơ sở dữ liệu của trung tâm ở {database}; chạy `luot server` trước, hoặc chỉ đúng --data / LUOT_DATA.\n"
              f"No centre database at {database}; start `luot server` first, or give the right --data / LUOT_DATA.",
              file=sys.stderr)
        return 1
    if args.action != "list" and not args.username:
        print("Cần tên đăng nhập / a username is needed", file=sys.stderr)
        return 2
    password = args.password
    if args.action == "add" and password is None:
        password = getpass.getpass("Mật khẩu / password: ") if sys.stdin.isatty() else sys.stdin.readline().strip()

    async def work() -> dict[str, Any]:
        storage = await Storage.open(database, config.zone)
        accounts = Accounts(storage, config.staff)
        try:
            if args.action == "add":
                accounts.check_new_password(args.username, password)
                await accounts.add_user(args.username, args.name or args.username, args.role, password,
                                        must_change=not args.permanent)
                return {"ok": True, "username": args.username, "role": args.role,
                        "must_change_password": not args.permanent}
            if args.action == "reset":
                one_time = await accounts.reset_password(args.username)
                return {"ok": True, "username": args.username, "one_time_password": one_time, "must_change_password": True}
            return {"users": [{"username": u.username, "name": u.name, "role": u.role,
                               "must_change_password": u.must_change_password, "last_counter": u.last_counter}
                              for u in await accounts.list_users()]}
        finally:
            await storage.close()

    try:
        result = asyncio.run(work())
    except AccountError as error:
        print(f"{error.message} / {error.message_en}", file=sys.stderr)
        return 1
    print(json.dumps({**result, "database": str(database.resolve())}, ensure_ascii=False))
    return 0
