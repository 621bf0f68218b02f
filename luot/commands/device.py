"""``luot device add|list|revoke``: add a device by one-time code, list devices, throw one out.

Works on the centre's data directory directly (``devices.json``, server/devices.py), whether or not
the server runs; a running server applies a change within a second (server/device_access.py).
Prints JSON. ``add`` prints the code once: it is stored only as a hash.
"""

from __future__ import annotations

HELP = "add a device (one-time enrolment code), list devices, or revoke one"

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["add", "list", "revoke"])
    parser.add_argument("device_id", nargs="?", help="the device's id, e.g. kiosk-3 (add, revoke)")
    parser.add_argument("--role", choices=["kiosk", "display", "pad", "manager"], help="its role (add)")
    parser.add_argument("--counter", type=int, help="its counter (a pad must have one; a display may)")
    parser.add_argument("--url", help="the server's address as devices reach it (default: [centre] public_url, "
                                      "the server's LAN address that tickets' QR links use)")
    parser.add_argument("--qr", metavar="PNG", help="also write the enrolment QR code (URL and code) to this file")
    parser.add_argument("--config", help="centre TOML file (default: $LUOT_CONFIG, /etc/luot/centre.toml, the sample)")
    parser.add_argument("--data", help="data directory of the centre "
                                       "(default: $LUOT_DATA, else the directory of [storage] path, else var)")


def run(args: argparse.Namespace) -> int:
    from luot.credentials import load_or_create
    from luot.paths import centre_config, data_dir
    from server.devices import DeviceRegistry, RegistryError, enrolment_text, format_code, write_qr_png

    config = centre_config(args.config)
    data = data_dir(args.data, config)
    now = datetime.now(timezone.utc)
    try:
        registry = DeviceRegistry(config, load_or_create(config, data / "secrets.json"), data)
        if args.action == "list":
            result: dict = {"devices": [d.public() for d in registry.devices()]}
        elif not args.device_id:
            print(f"luot device {args.action}: give the device id", file=sys.stderr)
            return 2
        elif args.action == "add":
            if not args.role:
                print("luot device add: give --role kiosk|display|pad|manager", file=sys.stderr)
                return 2
            device, code = registry.add(args.device_id, args.role, args.counter, now)
            # public_url is the server's address on the centre's LAN (luot server checks it opens from the hall).
            url = (args.url or config.centre.public_url).rstrip("/")
            text = enrolment_text(url, code)
            result = {"device": device.public(), "code": format_code(code), "expires_at": device.code_expires_at,
                      "url": url, "qr_text": text}
            if device.role in ("kiosk", "display", "pad"):  # a manager screen is a browser or a program
                result["command"] = f"luot {device.role} --enrol {text}"
            if args.qr:
                write_qr_png(text, Path(args.qr))
                result["qr"] = str(Path(args.qr).resolve())
        else:
            result = {"device": registry.revoke(args.device_id, now).public()}
    except RegistryError as error:
        print(json.dumps({"error": error.code, "message": error.message, "message_en": error.message_en},
                         ensure_ascii=False), file=sys.stderr)
        return 1
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0

