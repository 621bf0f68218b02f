"""``luot doctor``: check this server box (configuration, web, broker, passwords, disk, database,
clock, printer, audio, versions) and say how to fix whatever is wrong. With ``--centres``: check a
regional box instead (its broker's open-file limit against its centres, region/doctor.py)."""

from __future__ import annotations

HELP = "check the centre's server box and print a checklist with fixes (exit 1 when a check fails)"

import argparse
import json

from luot.paths import add_location_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_location_arguments(parser)
    parser.add_argument("--mqtt-port", type=int, help="port of the broker (default: the port `luot server` wrote in its broker files)")
    parser.add_argument("--printer", default="none",
                        help="the kiosk's printer target, as for `luot kiosk`: file:/dev/usb/lp0, network:HOST:9100, usb:VID:PID, none")
    parser.add_argument("--max-gap-hours", type=float, default=96.0,
                        help="warn when the clock is this many hours past the last event, on a later day (default: 96)")
    parser.add_argument("--json", action="store_true", help="print the checks as JSON instead of the checklist")
    parser.add_argument("--centres", help="check a regional box instead: the region's centres.toml (the regional "
                        "broker's open-file limit against its centres)")
    parser.add_argument("--region-broker", help="with --centres: the regional broker's mosquitto.conf (default: any "
                        "running Mosquitto started with a generated regional configuration)")


def locate(args: argparse.Namespace, config):  # -> server.doctor.CentreFiles
    """Where this centre's files are: the one rule every command uses (luot/paths.py)."""
    from luot.paths import data_dir, database_file
    from server.doctor import CentreFiles

    data = data_dir(args.data, config)
    return CentreFiles(data, database_file(data, config))


def run(args: argparse.Namespace) -> int:
    from server.doctor import diagnose, render
    from server.engine import utc_now

    from luot.paths import config_file

    if args.centres:
        from pathlib import Path

        from region.doctor import diagnose_region

        checks = diagnose_region(Path(args.centres), Path(args.region_broker) if args.region_broker else None)
    else:
        checks = diagnose(str(config_file(args.config)), lambda config: locate(args, config), printer=args.printer,
                          mqtt_port=args.mqtt_port, now=utc_now(), max_gap_hours=args.max_gap_hours)
    failed = any(check.status == "fail" for check in checks)
    if args.json:
        print(json.dumps({"ok": not failed, "checks": [c.as_dict() for c in checks]}, ensure_ascii=False, indent=2, default=str))
    else:
        print(render(checks))
    return 1 if failed else 0
