"""``luot uninstall``: stop and remove what ``luot install`` set up on this box.

The centre's records are kept: ``/etc/luot`` and ``/var/lib/luot`` (the database of every ticket,
the devices' secrets) and the user ``luot`` go only with ``--purge``. ``--root DIR`` works on a
scratch root like ``luot install --root``: files under ``DIR`` are removed, system commands printed.
"""

from __future__ import annotations

HELP = "remove the systemd units luot install set up (and, with --purge, the centre's data and user)"

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from luot.commands.install import (DATA, ETC, ROLES, UNITS, USER, InstallError, Plan, must_be_root, report,
                                   unit_name, user_exists)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--role", choices=ROLES, help="remove only this role's unit (default: every luot unit found)")
    parser.add_argument("--root", default="/", help="work on this directory instead of / (system commands printed, not run)")
    parser.add_argument("--purge", action="store_true",
                        help="also delete /etc/luot, /var/lib/luot (the database!) and the user luot")


def plan_uninstall(args: argparse.Namespace) -> Plan:
    plan = Plan(Path(args.root))
    roles = [args.role] if args.role else [r for r in ROLES if plan.at(UNITS / unit_name(r)).exists()]
    units = [unit_name(r) for r in roles]
    if units:
        plan.commands.append(["systemctl", "disable", "--now", *units])
    plan.remove += [plan.at(UNITS / u) for u in units]
    plan.commands.append(["systemctl", "daemon-reload"])
    if args.purge:
        plan.remove += [plan.at(ETC), plan.at(DATA)]
        plan.commands.append(["userdel", USER])
    return plan


def run(args: argparse.Namespace) -> int:
    live = Path(args.root).resolve() == Path("/")
    try:
        must_be_root(live)
    except InstallError as error:
        print(error, file=sys.stderr)
        return 1
    plan = plan_uninstall(args)
    ran: list[list[str]] = []
    if live and plan.commands[0][:2] == ["systemctl", "disable"]:
        subprocess.run(plan.commands[0], check=False)  # a unit already stopped is fine
        ran.append(plan.commands[0])
    removed = []
    for path in plan.remove:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        else:
            continue
        removed.append(str(path))
    if live:
        for command in plan.commands[len(ran):]:
            if command[0] == "userdel" and not user_exists(USER):
                continue
            subprocess.run(command, check=False)
            ran.append(command)
    report(plan, args.role or "all", ran, live, removed=removed)
    return 0
