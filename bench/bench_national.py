"""The national box: 34 provinces' summary rows by logical replication, and the national dashboard.

Not a test: prints figures (JSON lines), never asserts. Real PostgreSQL clusters made for the run
(tests/helpers/pg_clusters.py, dropped at the end): one cluster holds the 34 provincial databases
(34 publishers, 34 replication slots), the other is the national box (34 subscriptions). The
provinces are the 34 of the 2025 map, with 3,321 centres in all (Hà Nội 126, Hồ Chí Minh City 168,
the rest about 95 each).

1. **Fill**: each province's summary tables are filled in SQL (not through events: that is
   bench_region's job): today per centre and group, ``--history-days`` days before today, the
   "now" rows (a few centres with people waiting too long, so there are warnings), the last
   hour's 5-minute buckets, the group names. Then ``luot national publish`` (region.national.
   prepare_province) on each and ``luot national setup`` (prepare_national) on the national box:
   the initial copy of all 34 is timed until every row is there.
2. **Dashboard**: region.national_report.national_figures over the 34 provinces, cold (the 30-day
   part read too) and warm (the 30-day part kept, as the dashboard's snapshot does), and one
   province's page (``only``), ``--runs`` times each: wall time, time inside PostgreSQL, process CPU.
3. **Lag**: real events into the largest province through region.store.Store (the intake's own
   write path): paced at ``--paced-rate`` events/s (a 4x peak day of the largest province is about
   40), then a burst as fast as the store goes; each batch's lag is commit -> its rows visible on
   the national box (polled every 10 ms).
4. **Cut**: that province's subscription disabled, ``--cut-events`` events written, the WAL the
   province keeps for the national box measured, the subscription enabled again: time to catch up,
   and the totals compared (nothing lost, nothing doubled).
5. ``--screenshot PATH``: with one province cut, the national page in Chromium.

    python bench/bench_national.py [--history-days 30] [--runs 5] [--screenshot docs/img/national-dashboard.png]
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

from bench_region import emit, machine_state  # noqa: E402
from region.national import ProvinceSource, cut, prepare_national, prepare_province, replication_user  # noqa: E402
from region.national_report import national_figures  # noqa: E402
from region.store import Store  # noqa: E402
from region.validate import RegionEvent  # noqa: E402
from region.warnings import Thresholds  # noqa: E402
from tests.helpers import pg_clusters  # noqa: E402

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
PASSWORD = "bench-national"
PROVINCES = [  # the 34 provinces and centrally-run cities of the 2025 map
    ("ha-noi", "Hà Nội"), ("ho-chi-minh", "TP. Hồ Chí Minh"), ("hai-phong", "Hải Phòng"), ("da-nang", "Đà Nẵng"),
    ("can-tho", "Cần Thơ"), ("hue", "Huế"), ("lai-chau", "Lai Châu"), ("dien-bien", "Điện Biên"), ("son-la", "Sơn La"),
    ("lang-son", "Lạng Sơn"), ("quang-ninh", "Quảng Ninh"), ("thanh-hoa", "Thanh Hóa"), ("nghe-an", "Nghệ An"),
    ("ha-tinh", "Hà Tĩnh"), ("cao-bang", "Cao Bằng"), ("tuyen-quang", "Tuyên Quang"), ("lao-cai", "Lào Cai"),
    ("thai-nguyen", "Thái Nguyên"), ("phu-tho", "Phú Thọ"), ("bac-ninh", "Bắc Ninh"), ("hung-yen", "Hưng Yên"),
    ("ninh-binh", "Ninh Bình"), ("quang-tri", "Quảng Trị"), ("quang-ngai", "Quảng Ngãi"), ("gia-lai", "Gia Lai"),
    ("khanh-hoa", "Khánh Hòa"), ("lam-dong", "Lâm Đồng"), ("dak-lak", "Đắk Lắk"), ("dong-nai", "Đồng Nai"),
    ("tay-ninh", "Tây Ninh"), ("vinh-long", "Vĩnh Long"), ("dong-thap", "Đồng Tháp"), ("ca-mau", "Cà Mau"),
    ("an-giang", "An Giang"),
]
TOTAL_CENTRES = 3321
FIXED = {"ha-noi": 126, "ho-chi-minh": 168}
GROUPS = ["ho-tich", "chung-thuc", "dat-dai", "xay-dung", "khac"]
GROUP_NAMES = {"ho-tich": "Hộ tịch", "chung-thuc": "Chứng thực", "dat-dai": "Đất đai", "xay-dung": "Xây dựng", "khac": "Khác"}
CLUSTER_SETTINGS = {"fsync": "on", "full_page_writes": "on", "synchronous_commit": "on", "shared_buffers": "128MB",
                    "max_wal_senders": "120", "max_replication_slots": "120", "max_logical_replication_workers": "80",
                    "max_worker_processes": "96", "max_connections": "200"}


def centres_per_province() -> dict[str, int]:
    rest = [code for code, _ in PROVINCES if code not in FIXED]
    left = TOTAL_CENTRES - sum(FIXED.values())
    counts = {code: left // len(rest) + (i < left % len(rest)) for i, code in enumerate(rest)}
    return {**FIXED, **counts}


FILL = """
INSERT INTO centres (centre, name, ward, last_event_at, last_heard_at, server_online, server_at, bridge_online, bridge_at,
                     devices_known, devices_offline)
SELECT format('%%s-%%s', %(code)s::text, i), format('Phường/xã %%s', i), format('Xã %%s', i), now() - interval '1 minute',
       now() - (random() * interval '4 minutes'), true, now() - interval '7 hours', NOT (i %% 97 = 5),
       now() - CASE WHEN i %% 97 = 5 THEN interval '40 minutes' ELSE interval '7 hours' END, 6, (i %% 53 = 3)::int
FROM generate_series(1, %(n)s) i;
INSERT INTO groups (centre, code, name, wait_alert_minutes)
SELECT c.centre, g.code, g.name, 30 FROM centres c, unnest(%(groups)s::text[], %(names)s::text[]) AS g(code, name);
INSERT INTO daily (centre, grp, day, issued, called, wait_sum, wait_max, served, no_show, cancelled, ratings, rating_sum, wait_hist, wait_p90)
SELECT c.centre, g, d::date, x.issued, x.issued - 3, (x.issued - 3) * (300 + random() * 600), 3600, x.issued - 5, 2, 0, x.issued / 3, x.issued / 3 * 3,
       ARRAY[5, 9, 12, 10, 8, 6, 4, 3, 2, 1, 1], 8.5
FROM centres c, unnest(%(groups)s::text[]) g,
     generate_series(%(today)s::date - %(days)s::int, %(today)s::date, interval '1 day') d,
     LATERAL (SELECT 40 + (random() * 40)::int AS issued) x;
INSERT INTO daily_centre (centre, day, wait_hist, wait_p90)
SELECT centre, day, ARRAY[25, 45, 60, 50, 40, 30, 20, 15, 10, 5, 5], 8.5 FROM daily WHERE grp = 'ho-tich';
INSERT INTO now_groups (centre, grp, day, waiting, oldest)
SELECT c.centre, g, %(today)s::date, (random() * 3)::int,
       now() - CASE WHEN abs(hashtext(c.centre || g)) %% (40 + abs(hashtext(%(code)s::text)) %% 300) = 0
                    THEN interval '50 minutes' + random() * interval '60 minutes' ELSE random() * interval '25 minutes' END
FROM centres c, unnest(%(groups)s::text[]) g;
INSERT INTO recent (centre, bucket, issued, called, ratings, rating_sum)
SELECT c.centre, date_bin('5 minutes', now() - b * interval '5 minutes', TIMESTAMPTZ '2000-01-01 00:00+00'),
       CASE WHEN hashtext(c.centre) %% 60 = 0 THEN 6 ELSE 2 END, 2, 1, 3
FROM centres c, generate_series(0, 11) b;
"""


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def national_total(conn: psycopg.Connection[Any], code: str) -> int:
    return int(conn.execute("SELECT coalesce(sum(issued), 0) FROM daily WHERE province = %s", (code,)).fetchone()[0])


def province_total(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return int(conn.execute("SELECT coalesce(sum(issued), 0) FROM daily").fetchone()[0])


def issued_events(centres: list[str], n: int, rng: random.Random) -> list[RegionEvent]:
    now = datetime.now(timezone.utc)
    out = []
    for _ in range(n):
        tid = uuid.uuid4().hex[:16]
        out.append(RegionEvent(rng.choice(centres), f"b{tid}", "ticket.issued", now,
                               {"ticket_id": f"t{tid}", "group": rng.choice(GROUPS)}, None, "mqtt"))
    return out


def lag_run(store: Store, national: str, code: str, centres: list[str], batches: int, size: int, every: float,
            rng: random.Random) -> dict[str, Any]:
    """Write ``batches`` batches of ``size`` issued tickets (one every ``every`` s, 0: back to back);
    each batch's lag is its commit -> the national total reaching what it made."""
    with psycopg.connect(national, autocommit=True) as watch:
        base = national_total(watch, code)
    expected: list[tuple[int, float]] = []
    seen: dict[int, float] = {}
    done = threading.Event()

    def watcher() -> None:
        with psycopg.connect(national, autocommit=True) as conn:
            while not (done.is_set() and len(seen) == len(expected)):
                total, now = national_total(conn, code), time.monotonic()
                for target, _ in list(expected):
                    if total >= target and target not in seen:
                        seen[target] = now
                time.sleep(0.01)

    thread = threading.Thread(target=watcher, daemon=True)
    thread.start()
    started = time.monotonic()
    written = 0
    for i in range(batches):
        if every:
            time.sleep(max(0.0, started + i * every - time.monotonic()))
        events = issued_events(centres, size, rng)
        store.store_batch(events, [], [])
        written += len(events)
        expected.append((base + written, time.monotonic()))
    elapsed = time.monotonic() - started
    done.set()
    thread.join(120)
    lags = sorted((seen[t] - at) * 1000 for t, at in expected if t in seen)
    return {"events": written, "seconds": round(elapsed, 1), "events_per_s": round(written / elapsed),
            "lag_ms_p50": round(statistics.median(lags)), "lag_ms_p99": round(lags[min(len(lags) - 1, int(len(lags) * 0.99))]),
            "lag_ms_max": round(lags[-1]), "batches_seen": len(lags), "batches": len(expected)}


def screenshot(national_dsn: str, sources: list[ProvinceSource], path: Path) -> None:
    import json
    import tempfile

    from playwright.sync_api import sync_playwright

    from region.national_dashboard import create_app
    from region.national_settings import NATIONAL_USER, load_national, write_credentials
    from tests.helpers.lan_browser import ARGS, CHROMIUM
    from tests.helpers.served import served

    with tempfile.TemporaryDirectory() as tmp:
        lines = ["[national]", 'name = "Toàn quốc"', ""]
        for s in sources:
            info = psycopg.conninfo.conninfo_to_dict(s.conninfo)
            write_credentials(Path(tmp) / f"{s.code}.json", s.code, info["user"], info["password"])
            lines += ["[[provinces]]", f'code = "{s.code}"', f"name = {json.dumps(s.name, ensure_ascii=False)}",
                      f'host = "{info["host"]}"', f'port = {info["port"]}', f'dbname = "{info["dbname"]}"',
                      f'credentials = "{s.code}.json"', ""]
        (Path(tmp) / "national.toml").write_text("\n".join(lines), encoding="utf-8")
        national = load_national(Path(tmp) / "national.toml")
        with served(create_app(national, national_dsn), "the national dashboard") as base, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1360, "height": 1500}, http_credentials={
                "username": NATIONAL_USER, "password": national.secrets[NATIONAL_USER]})
            page.goto(base + "/", timeout=120_000)
            page.wait_for_selector("#provinces tbody tr", timeout=120_000)
            page.wait_for_selector("#warnings li", timeout=120_000)
            path.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(path), full_page=False)
            browser.close()
    emit("screenshot", path=str(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--history-days", type=int, default=30, help="days of daily rows before today per centre and group")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--paced-rate", type=float, default=40.0, help="events/s into the largest province (4x peak: ~40)")
    parser.add_argument("--paced-seconds", type=float, default=20.0)
    parser.add_argument("--burst-seconds", type=float, default=15.0)
    parser.add_argument("--cut-events", type=int, default=20000)
    parser.add_argument("--screenshot", type=Path)
    args = parser.parse_args()
    emit("machine", **machine_state())
    pg_clusters.SETTINGS.update(CLUSTER_SETTINGS)
    gen = pg_clusters.clusters(2)
    provinces_box, national_box = next(gen)
    try:
        run(args, provinces_box, national_box)
    finally:
        gen.close()
    emit("machine_after", **machine_state())


def run(args: argparse.Namespace, provinces_box: pg_clusters.Cluster, national_box: pg_clusters.Cluster) -> None:
    counts = centres_per_province()
    today = datetime.now(ZONE).date()
    dsn = {code: provinces_box.dsn(code.replace("-", "_")) for code, _ in PROVINCES}
    started = time.monotonic()
    with psycopg.connect(provinces_box.dsn(), autocommit=True) as admin:
        for code, _ in PROVINCES:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(code.replace("-", "_"))))
    sources = []
    for code, name in PROVINCES:
        store = Store.connect(dsn[code], ZONE)
        store.create_schema()
        store.close()
        with psycopg.connect(dsn[code], autocommit=True) as conn:
            params = {"code": code, "n": counts[code], "today": today, "days": args.history_days, "groups": GROUPS,
                      "names": [GROUP_NAMES[g] for g in GROUPS]}
            for statement in filter(str.strip, FILL.split(";")):
                conn.execute(statement, params)
            prepare_province(conn, code, PASSWORD)
        sources.append(ProvinceSource(code, name, provinces_box.tcp(code.replace("-", "_"), replication_user(code), PASSWORD)))
    rows = sum(province_total_rows(dsn[c]) for c, _ in PROVINCES)
    emit("fill", provinces=len(PROVINCES), centres=sum(counts.values()), history_days=args.history_days,
         summary_rows=rows, seconds=round(time.monotonic() - started, 1))

    national = national_box.dsn("national")
    with psycopg.connect(national_box.dsn(), autocommit=True) as admin:
        admin.execute("CREATE DATABASE national")
    started = time.monotonic()
    with psycopg.connect(national, autocommit=True) as conn:
        done = prepare_national(conn, sources)
        setup = time.monotonic() - started
        while conn.execute("SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'").fetchone()[0] or \
                conn.execute("SELECT count(*) FROM daily").fetchone()[0] < sum(province_daily(dsn[c]) for c, _ in PROVINCES):
            time.sleep(0.5)
        size = conn.execute("SELECT pg_database_size('national')").fetchone()[0]
    emit("initial_copy", provinces=sum(d["ok"] for d in done.values()), setup_seconds=round(setup, 1),
         copied_seconds=round(time.monotonic() - started, 1), national_db_mb=round(size / 2**20))

    thresholds = Thresholds(ZONE)
    with psycopg.connect(national, autocommit=True) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        for label, keep, only in (("cold", False, None), ("warm", True, None), ("one province (168 centres), warm", True, "ho-chi-minh")):
            walls, sqls, cpus, slow = [], [], [], {}
            for _ in range(args.runs):
                if not keep:
                    slow = {}
                c0, t0 = cpu(), time.perf_counter()
                result = national_figures(conn, datetime.now(timezone.utc), ZONE, thresholds, slow, only=only)
                walls.append((time.perf_counter() - t0) * 1000)
                cpus.append((cpu() - c0) * 1000)
                sqls.append(result["sql_ms"])
            emit("national_dashboard", kind=label, provinces=len(result["provinces"]), centres=result["centres_total"],
                 warnings=len(result["warnings"]), ms_median=round(statistics.median(walls)), ms_max=round(max(walls)),
                 sql_ms_median=round(statistics.median(sqls)), cpu_ms_median=round(statistics.median(cpus)),
                 loadavg=[round(x, 2) for x in __import__("os").getloadavg()])

    code = "ho-chi-minh"
    centres = [f"{code}-{i}" for i in range(1, counts[code] + 1)]
    rng = random.Random(19)
    store = Store.connect(dsn[code], ZONE)
    try:
        every = 0.25
        paced = lag_run(store, national, code, centres, int(args.paced_seconds / every), max(1, round(args.paced_rate * every)),
                        every, rng)
        emit("lag_paced", province=code, target_events_per_s=args.paced_rate, **paced)
        burst_batches = max(1, int(args.burst_seconds * 4))
        burst = lag_run(store, national, code, centres, burst_batches, 200, 0, rng)
        emit("lag_burst", province=code, **burst)

        with psycopg.connect(national, autocommit=True) as conn:
            cut(conn, code, enabled=False)
            while conn.execute("SELECT count(*) FROM pg_stat_subscription WHERE subname = 'luot_national_ho_chi_minh' "
                               "AND pid IS NOT NULL").fetchone()[0]:
                time.sleep(0.1)
            before = national_total(conn, code)
            t0 = time.monotonic()
            written = 0
            while written < args.cut_events:
                store.store_batch(issued_events(centres, 500, rng), [], [])
                written += 500
            write_s = time.monotonic() - t0
            with psycopg.connect(dsn[code]) as prov:
                kept = prov.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn) FROM pg_replication_slots "
                                    "WHERE slot_name = 'luot_national_ho_chi_minh'").fetchone()[0]
            assert national_total(conn, code) == before  # the cut held (a benchmark bug otherwise)
            t0 = time.monotonic()
            cut(conn, code, enabled=True)
            target = province_total(dsn[code])
            while national_total(conn, code) < target:
                time.sleep(0.05)
            caught = time.monotonic() - t0
            final, truth = national_total(conn, code), province_total(dsn[code])
            emit("cut_catch_up", province=code, events_during_cut=written, write_seconds=round(write_s, 1),
                 wal_kept_mb=round(float(kept) / 2**20, 1), wal_bytes_per_event=round(float(kept) / written),
                 catch_up_seconds=round(caught, 1), catch_up_events_per_s=round(written / caught),
                 national_issued=final, province_issued=truth, lost_or_doubled=final - truth)
    finally:
        store.close()
    if args.screenshot:
        with psycopg.connect(national, autocommit=True) as conn:
            cut(conn, "ca-mau", enabled=False)
        screenshot(national, sources, args.screenshot)
    with psycopg.connect(national, autocommit=True) as conn:
        for s in sources:
            conn.execute(sql.SQL("DROP SUBSCRIPTION IF EXISTS {}").format(sql.Identifier("luot_national_" + s.code.replace("-", "_"))))


def province_total_rows(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return sum(int(conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0])
                   for t in ("centres", "groups", "daily", "daily_centre", "now_groups", "recent"))


def province_daily(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return int(conn.execute("SELECT count(*) FROM daily").fetchone()[0])


if __name__ == "__main__":
    main()
