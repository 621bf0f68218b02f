"""``luot kiosk``: run the touchscreen ticket kiosk (ticket flow, guided flow, greeter)."""

from __future__ import annotations

HELP = "run the touchscreen ticket kiosk (Kivy)"

import argparse
import os
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="centre TOML file (greeter lexicon, offline start, MQTT port)")
    parser.add_argument("--server", default="http://127.0.0.1:8080", help="centre server URL")
    parser.add_argument("--mqtt", metavar="HOST:PORT", help="broker for assistance requests (default: HTTP only)")
    parser.add_argument("--device", default="kiosk-1", help="this kiosk's device id (its MQTT user and HTTP token)")
    parser.add_argument("--secret", help="device secret (default: read from <data>/secrets.json)")
    parser.add_argument("--data", help="data dir: secrets.json, outbox, ticket PNGs, prompts, logs "
                                       "(default: $LUOT_DATA, else the directory of [storage] path, else var)")
    parser.add_argument("--printer", default="none",
                        help="file:/dev/usb/lp0, network:HOST:9100, usb:0xVID:0xPID or none (default)")
    parser.add_argument("--printer-profile", default="default", help="python-escpos profile, e.g. TM-T20II")
    parser.add_argument("--paper", choices=["80", "58"], default="80", help="paper width in mm")
    parser.add_argument("--fullscreen", action="store_true", help="fill the screen (a real kiosk)")
    parser.add_argument("--no-voice", action="store_true", help="do not speak prompts")
    parser.add_argument("--debug", action="store_true", help="log at DEBUG (default INFO; only while chasing a problem)")


def parse_mqtt(value: str | None) -> tuple[str | None, int]:
    if not value:
        return None, 18830
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--mqtt wants HOST:PORT, got {value!r}")
    return host, int(port)


def kivy_environment(data_dir: Path) -> None:
    """Kivy reads these at import: no argv parsing, its files under our data dir, offscreen when
    there is no display at all (a headless check still runs)."""
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_HOME", str(data_dir / "kivy"))
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")


def run(args: argparse.Namespace) -> int:
    from kiosk.backend import KioskError, read_secret
    from luot.config import ConfigError, load_config
    from luot.logs import setup_device_logging
    from luot.paths import data_dir

    try:
        config = load_config(args.config) if args.config else None
        data = data_dir(args.data, config)
        setup_device_logging("kiosk", data, args.debug)
        mqtt_host, mqtt_port = parse_mqtt(args.mqtt)
        secret = args.secret or read_secret(data, args.device)
    except (ValueError, KioskError, ConfigError) as error:
        print(f"luot kiosk: {error}", file=sys.stderr)
        return 1
    kivy_environment(data)
    from kiosk.app import KioskApp, KioskOptions

    options = KioskOptions(
        server_url=args.server, device_id=args.device, secret=secret, data_dir=data, printer=args.printer,
        printer_profile=args.printer_profile, printer_width=576 if args.paper == "80" else 384,
        mqtt_host=mqtt_host, mqtt_port=mqtt_port, fullscreen=args.fullscreen, speech=not args.no_voice,
        config=config, timezone=config.centre.timezone if config else "Asia/Ho_Chi_Minh",
        fallback_centre=_centre_description(config) if config else None)
    KioskApp(options).run()
    return 0


def _centre_description(config) -> dict:
    """What GET /api/v1/centre would say, so a kiosk started while the server is down still works."""
    return {
        "id": config.centre.id, "name": config.centre.name, "name_en": config.centre.name_en,
        "notice": config.centre.notice, "notice_en": config.centre.notice_en,
        "public_url": config.centre.public_url,
        "groups": [g.model_dump(include={"code", "letter", "name", "name_en", "description", "service_minutes",
                                         "legal_days", "documents"}) for g in config.groups],
        "counters": [{"number": c.number, "name": c.label, "groups": c.groups} for c in config.counters],
        "priority_classes": [p.model_dump() for p in config.priority_classes],
    }
