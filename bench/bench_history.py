"""History scale: report queries at 10 thousand, 1 million and 10 million past tickets.

Builds a centre database with the schema of migrations 1-3, then fills ``tickets`` with past days
(``--per-day`` tickets a day, so the queried windows hold the same amount of data at every size)
and derives the rollups ``stats_hourly``, ``wait_hist`` and ``satisfaction_daily`` from those
tickets with the same keys the storage projection uses. Rows are generated inside SQLite
(recursive CTE), so 10 million tickets take a few minutes, not an hour. Tokens are a sequence
prefix and 96 random bits: the unique token index is then appended to instead of being split at
10 million random pages (fully random tokens made the 10M load take over five minutes); a look-up
by token walks a B-tree of the same depth either way. The history is loaded as a centre had it
before migration 4 (day summaries), whose triggers would otherwise run on each of the millions of
rollup rows inserted here (about 30 s more at 10 M); opening it with :class:`Storage` then applies
migration 4, as on a centre that upgrades.
Then it times, through :class:`Storage` as the server calls it, the dashboard and report
aggregates over the last day, week and month (``Storage.waiting_stats``, and ``build_report`` per
ISO week and per day over the month), and the satisfaction report, with the storage clock on the
last generated day: that day is "today" (read from the rollups), the days before it are closed
(read from their stored summaries, server/summaries.py). The generator fills the tables with SQL,
so the first report over the month summarises its 29 closed days: that first read is timed on its
own, and so is a month report right after one more day closed (it summarises that day); the table
is the steady state.

    .venv/bin/python bench/bench_history.py [--sizes 10000,1000000,10000000] [--per-day 400] [--keep DIR]

Cost must stay flat with history size (reports read rollups by day range only).
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, time as clock_time, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from luot.config import load_config  # noqa: E402
from server.reports import build_report  # noqa: E402
from server.storage import MIGRATIONS, Storage  # noqa: E402

LAST_DAY = date(2026, 11, 20)
# group code, first number, counter, alternative counter (a group served at two counters)
GROUPS = [("ho-tich", 1001, 1, 2), ("chung-thuc", 2001, 3, 2), ("dat-dai", 3001, 4, 4), ("cu-tru", 4001, 5, 5),
          ("bao-tro-xa-hoi", 5001, 5, 6), ("ho-kinh-doanh", 6001, 6, 6), ("khac", 7001, 3, 6)]


def generate(path: Path, tickets: int, per_day: int) -> float:
    """Fill the database with ``tickets`` past tickets and their rollups; return the seconds taken."""
    started = time.perf_counter()
    days = -(-tickets // per_day)
    first = LAST_DAY - timedelta(days=days - 1)
    db = sqlite3.connect(path, isolation_level=None)
    # Bulk load of a bench database: durability is not the point here, and a multi-gigabyte WAL
    # would be written twice. The server's WAL mode is restored at the end.
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-1000000")
    db.execute("PRAGMA temp_store=MEMORY")
    db.execute("BEGIN")
    db.execute("CREATE TEMP TABLE g (k INTEGER PRIMARY KEY, code TEXT, first INTEGER, c1 INTEGER, c2 INTEGER)")
    db.executemany("INSERT INTO g VALUES (?, ?, ?, ?, ?)", [(k, *row) for k, row in enumerate(GROUPS)])
    # n -> day n / per_day, i = n % per_day spread over 7:00-17:00, group i % 7; wait and service
    # from cheap hashes of n; one in 20 absent; 60 % rated.
    db.execute(f"""
        WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n + 1 < {tickets}),
        t AS (
            SELECT n, n / {per_day} AS d, n % {per_day} AS i,
                   (n * 7919) % 3600 AS wait, 120 + (n * 104729) % 900 AS service FROM seq)
        INSERT INTO tickets (id, day, number, grp, token, priority, source, offline, status, issued_at,
                             first_called_at, started_at, finished_at, counter, officer, calls, rating)
        SELECT printf('t%015x', t.n), date('{first.isoformat()}', '+' || t.d || ' days'),
               g.first + t.i / 7, g.code, printf('%08x', t.n) || lower(hex(randomblob(12))),
               CASE WHEN t.n % 8 = 0 THEN 'elderly' END, 'kiosk-1', 0,
               CASE WHEN t.n % 20 = 0 THEN 'no_show' ELSE 'done' END,
               date('{first.isoformat()}', '+' || t.d || ' days') || printf('T%02d:%02d:00+07:00', 7 + t.i * 10 / {per_day}, (t.i * 37) % 60),
               NULL, NULL, NULL,
               CASE WHEN t.n % 2 = 0 THEN g.c1 ELSE g.c2 END,
               'canbo' || CASE WHEN t.n % 2 = 0 THEN g.c1 ELSE g.c2 END,
               1, CASE WHEN t.n % 5 < 3 AND t.n % 20 != 0 THEN 1 + (t.n * 31) % 4 END
        FROM t JOIN g ON g.k = t.i % 7
    """)
    # Rollups, keyed as Storage._project keys them: the issue under (counter 0, officer ''), the call
    # and the service under the counter and officer. Wait and service recomputed from the rowid (= n + 1).
    wait, service = "((rowid - 1) * 7919) % 3600", "(120 + ((rowid - 1) * 104729) % 900)"
    hour = "CAST(substr(issued_at, 12, 2) AS INTEGER)"
    db.execute(f"""INSERT INTO stats_hourly (day, hour, grp, counter, officer, issued)
                   SELECT day, {hour}, grp, 0, '', COUNT(*) FROM tickets GROUP BY day, {hour}, grp""")
    db.execute(f"""INSERT INTO stats_hourly (day, hour, grp, counter, officer, called, wait_sum, served, service_sum, no_show)
                   SELECT day, {hour}, grp, counter, officer, COUNT(*), SUM({wait}),
                          SUM(status = 'done'), SUM(CASE WHEN status = 'done' THEN {service} ELSE 0 END),
                          SUM(status = 'no_show')
                   FROM tickets GROUP BY day, {hour}, grp, counter, officer""")
    db.execute(f"""INSERT INTO wait_hist (day, grp, counter, officer, bucket, n)
                   SELECT day, grp, counter, officer, MIN({wait} / 60, 240), COUNT(*)
                   FROM tickets GROUP BY day, grp, counter, officer, MIN({wait} / 60, 240)""")
    db.execute("""INSERT INTO satisfaction_daily (day, grp, counter, officer, rating, n)
                  SELECT day, grp, counter, officer, rating, COUNT(*) FROM tickets WHERE rating IS NOT NULL
                  GROUP BY day, grp, counter, officer, rating""")
    db.execute("COMMIT")
    db.execute("ANALYZE")
    db.execute("PRAGMA journal_mode=WAL")
    db.close()
    return time.perf_counter() - started


async def time_queries(path: Path, repeats: int) -> dict[str, float]:
    """Median milliseconds of each report query, through Storage as the API calls it."""
    config = load_config()
    storage = await Storage.open(path, config.zone)
    storage.clock = lambda: datetime.combine(LAST_DAY, clock_time(12), tzinfo=config.zone)  # LAST_DAY is today
    windows = {"day": 0, "week": 6, "month": 29}
    month = LAST_DAY - timedelta(days=windows["month"])
    queries = {}
    for label, back in windows.items():
        first = LAST_DAY - timedelta(days=back)
        for by in ("group", "hour", "counter", "officer"):
            queries[f"waiting {label:5s} by {by}"] = (lambda f=first, b=by: storage.waiting_stats(f, LAST_DAY, b))
        queries[f"satisfaction {label} by counter"] = (lambda f=first: storage.satisfaction(f, LAST_DAY, "counter"))
    for by in ("group", "counter", "officer"):
        queries[f"report month by {by}, weeks"] = (
            lambda b=by: build_report(storage, config, month, LAST_DAY, b, "week"))  # type: ignore[arg-type]
    queries["report month by group, days"] = lambda: build_report(storage, config, month, LAST_DAY, "group", "day")
    queries["ticket by token (tracking page)"] = lambda: storage.ticket_by_token("no-such-token-0000")
    result = {}
    try:
        # First read after the history was loaded: summarises the month's 29 closed days.
        t0 = time.perf_counter()
        await build_report(storage, config, month, LAST_DAY, "group", "week")
        result["first month report (summarises 29 days)"] = (time.perf_counter() - t0) * 1000
        for name, query in queries.items():
            rows = await query()  # warm the page cache once: the server's queries run warm
            samples = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                rows = await query()
                samples.append((time.perf_counter() - t0) * 1000)
            result[name] = statistics.median(samples)
            result[name + " rows"] = len(rows) if isinstance(rows, list) else int(rows is not None)
        # The first report of a morning: yesterday has just closed and has no summary yet.
        yesterday = (LAST_DAY - timedelta(days=1)).isoformat()
        samples = []
        for _ in range(repeats):
            await storage.db.execute("DELETE FROM day_summary WHERE day = ?", (yesterday,))
            await storage.db.execute("DELETE FROM summarised_days WHERE day = ?", (yesterday,))
            t0 = time.perf_counter()
            await build_report(storage, config, month, LAST_DAY, "group", "week")
            samples.append((time.perf_counter() - t0) * 1000)
        result["month report, a day just closed"] = statistics.median(samples)
    finally:
        await storage.close()
    return result


def create_schema(path: Path, version: int = 3) -> None:
    """The schema of migrations 1..``version``, applied as Storage applies them."""
    db = sqlite3.connect(path, isolation_level=None)
    for number, script in enumerate(MIGRATIONS[:version], start=1):
        db.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
    db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,1000000,10000000")
    parser.add_argument("--per-day", type=int, default=400, help="tickets per past day (a busy ward)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--keep", help="directory to keep the databases in (default: a temporary one)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="luot-bench-history-", dir=args.keep) as tmp:
        table: dict[int, dict[str, float]] = {}
        for size in sizes:
            path = Path(tmp) / f"history-{size}.sqlite3"
            create_schema(path)
            seconds = generate(path, size, args.per_day)
            mb = sum(p.stat().st_size for p in Path(tmp).glob(f"history-{size}.sqlite3*")) / 2**20
            print(f"{size:>10,d} tickets ({-(-size // args.per_day):,d} days): generated in {seconds:6.1f} s, {mb:,.0f} MB", flush=True)
            table[size] = asyncio.run(time_queries(path, args.repeats))
            path.unlink()
        once = ["first month report (summarises 29 days)", "month report, a day just closed"]
        names = [n for n in table[sizes[0]] if not n.endswith(" rows") and n not in once]
        print("\nmedian ms per query (warm)" + "".join(f"{s:>12,d}" for s in sizes) + "   rows")
        for name in names:
            print(f"  {name:38s}" + "".join(f"{table[s][name]:12.2f}" for s in sizes) + f"   {table[sizes[-1]][name + ' rows']}")
        print("\nsummarising closed days, ms")
        for name in once:
            print(f"  {name:38s}" + "".join(f"{table[s][name]:12.2f}" for s in sizes))
        worst = max(table[sizes[-1]][n] for n in names)
        print(f"\nslowest query at {sizes[-1]:,d} tickets: {worst:.2f} ms (target: <= 20 ms)")


if __name__ == "__main__":
    main()
