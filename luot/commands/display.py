"""``luot display``: run the hall display (or one counter's display) on this screen, fed by MQTT.

Hall mode by default; counter mode when the device has a counter in the centre file or
``--counter`` is given. See docs/display.md for running it on a TV.
"""

from __future__ import annotations

HELP = "run the hall or counter display (Kivy, driven by MQTT)"

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="centre TOML file (default: the sample centre)")
    parser.add_argument("--mqtt", metavar="HOST:PORT", help="broker address (default: [mqtt] host/port of the centre file, 127.0.0.1 when no host)")
    parser.add_argument("--device", help="this display's device id (default: the first display in the centre file)")
    parser.add_argument("--data", help="data directory: secrets.json, announcements, Kivy settings, logs "
                                       "(default: $LUOT_DATA, else the directory of [storage] path, else var)")
    parser.add_argument("--secret", help="the device's secret (default: read from <data>/secrets.json)")
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
    from display.client import SecretError, load_secret
    from display.runner import DisplayOptions, build_app
    from luot.config import load_config
    from luot.logs import setup_device_logging
    from luot.paths import data_dir

    config = load_config(args.config)
    data = data_dir(args.data, config)
    setup_device_logging("display", data, args.debug)
    try:
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
        counter = args.counter if args.counter is not None else device.counter
        if counter is not None and counter not in {c.number for c in config.counters}:
            raise ValueError(f"--counter {counter}: there is no such counter in the centre file")
        host, port = _parse_address(args.mqtt) if args.mqtt else (config.mqtt.host or "127.0.0.1", config.mqtt.port)
        size = _parse_size(args.size)
        secret = args.secret or load_secret(data, device_id)
    except (ValueError, SecretError) as error:
        print(f"luot display: {error}", file=sys.stderr)
        return 1
    app = build_app(DisplayOptions(config, device_id, secret, host, port, counter, size, args.fullscreen,
                                   not args.no_voice, data))
    app.run()
    return 0
