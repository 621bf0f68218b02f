"""A simulated month of ratings through the pad and the phone (server/simulation.py), and the
satisfaction report it gives: per officer, procedure group and month, with the ratings refused.

Prints figures, asserts nothing. Usage:
    PYTHONPATH=. python bench/bench_month_ratings.py [--days 22] [--tickets-per-day 260] [--seed 7]
The simulated visitors rate on five levels with reasons; dissatisfaction rises with the wait they
had (server.simulation.five_level); 30 % rate on the tracking page, the rest on the pad, and one
pad tap in 40 is sent twice (refused and counted). Procedures with a legal time hand in a dossier
with its appointment; most are returned on or before it, 12 % one to three days late, so the
Decision 766 index sees dissatisfied and overdue dossiers.

Then the month goes to the province the way docs/export.md says: the signed webhook pushes the
whole feed to a local receiver (an HTTP server on 127.0.0.1 that checks each batch's HMAC and
timestamp and keeps records by event_id), and the daily CSV of the last day is built; the bench
prints what the receiver saw (records by kind, batches, refused signatures, repeats, one record
of each kind). No provincial system is involved.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import secrets
import tempfile
import threading
import time
from collections import Counter
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from luot.config import load_config
from server.export import WebhookPusher, daily_csv, day_records
from server.reports import refused_ratings, satisfaction_report
from server.simulation import simulate_days
from server.storage import Storage


class Receiver:
    """What a province integrator's endpoint sees: it checks the signature (HMAC-SHA256 over
    timestamp + "." + body) and the timestamp's age, and keeps each record by event_id."""

    def __init__(self, key: bytes) -> None:
        self.key, self.records, self.batches, self.bad, self.repeats = key, {}, 0, 0, 0
        seen = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                stamp = self.headers.get("X-Luot-Timestamp", "0")
                mac = "sha256=" + hmac.new(seen.key, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
                good = hmac.compare_digest(mac, self.headers.get("X-Luot-Signature", "")) and abs(time.time() - int(stamp)) < 300
                if good:
                    seen.batches += 1
                    for line in body.decode("utf-8").splitlines():
                        item = json.loads(line)
                        seen.repeats += item["event_id"] in seen.records
                        seen.records[item["event_id"]] = item
                else:
                    seen.bad += 1
                self.send_response(200 if good else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/luot"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


async def export_month(storage: Storage, config: Any, last: date) -> dict[str, Any]:
    """Push the whole feed through the signed webhook to a local receiver; what it saw."""
    key = secrets.token_hex(32).encode()
    receiver = Receiver(key)
    pusher = WebhookPusher(storage, config, receiver.url, key, batch=config.export.batch)
    started = time.monotonic()
    try:
        while await pusher.push_once():
            pass
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
    records = list(receiver.records.values())
    sample = {kind: next(r for r in records if r["loai"] == kind) for kind in sorted({r["loai"] for r in records})}
    csv_lines = daily_csv(await day_records(storage, config, last)).decode("utf-8-sig").splitlines()
    return {"seconds": round(time.monotonic() - started, 1), "records": dict(Counter(r["loai"] for r in records)),
            "batches": receiver.batches, "refused_signatures": receiver.bad, "repeats": receiver.repeats,
            "with_dossier_code": sum(1 for r in records if r["loai"] == "danh_gia" and r["ma_ho_so"]),
            "levels": dict(sorted(Counter(r["muc_do"] for r in records if r["loai"] == "danh_gia").items())),
            "channels": dict(Counter(r["kenh"] for r in records if r["loai"] == "danh_gia")),
            "links_without_officer": sum(1 for r in records if r["loai"] == "lien_ket_ho_so" and not r["can_bo"]),
            "daily_csv_last_day": {"rows": len(csv_lines) - 1, "heading": csv_lines[0][:120]}, "sample": sample}


async def main(days: int, tickets: int, seed: int) -> None:
    config = load_config(None)
    first = date(2026, 11, 2)
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "month.db")
        started = time.monotonic()
        result = await simulate_days(config, first, days, seed=seed, tickets_per_day=tickets, db_path=db)
        seconds = time.monotonic() - started
        storage = await Storage.open(db, config.zone)
        try:
            last = date.fromisoformat(result["days"][-1]["day"])
            report = {by: await satisfaction_report(storage, config, first, last, by, today=last)
                      for by in ("month", "group", "officer")}
            refused = await refused_ratings(storage, first, last)
            exported = await export_month(storage, config, last)
        finally:
            await storage.close()
    print(json.dumps({"machine": {"cpus": os.cpu_count(), "loadavg": os.getloadavg()},
                      "days": len(result["days"]), "simulated_in_seconds": round(seconds, 1),
                      "period": {k: result["period"][k] for k in ("issued", "served", "mean_wait_minutes", "satisfaction")}},
                     ensure_ascii=False))
    keys = ("name", "dossiers", "dossiers_dissatisfied", "dossiers_overdue", "index_766", "dossiers_returned",
            "dossiers_returned_on_time", "responses", "level_5", "level_4", "level_3", "level_2", "level_1", "reason_wait", "reason_attitude",
            "wait_dissatisfied_minutes", "wait_satisfied_minutes", "rating_index")
    for by, rows in report.items():
        for row in rows:
            print(json.dumps({"by": by, **{k: row[k] for k in keys}}, ensure_ascii=False))
    print(json.dumps({"refused": refused}, ensure_ascii=False))
    print(json.dumps({"export_as_the_receiver_saw_it": exported}, ensure_ascii=False))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=22)
    parser.add_argument("--tickets-per-day", type=int, default=260)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(main(args.days, args.tickets_per_day, args.seed))
