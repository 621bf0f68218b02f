"""``luot booking list|check-in|cancel|make|report``: the centre's bookings from the command line (JSON).

``list`` reads the database (safe while the server runs). The others change the queue, which only
the running server may do (its engine is the one source of truth), so they go through its HTTP API
signed in as a staff account: ``--user`` and the password from ``LUOT_PASSWORD`` or asked for.
``make`` books for a citizen without a one-time code (the officer answers for the identity).
"""

from __future__ import annotations

HELP = "list, check in, cancel or make remote-number and appointment bookings (JSON)"

import argparse
import asyncio
import json
from typing import Any

from luot.paths import add_location_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["list", "check-in", "cancel", "make", "report"])
    parser.add_argument("target", nargs="?", help="check-in: the booking code; cancel: the booking id")
    parser.add_argument("--day", help="list: YYYY-MM-DD (default: today in the centre's zone)")
    parser.add_argument("--from", dest="first", help="report: first day YYYY-MM-DD (default: --to)")
    parser.add_argument("--to", dest="last", help="report: last day YYYY-MM-DD (default: today)")
    parser.add_argument("--token", help="check-in: the QR token or tracking URL instead of a code")
    parser.add_argument("--id", dest="booking_id", help="check-in: the booking id instead of a code")
    parser.add_argument("--group", help="make: procedure group code")
    parser.add_argument("--phone", help="make: the citizen's mobile number")
    parser.add_argument("--slot", help="make: an appointment's slot start (ISO, e.g. 2026-03-03T09:00:00+07:00); "
                                       "left out: a remote number in today's line")
    parser.add_argument("--server", help="the running server's address (default: http://127.0.0.1:<[http] port>)")
    parser.add_argument("--user", help="staff account for check-in, cancel and make")
    add_location_arguments(parser)


def _list(args: argparse.Namespace) -> tuple[int, Any]:
    from datetime import datetime, timezone

    from luot.paths import centre_config, data_dir, database_file
    from server.storage import Storage

    config = centre_config(args.config)
    database = database_file(data_dir(args.data, config), config)
    if not database.exists():
        return 1, {"error": "no_database", "message": f"Không thấy cơ sở dữ liệu ở {database}",
                   "message_en": f"No centre database at {database}"}
    day = args.day or config.service_day(datetime.now(timezone.utc)).isoformat()

    async def read() -> list[dict[str, Any]]:
        storage = await Storage.open(database, config.zone, create=False)
        try:
            return await storage.bookings_of_day(day)
        finally:
            await storage.close()

    return 0, {"day": day, "bookings": asyncio.run(read())}


def _report(args: argparse.Namespace) -> tuple[int, Any]:
    """Walk-in, remote and appointment tickets over days: issued, no-shows, lapsed bookings, mean
    wait of each kind and the remote share (server/booking_report.py, as /reports shows them)."""
    from datetime import date, datetime, timezone

    from luot.paths import centre_config, data_dir, database_file
    from server.booking_report import kinds_report
    from server.storage import Storage

    config = centre_config(args.config)
    database = database_file(data_dir(args.data, config), config)
    if not database.exists():
        return 1, {"error": "no_database", "message": f"Không thấy cơ sở dữ liệu ở {database}",
                   "message_en": f"No centre database at {database}"}
    last = date.fromisoformat(args.last) if args.last else config.service_day(datetime.now(timezone.utc))
    first = date.fromisoformat(args.first) if args.first else last

    async def read() -> dict[str, Any]:
        storage = await Storage.open(database, config.zone, create=False)
        try:
            return await kinds_report(storage, first, last)
        finally:
            await storage.close()

    return 0, asyncio.run(read())


def _request(args: argparse.Namespace) -> tuple[int, Any]:
    import httpx

    from luot.paths import centre_config
    from luot.staff_http import USER_NEEDED, ask, server_address

    if not args.user:
        return 2, USER_NEEDED
    if args.action == "cancel" and not args.target:
        return 2, {"error": "id_needed", "message": "Cần mã số hẹn (id)", "message_en": "the booking id is needed"}
    if args.action == "make" and not (args.group and args.phone):
        return 2, {"error": "make_needs", "message": "Cần --group và --phone", "message_en": "--group and --phone are needed"}

    def send(http: httpx.Client, headers: dict[str, str]) -> httpx.Response:
        if args.action == "check-in":
            if args.booking_id:
                return http.post(f"/api/v1/bookings/{args.booking_id}/check-in", headers=headers)
            key = {"token": args.token} if args.token else {"code": args.target or ""}
            return http.post("/api/v1/bookings/check-in", json=key, headers=headers)
        if args.action == "cancel":
            return http.post(f"/api/v1/bookings/{args.target}/cancel", headers=headers)
        body = {"phone": args.phone, "group": args.group, "kind": "appointment" if args.slot else "remote"}
        if args.slot:
            body["slot"] = args.slot
        return http.post("/api/v1/bookings/staff", json=body, headers=headers)

    return ask(server_address(args.server, centre_config(args.config)), args.user, send)


def run(args: argparse.Namespace) -> int:
    action = {"list": _list, "report": _report}.get(args.action, _request)
    status, result = action(args)
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return status
