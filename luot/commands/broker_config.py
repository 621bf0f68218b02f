"""``luot broker-config --config FILE --out DIR``: write the centre's Mosquitto set-up.

Creates any missing device secrets (in the secrets file, mode 0600), then writes mosquitto.conf,
passwd and acl into DIR and prints JSON naming the files and the MQTT users. The users are the
device registry's (server/devices.py, ``devices.json`` beside the secrets file): declared devices
not revoked, and enrolled ones; for an external broker, run this again after ``luot device add``
is claimed or ``luot device revoke`` (then reload that broker). Secrets are never printed.
"""

from __future__ import annotations

HELP = "write the centre's Mosquitto configuration, passwords and ACLs"

import argparse
import json
import os
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="centre TOML file (default: the shipped sample centre)")
    parser.add_argument("--out", required=True, help="directory to write mosquitto.conf, passwd and acl into")
    parser.add_argument("--port", type=int, help="MQTT port (default: [mqtt] port of the centre file)")
    parser.add_argument("--bind", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; 0.0.0.0 for devices on the LAN)")
    parser.add_argument("--secrets", help="device secrets file, created if missing (default: secrets.json in the data directory: $LUOT_DATA, else beside [storage] path)")
    parser.add_argument("--run-as-root", action="store_true",
                        help="add 'user root' so Mosquitto started as root keeps access to DIR")


def run(args: argparse.Namespace) -> int:
    from luot.config import ConfigError, load_config
    from luot.credentials import load_or_create
    from luot.paths import secrets_file
    from server.broker_setup import acl_rules, generate
    from server.devices import DeviceRegistry, RegistryError

    try:
        config = load_config(args.config)
        credentials = load_or_create(config, secrets_file(args.secrets, config))
        registry = DeviceRegistry(config, credentials, credentials.path.parent)
        config = registry.mqtt_config()
        port = args.port if args.port is not None else config.mqtt.port
        conf = generate(config, registry.mqtt_credentials(), args.out, port, bind=args.bind,
                        run_as_root=args.run_as_root)
    except RegistryError as error:
        print(f"luot broker-config: {error.message_en}", file=sys.stderr)
        return 1
    except (ConfigError, ValueError, OSError) as error:
        print(f"luot broker-config: {error}", file=sys.stderr)
        return 1
    print(json.dumps({
        "dir": str(conf.parent),
        "conf": str(conf),
        "port": port,
        "users": list(acl_rules(config)),
        "secrets": os.fspath(credentials.path),
    }, ensure_ascii=False, indent=2))
    return 0
