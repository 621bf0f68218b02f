"""``luot check-config FILE``: validate a centre file; print a JSON summary or the mistakes."""

from __future__ import annotations

HELP = "validate a centre configuration file and explain any mistake"

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", help="centre TOML file (default: the shipped sample centre)")


def run(args: argparse.Namespace) -> int:
    from luot.config import load_config

    config = load_config(args.config)
    summary = {
        "ok": True,
        "centre": config.centre.id,
        "name": config.centre.name,
        "groups": [g.code for g in config.groups],
        "counters": [c.number for c in config.counters],
        "devices": [d.id for d in config.devices],
    }
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    return 0
