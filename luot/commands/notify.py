"""``luot notify``: citizens' messages from the command line, as JSON (docs/notifications.md).

``phone RAW``   how Luot writes a typed phone number (or why it refuses it);
``status``      the outbox's counts and the channels in use (never a phone or a text);
``test PHONE``  queue a test message and try to hand it to the channels once (plugging a modem);
``sweep``       run the retention sweep now (``[notify] keep_phone_days``).
"""

from __future__ import annotations

HELP = "citizens' messages: check a phone number, outbox status, a test SMS, the retention sweep (JSON)"

import argparse
import asyncio
import json
import sys
from datetime import datetime, timezone


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from luot.paths import add_location_arguments

    sub = parser.add_subparsers(dest="action", required=True)
    phone = sub.add_parser("phone", help="normalise a Vietnamese mobile number")
    phone.add_argument("raw")
    for name, text in (("status", "outbox counts and channels"), ("sweep", "delete old phones now"),
                       ("test", "queue a test message and try to send it once")):
        action = sub.add_parser(name, help=text)
        add_location_arguments(action)
        if name == "test":
            action.add_argument("phone")
            action.add_argument("--text", default="Luot: tin nhắn thử / test message")


def _print(data: object) -> None:
    print(json.dumps(data, ensure_ascii=False))


def run(args: argparse.Namespace) -> int:
    from server.phones import PhoneRefused, mask_phone, normalise_phone

    if args.action == "phone":
        try:
            _print({"phone": normalise_phone(args.raw), "masked": mask_phone(args.raw)})
            return 0
        except PhoneRefused as refused:
            _print({"refused": True, "message": refused.message_vi, "message_en": refused.message_en})
            return 1
    from luot.paths import centre_config, data_dir
    from server.notify.notifier import Notifier
    from server.phones import PhoneVault

    config = centre_config(args.config)
    data = data_dir(args.data, config)
    notifier = Notifier.for_centre(config, data, PhoneVault.for_data_dir(data))
    channels, problems = notifier.channels, notifier.problems
    try:
        if args.action == "status":
            _print({"outbox": notifier.outbox.counts(), "channels": [c.name for c in channels], "problems": problems})
        elif args.action == "sweep":
            _print({"removed": notifier.sweep()})
        else:
            try:
                sealed = notifier.vault.seal(args.phone)
            except PhoneRefused as refused:
                _print({"refused": True, "message": refused.message_vi, "message_en": refused.message_en})
                return 1
            key = f"test:{datetime.now(timezone.utc).isoformat()}"
            notifier.enqueue(key, sealed, args.text, "test")
            asyncio.run(notifier.deliver_due())
            row = notifier.outbox.status_of(key)
            _print({"status": row["status"], "channel": row["channel"], "error": row["last_error"],
                    "channels": [c.name for c in channels], "problems": problems})
            return 0 if row["status"] == "sent" else 1
    finally:
        notifier.close()
    return 0
