"""``luot server``: run one centre (storage, broker when none is configured, MQTT link, HTTP)."""

from __future__ import annotations

HELP = "run one centre: database, broker, MQTT link and web/API server"

import argparse
import asyncio
import logging
import os
import signal
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="centre TOML file (default: the shipped sample centre)")
    parser.add_argument("--data", default="var", help="directory for the database, secrets and broker files (default: var)")
    parser.add_argument("--host", help="HTTP address to listen on (default: from the config)")
    parser.add_argument("--port", type=int, help="HTTP port (default: from the config)")
    parser.add_argument("--mqtt-port", type=int, help="port of the broker the server starts (default: from the config)")
    parser.add_argument("--broker", choices=["auto", "mosquitto", "amqtt"], default="auto",
                        help="which broker to start when the config names none (default: Mosquitto if installed)")
    parser.add_argument("--no-mqtt", action="store_true", help="run without MQTT (HTTP only)")
    parser.add_argument("--init", action="store_true",
                        help="create a new centre's database if there is none (without it a missing or empty database stops the start)")


def options_from(args: argparse.Namespace):
    from server.app import RuntimeOptions

    return RuntimeOptions(data_dir=Path(args.data), http_host=args.host, http_port=args.port,
                          mqtt=not args.no_mqtt, broker=args.broker, mqtt_port=args.mqtt_port,
                          init=getattr(args, "init", False))  # luot doctor builds its own Namespace


def run(args: argparse.Namespace) -> int:
    from luot.config import load_config
    from luot.logs import setup_logging

    setup_logging()
    os.umask(0o077)  # the database, its -wal/-shm, backups and secrets: readable by the service user only
    config = load_config(args.config)
    return asyncio.run(serve(config, options_from(args)))


async def serve(config, options) -> int:
    from luot.aio import freeze_startup_objects
    from server.app import CentreRuntime

    runtime = CentreRuntime(config, options)
    try:
        await runtime.start()
    except Exception as error:  # a port in use, an unreadable data directory...
        logging.getLogger("luot").error("the centre could not start: %s", error)
        await runtime.stop()
        return 1
    print(f"Luot: {config.centre.name}", flush=True)
    print(f"  web/API   {runtime.base_url}  (OpenAPI: {runtime.base_url}/docs)", flush=True)
    if options.mqtt:
        broker = getattr(runtime.broker, "kind", "external")
        print(f"  MQTT      {runtime.mqtt_host}:{runtime.mqtt_port} ({broker})", flush=True)
    for note in runtime.notes:
        print(f"  {note}", flush=True)
    freeze_startup_objects()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runtime.stop()
    return 0
