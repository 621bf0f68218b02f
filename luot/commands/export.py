"""``luot export feed|csv|fields``: the province hand-off (docs/export.md) read straight from the
centre's database: the JSON-lines feed after a cursor, one day's CSV, or the documented field list."""

from __future__ import annotations

HELP = "ratings and dossier links for the province: JSON-lines feed, daily CSV, field list"

import argparse
import asyncio
import json
import sys
from datetime import date, datetime, timezone


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=["feed", "csv", "fields"],
                        help="feed: JSON lines after --since; csv: one --day as CSV; fields: the record layout as JSON")
    parser.add_argument("--since", type=int, default=0, help="feed: records after this sequence number (the cursor)")
    parser.add_argument("--limit", type=int, default=500, help="feed: at most this many records")
    parser.add_argument("--day", type=date.fromisoformat, help="csv: the service day YYYY-MM-DD (default: today)")
    parser.add_argument("--config", help="centre TOML file (found like `luot server` finds it)")
    parser.add_argument("--data", help="data directory of the centre (found like `luot server` finds it)")


def run(args: argparse.Namespace) -> int:
    from server.export import FIELDS, SCHEMA

    if args.what == "fields":
        print(json.dumps({"schema": SCHEMA, "fields": [f.__dict__ | {"kinds": list(f.kinds)} for f in FIELDS]},
                         ensure_ascii=False, indent=2))
        return 0
    from luot.paths import centre_config, data_dir, database_file
    from server.export import daily_csv, day_records, feed, ndjson
    from server.storage import Storage

    config = centre_config(args.config)
    database = database_file(data_dir(args.data, config), config)
    if not database.exists():
        print(f"Không thấy cơ sở dữ liệu của trung tâm ở {database}. / No centre database at {database}.", file=sys.stderr)
        return 1

    async def read() -> bytes:
        storage = await Storage.open(database, config.zone, create=False)
        try:
            if args.what == "feed":
                records, cursor = await feed(storage, config, args.since, args.limit)
                print(json.dumps({"next_since": cursor, "records": len(records)}), file=sys.stderr)
                return ndjson(records)
            day = args.day or config.service_day(datetime.now(timezone.utc))
            return daily_csv(await day_records(storage, config, day))
        finally:
            await storage.close()

    sys.stdout.buffer.write(asyncio.run(read()))
    return 0
