"""``luot server``: run one centre (storage, broker when none is configured, MQTT link, HTTP).

Before anything starts it checks that ticket QR links will open from the hall
(:mod:`luot.reachability`) and refuses, in Vietnamese and English, when they would not.
The centre file and data directory are found like every other command (:mod:`luot.paths`).
"""

from __future__ import annotations

HELP = "run one centre: database, broker, MQTT link and web/API server"

import argparse
import asyncio
import logging
import os
import signal


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="centre TOML file (default: $LUOT_CONFIG, else /etc/luot/centre.toml if present, else the sample centre)")
    parser.add_argument("--data", help="directory for the database, secrets and broker files "
                                       "(default: $LUOT_DATA, else the directory of [storage] path)")
    parser.add_argument("--host", help="HTTP address to listen on (default: from the config)")
    parser.add_argument("--port", type=int, help="HTTP port (default: from the config)")
    parser.add_argument("--mqtt-port", type=int, help="port of the broker the server starts (default: from the config)")
    parser.add_argument("--broker", choices=["auto", "mosquitto", "amqtt"], default="auto",
                        help="which broker to start when the config names none (default: Mosquitto if installed)")
    parser.add_argument("--no-mqtt", action="store_true", help="run without MQTT (HTTP only)")
    parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="log level (default: $LUOT_LOG, else INFO)")
    parser.add_argument("--init", action="store_true",
                        help="create a new centre's database if there is none (without it a missing or empty database stops the start)")
    parser.add_argument("--init-only", action="store_true",
                        help="create the centre's database if there is none, print JSON and exit (luot install runs this)")


def options_from(args: argparse.Namespace, config=None, port: int | None = None):
    from luot.paths import data_dir
    from server.app import RuntimeOptions

    return RuntimeOptions(data_dir=data_dir(args.data, config), http_host=args.host,
                          http_port=args.port if port is None else port,
                          mqtt=not args.no_mqtt, broker=args.broker, mqtt_port=args.mqtt_port,
                          init=getattr(args, "init", False))  # luot doctor builds its own Namespace


def reachable_config(config, args: argparse.Namespace):
    """The config to serve and the port to serve it on, once QR links are known to open from the
    hall; raises ConfigError (vi + en) otherwise. Port 0 means a free port, chosen here so that
    ``public_url`` can name it."""
    from luot.reachability import check
    from server.app import free_port

    port = args.port if args.port is not None else config.http.port
    if port == 0:
        port = free_port()
    return check(config, args.host or config.http.host, port), port


def run(args: argparse.Namespace) -> int:
    from luot.logs import setup_logging
    from luot.paths import centre_config

    setup_logging(args.log_level)
    os.umask(0o077)  # the database, its -wal/-shm, backups and secrets: readable by the service user only
    if args.init_only:
        return asyncio.run(create_database(centre_config(args.config), options_from(args)))
    result, port = reachable_config(centre_config(args.config), args)
    for note in result.notes:
        print(f"  {note}", flush=True)
    return asyncio.run(serve(result.config, options_from(args, result.config, port)))


async def create_database(config, options) -> int:
    """A new centre's database (schema only; the server makes the first manager at its first
    start), or the existing one checked and left as it is. Prints JSON."""
    import json

    from luot.paths import database_file
    from server.storage import Storage, StorageError

    path = database_file(options.data_dir, config)
    existed = path.is_file() and path.stat().st_size > 0
    try:
        storage = await Storage.open(path, config.zone, create=True)
    except StorageError as error:
        print(json.dumps({"ok": False, "database": str(path), "message_en": str(error)}, ensure_ascii=False))
        return 1
    await storage.close()
    print(json.dumps({"ok": True, "database": str(path), "created": not existed}))
    return 0


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
    print(f"  QR links  {config.centre.public_url}/t/...", flush=True)
    print(f"  data      {options.data_dir.resolve()}", flush=True)
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
