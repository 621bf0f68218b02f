"""A simulated month of ratings through the pad and the phone (server/simulation.py), and the
satisfaction report it gives: per officer, procedure group and month, with the ratings refused.

Prints figures, asserts nothing. Usage:
    PYTHONPATH=. python bench/bench_month_ratings.py [--days 22] [--tickets-per-day 260] [--seed 7]
The simulated visitors rate on five levels with reasons; dissatisfaction rises with the wait they
had (server.simulation.five_level); 30 % rate on the tracking page, the rest on the pad, and one
pad tap in 40 is sent twice (refused and counted). Procedures with a legal time hand in a dossier
with its appointment; most are returned on or before it, 12 % one to three days late, so the
Decision 766 index sees dissatisfied and overdue dossiers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from datetime import date
from pathlib import Path

from luot.config import load_config
from server.reports import refused_ratings, satisfaction_report
from server.simulation import simulate_days
from server.storage import Storage


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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=22)
    parser.add_argument("--tickets-per-day", type=int, default=260)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(main(args.days, args.tickets_per_day, args.seed))
