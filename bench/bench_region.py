"""Region scale: 126 centres' working day into one regional box (Mosquitto + aggregator + PostgreSQL).

Not a test: prints figures. Steps, all against real parts on free ports and a scratch database:
1. a regional Mosquitto from the generated configuration with 126 centre users;
2. the aggregator's intake (region.ingest.Ingest, HTTP catch-up off) writing to PostgreSQL;
3. several publisher processes, each logged in as its share of the centres (their own MQTT users,
   so the ACL is exercised), publishing synthetic protocol events straight to the regional broker:
   a) paced: the morning peak at ``--speed`` times real time, to measure end-to-end lag (event
      time at the centre -> row in PostgreSQL, ``received_at - at``), p50/p99;
   b) burst: the rest of the day as fast as the publishers go, to measure events/s ingested;
4. a year of hourly rollups for 126 centres generated directly in SQL, then the dashboard's query
   (region.report.figures) timed.

    python bench/bench_region.py [--centres 126] [--tickets 300] [--speed 20] [--publishers 4]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt  # noqa: E402
import psycopg  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from luot.protocol import Topics, encode  # noqa: E402
from region.bridge import write_regional_broker  # noqa: E402
from region.ingest import Ingest  # noqa: E402
from region.settings import CentreAccess, Region, RegionInfo, RegionSettings, CentreEntry  # noqa: E402
from region.report import figures  # noqa: E402
from region.warnings import Thresholds  # noqa: E402
from tests.helpers.region import RegionalBroker, free_port, scratch_database, wait_until  # noqa: E402

GROUPS = ["ho-tich", "chung-thuc", "dat-dai", "xay-dung", "khac"]
PROFILE = {7: 0.9, 8: 1.8, 9: 1.7, 10: 1.3, 11: 0.9, 12: 0.1, 13: 0.9, 14: 1.2, 15: 1.0, 16: 0.6}


def ticket_story(centre: str, number: int, at: datetime, rng: random.Random) -> list[tuple[str, str, dict]]:
    """issued, called, serving, finished (or no-show): the events of one ticket, times in between."""
    tid = f"t{uuid.uuid4().hex[:15]}"
    group = rng.choice(GROUPS)
    wait = rng.expovariate(1 / 900)
    called_at = at + timedelta(seconds=wait)
    story = [("ticket.issued", at.isoformat(), {"ticket_id": tid, "number": number, "group": group, "priority": False, "offline": False, "issued_at": at.isoformat()}),
             ("ticket.called", called_at.isoformat(), {"ticket_id": tid, "number": number, "group": group, "counter": 1, "officer": "cb1", "call": 1, "wait_seconds": wait, "first_call": True, "priority": False})]
    if rng.random() < 0.05:
        story.append(("ticket.no_show", (called_at + timedelta(minutes=2)).isoformat(), {"ticket_id": tid, "number": number, "group": group, "counter": 1}))
    else:
        story.append(("ticket.serving", (called_at + timedelta(seconds=30)).isoformat(), {"ticket_id": tid, "number": number, "group": group, "counter": 1}))
        story.append(("ticket.finished", (called_at + timedelta(minutes=6)).isoformat(), {"ticket_id": tid, "number": number, "group": group, "counter": 1}))
    return story


def publisher(port: int, centres: list[tuple[str, str]], tickets: int, speed: float, paced_seconds: float, seed: int, out: "mp.Queue") -> None:
    """Publish each centre's day: first ``paced_seconds`` at ``speed`` x real time with event times
    = now (lag measurable), then the rest as fast as possible."""
    rng = random.Random(seed)
    clients = {}
    for centre, secret in centres:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=centre, protocol=mqtt.MQTTv311)
        c.username_pw_set(centre, secret)
        c.max_inflight_messages_set(200)
        c.max_queued_messages_set(0)
        c.connect("127.0.0.1", port)
        c.loop_start()
        clients[centre] = c
    per_hour = {h: tickets / sum(PROFILE.values()) * f for h, f in PROFILE.items()}
    peak = max(per_hour.values())
    # paced phase: the peak hour's arrivals, each published as it happens (event time = now)
    rate = peak / 3600 * speed * len(centres)  # tickets per second for this publisher
    sent = 0
    start = time.monotonic()
    number = 1000
    while time.monotonic() - start < paced_seconds:
        centre = rng.choice(centres)[0]
        number += 1
        now = datetime.now(timezone.utc)
        for kind, _, data in ticket_story(centre, number, now, rng)[:2]:  # issued and called, stamped now
            clients[centre].publish(Topics(centre).event_topics(kind)[0],
                                    encode(kind, data, id=uuid.uuid4().hex, at=now.isoformat(), centre=centre), qos=1)
            sent += 1
        time.sleep(max(0.0, start + sent / 2 / rate - time.monotonic()))
    paced = sent
    # burst phase: the rest of the day at full speed
    day = datetime.now(timezone.utc).replace(hour=0, minute=30, second=0, microsecond=0)
    infos = []
    for centre, _ in centres:
        for hour, count in per_hour.items():
            for i in range(int(count)):
                at = day + timedelta(hours=hour - 7, seconds=rng.uniform(0, 3600))
                number += 1
                for kind, stamp, data in ticket_story(centre, number, at, rng):
                    infos.append(clients[centre].publish(Topics(centre).event_topics(kind)[0],
                                                         encode(kind, data, id=uuid.uuid4().hex, at=stamp, centre=centre), qos=1))
                    sent += 1
    for info in infos:
        info.wait_for_publish(120)
    for c in clients.values():
        c.disconnect()
        c.loop_stop()
    out.put((paced, sent - paced))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--centres", type=int, default=126)
    parser.add_argument("--tickets", type=int, default=300, help="tickets per centre per day")
    parser.add_argument("--speed", type=float, default=20.0, help="paced phase: times real time")
    parser.add_argument("--paced-seconds", type=float, default=15.0)
    parser.add_argument("--publishers", type=int, default=4)
    parser.add_argument("--history-days", type=int, default=365)
    args = parser.parse_args()

    gen = scratch_database()
    dsn = next(gen)
    work = Path(tempfile.mkdtemp(prefix="luot-bench-region-"))
    ids = [f"c{i:03d}" for i in range(args.centres)]
    secrets = {c: uuid.uuid4().hex for c in ids}
    port = free_port()
    conf = write_regional_broker({c: c for c in ids}, secrets, "agg-secret", work / "broker", port, run_as_root=os.geteuid() == 0)
    broker = RegionalBroker.__new__(RegionalBroker)
    broker.conf, broker.port, broker.proc = conf, port, None
    broker.start()
    settings = RegionSettings(region=RegionInfo(id="bench", name="Bench"),
                              centres=[CentreEntry(id=c, name=c, api="http://127.0.0.1:9", credentials="-") for c in ids])
    region = Region(settings, work, {c: CentreAccess(c, c, "", "http://127.0.0.1:9", c, secrets[c], "region", "-") for c in ids},
                    {"aggregator": "agg-secret", "tinh": "x"})
    ingest = Ingest(region, dsn, "127.0.0.1", port, catch_up_seconds=0)
    ingest.start()
    wait_until(ingest.connected.is_set, 10, "aggregator connected")
    time.sleep(0.5)

    out: mp.Queue = mp.Queue()
    shares = [[(c, secrets[c]) for c in ids[i::args.publishers]] for i in range(args.publishers)]
    t0 = time.monotonic()
    procs = [mp.Process(target=publisher, args=(port, share, args.tickets, args.speed, args.paced_seconds, i, out)) for i, share in enumerate(shares)]
    for p in procs:
        p.start()
    results = [out.get(timeout=900) for _ in procs]
    for p in procs:
        p.join()
    paced, burst = sum(r[0] for r in results), sum(r[1] for r in results)
    total = paced + burst
    burst_started = t0 + args.paced_seconds
    with psycopg.connect(dsn) as conn:
        def stored() -> int:
            return conn.execute("SELECT count(*) FROM event_ids").fetchone()[0]
        wait_until(lambda: stored() >= total, 900, "every event stored", every=0.5)
        done = time.monotonic()
        lags = [float(r[0]) for r in conn.execute(
            "SELECT extract(epoch FROM received_at - at) * 1000 FROM events WHERE kind = 'ticket.issued' "
            "AND at > now() - interval '1 hour' AND at >= received_at - interval '1 minute'")]
    ingest.stop()
    lags.sort()
    q = lambda p: lags[min(len(lags) - 1, int(p * len(lags)))] if lags else float("nan")  # noqa: E731
    # from the end of the paced phase until the last event is in PostgreSQL: includes the publishers'
    # own work, so a lower bound on what the intake sustains
    burst_rate = burst / max(1e-9, done - burst_started)
    print(json.dumps({"centres": args.centres, "tickets_per_centre_day": args.tickets, "events": total,
                      "paced_events": paced, "paced_rate_events_per_s": round(paced / args.paced_seconds, 1),
                      "lag_ms_p50": round(q(0.5), 1), "lag_ms_p99": round(q(0.99), 1),
                      "burst_events": burst, "ingested_events_per_s": round(burst_rate, 0),
                      "wall_seconds": round(done - t0, 1)}, indent=2))

    # a year of history: hourly rollups for every centre, group and opening hour, generated in SQL
    with psycopg.connect(dsn, autocommit=True) as conn:
        t = time.perf_counter()
        conn.execute("""
            INSERT INTO hourly (centre, grp, hour, issued, called, wait_sum, wait_max, served, no_show, cancelled, ratings, rating_sum)
            SELECT c.centre, g.grp, d + make_interval(hours => h), 8, 8, 8 * 600, 1800, 7, 1, 0, 4, 13
            FROM centres c, unnest(%s::text[]) AS g(grp),
                 generate_series(date_trunc('day', now()) - make_interval(days => %s), date_trunc('day', now()) - interval '1 day', interval '1 day') AS d,
                 generate_series(0, 9) AS h
            ON CONFLICT DO NOTHING""", (GROUPS, args.history_days))
        rows = conn.execute("SELECT count(*) FROM hourly").fetchone()[0]
        conn.execute("ANALYZE")
        generated = time.perf_counter() - t
        thresholds = Thresholds(region.zone)
        timings = []
        for _ in range(5):
            t = time.perf_counter()
            result = figures(conn, datetime.now(timezone.utc), region.zone, thresholds)
            timings.append((time.perf_counter() - t) * 1000)
        size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]
    print(json.dumps({"history_days": args.history_days, "hourly_rows": rows, "generate_seconds": round(generated, 1),
                      "dashboard_query_ms_median": round(statistics.median(timings), 1), "dashboard_query_ms_max": round(max(timings), 1),
                      "centres_in_result": len(result["centres"]), "database_size": size}, indent=2))
    broker.stop()
    try:
        next(gen)
    except StopIteration:
        pass


if __name__ == "__main__":
    main()
