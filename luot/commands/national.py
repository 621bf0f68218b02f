"""``luot national publish|setup|status|figures|resync|serve``: the national view (docs/national.md).

At each province: ``luot national publish --pg DSN --centres centres.toml`` tags the summary tables
with the province code, creates the replication user and the publication (idempotent) and writes
``national-credentials.json`` to carry to the national box. On the national box: ``luot national
setup --pg DSN --national national.toml`` creates the tables, views and one subscription per
province (idempotent: run it again after adding a province); ``status`` and ``figures`` print JSON;
``resync --province CODE`` copies one province afresh; ``serve`` runs the national dashboard.
"""

from __future__ import annotations

HELP = "the national view: publish a province, subscribe the national box, status, figures, dashboard"

import argparse
import json
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    publish = sub.add_parser("publish", help="at a province: publication, replication user, credentials file")
    publish.add_argument("--pg", required=True, help="the provincial database (its owner or a superuser)")
    publish.add_argument("--centres", required=True, help="the province's centres.toml (its [region] id is the province code)")
    publish.add_argument("--out", help="where to write the credentials (default: national-credentials.json beside centres.toml)")
    for name, text in (("setup", "on the national box: tables, views, one subscription per province"),
                       ("status", "on the national box: each province's replication, as JSON"),
                       ("figures", "on the national box: the national figures, as JSON"),
                       ("resync", "on the national box: copy one province afresh"),
                       ("serve", "on the national box: the national dashboard")):
        command = sub.add_parser(name, help=text)
        command.add_argument("--pg", required=True, help="the national database (a superuser for setup/resync)")
        command.add_argument("--national", required=True, help="national.toml")
        if name == "resync":
            command.add_argument("--province", required=True)
        if name == "figures":
            command.add_argument("--province", help="one province with all its centres")
        if name == "serve":
            command.add_argument("--http", default="127.0.0.1:8091", help="dashboard address host:port")


def _default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def _print(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2, default=_default))


def run(args: argparse.Namespace) -> int:
    import psycopg

    from region.national import ReplicationError, prepare_national, prepare_province, replication_status, resync_province

    try:
        if args.action == "publish":
            from region.national_settings import PUBLISH_SECRET, write_credentials
            from region.settings import AGGREGATOR_USER, DASHBOARD_USER, load_region, load_secrets

            region = load_region(args.centres)
            secrets = load_secrets(region.base / region.info.secrets, (AGGREGATOR_USER, DASHBOARD_USER, PUBLISH_SECRET))
            with psycopg.connect(args.pg, autocommit=True) as conn:
                done = prepare_province(conn, region.info.id, secrets[PUBLISH_SECRET])
            out = Path(args.out) if args.out else region.base / "national-credentials.json"
            write_credentials(out, region.info.id, done["user"], secrets[PUBLISH_SECRET])
            _print({**done, "credentials": str(out)})
            return 0
        from region.national_settings import load_national

        national = load_national(args.national)
        if args.action == "serve":
            return _serve(args, national)
        with psycopg.connect(args.pg, autocommit=True) as conn:
            if args.action == "setup":
                done = prepare_national(conn, national.provinces)
                _print(done)
                return 0 if all(d["ok"] for d in done.values()) else 1
            if args.action == "status":
                _print(replication_status(conn))
                return 0
            if args.action == "resync":
                source = next((p for p in national.provinces if p.code == args.province), None)
                if source is None:
                    print(f"luot national: không có tỉnh {args.province!r} trong {args.national} / no such province",
                          file=sys.stderr)
                    return 1
                _print(resync_province(conn, source))
                return 0
            from region.national_report import national_figures
            from region.report import utc_now
            from region.warnings import Thresholds

            info = national.info
            thresholds = Thresholds(national.zone, offline_after_minutes=info.offline_after_minutes,
                                    growth_window_minutes=info.growth_window_minutes)
            conn.execute("SET TIME ZONE 'UTC'")
            _print(national_figures(conn, utc_now(), national.zone, thresholds, only=args.province))
            return 0
    except (ReplicationError, psycopg.Error) as error:
        print(f"luot national {args.action}: {str(error).strip()}", file=sys.stderr)
        return 1


def _serve(args: argparse.Namespace, national: Any) -> int:
    import uvicorn

    from region.bridge import parse_target
    from region.national_dashboard import create_app

    http = parse_target(args.http)
    app = create_app(national, args.pg)
    uvicorn.Server(uvicorn.Config(app, host=http.host, port=http.port, log_level="warning", access_log=False)).run()
    return 0
