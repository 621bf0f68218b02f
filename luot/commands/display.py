"""``luot display``: run the hall display (or one counter's display) on this screen, fed by MQTT.

Hall mode by default; counter mode when the device has a counter in the centre file or
``--counter`` is given. See docs/display.md for running it on a TV.
"""

from __future__ import annotations

HELP = "run the hall or counter display (Kivy, driven by MQTT)"

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from luot.credentials import add_enrol_argument

if TYPE_CHECKING:
    from luot.config import CentreConfig
    from luot.credentials import DeviceCredentials


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="centre TOML file (default: the sample centre)")
    parser.add_argument("--mqtt", metavar="HOST:PORT", help="broker address (default: [mqtt] host/port of the centre file, 127.0.0.1 when no host)")
    parser.add_argument("--device", help="this display's device id (default: the first display in the centre file)")
    parser.add_argument("--data", help="data directory: device-credentials.json or secrets.json, announcements, Kivy "
                                       "settings, logs (default: $LUOT_DATA, else the directory of [storage] path, else var)")
    parser.add_argument("--secret", help="the device's secret (default: read from <data>/secrets.json)")
    add_enrol_argument(parser)
    parser.add_argument("--counter", type=int, help="show only this counter's number (counter display)")
    parser.add_argument("--size", default="1920x1080", help="window size WIDTHxHEIGHT (default 1920x1080)")
    parser.add_argument("--fullscreen", action="store_true", help="fill the screen (a TV)")
    parser.add_argument("--no-voice", action="store_true", help="do not announce calls")
    parser.add_argument("--debug", action="store_true", help="log at DEBUG (default INFO; only while chasing a problem)")


def _parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size {text!r}: expected WIDTHxHEIGHT such as 1920x1080") from None
    if not (200 <= width <= 8000 and 200 <= height <= 8000):
        raise ValueError(f"--size {text!r}: width and height must be between 200 and 8000")
    return width, height


def _parse_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"--mqtt {text!r}: expected HOST:PORT such as 192.168.1.10:18830")
    return host, int(port)


def run(args: argparse.Namespace) -> int:
    from display.client import SecretError
    from display.runner import DisplayOptions, build_app
    from luot.config import load_config
    from luot.credentials import DeviceCredentialsError, enrolled_identity
    from luot.logs import setup_device_logging
    from luot.paths import data_dir

    config = load_config(args.config)
    data = data_dir(args.data, config)
    setup_device_logging("display", data, args.debug)
    try:
        identity = None if args.secret else enrolled_identity(data, args.enrol, "display")
        login = _declared(args, config, data) if identity is None else _enrolled(args, config, identity)
        size = _parse_size(args.size)
    except (ValueError, SecretError, DeviceCredentialsError) as error:
        print(f"luot display: {error}", file=sys.stderr)
        return 1
    device_id, secret, host, port, counter = login
    app = build_app(DisplayOptions(config, device_id, secret, host, port, counter, size, args.fullscreen,
                                   not args.no_voice, data))
    app.run()
    return 0


Login = tuple[str, str, str, int, "int | None"]
"""(device id, MQTT password, broker host, broker port, counter)."""


def _enrolled(args: argparse.Namespace, config: "CentreConfig", identity: "DeviceCredentials") -> Login:
    """A display that joined by enrolment: everything from its credentials file but the centre's layout."""
    if identity.centre != config.centre.id:
        raise ValueError(f"this display was enrolled at centre {identity.centre!r}, but --config describes "
                         f"{config.centre.id!r}; give that centre's file")
    if args.device and args.device != identity.device_id:
        raise ValueError(f"--device {args.device}: this data directory belongs to {identity.device_id}")
    host, port = _parse_address(args.mqtt) if args.mqtt else (identity.mqtt_host, identity.mqtt_port)
    counter = args.counter if args.counter is not None else identity.counter
    return identity.device_id, identity.mqtt_password, host, port, _checked_counter(config, counter)


def _declared(args: argparse.Namespace, config: "CentreConfig", data: Path) -> Login:
    """A display declared in the centre file, its secret from --secret or <data>/secrets.json."""
    from display.client import load_secret

    displays = [d for d in config.devices if d.role == "display"]
    device_id = args.device or (displays[0].id if displays else None)
    if device_id is None:
        raise ValueError("the centre file has no device with role = \"display\"; add one or pass --device")
    try:
        device = config.device(device_id)
    except KeyError:
        raise ValueError(f"--device {device_id!r} is not in the centre file's [[devices]]") from None
    if device.role != "display":
        raise ValueError(f"device {device_id!r} has role {device.role!r}, not display")
    counter = _checked_counter(config, args.counter if args.counter is not None else device.counter)
    host, port = _parse_address(args.mqtt) if args.mqtt else (config.mqtt.host or "127.0.0.1", config.mqtt.port)
    return device_id, args.secret or load_secret(data, device_id), host, port, counter


def _checked_counter(config: "CentreConfig", counter: int | None) -> int | None:
    if counter is not None and counter not in {c.number for c in config.counters}:
        raise ValueError(f"--counter {counter}: there is no such counter in the centre file")
    return counter
