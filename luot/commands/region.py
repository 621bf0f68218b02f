"""``luot region --pg DSN --mqtt host:port --centres centres.toml``: the regional aggregator.

Subscribes to the regional broker (persistent session, QoS 1, acknowledged after commit), reads
each centre's event log over HTTP to fill any gap, writes every event once into PostgreSQL, and
serves the province dashboard on ``--http`` (default 127.0.0.1:8090; user ``tinh``, password in
the region secrets file). Stops cleanly on SIGTERM or Ctrl-C. See docs/region.md.
"""

from __future__ import annotations

HELP = "run the regional aggregator and the province dashboard (PostgreSQL)"

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pg", required=True, help="PostgreSQL DSN, e.g. 'dbname=luot_region host=/var/run/postgresql'")
    parser.add_argument("--mqtt", required=True, help="regional broker host:port")
    parser.add_argument("--centres", required=True, help="the region's centres.toml")
    parser.add_argument("--http", default="127.0.0.1:8090", help="dashboard address host:port")
    parser.add_argument("--catch-up-seconds", type=float, help="override [region] catch_up_seconds")
    parser.add_argument("--tls-ca", help="the CA that signed the regional broker's certificate, when it speaks TLS "
                        "(the --mqtt host must then be a name in that certificate)")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--dashboard-in-process", action="store_true",
                        help="serve the dashboard from the intake's own process (default: its own process, "
                             "so open dashboards cannot slow the intake)")


def run(args: argparse.Namespace) -> int:
    import logging
    import signal
    import threading

    import uvicorn

    from luot.config import ConfigError
    from region.bridge import parse_target
    from region import dashboard_process
    from region.dashboard import create_app
    from region.ingest import Ingest
    from region.settings import load_region
    from region.tls import check_ca

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        region = load_region(args.centres)
        broker = parse_target(args.mqtt)
        http = parse_target(args.http)
        tls_ca = str(check_ca("--tls-ca", args.tls_ca)) if args.tls_ca else None
    except (ConfigError, ValueError) as error:
        print(f"luot region: {error}", file=sys.stderr)
        return 1
    ingest = Ingest(region, args.pg, broker.host, broker.port, catch_up_seconds=args.catch_up_seconds, tls_ca=tls_ca)
    try:
        ingest.start()
    except Exception as error:  # noqa: BLE001 - PostgreSQL unreachable: say so plainly
        print(f"luot region: cannot prepare PostgreSQL ({args.pg}): {error}", file=sys.stderr)
        return 1
    if args.dashboard_in_process:
        app = create_app(region, args.pg, ingest.changed)
        server = uvicorn.Server(uvicorn.Config(app, host=http.host, port=http.port, log_level="warning", access_log=False))

        def stop(*_: object) -> None:
            server.should_exit = True

        # uvicorn (>= 0.29) also catches SIGINT/SIGTERM while run() serves (it sets should_exit) and
        # re-raises them once it is done: these handlers then only set should_exit again.
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            server.run()
        finally:
            ingest.stop()
        return 0
    # the dashboard in its own process (region.dashboard_process): viewers cannot starve the intake
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    dashboard = dashboard_process.start(region, args.pg, http.host, http.port, args.log_level)
    try:
        while not done.wait(1.0):
            if not dashboard.is_alive():  # it died (not asked to): serve again
                logging.getLogger("luot.region").error("dashboard process ended (%s): starting it again", dashboard.exitcode)
                dashboard = dashboard_process.start(region, args.pg, http.host, http.port, args.log_level)
    finally:
        dashboard_process.stop(dashboard)
        ingest.stop()
    return 0
