"""Walk-in, remote and appointment tickets side by side, for the reports page and the dashboard.

Read straight from the ``tickets`` table (its ``source`` column says each ticket's kind) and the
``bookings`` table, not from the rollups: the rollups have no kind, and a few thousand tickets a
month are cheap to read. A booked ticket's wait counts from its check-in (a remote number was
issued at home; the citizen only waits once in the hall), a walk-in's from its issue; both end at
the first call. No-shows are tickets marked absent, and for bookings those that lapsed (a remote
number not checked in within the grace period, an appointment never checked in).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from server.storage import Storage

KINDS = ("walk_in", "remote", "appointment")
KIND_NAMES = {"walk_in": ("Vé tại chỗ", "Walk-in"), "remote": ("Số trực tuyến", "Remote number"),
              "appointment": ("Lịch hẹn", "Appointment")}


def _kind(source: str | None) -> str:
    return source if source in ("remote", "appointment") else "walk_in"


async def kinds_report(storage: Storage, first: date, last: date) -> dict[str, Any]:
    """Per kind over [first, last]: tickets issued, called, no-shows and the mean wait; per booking
    kind: made, checked in, lapsed (no-shows), cancelled; and the remote share of all tickets."""
    span = (first.isoformat(), last.isoformat())
    rows = {k: {"kind": k, "name": KIND_NAMES[k][0], "name_en": KIND_NAMES[k][1], "issued": 0, "called": 0,
                "no_show": 0, "wait_sum_s": 0.0, "booked": 0, "checked_in": 0, "lapsed": 0, "cancelled": 0}
            for k in KINDS}
    cursor = await storage.db.execute(
        "SELECT t.source, t.status, t.issued_at, t.first_called_at, b.checked_in_at FROM tickets t "
        "LEFT JOIN bookings b ON b.ticket_id = t.id WHERE t.day BETWEEN ? AND ?", span)
    for r in await cursor.fetchall():
        row = rows[_kind(r["source"])]
        row["issued"] += 1
        if r["status"] == "no_show":
            row["no_show"] += 1
        if r["first_called_at"]:
            since = r["checked_in_at"] or r["issued_at"]
            row["called"] += 1
            row["wait_sum_s"] += max(0.0, (datetime.fromisoformat(r["first_called_at"]) - datetime.fromisoformat(since)).total_seconds())
    cursor = await storage.db.execute(
        "SELECT kind, status, COUNT(*) n FROM bookings WHERE day BETWEEN ? AND ? GROUP BY kind, status", span)
    for r in await cursor.fetchall():
        row = rows[r["kind"]]
        row["booked"] += r["n"]
        if r["status"] == "checked_in":
            row["checked_in"] += r["n"]
        elif r["status"] in ("lapsed", "no_show"):
            row["lapsed"] += r["n"]
        elif r["status"] == "cancelled":
            row["cancelled"] += r["n"]
    total = sum(row["issued"] for row in rows.values())
    out = []
    for row in rows.values():
        wait_sum = row.pop("wait_sum_s")
        row["mean_wait_minutes"] = round(wait_sum / row["called"] / 60, 2) if row["called"] else None
        out.append(row)
    return {"from": span[0], "to": span[1], "tickets": total,
            "remote_share": round(rows["remote"]["issued"] / total * 100, 1) if total else None, "kinds": out}
