"""A simulated month of three centres, through the centre's reports page and the province's
ranking, as a manager and a province leader see them: screenshots and the figures behind them.

    PYTHONPATH=. python bench/shots_month.py OUT_DIR [--days 22]

Each centre is the sample centre under its own id, a different load and seed (server/simulation.py:
five-level ratings on the pad and the phone, dissatisfaction rising with the wait, dossiers with
appointments, some returned late). Its month is simulated into its own SQLite database; then the
first centre's server runs on that database (clock: the month's last afternoon) and headless
Chromium screenshots its reports page; the three centres' events go to a scratch PostgreSQL database
(as the region's catch-up would bring them) and the province page screenshots the ranking by the
Decision 766 index. Prints the ranking as JSON lines. Needs Debian's chromium and a PostgreSQL
(tests/helpers/region.py: LUOT_TEST_PG). Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import tempfile
import threading
from datetime import date, datetime, time as clock_time, timedelta, timezone
from pathlib import Path

from luot.config import parse_config
from luot.ports import free_port
from server.app import CentreRuntime, RuntimeOptions
from server.simulation import open_days, simulate_days
from tests.engine_support import sample_data
from tests.test_web_pages import ARGS, CHROMIUM

CENTRES = [("hn-cua-nam", "Phường Cửa Nam", 200, 7), ("hn-hoan-kiem", "Phường Hoàn Kiếm", 260, 11),
           ("hn-ba-dinh", "Phường Ba Đình", 330, 13)]
FIRST = date(2026, 11, 2)


def centre_config(centre_id: str, name: str):
    data = sample_data()
    data["centre"].update(id=centre_id, name=f"Trung tâm Phục vụ hành chính công {name.lower()}")
    return parse_config(data, centre_id)


async def simulate(out: Path, days: int) -> tuple[list[tuple[str, str, Path]], date]:
    made = []
    last = FIRST
    for centre_id, name, load, seed in CENTRES:
        config = centre_config(centre_id, name)
        var = out / centre_id / "var"
        var.mkdir(parents=True, exist_ok=True)
        db = var / Path(config.storage.path).name
        db.unlink(missing_ok=True)
        result = await simulate_days(config, FIRST, days, seed=seed, tickets_per_day=load, db_path=str(db))
        last = max(last, date.fromisoformat(result["days"][-1]["day"]))
        made.append((centre_id, name, db))
    return made, last


async def centre_shots(db: Path, centre_id: str, name: str, last: date, shots: Path) -> None:
    from playwright.async_api import async_playwright

    config = centre_config(centre_id, name)
    afternoon = datetime.combine(last, clock_time(17, 30), config.zone).astimezone(timezone.utc)
    runtime = CentreRuntime(config, RuntimeOptions(data_dir=db.parent, http_port=0, mqtt=False, db_path=db,
                                                   clock=lambda: afternoon))
    await runtime.start()
    try:
        await runtime.accounts.add_user("quanly", "Quản lý", "manager", "matkhau-123")
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            for viewport, suffix in (({"width": 1366, "height": 900}, "desktop"), ({"width": 390, "height": 844}, "phone")):
                page = await (await browser.new_context(viewport=viewport)).new_page()
                await page.goto(f"{runtime.base_url}/reports")
                await page.fill("input[name=username]", "quanly")
                await page.fill("input[name=password]", "matkhau-123")
                await page.click("#login-form button[type=submit]")
                await page.wait_for_selector("#app:not([hidden])")
                await page.fill("#filter input[name=from]", FIRST.isoformat())
                await page.fill("#filter input[name=to]", last.isoformat())
                await page.select_option("#filter select[name=by]", "officer")
                await page.select_option("#filter select[name=period]", "week")
                await page.select_option("#s766-by", "officer")
                await page.click("#filter button[type=submit]")
                await page.wait_for_selector("#s766 tr:nth-child(3)")
                await page.wait_for_timeout(300)
                await page.screenshot(path=str(shots / f"month-report-{suffix}.png"), full_page=True)
            await browser.close()
    finally:
        await runtime.stop()


def province_shots(made: list[tuple[str, str, Path]], last: date, shots: Path, work: Path) -> None:
    import uvicorn
    from playwright.sync_api import sync_playwright

    from region.dashboard import create_app
    from region.report import figures
    from region.settings import load_region
    from region.store import Store
    from region.validate import RegionEvent
    from region.warnings import Thresholds
    from tests.helpers.region import scratch_database, wait_until, write_centres_toml

    for dsn in scratch_database():
        entries = []
        for centre_id, _, _ in made:
            creds = work / f"{centre_id}.json"
            creds.write_text(json.dumps({"centre": centre_id, "mqtt_username": centre_id, "mqtt_password": "x",
                                         "api_device": "region", "api_secret": "y"}))
            entries.append((centre_id, "http://127.0.0.1:9", creds))
        region = load_region(write_centres_toml(work / "centres.toml", entries))
        afternoon = datetime.combine(last, clock_time(17, 30), region.zone).astimezone(timezone.utc)
        store = Store.connect(dsn, region.zone)
        store.create_schema(afternoon)
        store.register_centres((c, f"Trung tâm {n}", n) for c, n, _ in made)
        for centre_id, _, db in made:
            with sqlite3.connect(db) as conn:
                rows = conn.execute("SELECT seq, id, type, at, data FROM events ORDER BY seq").fetchall()
            events = [RegionEvent(centre_id, i, kind, datetime.fromisoformat(at), json.loads(data), seq, "http")
                      for seq, i, kind, at, data in rows]
            for start in range(0, len(events), 2000):
                store.store_batch(events[start:start + 2000], [], [])
        store.close()
        import psycopg

        with psycopg.connect(dsn) as conn:
            conn.execute("SET TIME ZONE 'UTC'")
            rows = figures(conn, afternoon, region.zone, Thresholds(region.zone))["centres"]
        for row in sorted(rows, key=lambda r: r["rank_766"] or 99):
            print(json.dumps({k: row[k] for k in ("rank_766", "centre", "name", "index_766", "dossiers_30d",
                                                   "satisfaction_30d", "served_30d", "mean_wait_30d_minutes")},
                             ensure_ascii=False))
        app = create_app(region, dsn, clock=lambda: afternoon)
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            wait_until(lambda: server.started, 20, "the province dashboard")
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = browser.new_context(viewport={"width": 1366, "height": 900},
                                           http_credentials={"username": "tinh", "password": region.secrets["tinh"]}).new_page()
                page.goto(f"http://127.0.0.1:{port}/")
                page.wait_for_selector("#centres tbody tr")
                page.click('#centres th[data-key="index_766"]')
                page.wait_for_timeout(300)
                page.screenshot(path=str(shots / "month-province-ranking.png"), full_page=True)
                browser.close()
        finally:
            server.should_exit = True
            thread.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--days", type=int, default=22)
    args = parser.parse_args()
    shots = Path(args.out)
    shots.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        made, last = asyncio.run(simulate(work, args.days))
        centre_id, name, db = made[0]
        asyncio.run(centre_shots(db, centre_id, name, last, shots))
        province_shots(made, last, shots, work)


if __name__ == "__main__":
    main()
