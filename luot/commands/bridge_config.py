"""``luot bridge-config``: the Mosquitto bridge of a centre, or the regional broker's set-up.

At a centre: ``luot bridge-config --config centre.toml --region host:port --out DIR`` writes
``DIR/bridge.d/region.conf`` (include it in the centre's broker: ``include_dir DIR/bridge.d``;
``luot server`` does this itself when the centre file has ``[region]``) and
``DIR/region-credentials.json`` for the regional box (mode 0600, carry it there safely).

At the region: ``luot bridge-config --centres centres.toml --out DIR --port 8883`` writes the
regional broker's mosquitto.conf, passwd (one user per centre, plus ``aggregator``) and acl.
Prints JSON naming the files. Secrets are never printed.
"""

from __future__ import annotations

HELP = "write a centre's bridge to the regional broker, or the regional broker's configuration"

import argparse
import json
import os
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="centre TOML file (centre side)")
    parser.add_argument("--region", help="regional broker host:port (default: [region] of the centre file)")
    parser.add_argument("--secrets", help="the centre's device secrets file, created if missing (default: secrets.json in the data directory: $LUOT_DATA, else beside [storage] path)")
    parser.add_argument("--centres", help="the region's centres.toml (region side)")
    parser.add_argument("--port", type=int, default=8883, help="regional broker port (region side; default 8883)")
    parser.add_argument("--bind", default="127.0.0.1", help="regional broker address to listen on (0.0.0.0 for the network)")
    parser.add_argument("--tls-ca", help="region side: CA file for the listener (with --tls-cert and --tls-key)")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--run-as-root", action="store_true", help="add 'user root' (Mosquitto started as root)")
    parser.add_argument("--out", required=True, help="directory to write into")


def run(args: argparse.Namespace) -> int:
    from luot.config import ConfigError, load_config
    from luot.credentials import load_or_create
    from luot.paths import secrets_file
    from region.bridge import RegionTarget, parse_target, write_centre_bridge, write_regional_broker_for
    from region.settings import load_region

    if bool(args.config) == bool(args.centres):
        print("luot bridge-config: give either --config (a centre) or --centres (the region)", file=sys.stderr)
        return 2
    try:
        if args.centres:
            tls = None
            if args.tls_ca or args.tls_cert or args.tls_key:
                if not (args.tls_ca and args.tls_cert and args.tls_key):
                    raise ValueError("--tls-ca, --tls-cert and --tls-key go together")
                tls = {"cafile": args.tls_ca, "certfile": args.tls_cert, "keyfile": args.tls_key}
            region = load_region(args.centres)
            conf = write_regional_broker_for(region, args.out, args.port, args.bind, args.run_as_root, tls)
            print(json.dumps({"dir": str(conf.parent), "conf": str(conf), "port": args.port,
                              "users": ["aggregator", *(c.mqtt_username for c in region.centres.values())]},
                             ensure_ascii=False, indent=2))
            return 0
        config = load_config(args.config)
        target: RegionTarget | None = parse_target(args.region) if args.region else None
        if config.region is None:
            if target is None:
                raise ValueError("the centre file has no [region] table: add one or pass --region host:port")
            raw = config.model_dump(exclude_none=True)
            raw["region"] = {"host": target.host, "port": target.port}
            config = type(config).model_validate(raw)
        credentials = load_or_create(config, secrets_file(args.secrets, config))
        files = write_centre_bridge(config, credentials, args.out, target)
    except (ConfigError, ValueError, OSError) as error:
        print(f"luot bridge-config: {error}", file=sys.stderr)
        return 1
    print(json.dumps({"centre": config.centre.id, "bridge_conf": str(files["bridge_conf"]),
                      "include": f"include_dir {files['bridge_dir']}", "credentials": str(files["credentials"]),
                      "secrets": os.fspath(credentials.path)}, ensure_ascii=False, indent=2))
    return 0
