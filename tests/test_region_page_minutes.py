"""Issue 19: warnings and late groups carry when their wait began, not its minutes, so the shared
snapshot changes only with the data; the province page (headless Chromium) prints the minutes from
the snapshot's ``now``, the centre's page gets them from the server, and both move with the clock
while nothing is encoded again. Likewise the growing warning's ticket and call counts: slots in the
snapshot, filled by the page from its ``recent`` part and by the server for the centre's page, and
moving when only the 5-minute buckets move while the warning is not encoded again. Against the
machine's PostgreSQL and a real uvicorn server."""

from __future__ import annotations

import time as clock_time
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import psycopg

from region.report import figures
from region.settings import load_region
from region.store import Store
from region.validate import Availability, RegionEvent
from region.warnings import CALLED, ISSUED, MINUTES, Thresholds, with_minutes
from tests.helpers.lan_browser import ARGS, CHROMIUM
from tests.helpers.region import write_centres_toml
from tests.helpers.served import served


def last_weekday_morning(zone: Any) -> datetime:
    """10:00 local on the last working day before today: in working hours (the silent rule applies)."""
    day = datetime.now(zone).date() - timedelta(days=1)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return datetime.combine(day, time(10), zone)


def issued(centre: str, ticket: str, group: str, at: datetime) -> RegionEvent:
    return RegionEvent(centre, f"e-{ticket}", "ticket.issued", at, {"ticket_id": ticket, "group": group}, None, "mqtt")


def test_the_pages_print_the_minutes_of_warnings_that_carry_their_start(tmp_path: Path, pg: str, monkeypatch: Any) -> None:
    from playwright.sync_api import sync_playwright

    from region import dashboard
    from region.dashboard import create_app

    monkeypatch.setattr(dashboard, "RECENT_AGE", 1.0)  # the buckets re-read within the test's seconds, not every 30
    files = []
    for centre in ("hn-a", "hn-b", "hn-c"):
        creds = tmp_path / f"{centre}.json"
        creds.write_text(f'{{"centre": "{centre}", "mqtt_username": "{centre}", "mqtt_password": "x", '
                         '"api_device": "region", "api_secret": "y"}')
        files.append((centre, "http://127.0.0.1:9", creds))
    region = load_region(write_centres_toml(tmp_path / "centres.toml", files))
    read_at = last_weekday_morning(region.zone)
    store = Store.connect(pg, region.zone)
    store.create_schema(read_at)
    store.register_centres([("hn-a", "Phường A", ""), ("hn-b", "Phường B", ""), ("hn-c", "Phường C", "")])
    store.set_groups("hn-a", [{"code": "ho-tich", "name": "Hộ tịch", "wait_alert_minutes": 10},
                              {"code": "chung-thuc", "name": "Chứng thực", "wait_alert_minutes": 10}])
    store.store_batch([issued("hn-a", "a1", "ho-tich", read_at - timedelta(minutes=12, seconds=6)),  # 12.1: "12", watch
                       issued("hn-a", "a2", "ho-tich", read_at - timedelta(minutes=2)),
                       issued("hn-a", "a3", "chung-thuc", read_at - timedelta(minutes=27, seconds=42)),  # 27.7: "28", past twice 10
                       issued("hn-b", "b1", "khac", read_at - timedelta(minutes=40))]  # 40: the default 30
                      # six tickets, no call, in the growth window: hn-c's queue grows ("6 ... 0")
                      + [issued("hn-c", f"c{i}", "khac", read_at - timedelta(minutes=8, seconds=i)) for i in range(6)], [], [])
    with store.conn.transaction():  # who waits now as of that morning (written live, it is the day of the writing)
        store.rebuild_maintained(read_at, since=read_at.date())
    # hn-b last heard 33.3 minutes before: silent in working hours
    store.store_batch([], [(Availability("hn-b", "bridge", None, True), read_at - timedelta(minutes=33, seconds=18))], [])
    moments = [read_at]
    app = create_app(region, pg, clock=lambda: moments[0])

    def expected(now: datetime) -> list[str]:
        """The warnings' Vietnamese texts at ``now`` as the server fills them (region.warnings.with_minutes)."""
        with psycopg.connect(pg) as conn:
            conn.execute("SET TIME ZONE 'UTC'")
            found = figures(conn, now, region.zone, Thresholds(region.zone, offline_after_minutes=region.info.offline_after_minutes,
                                                               growth_window_minutes=region.info.growth_window_minutes))
        return [w["vi"] for w in with_minutes(found["warnings"], now, found["recent"])]

    try:
        with served(app, "the province dashboard") as base, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1360, "height": 900},
                                    http_credentials={"username": "tinh", "password": region.secrets["tinh"]})
            for step, minutes in enumerate([(12, 28, 33, 40), (17, 33, 38, 45)]):
                if step:  # only the clock moves: the snapshot's rows, warnings and groups stay as they were
                    moments[0] = read_at + timedelta(minutes=5)
                    clock_time.sleep(2.2)  # past the snapshot's age
                snapshot = page.request.get(base + "/api/overview").json()
                assert MINUTES in " ".join(w["vi"] for w in snapshot["warnings"])  # the snapshot carries the slot, not minutes
                if step:
                    assert app.state.encode["rows_encoded"] == 0, "nothing but the time moved: no row, warning or group encoded again"
                texts = expected(moments[0])
                waited, late, silent, other = minutes
                assert any(f"Hộ tịch: có người đã chờ {waited} phút" in t for t in texts), texts
                assert any(f"Chứng thực: có người đã chờ {late} phút" in t for t in texts), texts
                assert any(f"đã {silent} phút trong giờ làm việc" in t for t in texts), texts
                assert any(f"khac: có người đã chờ {other} phút" in t for t in texts), texts
                page.goto(base + "/")
                page.wait_for_selector("#warnings li")
                shown = page.locator("#warnings li").all_inner_texts()
                assert len(shown) == len(texts)
                for text in texts:  # the page's minutes, from the snapshot's now, are the server's
                    assert any(text in s for s in shown), (text, shown)
                assert MINUTES not in page.inner_text("body")
                rows = {r.split("\t")[0]: r.split("\t") for r in page.locator("#centres tbody tr").all_inner_texts()}
                assert rows["Phường A"][2] == str(late) and rows["Phường B"][2] == str(other), rows  # longest wait, from the row's start
                page.goto(base + "/centre/hn-a")
                page.wait_for_selector("#groups tr")
                groups = {r.split("\t")[0]: r.split("\t") for r in page.locator("#groups tr").all_inner_texts()}
                assert groups["Hộ tịch"][2] == str(waited) and groups["Chứng thực"][2] == str(late), groups
                assert f"có người đã chờ {late} phút" in page.inner_text("#warnings")
                assert MINUTES not in page.inner_text("body")
            # hn-c's growing warning: its counts are slots in the snapshot, the page fills them from its recent part
            grow = f"{region.info.growth_window_minutes} phút qua có {{}} người lấy số nhưng chỉ {{}} người được gọi"
            for step, counts in enumerate([(6, 0), (10, 1)]):
                if step:  # only hn-c's 5-minute buckets move (four more tickets, one call): no row, no centre changed
                    with psycopg.connect(pg, autocommit=True) as conn:
                        conn.execute("INSERT INTO recent (centre, bucket, issued, called) VALUES ('hn-c', %s, 4, 1)",
                                     (moments[0] - timedelta(minutes=1),))
                    clock_time.sleep(2.2)  # past the buckets' and the snapshot's ages
                snapshot = page.request.get(base + "/api/overview").json()
                assert snapshot["recent"]["hn-c"] == list(counts)
                growing = [w for w in snapshot["warnings"] if w["kind"] == "growing"]
                assert [w["centre"] for w in growing] == ["hn-c"]
                assert ISSUED in growing[0]["vi"] and CALLED in growing[0]["en"]  # slots, not counts
                if step:
                    assert app.state.encode["rows_encoded"] == 0, "only the buckets moved: the warning is not encoded again"
                texts = expected(moments[0])
                assert any(grow.format(*counts) in t for t in texts), texts
                page.goto(base + "/")
                page.wait_for_selector("#warnings li")
                shown = page.locator("#warnings li").all_inner_texts()
                for text in texts:
                    assert any(text in s for s in shown), (text, shown)
                assert any(grow.format(*counts) in s and "{} tickets vs {} calls".format(*counts) in s for s in shown), shown
                assert ISSUED not in page.inner_text("body") and CALLED not in page.inner_text("body")
                page.goto(base + "/centre/hn-c")
                page.wait_for_selector("#warnings li")
                assert grow.format(*counts) in page.inner_text("#warnings")
                assert ISSUED not in page.inner_text("body")
            browser.close()
    finally:
        store.close()
