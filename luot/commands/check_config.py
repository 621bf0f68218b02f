"""``luot check-config FILE``: every mistake of a centre file at once, each with its key and a fix.

Besides what the server refuses at start-up (luot/config.py), it checks what would only break at
run time (luot/config_check.py): the web server and the broker on one port, voices and languages
espeak-ng on this machine cannot speak, and kiosk printer paths given with ``--printer``.
Prints JSON on stdout (``ok``, the centre's outline or the ``problems``) and, when something is
wrong, the same problems as text on stderr; exits 1 on any error (warnings alone exit 0).
"""

from __future__ import annotations

HELP = "validate a centre configuration file and explain every mistake at once"

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", help="centre TOML file (default: the shipped sample centre)")
    parser.add_argument("--printer", action="append", default=[], metavar="TARGET",
                        help="also check a kiosk printer target as given to `luot kiosk --printer` "
                             "(file:/dev/usb/lp0 ...); repeatable")


def run(args: argparse.Namespace) -> int:
    from luot.config import read_centre_file
    from luot.config_check import check

    file, data = read_centre_file(args.config)  # unreadable or not TOML: ConfigError, one message
    config, problems = check(data, printers=args.printer)
    errors = [p for p in problems if p.severity == "error"]
    summary: dict = {"ok": not errors, "file": str(file)}
    if config is not None:
        summary |= {
            "centre": config.centre.id,
            "name": config.centre.name,
            "groups": [g.code for g in config.groups],
            "counters": [c.number for c in config.counters],
            "devices": [d.id for d in config.devices],
        }
    summary["problems"] = [p.to_dict() for p in problems]
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    if problems:
        print(f"{file}: {len(errors)} error(s), {len(problems) - len(errors)} warning(s):", file=sys.stderr)
        for problem in problems:
            mark = "-" if problem.severity == "error" else "! (warning)"
            print(f"  {mark} {problem.key}: {problem.message}\n      fix: {problem.fix}", file=sys.stderr)
    return 1 if errors else 0
