"""``luot pad``: run the satisfaction pad of one counter (four faces after each service)."""

from __future__ import annotations

HELP = "run a counter's satisfaction pad (Kivy)"

import argparse
import sys

from luot.credentials import add_enrol_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="centre TOML file (tells the pad its counter)")
    parser.add_argument("--server", help="centre server URL (default: where it enrolled, else http://127.0.0.1:8080)")
    parser.add_argument("--mqtt", metavar="HOST:PORT",
                        help="broker (the pad listens to its counter's state there; default: the enrolled one)")
    parser.add_argument("--device", help="this pad's device id in the centre file (default: pad-1; "
                                         "an enrolled pad knows its own)")
    parser.add_argument("--counter", type=int, help="counter number (default: the enrolled one, or the centre file's)")
    parser.add_argument("--secret", help="device secret (default: read from <data>/secrets.json)")
    add_enrol_argument(parser)
    parser.add_argument("--data", help="data dir holding device-credentials.json or secrets.json, and logs "
                                       "(default: $LUOT_DATA, else the directory of [storage] path, else var)")
    parser.add_argument("--fullscreen", action="store_true")
    parser.add_argument("--debug", action="store_true", help="log at DEBUG (default INFO; only while chasing a problem)")


def run(args: argparse.Namespace) -> int:
    from kiosk.backend import KioskError
    from luot.commands.kiosk import device_login, kivy_environment
    from luot.config import ConfigError, load_config
    from luot.credentials import DeviceCredentialsError
    from luot.logs import setup_device_logging
    from luot.paths import data_dir

    device = args.device or "pad-1"
    try:
        config = load_config(args.config) if args.config else None
        data = data_dir(args.data, config)
        setup_device_logging("pad", data, args.debug)
        login = device_login(args, data, "pad", "pad-1")
        device = login.device_id
        counter = args.counter if args.counter is not None else login.counter
        if counter is None:
            counter = (config or load_config()).device(device).counter
    except KeyError:
        print(f"luot pad: device {device!r} is not in the centre file; give --counter", file=sys.stderr)
        return 1
    except (ValueError, KioskError, ConfigError, DeviceCredentialsError) as error:
        print(f"luot pad: {error}", file=sys.stderr)
        return 1
    if counter is None:
        print("luot pad: this device has no counter; give --counter", file=sys.stderr)
        return 1
    kivy_environment(data)
    from kiosk.pad import PadApp, PadOptions

    PadApp(PadOptions(server_url=login.server_url, device_id=login.device_id, secret=login.http_secret,
                      mqtt_secret=login.mqtt_secret, data_dir=data, counter=counter,
                      mqtt_host=login.mqtt_host, mqtt_port=login.mqtt_port, fullscreen=args.fullscreen)).run()
    return 0
