"""Issue 19, item 4: the national view from the provinces' summary rows, by PostgreSQL's own logical
replication, between real clusters made for the test (tests/helpers/pg_clusters.py): one cluster
holds two provincial databases (two publishers: Hà Nội and Huế, which both have a centre ``hn-a``),
the other is the national box with a subscription per province."""

from __future__ import annotations

import contextlib
import io
import json
import random
from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg import sql

from luot.cli import main as cli_main
from region.national import PUBLISHED, cut, subscription_name
from region.national_report import national_figures
from region.report import figures, with_longest_wait
from region.store import Store
from region.warnings import Thresholds, with_minutes
from tests.helpers import pg_clusters
from tests.helpers.region import wait_until, write_centres_toml
from tests.test_region_fast import ticket_events

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
THRESHOLDS = Thresholds(ZONE)
PROVINCES = {  # code: (name, tickets per centre, centres (id, name, ward))
    "ha-noi": ("Hà Nội", 60, [("hn-a", "Phường Cửa Nam", "Cửa Nam"), ("hn-b", "Phường Ba Đình", "Ba Đình")]),
    "hue": ("Huế", 12, [("hn-a", "Phường Thuận Hóa", "Thuận Hóa"), ("hue-b", "Phường Phú Xuân", "Phú Xuân")]),
}


def day_at(hour: int, minute: int = 0) -> datetime:
    """Today in Vietnam at hour:minute (the events' working day, whatever the hour the test runs)."""
    return datetime.combine(datetime.now(ZONE).date(), time(hour, minute), ZONE)


READ_AT = day_at(16, 45)


def write_day(dsn: str, centres: list[tuple[str, str, str]], tickets: int, start: datetime, seed: int) -> None:
    store = Store.connect(dsn, ZONE)
    try:
        rng = random.Random(seed)
        for centre, _, _ in centres:
            store.store_batch(ticket_events(centre, tickets, start, rng), [], [])
            store.set_groups(centre, [{"code": "ho-tich", "name": "Hộ tịch"}, {"code": "chung-thuc", "name": "Chứng thực"},
                                      {"code": "dat-dai", "name": "Đất đai", "wait_alert_minutes": 45}])
    finally:
        store.close()


def luot(*argv: str) -> Any:
    """The ``luot`` command in this process; its JSON output."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli_main(list(argv))
    assert code == 0, f"luot {' '.join(argv[:2])} exited {code}: {out.getvalue()[-500:]}"
    return json.loads(out.getvalue())


@pytest.fixture(scope="module")
def boxes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Provinces published (``luot national publish``), the national box subscribed (``luot national
    setup`` from a national.toml); ``dsn``: superuser DSNs by name."""
    base = tmp_path_factory.mktemp("national")
    for made in pg_clusters.clusters(2):
        provinces, national = made
        with psycopg.connect(provinces.dsn(), autocommit=True) as admin:
            for code in PROVINCES:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(code.replace("-", "_"))))
        with psycopg.connect(national.dsn(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE national")
        dsn = {code: provinces.dsn(code.replace("-", "_")) for code in PROVINCES}
        dsn["national"] = national.dsn("national")
        toml = ["[national]", 'name = "Toàn quốc (thử nghiệm)"', ""]
        for seed, (code, (name, tickets, centres)) in enumerate(PROVINCES.items()):
            store = Store.connect(dsn[code], ZONE)
            store.create_schema()
            store.register_centres(centres)
            store.close()
            write_day(dsn[code], centres, tickets, day_at(7, 30), seed)
            (base / code).mkdir()
            creds = []
            for centre, _, _ in centres:
                creds.append(base / code / f"{centre}.json")
                creds[-1].write_text(json.dumps({"centre": centre, "mqtt_username": centre, "mqtt_password": "x",
                                                 "api_device": "region", "api_secret": "y"}))
            centres_toml = write_centres_toml(base / code / "centres.toml", [(c[0], "http://127.0.0.1:9", f) for c, f in
                                                                             zip(centres, creds)], region_id=code)
            published = luot("national", "publish", "--pg", dsn[code], "--centres", str(centres_toml))
            assert published["province"] == code and set(published["tables"]) == set(PUBLISHED)
            toml += ["[[provinces]]", f'code = "{code}"', f'name = "{name}"', 'host = "127.0.0.1"', f"port = {provinces.port}",
                     f'dbname = "{code.replace("-", "_")}"', f'credentials = "{Path(published["credentials"]).relative_to(base)}"', ""]
        (base / "national.toml").write_text("\n".join(toml), encoding="utf-8")
        done = luot("national", "setup", "--pg", dsn["national"], "--national", str(base / "national.toml"))
        assert all(d["ok"] and d["subscription"] == "created" for d in done.values()), done
        yield {"dsn": dsn, "national": national, "toml": base / "national.toml", "provinces": base}


def rows_of(dsn: str, table: str, where: str = "") -> list[tuple[Any, ...]]:
    """Every row of a table but its province column, in a stable order."""
    with psycopg.connect(dsn) as conn:
        cols = [r[0] for r in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped "
            "AND attname <> 'province' ORDER BY attnum", (table,))]
        query = sql.SQL("SELECT {} FROM {} " + where).format(sql.SQL(", ").join(map(sql.Identifier, cols)), sql.Identifier(table))
        return sorted(conn.execute(query).fetchall(), key=repr)


def differing(boxes: dict[str, Any], code: str) -> list[str]:
    """The published tables whose rows on the national box differ from the province's (none: caught up)."""
    return [t for t in PUBLISHED
            if rows_of(boxes["dsn"][code], t) != rows_of(boxes["dsn"]["national"], t, f"WHERE province = '{code}'")]


def issued(dsn: str, where: str = "") -> int:
    with psycopg.connect(dsn) as conn:
        return int(conn.execute("SELECT coalesce(sum(issued), 0) FROM daily " + where).fetchone()[0])


def caught_up(boxes: dict[str, Any], *codes: str, timeout: float = 30) -> None:
    try:
        wait_until(lambda: not any(differing(boxes, c) for c in codes), timeout, f"{codes} on the national box", every=0.3)
    except AssertionError:
        raise AssertionError(f"not caught up: { {c: differing(boxes, c) for c in codes} }\n"
                             f"{pg_clusters.log_tail(boxes['national'])}") from None


def test_a_province_s_rows_arrive_a_cut_subscription_catches_up_and_nothing_doubles(boxes: dict[str, Any]) -> None:
    dsn = boxes["dsn"]
    caught_up(boxes, *PROVINCES)
    national = dsn["national"]
    with psycopg.connect(national) as conn:
        # summary rows only: the raw events, hourly rollups and tickets never leave the province
        assert all(conn.execute("SELECT to_regclass(%s)", (t,)).fetchone()[0] is None for t in ("events", "hourly", "tickets_now"))
        # the two provinces' centre "hn-a" are two rows, one per province
        assert sorted(conn.execute("SELECT province, name FROM centres WHERE centre = 'hn-a'").fetchall()) == [
            ("ha-noi", "Phường Cửa Nam"), ("hue", "Phường Thuận Hóa")]
    with psycopg.connect(dsn["ha-noi"]) as conn:
        assert sorted(r[0] for r in conn.execute("SELECT tablename FROM pg_publication_tables")) == sorted(PUBLISHED)
    assert issued(national) == issued(dsn["ha-noi"]) + issued(dsn["hue"]) > 0

    # cut Hà Nội; both provinces go on working meanwhile
    with psycopg.connect(national, autocommit=True) as conn:
        cut(conn, "ha-noi", enabled=False)
        wait_until(lambda: conn.execute("SELECT count(*) FROM pg_stat_subscription WHERE subname = %s AND pid IS NOT NULL",
                                        (subscription_name("ha-noi"),)).fetchone()[0] == 0, 20, "the apply worker to stop")
        before = issued(national, "WHERE province = 'ha-noi'")
        write_day(dsn["ha-noi"], PROVINCES["ha-noi"][2], 25, day_at(11), seed=7)  # new rows and updated ones
        write_day(dsn["hue"], PROVINCES["hue"][2], 25, day_at(11), seed=8)
        caught_up(boxes, "hue")
        assert differing(boxes, "ha-noi"), "the cut subscription applied nothing"
        assert issued(national, "WHERE province = 'ha-noi'") == before < issued(dsn["ha-noi"])
        during = national_figures(conn, READ_AT, ZONE, THRESHOLDS)
        hanoi = next(p for p in during["provinces"] if p["province"] == "ha-noi")
        assert hanoi["replication"] == "cut"
        status = luot("national", "status", "--pg", national, "--national", str(boxes["toml"]))
        assert [(s["code"], s["enabled"], s["connected"]) for s in status] == [("ha-noi", False, False), ("hue", True, True)]
        assert during["warnings"][0]["kind"] == "replication" and during["warnings"][0]["province"] == "ha-noi"
        assert "Hà Nội" in during["warnings"][0]["vi"] and "tạm dừng" in during["warnings"][0]["vi"]

        cut(conn, "ha-noi", enabled=True)
        caught_up(boxes, "ha-noi")
    assert issued(national) == issued(dsn["ha-noi"]) + issued(dsn["hue"])

    # setting up again changes nothing and doubles nothing
    again = luot("national", "setup", "--pg", national, "--national", str(boxes["toml"]))
    assert {d["subscription"] for d in again.values()} == {"refreshed"}
    luot("national", "publish", "--pg", dsn["hue"], "--centres", str(boxes["provinces"] / "hue" / "centres.toml"))
    with psycopg.connect(national) as conn:
        assert conn.execute("SELECT count(*) FROM pg_subscription").fetchone()[0] == 2
    write_day(dsn["hue"], PROVINCES["hue"][2], 3, day_at(12), seed=9)
    caught_up(boxes, *PROVINCES)
    assert issued(national) == issued(dsn["ha-noi"]) + issued(dsn["hue"])
    status = luot("national", "status", "--pg", national, "--national", str(boxes["toml"]))
    assert [(s["code"], s["enabled"]) for s in status] == [("ha-noi", True), ("hue", True)]

    # a province copied afresh (after it rebuilt its tables with TRUNCATE, which is not replicated)
    resynced = luot("national", "resync", "--province", "hue", "--pg", national, "--national", str(boxes["toml"]))
    assert resynced["ok"] and resynced["subscription"] == "created" and resynced["deleted"]["daily"] > 0
    caught_up(boxes, *PROVINCES)
    assert issued(national) == issued(dsn["ha-noi"]) + issued(dsn["hue"])


def without_province(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("province", "province_name")}


def test_the_national_dashboard_ranks_provinces_and_centres_with_the_provinces_own_warnings(
        boxes: dict[str, Any], tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    from region.national_dashboard import create_app
    from region.national_settings import NATIONAL_USER, load_national
    from tests.helpers.lan_browser import ARGS, CHROMIUM
    from tests.helpers.served import served
    from tests.test_region import shot_dir

    dsn = boxes["dsn"]
    caught_up(boxes, *PROVINCES)
    with psycopg.connect(dsn["national"]) as conn:
        nation = national_figures(conn, READ_AT, ZONE, THRESHOLDS, top=1000)
    high = {}
    for code in PROVINCES:
        with psycopg.connect(dsn[code]) as conn:
            own = figures(conn, READ_AT, ZONE, THRESHOLDS)
        with_longest_wait(own["centres"], READ_AT)  # the national view shows the minutes; the province's rows carry the start
        with_minutes(own["warnings"], READ_AT, own["recent"])  # and its warnings' texts: the province's carry a slot for them
        assert own["warnings"], "the day leaves people waiting for hours: the province warns"
        mine = [without_province(r) for r in nation["centres"] if r["province"] == code]
        assert sorted(mine, key=lambda r: r["centre"]) == sorted(own["centres"], key=lambda r: r["centre"])
        assert sorted(map(repr, (without_province(w) for w in nation["warnings"] if w["province"] == code))) == \
            sorted(map(repr, own["warnings"]))
        high[code] = sum(w["level"] == "cao" for w in own["warnings"])
        row = next(p for p in nation["provinces"] if p["province"] == code)
        assert (row["served"], row["waiting"], row["centres"]) == (
            sum(r["served"] for r in own["centres"]), sum(r["waiting"] for r in own["centres"]), len(own["centres"]))
        means = [r["mean_wait_minutes"] for r in own["centres"]]
        assert min(means) <= row["mean_wait_minutes"] <= max(means)
    ranked = [p["province"] for p in nation["provinces"]]
    assert ranked == sorted(PROVINCES, key=lambda c: -high[c]) and high[ranked[0]] > high[ranked[1]]
    assert [p["warnings_high"] for p in nation["provinces"]] == [high[c] for c in ranked]
    keys = [(-c["warnings"], -c["longest_wait_minutes"]) for c in nation["centres"]]
    assert keys == sorted(keys) and len(nation["centres"]) == 4

    printed = luot("national", "figures", "--pg", dsn["national"], "--national", str(boxes["toml"]))
    assert sorted(p["province"] for p in printed["provinces"]) == sorted(PROVINCES) and printed["centres_total"] == 4

    # the page, as a national leader sees it
    national = load_national(boxes["toml"])
    app = create_app(national, dsn["national"], clock=lambda: READ_AT)
    with served(app, "the national dashboard") as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1360, "height": 900},
                                http_credentials={"username": NATIONAL_USER, "password": national.secrets[NATIONAL_USER]})
        page.goto(base + "/")
        page.wait_for_selector("#provinces tbody tr")
        page.wait_for_selector("#warnings li")
        shown = page.locator("#provinces tbody th").all_inner_texts()
        assert shown == [PROVINCES[c][0] for c in ranked]
        assert "Hà Nội" in page.inner_text("#warnings li >> nth=0")
        assert page.locator("#ranked tbody tr").count() == 4
        everything = len(app.state.snapshot.get()[0]["warnings"])
        assert page.locator("#warnings li").count() == min(everything, 10)
        if everything > 10:  # the first ten, and all of them on request
            page.click("#more-warnings")
            assert page.locator("#warnings li").count() == everything
        page.screenshot(path=str(shot_dir(tmp_path) / "national-dashboard.png"), full_page=True)
        browser.close()


def test_a_province_without_logical_wal_is_told_what_to_change(pg: str) -> None:
    """The machine's own cluster keeps the default wal_level (replica): publishing is refused with
    the line to change, before anything is altered."""
    from region.national import ReplicationError, prepare_province

    store = Store.connect(pg, ZONE)
    store.create_schema()
    store.close()
    with psycopg.connect(pg, autocommit=True) as conn:
        if conn.execute("SHOW wal_level").fetchone()[0] == "logical":
            pytest.skip("this machine's cluster already writes logical WAL")
        with pytest.raises(ReplicationError, match="wal_level = logical"):
            prepare_province(conn, "ha-noi", "x")
        assert conn.execute("SELECT count(*) FROM pg_publication").fetchone()[0] == 0
        assert conn.execute("SELECT to_regclass('centres_national_key')").fetchone()[0] is None
