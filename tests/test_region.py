"""Province view against real parts: centres whose Mosquitto bridges to a regional Mosquitto (both
from the generated configurations), the aggregator as a child process, the machine's PostgreSQL
(a scratch database per test), the dashboard in headless Chromium.

Outage length: LUOT_TEST_OUTAGE_SECONDS (default 3)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from luot.config import ConfigError
from luot.protocol import Topics, encode
from server.engine import utc_now
from tests.helpers.centre import running_centre
from tests.helpers.region import (Aggregator, RegionalBroker, bridges_up, centre_config, creds_of, free_port, log_ids,
                                  maintained_match_events, pg_ids, traffic, until, write_centres_toml)

OUTAGE = float(os.environ.get("LUOT_TEST_OUTAGE_SECONDS", "3"))


def shot_dir(tmp_path: Path) -> Path:
    """Screenshots go to $LUOT_SCREENSHOT_DIR (docs/img to refresh the docs), else the test's tmp dir."""
    path = Path(os.environ.get("LUOT_SCREENSHOT_DIR") or tmp_path / "shots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def rollups_match_events(dsn: str) -> None:
    """Every rollup equals what its events say: no event was counted twice (or missed)."""
    with psycopg.connect(dsn) as conn:
        rolled = conn.execute("SELECT coalesce(sum(issued),0), coalesce(sum(served),0), coalesce(sum(called),0), "
                              "coalesce(sum(ratings),0), coalesce(sum(rating_sum),0) FROM hourly").fetchone()
        counted = conn.execute(
            "SELECT count(*) FILTER (WHERE kind='ticket.issued'), count(*) FILTER (WHERE kind='ticket.finished'), "
            "count(*) FILTER (WHERE kind='ticket.called' AND data->>'first_call'='true'), "
            "count(*) FILTER (WHERE kind='feedback.recorded'), "
            "coalesce(sum((data->>'rating')::int) FILTER (WHERE kind='feedback.recorded'),0) FROM events").fetchone()
        dupes = conn.execute("SELECT count(*) - count(DISTINCT id) FROM events").fetchone()
    assert tuple(rolled) == tuple(counted)
    assert dupes[0] == 0
    maintained_match_events(dsn)


def test_region_table_is_optional_and_strict(tmp_path: Path) -> None:
    from luot.config import load_config, parse_config

    assert load_config().region is None  # a centre with no [region] runs exactly as before
    config = centre_config("hn-a", 18999)
    assert config.region is not None and config.region.host == "127.0.0.1"
    raw = config.model_dump(exclude_none=True)
    raw["devices"] = [d for d in raw["devices"] if d["id"] != "region"]
    with pytest.raises(ConfigError, match="region"):
        parse_config(raw)
    raw = config.model_dump(exclude_none=True)
    raw["region"]["cert_file"] = "/etc/luot/centre.crt"
    with pytest.raises(ConfigError, match="key_file"):
        parse_config(raw)
    raw = config.model_dump(exclude_none=True)
    raw["region"]["hostt"] = "x"
    with pytest.raises(ConfigError, match="unknown key"):
        parse_config(raw)


async def test_bridge_cut_then_restored_every_event_once(tmp_path: Path, pg: str) -> None:
    rng = random.Random(8)
    region_port = free_port()
    a_cfg = centre_config("hn-a", region_port)
    b_cfg = centre_config("hn-b", region_port, max_queued_messages=10)  # overflows during the outage
    async with running_centre(tmp_path / "a", a_cfg, mqtt=True, broker="mosquitto") as a, \
            running_centre(tmp_path / "b", b_cfg, mqtt=True, broker="mosquitto") as b:
        toml = write_centres_toml(tmp_path / "centres.toml", [("hn-a", a.base_url, creds_of(a)), ("hn-b", b.base_url, creds_of(b))])
        broker = RegionalBroker(toml, tmp_path / "region-broker", region_port).start()
        # catch-up only once at start: what follows must come through the bridges
        agg = await asyncio.to_thread(Aggregator(pg, toml, region_port, tmp_path / "agg.log", catch_up=3600).start)
        try:
            await until(lambda: bridges_up(pg, "hn-a", "hn-b"), 15, "both bridges")
            await traffic(a, 8, 4, rng)
            await traffic(b, 8, 4, rng)
            for runtime in (a, b):
                want = await log_ids(runtime, published_only=True)
                await until(lambda r=runtime, w=want: w <= set(pg_ids(pg, r.config.centre.id)), 20, "events before the cut")
            before_cut_a = await log_ids(a, published_only=True)

            broker.stop()  # the province's line is cut; both centres keep serving
            await traffic(a, 15, 8, rng)
            await traffic(b, 15, 8, rng)
            assert a.service is not None and a.service.engine.waiting  # still serving citizens
            await asyncio.sleep(OUTAGE)
            broker.start()

            want_a = await log_ids(a, published_only=True)
            await until(lambda: want_a <= set(pg_ids(pg, "hn-a")), 30, "centre A's queued events after the outage")
            # A's gap was filled by its bridge's queue, not by catch-up. (Only the gap is judged: the
            # aggregator's one catch-up at start may, on a loaded machine, run after the first traffic
            # and bring some of those events over HTTP before the bridge does; nobody promised an order.)
            gap = sorted(want_a - before_cut_a)
            assert gap
            with psycopg.connect(pg) as conn:
                vias = dict(conn.execute("SELECT via, count(*) FROM events WHERE centre='hn-a' AND id = ANY(%s) GROUP BY via",
                                         (gap,)).fetchall())
            assert set(vias) == {"mqtt"}, vias
            want_b = await log_ids(b, published_only=True)
            await asyncio.sleep(2)
            assert not want_b <= set(pg_ids(pg, "hn-b")), "B's 10-message bridge queue should have overflowed"

            # the HTTP catch-up fills what the bridge dropped: restart with a short interval
            agg.stop()
            agg = Aggregator(pg, toml, region_port, tmp_path / "agg.log", catch_up=0.5)
            await asyncio.to_thread(agg.start)
            all_b = await log_ids(b)
            all_a = await log_ids(a)
            await until(lambda: set(pg_ids(pg, "hn-b")) == all_b, 30, "B's gap filled from its event log")
            await until(lambda: set(pg_ids(pg, "hn-a")) == all_a, 30, "A's log complete")
            rollups_match_events(pg)
            with psycopg.connect(pg) as conn:
                hw = dict(conn.execute("SELECT centre, high_water_seq FROM centres").fetchall())
            assert b.storage is not None and hw["hn-b"] == await b.storage.last_seq()
        finally:
            agg.stop()
            broker.stop()


async def test_aggregator_killed_mid_stream_loses_and_doubles_nothing(tmp_path: Path, pg: str) -> None:
    rng = random.Random(9)
    region_port = free_port()
    async with running_centre(tmp_path / "a", centre_config("hn-a", region_port), mqtt=True, broker="mosquitto") as a, \
            running_centre(tmp_path / "b", centre_config("hn-b", region_port), mqtt=True, broker="mosquitto") as b:
        toml = write_centres_toml(tmp_path / "centres.toml", [("hn-a", a.base_url, creds_of(a)), ("hn-b", b.base_url, creds_of(b))])
        broker = RegionalBroker(toml, tmp_path / "region-broker", region_port).start()
        agg = await asyncio.to_thread(Aggregator(pg, toml, region_port, tmp_path / "agg.log", catch_up=1.0).start)
        try:
            streams = asyncio.gather(traffic(a, 60, 40, rng, pause=0.01), traffic(b, 60, 40, rng, pause=0.01))
            await until(lambda: len(pg_ids(pg)) > 40, 20, "the first events")
            await asyncio.to_thread(agg.kill9)  # mid-stream: uncommitted batches and unacknowledged messages
            await asyncio.sleep(1.0)
            await asyncio.to_thread(agg.start)
            await streams
            want = (await log_ids(a)) | (await log_ids(b))
            await until(lambda: set(pg_ids(pg)) == want, 40, "every event of both centres")
            assert len(pg_ids(pg)) == len(want)
            rollups_match_events(pg)
        finally:
            agg.stop()
            broker.stop()


async def test_foreign_and_malformed_events_are_refused_and_the_dashboard_tells(tmp_path: Path, pg: str) -> None:
    rng = random.Random(10)
    region_port = free_port()
    async with running_centre(tmp_path / "a", centre_config("hn-cua-nam", region_port), mqtt=True, broker="mosquitto") as a:
        # a second centre known to the region, whose bridge we drive by hand with its own credentials
        fake_secret = "bridge-secret-of-hn-hang-bac"
        fake = tmp_path / "hn-hang-bac.json"
        fake.write_text(json.dumps({"centre": "hn-hang-bac", "mqtt_username": "hn-hang-bac", "mqtt_password": fake_secret,
                                    "api_device": "region", "api_secret": "x"}))
        toml = write_centres_toml(tmp_path / "centres.toml", [("hn-cua-nam", a.base_url, creds_of(a)),
                                                              ("hn-hang-bac", "http://127.0.0.1:9", fake)])
        broker = RegionalBroker(toml, tmp_path / "region-broker", region_port).start()
        agg = await asyncio.to_thread(Aggregator(pg, toml, region_port, tmp_path / "agg.log", catch_up=1.0).start)
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="hn-hang-bac", protocol=mqtt.MQTTv311)
        client.username_pw_set("hn-hang-bac", fake_secret)
        client.connect("127.0.0.1", region_port)
        client.loop_start()
        try:
            await traffic(a, 14, 5, rng)
            now = utc_now()

            def event(centre: str, kind: str, minutes_ago: float, **data: Any) -> tuple[str, bytes]:
                at = now.timestamp() - minutes_ago * 60
                from datetime import datetime, timezone
                stamp = datetime.fromtimestamp(at, timezone.utc).isoformat()
                return Topics(centre).event_topics(kind)[0], encode(kind, data, id=f"e{random.getrandbits(64):x}", at=stamp, centre=centre)

            foreign_topic, foreign = event("hn-cua-nam", "ticket.issued", 1, ticket_id="tX", number=9999, group="ho-tich")
            bad_topic, _ = event("hn-hang-bac", "ticket.issued", 1)
            wrong_version = json.dumps({"v": 2, "kind": "ticket.issued", "id": "e1", "at": now.isoformat(), "centre": "hn-hang-bac", "data": {}})
            mismatch = encode("ticket.issued", {"group": "ho-tich"}, id="e2", at=now.isoformat(), centre="hn-cua-nam")
            unknown = encode("ticket.teleported", {}, id="e3", at=now.isoformat(), centre="hn-hang-bac")
            for topic, payload in [(foreign_topic, foreign), (bad_topic, wrong_version), (bad_topic, b"{not json"),
                                   (bad_topic, mismatch), (bad_topic, unknown)]:
                client.publish(topic, payload, qos=1).wait_for_publish(5)
            # then good events: one citizen waiting 50 minutes at Hàng Bạc (threshold 30), one link up
            good = [event("hn-hang-bac", "ticket.issued", 50, ticket_id="t1", number=1001, group="ho-tich"),
                    event("hn-hang-bac", "ticket.issued", 3, ticket_id="t2", number=2001, group="chung-thuc")]
            for topic, payload in good:
                client.publish(topic, payload, qos=1).wait_for_publish(5)
            client.publish(Topics("hn-hang-bac").device_availability("kiosk-1"), b"offline", qos=1, retain=True).wait_for_publish(5)

            await until(lambda: len(pg_ids(pg, "hn-hang-bac")) == 2, 15, "the good events after the bad ones")
            assert "tX" not in json.dumps(pg_ids(pg, "hn-cua-nam"))
            with psycopg.connect(pg) as conn:
                stolen = conn.execute("SELECT count(*) FROM events WHERE ticket_id = 'tX'").fetchone()[0]
                reasons = [r[0] for r in conn.execute("SELECT reason FROM rejected ORDER BY at")]
            assert stolen == 0  # the ACL refused hn-hang-bac's publish as hn-cua-nam
            assert any("unsupported protocol version 2" in r for r in reasons)
            assert any("not JSON" in r for r in reasons)
            assert any("payload says centre 'hn-cua-nam'" in r for r in reasons)
            assert any("unknown event kind" in r for r in reasons)
            assert "unsupported protocol version" in (tmp_path / "agg.log").read_text()

            # the dashboard agrees with the centre's own engine
            want = await log_ids(a)
            await until(lambda: want <= set(pg_ids(pg, "hn-cua-nam")), 20, "centre A complete")
            async with httpx.AsyncClient(base_url=agg.url, auth=agg.auth) as web:
                assert (await web.get("/api/overview", auth=("tinh", "wrong"))).status_code == 401
                overview = (await web.get("/api/overview")).json()
                rows = {r["centre"]: r for r in overview["centres"]}
                assert a.service is not None
                assert rows["hn-cua-nam"]["waiting"] == len(a.service.engine.waiting())
                assert rows["hn-cua-nam"]["served"] == 5
                if long_waits_of_today_exist(now):
                    # the rows say when the longest wait began; the page computes the minutes from "now"
                    waited = datetime.fromisoformat(overview["now"]) - datetime.fromisoformat(rows["hn-hang-bac"]["longest_since"])
                    assert rows["hn-hang-bac"]["waiting"] == 2 and waited.total_seconds() / 60 >= 49
                    texts = [w["vi"] for w in overview["warnings"] if w["centre"] == "hn-hang-bac"]
                    assert any("Hộ tịch" in t and "vượt ngưỡng 30 phút" in t for t in texts), texts
                else:  # run just after local midnight: the ticket of 50 minutes ago belongs to yesterday
                    assert rows["hn-hang-bac"]["waiting"] == 1
                assert rows["hn-hang-bac"]["devices_offline"] == 1
                detail = (await web.get("/api/centre/hn-cua-nam")).json()
                assert sum(g["served"] for g in detail["groups"]) == 5
                csv_text = (await web.get("/export.csv")).content.decode("utf-8-sig")
                assert csv_text.splitlines()[0].startswith("Mã trung tâm,Trung tâm") and "hn-hang-bac" in csv_text
                vi_csv = (await web.get("/export.csv?excel=vi")).content  # Excel under a Vietnamese region: ';'
                assert vi_csv.startswith(b"\xef\xbb\xbf") and vi_csv.decode("utf-8-sig").startswith("Mã trung tâm;Trung tâm;")
                from openpyxl import load_workbook
                sheet = load_workbook(io.BytesIO((await web.get("/export.xlsx")).content)).active
                assert sheet.max_row == 3 + 2

                # centre A's broker dies: its bridge's last will reaches the region
                await until(lambda: bridges_up(pg, "hn-cua-nam"), 30, "centre A's bridge")
                assert a.broker is not None
                a.broker.supervisor.stop_watching()  # the drill needs the broker to stay down
                a.broker.process.kill()
                async def bridge_down() -> bool:
                    data = (await web.get("/api/overview")).json()
                    return any(r["centre"] == "hn-cua-nam" and r["link"] == "bridge-down" for r in data["centres"])
                for _ in range(100):
                    if await bridge_down():
                        break
                    await asyncio.sleep(0.2)
                overview = (await web.get("/api/overview")).json()
                assert any(w["kind"] == "bridge-down" and "Mất đường truyền" in w["vi"] for w in overview["warnings"])
            group_shown = "Hộ tịch" if long_waits_of_today_exist(now) else "Chứng thực"
            await asyncio.to_thread(screenshot, agg, shot_dir(tmp_path) / "province-dashboard.png", group_shown)
        finally:
            client.loop_stop()
            client.disconnect()
            agg.stop()
            broker.stop()


def long_waits_of_today_exist(now: datetime) -> bool:
    """Whether the ticket issued 50 minutes before ``now`` belongs to the day the dashboard shows
    (today in Hanoi, asked now): not in the first 50 minutes after local midnight."""
    zone = ZoneInfo("Asia/Ho_Chi_Minh")
    return (now - timedelta(minutes=50)).astimezone(zone).date() == utc_now().astimezone(zone).date()


def screenshot(agg: Aggregator, out: Path, group_shown: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1360, "height": 900}, http_credentials={"username": agg.auth[0], "password": agg.auth[1]})
        page.goto(agg.url + "/")
        page.wait_for_selector("#centres tbody tr")
        page.wait_for_selector("#warnings li")
        assert page.locator("#centres tbody tr").count() == 2
        page.fill("#filter", "hang")
        assert page.locator("#centres tbody tr").count() == 1
        if group_shown == "Hộ tịch":  # the page computes the longest wait from the row's start and the snapshot's time
            longest = page.locator("#centres tbody tr td").nth(1).inner_text()
            assert int(longest) >= 49, longest
        page.fill("#filter", "")
        page.locator("#filter").blur()
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out), full_page=True)
        page.click("text=Phường Hàng Bạc")
        page.wait_for_selector("#groups tr")
        assert group_shown in page.inner_text("#groups")
        assert "Chờ TB: trực tiếp / trực tuyến / hẹn" in page.inner_text("#stats")  # each kind's wait (issue 15)
        page.screenshot(path=str(out.parent / "province-centre.png"), full_page=True)
        browser.close()
