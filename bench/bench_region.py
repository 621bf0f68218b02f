"""Region scale: many centres' working day into one regional box (Mosquitto + aggregator + PostgreSQL).

Not a test: prints figures (JSON lines), never asserts. Everything runs against real parts on free
ports and scratch databases. Five parts:

A. **Intake** (``--live-centres``, default 126): a regional Mosquitto from the generated
   configuration (with the open-file limit of its generated unit), the aggregator's intake
   (region.ingest.Ingest, HTTP catch-up off) and the dashboard (region.dashboard, in the same
   process, as ``luot region`` runs them), fed by publisher processes each logged in as its share of
   the centres (their own MQTT users, so the ACL is exercised):

   1. paced: the morning peak at ``--speed`` times real time, every event stamped with its real send
      time, so the lag (send -> row in PostgreSQL, ``received_at - at``) is measured per event id;
   2. burst: a whole working day per centre as fast as the publishers go, every event dated in the
      centre's own working day (07:30-17:00 in the region's time zone, on today's local date,
      whatever the hour the benchmark runs);
   3. the same again (another day's worth of tickets, new ids) with ``--viewers`` dashboards open:
      each holds the live stream and reloads the overview on every "changed" line, like the page.

   Each pass counts what was sent against what was stored: lost (sent, never stored) and doubled
   (an id stored twice, or a rollup that counts more than its events).

B. **Dashboard query** at each of ``--sizes`` (default 126, 1000, 3321 centres): a scratch database
   filled in SQL with a full working day of events per centre (``--tickets`` tickets, dated on the
   local working day up to 16:45), ``--hourly-days`` of hourly rollups and ``--history-days`` of
   daily rollups (per group and per centre; generated inside PostgreSQL a local day at a time, oldest
   first, with the tables' indexes dropped during the load and built again from their catalogue
   definitions: a year of both at 3,321 centres, 60.6 M hourly rows, loads in minutes; the figures
   vary per centre, group and day, and the slow part's 30 days are checked against sums read
   directly from the hourly rows), the maintained tables rebuilt from them
   (region.store.Store.rebuild_maintained, the code the schema migration uses); then timed at 16:45
   local: the dashboard's refresh (region.report.figures with the recent and slow parts cached, as
   the shared snapshot does), its recent part (every 30 s), its slow part (every 5 minutes), the
   snapshot's JSON and gzip, the previous region/report.py's refresh on the same data
   (``--previous-rev``, loaded from git) and the five SQL statements of the first region/report.py
   that read the day's events (BEFORE_SQL); then 1 and ``--viewers`` open pages on the real
   dashboard app over that database (``--viewer-seconds``), a commit signalled every 0.5 s.

C. **Write path** (``--write-events``): the writer thread's work alone, Store.store_batch on a
   day of ``--write-centres`` centres' events in time order, for the store versions of
   ``--write-revs`` (``HEAD+`` = the working tree, or git revisions), with lost/doubled counted and,
   for the working tree, the maintained tables checked against the events.

D. **Real bridges** (``--bridged-centres``): real centres from generated configurations, each with
   its Mosquitto and the generated bridge, the regional Mosquitto, ``luot region`` as a child
   process; lag through the bridges, a cut link (a small bridge queue on every fourth centre), the
   HTTP catch-up, lost and doubled.

E. **What open dashboards cost the intake** (``--cost-sizes``, e.g. 126,1000,3321): the writer's work
   at its full rate (Store.store_batch on a pre-generated day of the centres' events, as part C;
   no MQTT publishers, which at 3,321 centres saturate a 2-core box by themselves) while ``luot
   region``'s dashboard runs in its own process (region.dashboard_process) with 0 and
   ``--cost-viewers`` open pages (part A's viewers), alternating ``--cost-rounds`` times on the same
   database, ``--cost-events`` events per run: events/s per condition and the change, the CPU of the
   writer, of the dashboard process, of the dashboard's PostgreSQL backends and of the pages, the
   load; lost and doubled.

    python bench/bench_region.py [--live-centres 126] [--tickets 300] [--viewers 50] [--sizes 126,1000,3321]
        [--previous-rev main] [--write-events 20000 --write-revs HEAD+,main] [--bridged-centres 24]
        [--cost-sizes 126,1000,3321 --cost-viewers 0,50 --cost-rounds 3 --cost-events 40000]

Issue 19's two figures at 3,321 centres in one command (docs/scaling.md, fifth round):

    python bench/bench_region.py --live-centres 0 --viewer-seconds 0 \
        --cost-sizes 3321,1000,126 --cost-events 100000 --cost-rounds 4 \
        --sizes 3321 --hourly-days 365 --history-days 365 --only-after
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt  # noqa: E402
import psycopg  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from luot.protocol import Topics, encode  # noqa: E402
from region.bridge import write_regional_broker  # noqa: E402
from region.ingest import Ingest  # noqa: E402
from region.report import figures, recent_figures, slow_figures  # noqa: E402
from region.settings import CentreAccess, CentreEntry, Region, RegionInfo, RegionSettings  # noqa: E402
from region.store import Store  # noqa: E402
from region.warnings import Thresholds  # noqa: E402
from tests.helpers.region import RegionalBroker, free_port, scratch_database, wait_until  # noqa: E402

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
GROUPS = ["ho-tich", "chung-thuc", "dat-dai", "xay-dung", "khac"]
PROFILE = {7: 0.45, 8: 1.8, 9: 1.7, 10: 1.3, 11: 0.9, 12: 0.1, 13: 0.9, 14: 1.2, 15: 1.0, 16: 0.6}
"""Share of the day's tickets by local hour (07 starts at 07:30)."""


def emit(what: str, **figures_: Any) -> None:
    print(json.dumps({"what": what, **figures_}, ensure_ascii=False), flush=True)


def machine_state() -> dict[str, Any]:
    """What the figures were measured on: they mean little without it."""
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines() if ":" in line)

    def version(cmd: list[str]) -> str:
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return (done.stdout or done.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"

    return {"utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "local": datetime.now(ZONE).isoformat(timespec="seconds"), "cpus": os.cpu_count(),
            "loadavg": [round(x, 2) for x in os.getloadavg()], "mem_total": meminfo.get("MemTotal", "").strip(),
            "mem_available": meminfo.get("MemAvailable", "").strip(), "python": platform.python_version(),
            "postgresql": version(["psql", "--version"]), "mosquitto": version(["mosquitto", "-h"])}


def working_day(zone: ZoneInfo) -> tuple[date, datetime, datetime]:
    """Today's local date, its opening (07:30) and the moment the dashboard is read (16:45)."""
    today = datetime.now(zone).date()
    return (today, datetime.combine(today, datetime.min.time(), zone) + timedelta(hours=7, minutes=30),
            datetime.combine(today, datetime.min.time(), zone) + timedelta(hours=16, minutes=45))


def ticket_story(number: int, at: datetime, rng: random.Random) -> list[tuple[str, datetime, dict]]:
    """issued, called, serving, finished (or no-show): the events of one ticket, times in between."""
    tid = f"t{uuid.uuid4().hex[:15]}"
    group = rng.choice(GROUPS)
    wait = rng.expovariate(1 / 900)
    called_at = at + timedelta(seconds=wait)
    base = {"ticket_id": tid, "number": number, "group": group}
    story = [("ticket.issued", at, {**base, "priority": False, "offline": False, "issued_at": at.isoformat()}),
             ("ticket.called", called_at, {**base, "counter": 1, "officer": "cb1", "call": 1, "wait_seconds": wait,
                                           "first_call": True, "priority": False})]
    if rng.random() < 0.05:
        story.append(("ticket.no_show", called_at + timedelta(minutes=2), {**base, "counter": 1}))
    else:
        story.append(("ticket.serving", called_at + timedelta(seconds=30), {**base, "counter": 1}))
        story.append(("ticket.finished", called_at + timedelta(minutes=6), {**base, "counter": 1}))
    return story


def day_arrivals(tickets: int, opening: datetime, rng: random.Random) -> list[datetime]:
    """A centre's tickets of one working day, by the hourly profile, in the local working day."""
    total = sum(PROFILE.values())
    out = []
    for hour, share in PROFILE.items():
        start = opening if hour == 7 else opening.replace(hour=hour, minute=0)
        span = (opening.replace(hour=8, minute=0) - opening) if hour == 7 else timedelta(hours=1)
        out += [start + rng.random() * span for _ in range(round(tickets * share / total))]
    return out


def publisher(port: int, centres: list[tuple[str, str]], tickets: int, speed: float, paced_seconds: float,
              seed: int, opening: datetime, tag: str, out: "mp.Queue[Any]") -> None:
    """Publish: the paced phase (events stamped at their send time; their ids returned, so their lag
    is measured), then each centre's working day as fast as possible. Returns (paced ids, burst sent)."""
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
    serial = 0

    def send(centre: str, kind: str, at: datetime, data: dict) -> Any:
        nonlocal serial
        serial += 1
        event_id = f"{tag}-{seed}-{serial}"
        info = clients[centre].publish(Topics(centre).event_topics(kind)[0],
                                       encode(kind, data, id=event_id, at=at.isoformat(), centre=centre), qos=1)
        return event_id, info

    peak = tickets * max(PROFILE.values()) / sum(PROFILE.values())  # tickets in the peak hour, per centre
    rate = peak / 3600 * speed * len(centres)  # tickets per second for this publisher
    paced: list[str] = []
    start = time.monotonic()
    number = 1000
    while paced_seconds and time.monotonic() - start < paced_seconds:
        centre = rng.choice(centres)[0]
        number += 1
        for kind, _, data in ticket_story(number, datetime.now(timezone.utc), rng)[:2]:
            event_id, _ = send(centre, kind, datetime.now(timezone.utc), data)  # stamped as it leaves
            paced.append(event_id)
        time.sleep(max(0.0, start + len(paced) / 2 / rate - time.monotonic()))
    infos = []
    burst_started = time.monotonic()  # CLOCK_MONOTONIC: the same clock in every process of the machine
    for centre, _ in centres:
        for at in day_arrivals(tickets, opening, rng):
            number += 1
            for kind, when, data in ticket_story(number, at, rng):
                infos.append(send(centre, kind, when, data)[1])
    for info in infos:
        info.wait_for_publish(300)
    for c in clients.values():
        c.disconnect()
        c.loop_stop()
    out.put((paced, len(infos), burst_started))


def viewers_process(url: str, auth: tuple[str, str], count: int, stop: Any, out: "mp.Queue[Any]") -> None:
    """``count`` open dashboards: each holds the live stream and reloads the overview when told."""
    import httpx

    reloads = [0] * count
    query_ms: list[float] = []

    def one(index: int) -> None:
        with httpx.Client(base_url=url, auth=auth, timeout=60) as web:
            web.get("/api/overview", headers={"Accept-Encoding": "gzip"})
            with web.stream("GET", "/api/stream") as lines:
                for line in lines.iter_lines():
                    if stop.is_set():
                        return
                    if '"changed": true' in line:
                        # the gzipped bytes as a browser gets them, not decoded: the pages of a real
                        # province run on other machines, so their own CPU is not the server's cost
                        started = time.perf_counter()
                        with web.stream("GET", "/api/overview", headers={"Accept-Encoding": "gzip"}) as answer:
                            for _ in answer.iter_raw():
                                pass
                        answer_ms.append((time.perf_counter() - started) * 1000)
                        reloads[index] += 1
                        if answer.headers.get("X-Query-Ms"):
                            query_ms.append(float(answer.headers["X-Query-Ms"]))

    answer_ms: list[float] = []
    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    stop.wait()
    out.put((sum(reloads), min(reloads) if reloads else 0, query_ms, answer_ms))


def stored_count(dsn: str, tag: str) -> int:
    with psycopg.connect(dsn) as conn:
        return int(conn.execute("SELECT count(*) FROM event_ids WHERE id LIKE %s", (tag + "-%",)).fetchone()[0])


def settle(dsn: str, tag: str, sent: int, timeout: float) -> tuple[int, float]:
    """Wait until everything sent is stored, or nothing more arrives for 20 s; (stored, when)."""
    last, last_change, deadline = -1, time.monotonic(), time.monotonic() + timeout
    while True:
        count = stored_count(dsn, tag)
        now = time.monotonic()
        if count != last:
            last, last_change = count, now
        if count >= sent or now - last_change > 20 or now > deadline:
            return count, last_change
        time.sleep(0.25)


def live_pass(args: argparse.Namespace, port: int, dsn: str, secrets: dict[str, str], opening: datetime, tag: str,
              paced_seconds: float, viewers: int, dashboard: tuple[str, tuple[str, str]] | None) -> dict[str, Any]:
    ids = list(secrets)
    out: mp.Queue[Any] = mp.Queue()
    stop = mp.Event()
    watch = None
    if viewers and dashboard:
        watch_out: mp.Queue[Any] = mp.Queue()
        watch = mp.Process(target=viewers_process, args=(dashboard[0], dashboard[1], viewers, stop, watch_out))
        watch.start()
        time.sleep(3)  # the pages open
    shares = [[(c, secrets[c]) for c in ids[i::args.publishers]] for i in range(args.publishers)]
    t0 = time.monotonic()
    procs = [mp.Process(target=publisher, args=(port, share, args.tickets, args.speed, paced_seconds, i, opening, tag, out))
             for i, share in enumerate(shares)]
    for p in procs:
        p.start()
    results = [out.get(timeout=3600) for _ in procs]
    for p in procs:
        p.join()
    paced_ids = [i for r in results for i in r[0]]
    sent = len(paced_ids) + sum(r[1] for r in results)
    stored, done = settle(dsn, tag, sent, 1800)
    burst_started = min(r[2] for r in results)
    with psycopg.connect(dsn) as conn:
        lags = sorted(float(r[0]) for r in conn.execute(
            "SELECT extract(epoch FROM received_at - at) * 1000 FROM events WHERE id = ANY(%s)", (paced_ids,)))
        doubled_ids = conn.execute("SELECT count(*) - count(DISTINCT id) FROM events WHERE id LIKE %s", (tag + "-%",)).fetchone()[0]
        rolled = conn.execute("SELECT coalesce(sum(issued), 0) FROM daily").fetchone()[0]
        issued = conn.execute("SELECT count(*) FROM events WHERE kind = 'ticket.issued'").fetchone()[0]
    figures_ = {}
    if watch is not None:
        stop.set()
        reloads, fewest, query_ms, _ = watch_out.get(timeout=120)
        watch.join(30)
        figures_ = {"viewer_reloads": reloads, "fewest_reloads_of_a_viewer": fewest,
                    "snapshot_query_ms_median": round(statistics.median(query_ms), 1) if query_ms else None}
    q = lambda p: round(lags[min(len(lags) - 1, int(p * len(lags)))], 1) if lags else None  # noqa: E731
    return {"viewers": viewers, "sent": sent, "stored": stored, "lost": sent - stored, "doubled_ids": int(doubled_ids),
            "rollup_issued_minus_events": int(rolled) - int(issued),
            "paced_events": len(paced_ids), "lag_ms_p50": q(0.5), "lag_ms_p99": q(0.99), "lag_ms_min": q(0.0),
            # from the first burst publish until the last event is stored: includes the publishers'
            # own work on the same cores, so a lower bound on what the intake sustains
            "ingested_events_per_s": round((sent - len(paced_ids)) / max(1e-9, done - burst_started)),
            "wall_seconds": round(done - t0, 1), **figures_}


def bench_region(ids: list[str], secrets: dict[str, str], work: Path) -> Region:
    """A region of these centres (no centre servers behind them: the HTTP catch-up stays off)."""
    settings = RegionSettings(region=RegionInfo(id="bench", name="Bench"),
                              centres=[CentreEntry(id=c, name=c, api="http://127.0.0.1:9", credentials="-") for c in ids])
    return Region(settings, work, {c: CentreAccess(c, c, "", "http://127.0.0.1:9", c, secrets[c], "region", "-") for c in ids},
                  {"aggregator": "agg-secret", "tinh": "bench-dashboard"})


def serve_dashboard(region: Region, dsn: str, changed: Any, clock: Any = None) -> tuple[Any, int]:
    """The province dashboard on a free port, as ``luot region`` serves it; (server, port)."""
    import uvicorn

    from region.dashboard import create_app

    app = create_app(region, dsn, changed, **({"clock": clock} if clock else {}))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    threading.Thread(target=server.run, daemon=True).start()
    wait_until(lambda: server.started, 20, "the dashboard")
    server.app_state = app.state
    return server, port


def _answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def dashboard_apart(region: Region, dsn: str) -> tuple[Any, int]:
    """The province dashboard in its own process, as ``luot region`` runs it (region.dashboard_process:
    niceness +5, woken by ``centres.changed_xid``); (process, port) once it answers."""
    from region import dashboard_process

    http_port = free_port()
    child = dashboard_process.start(region, dsn, "127.0.0.1", http_port, "WARNING")
    wait_until(lambda: _answers(f"http://127.0.0.1:{http_port}/health"), 60, "the dashboard process")
    return child, http_port


def live(args: argparse.Namespace) -> None:
    gen = scratch_database()
    dsn = next(gen)
    work = Path(tempfile.mkdtemp(prefix="luot-bench-region-"))
    ids = [f"c{i:04d}" for i in range(args.live_centres)]
    secrets = {c: uuid.uuid4().hex for c in ids}
    port = free_port()
    conf = write_regional_broker({c: c for c in ids}, secrets, "agg-secret", work / "broker", port,
                                 run_as_root=os.geteuid() == 0)
    broker = RegionalBroker.__new__(RegionalBroker)
    broker.conf, broker.port, broker.proc = conf, port, None
    broker.start()
    region = bench_region(ids, secrets, work)
    ingest = Ingest(region, dsn, "127.0.0.1", port, catch_up_seconds=0)
    ingest.start()
    wait_until(ingest.connected.is_set, 10, "aggregator connected")
    if args.dashboard_in_process:
        server, http_port = serve_dashboard(region, dsn, ingest.changed)
    else:  # as ``luot region`` runs it: its own process (region.dashboard_process)
        child, http_port = dashboard_apart(region, dsn)
    _, opening, _ = working_day(ZONE)
    try:
        emit("intake", centres=args.live_centres, tickets_per_centre_day=args.tickets,
             **live_pass(args, port, dsn, secrets, opening, "a", args.paced_seconds, 0, None))
        if args.viewers:
            emit("intake", centres=args.live_centres, tickets_per_centre_day=args.tickets,
                 **live_pass(args, port, dsn, secrets, opening, "b", args.paced_seconds, args.viewers,
                             (f"http://127.0.0.1:{http_port}", ("tinh", "bench-dashboard"))))
    finally:
        if args.dashboard_in_process:
            server.should_exit = True
        else:
            from region import dashboard_process

            dashboard_process.stop(child)
        ingest.stop()
        broker.stop()
        next(gen, None)


# ----------------------------------------------------------------------------- B: the query at size
GENERATE_DAY = """
WITH t AS (
    SELECT c.centre, n, (%(groups)s::text[])[1 + floor(random() * 5)::int] AS grp,
           %(opening)s::timestamptz + random() * interval '9 hours 30 minutes' AS issued_at,
           -ln(1 - random()) * 900 AS wait, random() AS fate, random() AS fb
    FROM centres c, generate_series(1, %(tickets)s) AS n
), ev AS (
    SELECT centre, grp, n, 'ticket.issued' AS kind, issued_at AS at, '{}'::jsonb AS extra FROM t
    UNION ALL
    SELECT centre, grp, n, 'ticket.called', issued_at + wait * interval '1 second',
           jsonb_build_object('first_call', true, 'call', 1, 'wait_seconds', wait) FROM t
    UNION ALL
    SELECT centre, grp, n, CASE WHEN fate < 0.05 THEN 'ticket.no_show' ELSE 'ticket.serving' END,
           issued_at + wait * interval '1 second' + interval '30 seconds', '{}'::jsonb FROM t
    UNION ALL
    SELECT centre, grp, n, 'ticket.finished', issued_at + wait * interval '1 second' + interval '6 minutes', '{}'::jsonb
    FROM t WHERE fate >= 0.05
    UNION ALL
    SELECT centre, grp, n, 'feedback.recorded', issued_at + wait * interval '1 second' + interval '7 minutes',
           jsonb_build_object('rating', 1 + floor(random() * 4)::int) FROM t WHERE fate >= 0.05 AND fb < 0.3
)
INSERT INTO events (id, centre, kind, at, grp, ticket_id, seq, via, data)
SELECT md5(centre || '-' || n || '-' || kind), centre, kind, at, grp, centre || '-' || n, NULL, 'mqtt',
       jsonb_build_object('ticket_id', centre || '-' || n, 'group', grp, 'number', n) || extra
FROM ev WHERE at <= %(now)s
"""

TODAY_HOURLY = """
INSERT INTO hourly (centre, grp, hour, issued, called, wait_sum, wait_max, served, no_show, cancelled, ratings, rating_sum)
SELECT centre, grp, date_trunc('hour', at), count(*) FILTER (WHERE kind = 'ticket.issued'),
       count(*) FILTER (WHERE kind = 'ticket.called'),
       coalesce(sum((data->>'wait_seconds')::float) FILTER (WHERE kind = 'ticket.called'), 0),
       coalesce(max((data->>'wait_seconds')::float) FILTER (WHERE kind = 'ticket.called'), 0),
       count(*) FILTER (WHERE kind = 'ticket.finished'), count(*) FILTER (WHERE kind = 'ticket.no_show'), 0,
       count(*) FILTER (WHERE kind = 'feedback.recorded'),
       coalesce(sum((data->>'rating')::int) FILTER (WHERE kind = 'feedback.recorded'), 0)
FROM events WHERE kind <> 'ticket.serving' GROUP BY 1, 2, 3
"""

HISTORY_FACTOR = "1 + abs(hashtext(c.centre || '/' || g.grp || '/' || %(day)s::text)) %% 4"
"""k in 1..4 per centre, group and day (deterministic): the history is not the same number everywhere,
so reading the wrong rows or days shows in :func:`check_history`."""

HISTORY_HOURLY = f"""
INSERT INTO hourly (centre, grp, hour, issued, called, wait_sum, wait_max, served, no_show, cancelled, ratings, rating_sum)
SELECT c.centre, g.grp, %(day_start)s::timestamptz + make_interval(hours => 7 + h), 2 * k, 2 * k, 2 * k * 600, 1140,
       2 * k - 1, 1, 0, k, 3 * k
FROM centres c, unnest(%(groups)s::text[]) AS g(grp), LATERAL (SELECT {HISTORY_FACTOR} AS k) f, generate_series(0, 9) AS h
"""
"""One past local day's hourly rollups, 07:00-17:00 local, each hour 2k tickets called (a no-show)."""

HISTORY_DAILY = f"""
INSERT INTO daily (centre, grp, day, issued, called, wait_sum, wait_max, served, no_show, cancelled, ratings, rating_sum,
                   wait_hist, wait_p90)
SELECT c.centre, g.grp, %(day)s::date, 20 * k, 20 * k, 20 * k * 600, 1140, 20 * k - 10, 10, 0, 10 * k, 30 * k,
       array_fill(k, ARRAY[20]), luot_hist_quantile(array_fill(k, ARRAY[20]), 0.9)
FROM centres c, unnest(%(groups)s::text[]) AS g(grp), LATERAL (SELECT {HISTORY_FACTOR} AS k) f
"""
"""The same day summed as the write path keeps it: the ten hours, and the waits' histogram (20k first
calls, k a minute from 0 to 19 minutes: mean 10 minutes = wait_sum / called) with its 90th percentile."""

HISTORY_DAILY_CENTRE = """
INSERT INTO daily_centre (centre, day, issued, called, wait_sum, wait_max, served, no_show, cancelled, ratings, rating_sum,
                          wait_hist, wait_p90)
SELECT centre, day, sum(issued), sum(called), sum(wait_sum), max(wait_max), sum(served), sum(no_show), sum(cancelled),
       sum(ratings), sum(rating_sum), array_fill((sum(called) / 20)::int, ARRAY[20]),
       luot_hist_quantile(array_fill((sum(called) / 20)::int, ARRAY[20]), 0.9)
FROM daily WHERE day = %(day)s GROUP BY centre, day
"""
"""The centre's day from its groups' (the groups' histograms are flat over 20 minutes, so is their sum)."""


@contextmanager
def indexes_after(conn: psycopg.Connection[Any], tables: list[str]) -> Iterator[None]:
    """Drop the tables' indexes (and the keys they back), run the bulk load, then build them again as
    they were (their definitions read from the catalogue, so the schema stays region/store.py's):
    one sorted build per index instead of tens of millions of random insertions."""
    found = conn.execute(
        "SELECT i.tablename, i.indexname, i.indexdef, con.conname, pg_get_constraintdef(con.oid) FROM pg_indexes i "
        "LEFT JOIN pg_constraint con ON con.conindid = (quote_ident(i.schemaname) || '.' || quote_ident(i.indexname))::regclass "
        "WHERE i.schemaname = current_schema() AND i.tablename = ANY(%s)", (tables,)).fetchall()
    for table, index, _, constraint, _ in found:
        conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT {constraint}" if constraint else f"DROP INDEX {index}")
    try:
        yield
    finally:
        conn.execute("SET maintenance_work_mem = '1GB'")  # this session's index builds only
        for table, _, definition, constraint, constraint_def in found:
            conn.execute(f"ALTER TABLE {table} ADD CONSTRAINT {constraint} {constraint_def}" if constraint else definition)
        conn.execute("RESET maintenance_work_mem")


def load_history(conn: psycopg.Connection[Any], today: date, hourly_days: int, daily_days: int) -> None:
    """``hourly_days`` of hourly and ``daily_days`` of daily rollups (per group and per centre)
    before ``today``, generated inside PostgreSQL one local day at a time, oldest first (the order the
    write path appends them in), without the indexes (built after)."""
    conn.execute("SET synchronous_commit = off")  # this session only, for the load (reset below)
    for back in range(max(hourly_days, daily_days), 0, -1):
        day = today - timedelta(days=back)
        params = {"groups": GROUPS, "day": day, "day_start": datetime.combine(day, datetime.min.time(), ZONE)}
        with conn.transaction():
            if back <= hourly_days:
                conn.execute(HISTORY_HOURLY, params)
            if back <= daily_days:
                conn.execute(HISTORY_DAILY, params)
                conn.execute(HISTORY_DAILY_CENTRE, params)
    conn.execute("RESET synchronous_commit")


def check_history(read: psycopg.Connection[Any], reading: datetime, slow: Any, size: int) -> dict[str, Any]:
    """The slow part's 30 days for a few centres (what the dashboard read from ``daily_centre``)
    against the same sums computed directly from the hourly rollups of those local days (equal
    only when ``--hourly-days`` covers the 30 days: with fewer, the check shows the difference)."""
    from region.report import Window

    win = Window.at(reading, ZONE)
    out = {}
    for centre in sorted({"c0000", f"c{size // 2:04d}", f"c{size - 1:04d}"}):
        direct = read.execute("SELECT sum(served), sum(called), sum(wait_sum), sum(ratings), sum(rating_sum) FROM hourly "
                              "WHERE centre = %s AND hour >= %s AND hour < %s", (centre, win.month, win.day)).fetchone()
        row = slow.month.get(centre, {})
        dashboard = [row.get(k) for k in ("served", "called", "wait_sum", "ratings", "rating_sum")]
        out[centre] = {"slow_part": [float(x) if x is not None else None for x in dashboard],
                       "direct_from_hourly": [float(x) if x is not None else None for x in direct],
                       "equal": [float(x or 0) for x in dashboard] == [float(x or 0) for x in direct]}
    return out


# The previous region/report.py's statements (reading the day's events and 30 days of hourly rows),
# kept here only to time "before" on the same database as "after".
BEFORE_SQL = {
    "waiting": """
WITH last AS (
    SELECT DISTINCT ON (centre, ticket_id) centre, ticket_id, kind, grp FROM events
    WHERE at >= %(day)s AND ticket_id IS NOT NULL AND kind LIKE 'ticket.%%'
    ORDER BY centre, ticket_id, at DESC, (kind = 'ticket.issued')
), issued AS (
    SELECT centre, ticket_id, min(at) AS issued_at FROM events WHERE at >= %(day)s AND kind = 'ticket.issued' GROUP BY centre, ticket_id
)
SELECT last.centre, last.grp, count(*), min(issued.issued_at) FROM last JOIN issued USING (centre, ticket_id)
WHERE last.kind IN ('ticket.issued', 'ticket.transferred') GROUP BY last.centre, last.grp""",
    "today": """SELECT centre, grp, sum(issued), sum(called), sum(wait_sum), max(wait_max), sum(served), sum(no_show),
       sum(ratings), sum(rating_sum) FROM hourly WHERE hour >= %(day)s GROUP BY centre, grp""",
    "month": """SELECT centre, sum(served), sum(called), sum(wait_sum), sum(ratings), sum(rating_sum)
FROM hourly WHERE hour >= %(month)s AND hour < %(day)s GROUP BY centre""",
    "p90": """SELECT centre, grp, percentile_cont(0.9) WITHIN GROUP (ORDER BY (data->>'wait_seconds')::float) FROM events
WHERE at >= %(day)s AND kind = 'ticket.called' AND data->>'first_call' = 'true' GROUP BY GROUPING SETS ((centre), (centre, grp))""",
    "recent": """SELECT centre,
       count(*) FILTER (WHERE kind = 'ticket.issued' AND at >= %(window)s),
       count(*) FILTER (WHERE kind = 'ticket.called' AND data->>'first_call' = 'true' AND at >= %(window)s),
       avg((data->>'rating')::float) FILTER (WHERE kind = 'feedback.recorded' AND at >= %(hour)s),
       count(*) FILTER (WHERE kind = 'feedback.recorded' AND at >= %(hour)s),
       avg((data->>'rating')::float) FILTER (WHERE kind = 'feedback.recorded' AND at < %(hour)s),
       count(*) FILTER (WHERE kind = 'feedback.recorded' AND at < %(hour)s)
FROM events WHERE at >= %(day)s GROUP BY centre""",
}


def timed(fn: Any, runs: int, cpu: list[float] | None = None) -> tuple[float, float]:
    """Median and max wall milliseconds; ``cpu``: gets this process's CPU milliseconds per run
    (the Python side, which a loaded machine stretches in wall time but not in CPU time)."""
    times = []
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        fn()
        times.append((time.perf_counter() - t) * 1000)
        if cpu is not None:
            cpu.append((time.process_time() - c) * 1000)
    return round(statistics.median(times), 1), round(max(times), 1)


def encode_snapshot(result: dict[str, Any]) -> tuple[bytes, bytes]:
    """What the dashboard does with each snapshot: JSON once, gzip once (region.dashboard)."""
    import gzip

    from region.dashboard import GZIP_LEVEL, json_default

    body = json.dumps(result, ensure_ascii=False, default=json_default).encode("utf-8")
    return body, gzip.compress(body, GZIP_LEVEL)


def viewers_at(dsn: str, size: int, reading: datetime, count: int, seconds: float) -> dict[str, Any]:
    """``count`` open pages on the real dashboard over this database for ``seconds``, a commit
    every 0.5 s (a quarter of 2 s of a real day's events, through Store.store_batch, signalled as
    the intake does): each page reloads on every "changed" line, as the page does. The server's CPU (this process: uvicorn, the snapshot) is what the viewers take from a
    box that also ingests."""
    from region.live import ChangeSignal

    ids = [f"c{i:04d}" for i in range(size)]
    region = bench_region(ids, {c: c for c in ids}, Path(tempfile.mkdtemp(prefix="luot-bench-view-")))
    changed = ChangeSignal()
    server, port = serve_dashboard(region, dsn, changed, clock=lambda: reading)
    out: mp.Queue[Any] = mp.Queue()
    stop = mp.Event()
    watch = mp.Process(target=viewers_process, args=(f"http://127.0.0.1:{port}", ("tinh", "bench-dashboard"), count, stop, out))
    watch.start()
    time.sleep(2)  # the pages open
    snapshot = server.app_state.snapshot
    from region.validate import RegionEvent

    writer = Store.connect(dsn, ZONE)
    rng = random.Random(count)
    per_half = max(1, round(size * 300 * EVENTS_PER_TICKET / (9.5 * 3600) / 2))
    before, cpu, started = snapshot.computations, time.process_time(), time.monotonic()
    run = 0
    while time.monotonic() - started < seconds:
        run += 1
        writer.store_batch([RegionEvent(c, f"view-{count}-{run}-{i}", "ticket.issued", reading - timedelta(seconds=1),
                                        {"ticket_id": f"view-{count}-{run}-{i}", "group": GROUPS[i % len(GROUPS)]}, None, "mqtt")
                            for i, c in enumerate(rng.choices(ids, k=per_half))], [], [])
        changed.set()
        time.sleep(0.5)
    writer.close()
    stop.set()
    cpu, elapsed = time.process_time() - cpu, time.monotonic() - started
    computations = snapshot.computations - before
    reloads, fewest, query_ms, answer_ms = out.get(timeout=120)
    watch.join(30)
    server.should_exit = True
    answer_ms.sort()
    q = lambda p: round(answer_ms[min(len(answer_ms) - 1, int(p * len(answer_ms)))], 1) if answer_ms else None  # noqa: E731
    return {"viewers": count, "seconds": round(elapsed, 1), "reloads": reloads, "fewest_reloads_of_a_viewer": fewest,
            "snapshot_computations": computations,
            "snapshot_query_ms_median": round(statistics.median(query_ms), 1) if query_ms else None,
            "overview_answer_ms_p50": q(0.5), "overview_answer_ms_p99": q(0.99),
            "dashboard_process_cpu_share_of_a_core": round(cpu / elapsed, 3)}


def fresh_store(dsn: str, size: int, reading: datetime) -> Store:
    """The region's schema in a scratch database, ``size`` centres c0000.. registered, each with the
    benchmark's procedure groups."""
    store = Store.connect(dsn, ZONE)
    store.create_schema(reading)
    store.register_centres((f"c{i:04d}", f"Phường {i}", f"Phường {i}") for i in range(size))
    store.conn.execute("INSERT INTO groups (centre, code, name) SELECT centre, g, g FROM centres, unnest(%s::text[]) g",
                       (GROUPS,))
    return store


def at_size(size: int, args: argparse.Namespace) -> None:
    today, opening, reading = working_day(ZONE)
    day_start = datetime.combine(today, datetime.min.time(), ZONE)
    gen = scratch_database()
    dsn = next(gen)
    try:
        store = fresh_store(dsn, size, reading)
        t = time.perf_counter()
        conn = store.conn
        params = {"groups": GROUPS, "opening": opening, "tickets": args.tickets, "now": reading,
                  "today": today}
        conn.execute(GENERATE_DAY, params)
        with indexes_after(conn, ["hourly", "daily", "daily_centre"]):
            conn.execute(TODAY_HOURLY)
            load_history(conn, today, args.hourly_days, args.history_days)
        loaded = round(time.perf_counter() - t, 1)
        with conn.transaction():
            store.rebuild_maintained(reading, since=today)
        conn.execute("VACUUM ANALYZE")
        counts = {name: int(conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0])
                  for name in ("events", "hourly", "daily", "daily_centre", "recent", "tickets_now", "now_groups")}
        generated = round(time.perf_counter() - t, 1)
        size_db = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]
        thresholds = Thresholds(ZONE)
        with psycopg.connect(dsn) as read:
            read.execute("SET TIME ZONE 'UTC'")
            slow = slow_figures(read, reading, ZONE)
            history = check_history(read, reading, slow, size)
            recent = recent_figures(read, reading, ZONE, thresholds)
            result = figures(read, reading, ZONE, thresholds, slow=slow, recent=recent)
            sql_ms: list[float] = []
            cpu_ms: list[float] = []
            after = timed(lambda: sql_ms.append(figures(read, reading, ZONE, thresholds, slow=slow, recent=recent)["sql_ms"]),
                          args.runs, cpu_ms)
            encode_cpu: list[float] = []
            encoded = timed(lambda: encode_snapshot(result), args.runs, encode_cpu)
            recent_ms = timed(lambda: recent_figures(read, reading, ZONE, thresholds), args.runs)
            slow_ms = timed(lambda: slow_figures(read, reading, ZONE), max(1, args.runs // 2))
            old = {"day": day_start, "month": day_start - timedelta(days=30), "window": reading - timedelta(minutes=30),
                   "hour": reading - timedelta(hours=1)}
            previous = None
            if args.previous_rev:  # the same refresh as the previous region/report.py did it, on this data
                module = old_module(args.previous_rev, "region/report.py")
                old_slow = module.slow_figures(read, reading, ZONE)
                previous = timed(lambda: module.figures(read, reading, ZONE, thresholds, slow=old_slow), args.runs)[0]
            before = {}
            if size <= args.before_max and not args.only_after:
                for name, sql in BEFORE_SQL.items():
                    before[name] = timed(lambda sql=sql: read.execute(sql, old).fetchall(), max(1, args.runs // 3))[0]
        emit("dashboard_query", centres=size, tickets_per_centre_day=args.tickets, rows=counts, database_size=size_db,
             generate_seconds=generated, events_and_history_loaded_seconds=loaded,
             hourly_days=args.hourly_days, history_days=args.history_days,
             slow_part_30_days_vs_hourly=history, read_at_local=reading.isoformat(timespec="minutes"),
             waiting_now=sum(r["waiting"] for r in result["centres"]), served_today=sum(r["served"] for r in result["centres"]),
             warnings=len(result["warnings"]),
             after_refresh_ms_median=after[0], after_refresh_ms_max=after[1],
             after_refresh_sql_ms_median=round(statistics.median(sql_ms), 1),
             after_refresh_python_cpu_ms_median=round(statistics.median(cpu_ms), 1),
             after_recent_part_ms_median=recent_ms[0], after_slow_part_ms_median=slow_ms[0],
             previous_refresh_ms_median=previous, previous_rev=args.previous_rev or None,
             snapshot_encode_ms_median=encoded[0], snapshot_json_bytes=len(encode_snapshot(result)[0]),
             snapshot_gzip_bytes=len(encode_snapshot(result)[1]),
             before_sql_ms=before or None, before_sql_ms_total=round(sum(before.values()), 1) if before else None)
        emit("dashboard_incremental", centres=size, **incremental_at(store, dsn, size, reading, thresholds, args))
        store.close()
        if args.viewer_seconds:
            for count in (1, args.viewers or 50):
                emit("dashboard_viewers", centres=size, **viewers_at(dsn, size, reading, count, args.viewer_seconds))
    finally:
        next(gen, None)


EVENTS_PER_TICKET = 5.0
"""A ticket's events that reach the region on a real day (issued, called, serving, finished, a rating now and then)."""


def incremental_at(store: Store, dsn: str, size: int, reading: datetime, thresholds: Thresholds,
                   args: argparse.Namespace) -> dict[str, Any]:
    """The dashboard's refresh as it now runs (region.overview): a full build, then refreshes each
    2 s later on the clock, after 2 s of a real working day's events (``--tickets`` a centre a day over 9.5 hours, written
    through Store.store_batch), SQL and Python apart. As on the dashboard, the 5-minute buckets are
    re-read every 15th refresh (RECENT_AGE, 30 s; the k-th re-read reads them 5k minutes later, so
    that the window drops a bucket for almost every centre, as it does every 5 minutes of a day),
    and the slow part at refreshes 10, 40, ... (the same values, a new object: every SLOW_AGE) and
    20, 35, 50, ... (after late history: yesterday's row of 1 % of the centres changed and a judged
    dossier for 1 %, so indexes and ranks move); each kind's refreshes are timed apart, for both
    revisions, the first of each kind of this revision's profiled instead (use 45 runs to time
    each kind at least once). After the first full build the process does ``gc.collect(); gc.freeze()``, as the
    dashboard does after a full rebuild. Then the refresh after the 5-minute buckets moved
    for every centre (a made-up Recent: every centre's figures, no SQL re-read); cProfile's top of a
    refresh; EXPLAIN ANALYZE of the changed-centres statement; and whether the result equals a full
    recompute (region.report.figures) at the end."""
    import cProfile
    import io
    import pstats

    from region.dashboard import json_default
    from region.overview import CHANGED_WHERE, Overview
    from region.rowjson import RowJson
    from region.report import OVERVIEW_SQL, Recent, read_params
    from region.validate import RegionEvent

    per_2s = max(1, round(size * args.tickets * EVENTS_PER_TICKET / (9.5 * 3600) * 2))
    rng = random.Random(size)
    ids = [f"c{i:04d}" for i in range(size)]
    with psycopg.connect(dsn, autocommit=True) as conn, psycopg.connect(dsn) as read:
        conn.execute("SET TIME ZONE 'UTC'")
        read.execute("SET TIME ZONE 'UTC'")
        slow = slow_figures(read, reading, ZONE)
        recent = recent_figures(read, reading, ZONE, thresholds)
        read.commit()
        kept = Overview(ZONE, thresholds)
        t = time.perf_counter()
        rows_json = RowJson(json_default)
        rows_json.dumps(kept.refresh(conn, reading, slow, recent))
        first = (round((time.perf_counter() - t) * 1000, 1), kept.last.sql_ms, kept.last.python_ms)
        kinds: list[str] = []  # each refresh's kind: ordinary, buckets, slow-same, slow-changed
        kind_profiles: dict[str, list[str]] = {}
        kind_rebuilt: dict[str, list[tuple[int, int, bool]]] = {}
        prev_kinds: list[str] = []
        total, sql, python, touched, rebuilt = [], [], [], [], []
        prev_total: list[float] = []
        reencode: list[float] = []
        reencoded: list[int] = []
        prev_python: list[float] = []
        previous = None
        if args.overview_rev:  # the same refreshes by region/overview.py at that revision, alternating, same data
            now_modules = {name: sys.modules[name] for name in ("region.warnings", "region.report")}
            try:  # with its own report and warnings (each imports the one before it)
                for name in now_modules:
                    sys.modules[name] = old_module(args.overview_rev, name.replace(".", "/") + ".py")
                previous = old_module(args.overview_rev, "region/overview.py").Overview(ZONE, thresholds)
            finally:
                sys.modules.update(now_modules)
            previous_json = old_module(args.overview_rev, "region/rowjson.py").RowJson(json_default)
            previous_json.dumps(previous.refresh(conn, reading, slow, recent))
        prev_encode: list[float] = []

        def previous_refresh(at: datetime) -> None:
            """The previous revision's refresh and its encode (its own region/rowjson.py)."""
            t = time.perf_counter()
            done = previous.refresh(conn, at, slow, recent)
            prev_total.append((time.perf_counter() - t) * 1000)
            prev_kinds.append(kind)
            prev_python.append(previous.last.python_ms)
            t = time.perf_counter()
            previous_json.dumps(done)
            prev_encode.append((time.perf_counter() - t) * 1000)

        collections: list[float] = []  # the interpreter's full (generation 2) collections during the runs, ms
        collected: list[float] = []  # this revision's refreshes during which one ran, ms
        started_gc = [0.0]

        def on_gc(phase: str, info: dict[str, Any]) -> None:
            if info["generation"] == 2:
                if phase == "start":
                    started_gc[0] = time.perf_counter()
                else:
                    collections.append((time.perf_counter() - started_gc[0]) * 1000)

        import gc
        gc.collect()
        gc.freeze()  # as the dashboard after a full rebuild (region.dashboard)
        gc.callbacks.append(on_gc)
        since = None
        for run in range(args.incremental_runs):
            at = reading + timedelta(seconds=2 * (run + 1))  # the clock moves 2 s a refresh, as on the dashboard
            events = [RegionEvent(c, f"inc-{size}-{run}-{i}", "ticket.issued", at - timedelta(seconds=rng.uniform(0, 2)),
                                  {"ticket_id": f"inc-{run}-{i}", "group": GROUPS[i % len(GROUPS)]}, None, "mqtt")
                      for i, c in enumerate(rng.choices(ids, k=per_2s))]
            store.store_batch(events, [], [])
            kind = "ordinary"
            if run % 15 == 14:  # RECENT_AGE: the buckets re-read, a bucket later for the window
                recent = recent_figures(read, at + timedelta(minutes=5 * (run // 15 + 1)), ZONE, thresholds)
                read.commit()
                kind = "buckets"
            elif run % 30 == 9:  # SLOW_AGE: the slow part re-read, nothing changed in it
                slow = slow_figures(read, at, ZONE)
                read.commit()
                kind = "slow-same"
            elif run % 15 == 4 and run > 15:  # SLOW_AGE, after history arrived late: 1 % of the centres' 30 days and indexes
                late = ids[run % 100::100]
                yesterday = (at.astimezone(ZONE) - timedelta(days=1)).date()
                conn.execute("UPDATE daily_centre SET served = served + 1, called = called + 1, wait_sum = wait_sum + 600 "
                             "WHERE day = %s AND centre = ANY(%s)", (yesterday, late))
                conn.execute("INSERT INTO dossiers (centre, code, day, dissatisfied) SELECT c, 'late-' || c || %s, %s, "
                             "random() < 0.3 FROM unnest(%s::text[]) c ON CONFLICT DO NOTHING", (str(run), yesterday, late))
                slow = slow_figures(read, at, ZONE)
                read.commit()
                kind = "slow-changed"
            since = kept._since
            if previous is not None and run % 2:  # alternate who refreshes first after the batch
                previous_refresh(at)
            t, before_gc = time.perf_counter(), len(collections)
            if kind != "ordinary" and kind not in kind_profiles:  # the first of each kind, profiled apart
                kind_profile = cProfile.Profile()
                kind_profile.enable()
            result = kept.refresh(conn, at, slow, recent)
            total.append((time.perf_counter() - t) * 1000)
            if kind != "ordinary" and kind not in kind_profiles:
                kind_profile.disable()
                out = io.StringIO()
                pstats.Stats(kind_profile, stream=out).sort_stats("tottime").print_stats(5)
                kind_profiles[kind] = [line.strip() for line in out.getvalue().splitlines() if line.strip()[:1].isdigit()][:5]
                kind += " (profiled)"  # not a timing: the next refresh of the kind is
            kinds.append(kind)
            kind_rebuilt.setdefault(kind, []).append((kept.last.rebuilt, kept.last.judged, kept.last.full))
            if len(collections) > before_gc:
                collected.append(total[-1])
            t = time.perf_counter()
            rows_json.dumps(result)  # the dashboard's encode, reusing unchanged rows' JSON (region.rowjson)
            reencode.append((time.perf_counter() - t) * 1000)
            reencoded.append(rows_json.encoded)
            if previous is not None and not run % 2:
                previous_refresh(at)
            sql.append(kept.last.sql_ms)
            python.append(kept.last.python_ms)
            touched.append(kept.last.read)
            rebuilt.append(kept.last.rebuilt)
        gc.callbacks.remove(on_gc)
        reading = reading + timedelta(seconds=2 * args.incremental_runs)  # what follows at the last refresh's time
        profile = cProfile.Profile()
        profile.enable()
        kept.refresh(conn, reading, slow, recent)
        profile.disable()
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(6)
        top = [line.strip() for line in out.getvalue().splitlines() if line.strip()[:1].isdigit()][:6]
        moved = Recent(recent.day, {c: (i + 1, 0, 0, 0) for i, c in enumerate(ids)})
        t = time.perf_counter()
        kept.refresh(conn, reading, slow, moved)
        shifted = (round((time.perf_counter() - t) * 1000, 1), kept.last.rebuilt)
        params = {**read_params(reading, ZONE, thresholds, slow), "since": since, "centre": None}
        plan = [r[0] for r in conn.execute("EXPLAIN (ANALYZE, TIMING OFF) " + OVERVIEW_SQL.format(one="", where=CHANGED_WHERE), params)]
        mine = kept.refresh(conn, reading, slow, recent)
        full = figures(read, reading, ZONE, thresholds, slow=slow, recent=recent)
        same = {k: v for k, v in mine.items() if k != "sql_ms"} == {k: v for k, v in full.items() if k != "sql_ms"}
        encode_ms = timed(lambda: encode_snapshot(mine), 5)[0]
    med = lambda xs: round(statistics.median(xs), 1)  # noqa: E731

    def by_kind(times: list[float], of: list[str]) -> dict[str, Any]:
        """Each kind's refreshes (ms, in order); the median and max of the ordinary ones."""
        out: dict[str, Any] = {k: [round(x, 1) for x, k2 in zip(times, of) if k2 == k] for k in dict.fromkeys(of)}
        ordinary = out.get("ordinary") or [0.0]
        out["ordinary_median"], out["ordinary_max"] = med(ordinary), round(max(ordinary), 1)
        return out

    return {"refresh_ms_by_kind": by_kind(total, kinds),
            "previous_refresh_ms_by_kind": by_kind(prev_total, prev_kinds) if prev_total else None,
            "encode_ms_by_kind": by_kind(reencode, kinds),
            "rows_rebuilt_judged_full_by_kind": {k: v for k, v in kind_rebuilt.items() if k != "ordinary"},
            "profile_top_by_kind": kind_profiles,
            "previous_encode_ms_by_kind": by_kind(prev_encode, prev_kinds) if prev_encode else None,"events_per_2s": per_2s, "first_full_build_ms": first[0], "first_full_sql_ms": first[1],
            "first_full_python_ms": first[2], "runs": len(total),
            "refresh_ms_median": med(total), "refresh_ms_max": round(max(total), 1),
            "refresh_sql_ms_median": med(sql), "refresh_python_ms_median": med(python),
            "refresh_sql_ms_max": max(sql), "refresh_python_ms_max": max(python), "loadavg": [round(x, 2) for x in os.getloadavg()],
            "full_gc_collections_during_runs": len(collections),
            "full_gc_ms_max": round(max(collections), 1) if collections else None,
            "refreshes_with_a_full_gc_ms": [round(x, 1) for x in collected],
            "centres_read_median": med(touched), "rows_rebuilt_median": med(rebuilt),
            "refresh_after_buckets_moved_ms": shifted[0], "rows_rebuilt_after_buckets_moved": shifted[1],
            "changed_statement_plan_time": [line for line in plan if "Execution Time" in line or "Planning Time" in line],
            "profile_top_by_own_time": top, "equals_full_recompute": same,
            "snapshot_encode_ms_median": encode_ms, "snapshot_encode_reusing_rows_ms_median": med(reencode),
            "snapshot_encode_reusing_rows_ms_max": round(max(reencode), 1),
            "rows_encoded_median": med(reencoded), "previous_overview_rev": args.overview_rev or None,
            "previous_refresh_ms_median": med(prev_total) if prev_total else None,
            "previous_refresh_ms_max": round(max(prev_total), 1) if prev_total else None,
            "previous_refresh_python_ms_median": med(prev_python) if prev_python else None,
            "previous_refresh_python_ms_max": max(prev_python) if prev_python else None,
            "previous_encode_reusing_rows_ms_median": med(prev_encode) if prev_encode else None,
            "previous_encode_reusing_rows_ms_max": round(max(prev_encode), 1) if prev_encode else None}


# ----------------------------------------------------------------------------- C: the write path alone
def old_module(rev: str, path: str) -> Any:
    """A module of this repository as it was at git revision ``rev`` (to time before and after on the
    same machine, in the same run, on the same data)."""
    import importlib.util

    source = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parents[1]).stdout
    name = f"old_{Path(path).stem}_{rev.replace('^', '_').replace('~', '_')}"
    file = Path(tempfile.mkdtemp(prefix="luot-bench-old-")) / f"{name}.py"
    file.write_text(source)
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def store_class(rev: str) -> Any:
    """region.store.Store as it is (``HEAD+``: the working tree), or as it was at a git revision."""
    return Store if rev == "HEAD+" else old_module(rev, "region/store.py").Store


def day_events(centres: int, tickets: int, rng: random.Random, tag: str) -> list[Any]:
    """``centres`` centres' working day (``tickets`` each, up to the 16:45 reading) as the writer
    gets it: RegionEvents in time order, ids ``tag-n``."""
    from region.validate import RegionEvent

    _, opening, reading = working_day(ZONE)
    events: list[RegionEvent] = []
    for c in range(centres):
        for at in day_arrivals(tickets, opening, rng):
            for kind, when, data in ticket_story(0, at, rng):
                if when <= reading:
                    events.append(RegionEvent(f"c{c:04d}", f"{tag}-{len(events)}", kind, when, data, None, "mqtt"))
    events.sort(key=lambda e: e.at)
    return events


def write_path(args: argparse.Namespace) -> None:
    """The writer thread's work without MQTT: ``--write-centres`` centres' working day (each ticket's
    events, in time order as they arrive live), ``BATCH_MAX`` a batch, through Store.store_batch;
    then every batch again (repeats, as after a redelivery). Per store version (``--write-revs``)."""
    from region.ingest import BATCH_MAX
    from tests.helpers.region import maintained_match_events

    _, _, reading = working_day(ZONE)
    events = day_events(args.write_centres, args.tickets, random.Random(19), "w")[:args.write_events]
    for rev in args.write_revs.split(","):
        cls = store_class(rev.strip())
        gen = scratch_database()
        dsn = next(gen)
        try:
            try:
                store = cls.connect(dsn, ZONE)
                store.create_schema(reading)
            except TypeError:  # before the maintained tables: no time zone
                store = cls.connect(dsn)
                store.create_schema()
            store.register_centres((f"c{i:04d}", f"Phường {i}", f"Phường {i}") for i in range(args.write_centres))
            batches = [events[i:i + BATCH_MAX] for i in range(0, len(events), BATCH_MAX)]
            started, cpu = time.perf_counter(), time.process_time()
            new = sum(store.store_batch(batch, [], []) for batch in batches)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            started = time.perf_counter()
            again = sum(store.store_batch(batch, [], []) for batch in batches)
            repeat_seconds = time.perf_counter() - started
            stored = int(store.conn.execute("SELECT count(*) FROM events").fetchone()[0])
            checked = None
            if rev.strip() == "HEAD+":
                maintained_match_events(dsn)  # raises if a maintained row disagrees with the events
                checked = "maintained tables equal the events"
            emit("write_path", store=rev.strip(), centres=args.write_centres, events=len(events), batch=BATCH_MAX,
                 new=new, stored=stored, lost=len(events) - stored, doubled=stored - new + again,
                 events_per_s=round(len(events) / seconds), writer_cpu_s=round(cpu, 2),
                 repeats_per_s=round(len(events) / repeat_seconds), check=checked)
            store.close()
        finally:
            next(gen, None)


# ----------------------------------------------------------------------------- E: what open dashboards cost the writer
def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def others_cpu(conn: psycopg.Connection[Any]) -> dict[int, float]:
    """CPU seconds of every other client backend on this database and of the parallel workers
    running for them (the dashboard's queries; not autovacuum, which the load sets off now and then,
    whoever reads). A parallel worker that starts and ends between two readings is missed."""
    pids = [r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                       "AND pid <> pg_backend_pid() AND backend_type IN ('client backend', 'parallel worker')")]
    out = {}
    for pid in pids:
        try:
            out[pid] = cpu_seconds(pid)
        except (OSError, ValueError):  # ended meanwhile
            pass
    return out


def intake_cost(size: int, args: argparse.Namespace) -> None:
    """The intake's writer at its full rate (Store.store_batch, ``BATCH_MAX`` a batch, a working day of
    ``size`` centres' events pre-generated in time order, as part C) while ``luot region``'s dashboard
    runs in its own process (region.dashboard_process) with 0 or ``--cost-viewers`` open pages
    (part A's viewers: each holds the live stream and reloads the gzipped overview on every change).
    No MQTT publishers: at 3,321 centres they alone saturate a 2-core box. The conditions alternate
    on the same database (``--cost-rounds`` rounds, the order turned each round), each writing
    ``--cost-events`` events; events/s per condition, the change, the dashboard's and the pages'
    CPU, the load; lost/doubled counted at the end."""
    from region.ingest import BATCH_MAX

    counts = [int(c) for c in args.cost_viewers.split(",")]
    _, _, reading = working_day(ZONE)
    gen = scratch_database()
    dsn = next(gen)
    try:
        store = fresh_store(dsn, size, reading)
        segments = 1 + len(counts) * args.cost_rounds  # the first warms the dashboard up, not counted
        tickets = max(1, -(-segments * args.cost_events // int(size * 3.9)))  # ~3.9 events a ticket by 16:45
        t = time.perf_counter()
        events = day_events(size, tickets, random.Random(size), f"e{size}")
        generated = round(time.perf_counter() - t, 1)
        per = len(events) // segments
        ids = [f"c{i:04d}" for i in range(size)]
        region = bench_region(ids, {c: c for c in ids}, Path(tempfile.mkdtemp(prefix="luot-bench-cost-")))
        child, http_port = dashboard_apart(region, dsn)
        by: dict[int, list[dict[str, Any]]] = {c: [] for c in counts}
        new = 0
        try:
            order = [None] + [c for r in range(args.cost_rounds) for c in (counts[::-1] if r % 2 else counts)]
            for k, viewers in enumerate(order):
                chunk = events[k * per:(k + 1) * per]
                watch = None
                if viewers:
                    stop = mp.Event()
                    out: mp.Queue[Any] = mp.Queue()
                    watch = mp.Process(target=viewers_process, args=(f"http://127.0.0.1:{http_port}",
                                                                     ("tinh", "bench-dashboard"), viewers, stop, out))
                    watch.start()
                    time.sleep(3)  # the pages open
                load_before = os.getloadavg()[0]
                dash_cpu, page_cpu = cpu_seconds(child.pid), cpu_seconds(watch.pid) if watch else 0.0
                backends = others_cpu(store.conn)
                own = cpu_seconds(store.conn.info.backend_pid)
                started, writer_cpu = time.perf_counter(), time.process_time()
                for i in range(0, len(chunk), BATCH_MAX):
                    new += store.store_batch(chunk[i:i + BATCH_MAX], [], [])
                seconds, writer_cpu = time.perf_counter() - started, time.process_time() - writer_cpu
                dash_cpu = cpu_seconds(child.pid) - dash_cpu
                own = cpu_seconds(store.conn.info.backend_pid) - own
                after = others_cpu(store.conn)
                dash_sql = sum(after[pid] - backends[pid] for pid in after if pid in backends) + sum(
                    after[pid] for pid in after if pid not in backends)
                running = [f"{r[0]:.1f} s: {r[1]}" for r in store.conn.execute(
                    "SELECT extract(epoch FROM now() - query_start), left(regexp_replace(query, '\\s+', ' ', 'g'), 90) "
                    "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND state = 'active' AND now() - query_start > interval '2 seconds'")]
                reloads = None
                if watch is not None:
                    page_cpu = cpu_seconds(watch.pid) - page_cpu
                    stop.set()
                    reloads = out.get(timeout=120)[0]
                    watch.join(30)
                    if watch.is_alive():
                        watch.terminate()
                if viewers is None:
                    continue
                by[viewers].append({"events_per_s": round(len(chunk) / seconds), "seconds": round(seconds, 1),
                                    "writer_cpu_share": round(writer_cpu / seconds, 2),
                                    "writer_postgres_cpu_share": round(own / seconds, 2),
                                    "dashboard_cpu_share": round(dash_cpu / seconds, 3),
                                    "dashboard_postgres_cpu_share": round(dash_sql / seconds, 3),
                                    "pages_cpu_share": round(page_cpu / seconds, 3) if watch else 0.0,
                                    "reloads": reloads, "still_running_over_2s": running, "load_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)]})
        finally:
            from region import dashboard_process

            dashboard_process.stop(child)
        written = per * segments
        stored, distinct = store.conn.execute("SELECT count(*), count(DISTINCT id) FROM events").fetchone()
        store.close()
        rate = {c: round(statistics.median(r["events_per_s"] for r in runs)) for c, runs in by.items()}
        base = rate[counts[0]]
        emit("intake_cost", centres=size, events_generated=len(events), tickets_per_centre=tickets,
             generate_seconds=generated, events_per_condition_run=per, batch=BATCH_MAX, rounds=args.cost_rounds,
             events_per_s_median=rate,
             change_vs_first={c: round((rate[c] - base) / base * 100, 1) for c in counts},
             written=written, new=new, lost=written - int(distinct), doubled=int(stored) - int(distinct),
             runs={str(c): runs for c, runs in by.items()})
    finally:
        next(gen, None)


# ----------------------------------------------------------------------------- D: real centres over real bridges
async def bridged(args: argparse.Namespace) -> None:
    """``--bridged-centres`` real centres (the sample centre renamed, its [region] generated as
    centre_config does: its own Mosquitto with the generated bridge), the regional Mosquitto from the
    generated configuration, ``luot region`` as a child process with HTTP catch-up every
    ``--bridged-catch-up`` s. Traffic with the link up (lag through the bridge), then the regional
    broker stopped for ``--cut-seconds`` while the centres keep serving (every fourth centre with a
    bridge queue of ``--bridge-queue`` messages, which overflows: its gap comes back by catch-up),
    then how long until every event of every centre's log is in PostgreSQL, lost and doubled."""
    from contextlib import AsyncExitStack

    import asyncio

    from tests.helpers.centre import running_centre
    from tests.helpers.region import (Aggregator, bridges_up, centre_config, creds_of, log_ids, pg_ids, traffic, until,
                                      write_centres_toml)

    gen = scratch_database()
    dsn = next(gen)
    work = Path(tempfile.mkdtemp(prefix="luot-bench-bridged-"))
    rng = random.Random(24)
    port = free_port()
    try:
        async with AsyncExitStack() as stack:
            centres = []
            for i in range(args.bridged_centres):
                queue = args.bridge_queue if i % 4 == 0 else 60_000
                config = centre_config(f"b{i:03d}", port, max_queued_messages=queue)
                centres.append(await stack.enter_async_context(
                    running_centre(work / f"c{i:03d}", config, mqtt=True, broker="mosquitto")))
            ids = [c.config.centre.id for c in centres]
            toml = write_centres_toml(work / "centres.toml", [(c.config.centre.id, c.base_url, creds_of(c)) for c in centres])
            broker = RegionalBroker(toml, work / "region-broker", port).start()
            agg = await asyncio.to_thread(Aggregator(dsn, toml, port, work / "agg.log", catch_up=args.bridged_catch_up).start)
            try:
                await until(lambda: bridges_up(dsn, *ids), 90, "every bridge up")
                await asyncio.gather(*(traffic(c, args.bridged_tickets, args.bridged_tickets // 2, rng, pause=0.05) for c in centres))
                published = set().union(*[await log_ids(c, published_only=True) for c in centres])
                await until(lambda: published <= set(pg_ids(dsn)), 120, "the link-up events")
                with psycopg.connect(dsn) as conn:
                    lags = sorted(float(r[0]) for r in conn.execute(
                        "SELECT extract(epoch FROM received_at - at) * 1000 FROM events WHERE via = 'mqtt' AND id = ANY(%s)",
                        (list(published),)))
                before_cut = set().union(*[await log_ids(c) for c in centres])
                broker.stop()  # the province's line is cut; the centres keep serving
                await asyncio.gather(*(traffic(c, args.bridged_tickets, args.bridged_tickets // 2, rng, pause=0.05)
                                       for c in centres))
                await asyncio.sleep(args.cut_seconds)
                broker.start()
                back = time.monotonic()
                every = set().union(*[await log_ids(c) for c in centres])
                await until(lambda: every <= set(pg_ids(dsn)), 300, "every centre's whole log")
                whole = time.monotonic() - back
                await asyncio.sleep(2)  # anything still arriving twice would show now
                with psycopg.connect(dsn) as conn:
                    stored = int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
                    distinct = int(conn.execute("SELECT count(DISTINCT id) FROM events").fetchone()[0])
                    vias = dict(conn.execute("SELECT via, count(*) FROM events GROUP BY via").fetchall())
                    gap = dict(conn.execute("SELECT via, count(*) FROM events WHERE id = ANY(%s) GROUP BY via",
                                            (list(every - before_cut),)).fetchall())
                maintained_ok = True
                try:
                    from tests.helpers.region import maintained_match_events
                    maintained_match_events(dsn)
                except AssertionError:
                    maintained_ok = False
                q = lambda p: round(lags[min(len(lags) - 1, int(p * len(lags)))], 1) if lags else None  # noqa: E731
                emit("bridged", centres=len(centres), small_bridge_queues=len(centres[::4]), bridge_queue=args.bridge_queue,
                     events_in_logs=len(every), stored=stored, lost=len(every - set(pg_ids(dsn))), doubled=stored - distinct,
                     by_mqtt=vias.get("mqtt", 0), by_http_catch_up=vias.get("http", 0),
                     made_during_cut=len(every - before_cut), cut_events_by_bridge_queue=gap.get("mqtt", 0),
                     cut_events_by_http_catch_up=gap.get("http", 0),
                     lag_ms_p50_through_bridge=q(0.5), lag_ms_p99_through_bridge=q(0.99), cut_seconds=args.cut_seconds,
                     seconds_to_whole_logs_after_link_back=round(whole, 1), maintained_tables_match_events=maintained_ok)
            finally:
                agg.stop()
                broker.stop()
    finally:
        next(gen, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--live-centres", type=int, default=126, help="part A: centres publishing (0: skip part A)")
    parser.add_argument("--tickets", type=int, default=300, help="tickets per centre per day")
    parser.add_argument("--speed", type=float, default=20.0, help="paced phase: times real time")
    parser.add_argument("--paced-seconds", type=float, default=15.0)
    parser.add_argument("--publishers", type=int, default=4)
    parser.add_argument("--viewers", type=int, default=50, help="open dashboards during part A's second pass (0: none)")
    parser.add_argument("--sizes", default="126,1000,3321", help="part B: centres per database ('' to skip)")
    parser.add_argument("--hourly-days", type=int, default=35, help="part B: days of hourly rollups before today")
    parser.add_argument("--history-days", type=int, default=365, help="part B: days of daily rollups before today")
    parser.add_argument("--before-max", type=int, default=100_000, help="part B: time the old statements up to this size")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--previous-rev", default="",
                        help="part B: also time the refresh of region/report.py at this git revision on the same data")
    parser.add_argument("--viewer-seconds", type=float, default=20.0,
                        help="part B: seconds of 1 and of --viewers open dashboards at each size (0: skip)")
    parser.add_argument("--dashboard-in-process", action="store_true",
                        help="part A: serve the dashboard from the intake's process (the previous way), not its own")
    parser.add_argument("--incremental-runs", type=int, default=15,
                        help="part B: refreshes by what changed, each after 2 s of a real day's events")
    parser.add_argument("--overview-rev", default="",
                        help="part B: also time region/overview.py at this git revision, alternating with the working tree's")
    parser.add_argument("--only-after", action="store_true", help="part B: skip the old statements (they take minutes at 3,321)")
    parser.add_argument("--write-events", type=int, default=0, help="part C: events through the write path alone (0: skip)")
    parser.add_argument("--write-centres", type=int, default=126, help="part C: centres the events come from")
    parser.add_argument("--write-revs", default="HEAD+",
                        help="part C: store versions, comma-separated: HEAD+ (the working tree) or git revisions")
    parser.add_argument("--bridged-centres", type=int, default=0, help="part D: real centres over real bridges (0: skip)")
    parser.add_argument("--bridged-tickets", type=int, default=20, help="part D: tickets per centre, each phase")
    parser.add_argument("--bridged-catch-up", type=float, default=30.0, help="part D: seconds between HTTP catch-ups")
    parser.add_argument("--bridge-queue", type=int, default=20, help="part D: bridge queue of every fourth centre")
    parser.add_argument("--cut-seconds", type=float, default=10.0, help="part D: how long the link stays cut")
    parser.add_argument("--cost-sizes", default="",
                        help="part E: centres per database for the open dashboards' cost on the writer ('' to skip)")
    parser.add_argument("--cost-viewers", default="0,50", help="part E: open pages in each condition, comma-separated")
    parser.add_argument("--cost-rounds", type=int, default=3, help="part E: rounds of every condition, alternating")
    parser.add_argument("--cost-events", type=int, default=40_000, help="part E: events written in each condition's run")
    args = parser.parse_args()
    emit("machine", **machine_state())
    if args.bridged_centres:
        import asyncio

        asyncio.run(bridged(args))
    if args.write_events:
        write_path(args)
    if args.live_centres:
        live(args)
    for size in [int(s) for s in args.cost_sizes.split(",") if s.strip()]:
        intake_cost(size, args)
    for size in [int(s) for s in args.sizes.split(",") if s.strip()]:
        at_size(size, args)
    emit("machine_after", **machine_state())


if __name__ == "__main__":
    main()
