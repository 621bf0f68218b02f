"""``luot clock status|confirm``: the server clock as the queue judges it, and a manager's
confirmation (JSON), for a technician at the server box without the web console.

When the clock looks wrong (behind the last recorded event, or a day ahead while the day is still
open) the running server refuses commands as ``clock_suspect`` (docs/architecture.md, "Time and
commits"). ``status`` shows whether it does and why (``GET /api/v1/day/clock``, any staff
account); ``confirm`` says the current time is right after checking it against a real clock
(``POST /api/v1/day/confirm-clock``, managers only). Both go through the running server's HTTP API
(it alone may change the queue), signed in as ``--user`` (luot/staff_http.py). A refusal prints
the API's {"error", "message", "message_en"} and exits 1.
"""

from __future__ import annotations

HELP = "show whether the server clock is accepted, or confirm it as a manager (JSON)"

import argparse
import json
from typing import Any

from luot.paths import add_location_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["status", "confirm"],
                        help="status: is the clock accepted, and why not; confirm: the current time is right (manager)")
    parser.add_argument("--user", help="staff account to sign in as (confirm: a manager); "
                                       "password from $LUOT_PASSWORD or asked for")
    parser.add_argument("--server", help="the running server's address (default: http://127.0.0.1:<[http] port>)")
    add_location_arguments(parser)


def _ask(args: argparse.Namespace) -> tuple[int, Any]:
    from luot.paths import centre_config
    from luot.staff_http import USER_NEEDED, ask, server_address

    if not args.user:
        return 2, USER_NEEDED
    base = server_address(args.server, centre_config(args.config))
    if args.action == "status":
        return ask(base, args.user, lambda http, headers: http.get("/api/v1/day/clock", headers=headers))
    return ask(base, args.user, lambda http, headers: http.post("/api/v1/day/confirm-clock", headers=headers))


def run(args: argparse.Namespace) -> int:
    status, result = _ask(args)
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return status
