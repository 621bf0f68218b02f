"""``luot kiosk``: run the touchscreen ticket kiosk (ticket flow, guided flow, greeter)."""

from __future__ import annotations

HELP = "run the touchscreen ticket kiosk (Kivy)"

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from luot.credentials import add_enrol_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="centre TOML file (greeter lexicon, offline start, MQTT port)")
    parser.add_argument("--server", help="centre server URL (default: where it enrolled, else http://127.0.0.1:8080)")
    parser.add_argument("--mqtt", metavar="HOST:PORT",
                        help="broker for assistance requests (default: the enrolled one, else HTTP only)")
    parser.add_argument("--device", help="this kiosk's device id in the centre file (default: kiosk-1; "
                                         "an enrolled kiosk knows its own)")
    parser.add_argument("--secret", help="device secret (default: read from <data>/secrets.json)")
    add_enrol_argument(parser)
    parser.add_argument("--data", help="data dir: device-credentials.json or secrets.json, outbox, ticket PNGs, "
                                       "prompts, logs (default: $LUOT_DATA, else the directory of [storage] path, else var)")
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


@dataclass(frozen=True)
class DeviceLogin:
    """Who a kiosk or pad is and where its centre is, however it learned it."""

    device_id: str
    http_secret: str
    mqtt_secret: str
    server_url: str
    mqtt_host: str | None
    mqtt_port: int
    counter: int | None = None
    enrolled: bool = False


def device_login(args: argparse.Namespace, data: Path, role: str, default_device: str) -> DeviceLogin:
    """The kiosk's or pad's identity: enrolled (``--enrol URL CODE`` now, or its saved file in
    ``data``), or the centre file's device with its secret from ``--secret`` / ``<data>/secrets.json``.
    ``--server``, ``--mqtt`` and ``--device`` given on the command line win over the enrolled file's."""
    from kiosk.backend import read_secret
    from luot.credentials import DeviceCredentialsError, enrolled_identity

    mqtt_host, mqtt_port = parse_mqtt(args.mqtt)
    identity = None if args.secret else enrolled_identity(data, args.enrol, role)
    if identity is None:
        device = args.device or default_device
        secret = args.secret or read_secret(data, device)
        return DeviceLogin(device, secret, secret, args.server or "http://127.0.0.1:8080", mqtt_host, mqtt_port)
    if args.device and args.device != identity.device_id:
        raise DeviceCredentialsError(f"--device {args.device}: this data directory belongs to {identity.device_id}")
    return DeviceLogin(identity.device_id, identity.http_token, identity.mqtt_password,
                       args.server or identity.server_url, mqtt_host or identity.mqtt_host,
                       mqtt_port if mqtt_host else identity.mqtt_port, identity.counter, enrolled=True)


def kivy_environment(data_dir: Path) -> None:
    """Kivy reads these at import: no argv parsing, its files under our data dir, offscreen when
    there is no display at all (a headless check still runs)."""
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_HOME", str(data_dir / "kivy"))
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")


def run(args: argparse.Namespace) -> int:
    from kiosk.backend import KioskError
    from luot.config import ConfigError, load_config
    from luot.credentials import DeviceCredentialsError
    from luot.logs import setup_device_logging
    from luot.paths import data_dir

    try:
        config = load_config(args.config) if args.config else None
        data = data_dir(args.data, config)
        setup_device_logging("kiosk", data, args.debug)
        login = device_login(args, data, "kiosk", "kiosk-1")
    except (ValueError, KioskError, ConfigError, DeviceCredentialsError) as error:
        print(f"luot kiosk: {error}", file=sys.stderr)
        return 1
    kivy_environment(data)
    from kiosk.app import KioskApp, KioskOptions

    options = KioskOptions(
        server_url=login.server_url, device_id=login.device_id, secret=login.http_secret,
        mqtt_secret=login.mqtt_secret, data_dir=data, printer=args.printer,
        printer_profile=args.printer_profile, printer_width=576 if args.paper == "80" else 384,
        mqtt_host=login.mqtt_host, mqtt_port=login.mqtt_port, fullscreen=args.fullscreen, speech=not args.no_voice,
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
