"""``luot pad``: run the satisfaction pad of one counter (four faces after each service)."""

from __future__ import annotations

HELP = "run a counter's satisfaction pad (Kivy)"

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="centre TOML file (tells the pad its counter)")
    parser.add_argument("--server", default="http://127.0.0.1:8080", help="centre server URL")
    parser.add_argument("--mqtt", metavar="HOST:PORT", help="broker (the pad listens to its counter's state there)")
    parser.add_argument("--device", default="pad-1", help="this pad's device id")
    parser.add_argument("--counter", type=int, help="counter number (default: from the centre file's devices)")
    parser.add_argument("--secret", help="device secret (default: read from <data>/secrets.json)")
    parser.add_argument("--data", help="data dir holding secrets.json and logs "
                                       "(default: $LUOT_DATA, else the directory of [storage] path, else var)")
    parser.add_argument("--fullscreen", action="store_true")
    parser.add_argument("--debug", action="store_true", help="log at DEBUG (default INFO; only while chasing a problem)")


def run(args: argparse.Namespace) -> int:
    from kiosk.backend import KioskError, read_secret
    from luot.commands.kiosk import kivy_environment, parse_mqtt
    from luot.config import ConfigError, load_config
    from luot.logs import setup_device_logging
    from luot.paths import data_dir

    try:
        config = load_config(args.config) if args.config else None
        data = data_dir(args.data, config)
        setup_device_logging("pad", data, args.debug)
        mqtt_host, mqtt_port = parse_mqtt(args.mqtt)
        secret = args.secret or read_secret(data, args.device)
        counter = args.counter
        if counter is None:
            counter = (config or load_config()).device(args.device).counter
    except KeyError:
        print(f"luot pad: device {args.device!r} is not in the centre file; give --counter", file=sys.stderr)
        return 1
    except (ValueError, KioskError, ConfigError) as error:
        print(f"luot pad: {error}", file=sys.stderr)
        return 1
    if counter is None:
        print("luot pad: this device has no counter; give --counter", file=sys.stderr)
        return 1
    kivy_environment(data)
    from kiosk.pad import PadApp, PadOptions

    PadApp(PadOptions(server_url=args.server, device_id=args.device, secret=secret, data_dir=data, counter=counter,
                      mqtt_host=mqtt_host, mqtt_port=mqtt_port, fullscreen=args.fullscreen)).run()
    return 0
