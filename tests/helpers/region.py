"""Region test parts: a throw-away PostgreSQL database, the regional Mosquitto, the aggregator as a
child process, and centres whose brokers bridge to the region (all real, on free ports)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import time
import tomllib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator
from zoneinfo import ZoneInfo

import httpx
import psycopg

from luot.config import DEFAULT_CONFIG, CentreConfig, parse_config
from region.bridge import write_regional_broker_for
from region.settings import DASHBOARD_USER, load_region
from region.validate import RegionEvent
from server.app import CentreRuntime
from server.broker import find_mosquitto
from server.engine import QueueError
from luot.ports import free_port  # noqa: F401 (tests import it from here)

ROOT = Path(__file__).resolve().parents[2]
ADMIN_DSN = os.environ.get("LUOT_TEST_PG", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")
"""Where the tests create their scratch databases (a superuser). Override with LUOT_TEST_PG."""
PUBLISHED = ("ticket.", "counter.", "assistance.")
"""Event kinds a centre publishes on MQTT (so they cross the bridge); the rest arrive by catch-up."""


def ensure_postgres() -> None:
    """Start the machine's PostgreSQL cluster when it is not running (the tests need a real one)."""
    try:
        psycopg.connect(ADMIN_DSN, connect_timeout=3).close()
        return
    except psycopg.OperationalError:
        pass
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if not versions or not shutil.which("pg_ctlcluster"):
        raise RuntimeError("PostgreSQL is not installed (apt install postgresql); scripts/setup.sh installs it")
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"], check=False)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            psycopg.connect(ADMIN_DSN, connect_timeout=3).close()
            return
        except psycopg.OperationalError:
            time.sleep(0.5)
    raise RuntimeError("PostgreSQL did not start")


def scratch_database() -> Iterator[str]:
    """CREATE DATABASE luot_test_<random>, yield its DSN, drop it afterwards."""
    ensure_postgres()
    name = f"luot_test_{secrets.token_hex(6)}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield psycopg.conninfo.make_conninfo(ADMIN_DSN, dbname=name)
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")




def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.3):
            return True
    except OSError:
        return False


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def centre_config(centre_id: str, region_port: int, **region: Any) -> CentreConfig:
    """The sample centre renamed, with [region] pointing at the test's regional broker and the
    ``region`` manager device the aggregator uses for catch-up."""
    raw = tomllib.loads(DEFAULT_CONFIG.read_text("utf-8"))
    raw["centre"]["id"] = centre_id
    raw["centre"]["name"] = f"Trung tâm {centre_id}"
    raw["devices"] = [*raw.get("devices", []), {"id": "region", "role": "manager"}]
    raw["region"] = {"host": "127.0.0.1", "port": region_port, "reconnect_min_seconds": 1,
                     "reconnect_max_seconds": 2, **region}
    return parse_config(raw, centre_id)


class RegionalBroker:
    """The regional Mosquitto, from the generated configuration; stop() and start() again keep its
    persistence (sessions and queued messages survive, as on a real box)."""

    def __init__(self, centres_toml: Path, directory: Path, port: int, tls: dict[str, str] | None = None) -> None:
        self.conf = write_regional_broker_for(load_region(centres_toml), directory, port,
                                              run_as_root=os.geteuid() == 0, tls=tls)
        self.port = port
        self.log = self.conf.parent / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "RegionalBroker":
        mosquitto = find_mosquitto()
        assert mosquitto, "mosquitto is not installed"
        console = self.conf.parent / "mosquitto.console.log"  # what it prints before its log file opens
        with open(console, "ab") as out:
            self.proc = subprocess.Popen([mosquitto, "-c", str(self.conf)], stdout=out, stderr=subprocess.STDOUT,
                                         preexec_fn=self._open_file_limit)

        def listening() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:  # e.g. a TLS file it cannot read: say what Mosquitto said
                raise RuntimeError(f"regional Mosquitto exited {self.proc.returncode}: "
                                   f"{console.read_text(errors='replace').strip()[-1000:]}")
            return accepts(self.port)

        wait_until(listening, 10, "the regional broker")
        return self

    def _open_file_limit(self) -> None:
        """What the generated luot-region-broker.service gives it (LimitNOFILE), as far as the
        hard limit of this machine allows: the benchmark connects thousands of centres."""
        import resource

        unit = self.conf.parent / "luot-region-broker.service"
        want = next((int(line.split("=", 1)[1]) for line in unit.read_text().splitlines()
                     if line.startswith("LimitNOFILE=")), 8192) if unit.exists() else 8192
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (want if hard == resource.RLIM_INFINITY else min(want, hard), hard))

    def log_text(self) -> str:
        return self.log.read_text("utf-8", errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class Aggregator:
    """``luot region`` as a child process (for kill -9)."""

    def __init__(self, dsn: str, centres_toml: Path, mqtt_port: int, log: Path, catch_up: float,
                 tls_ca: Path | None = None) -> None:
        self.dsn, self.centres_toml, self.mqtt_port, self.log, self.catch_up = dsn, centres_toml, mqtt_port, log, catch_up
        self.tls_ca = tls_ca
        self.http_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.secret = json.loads((centres_toml.parent / "region-secrets.json").read_text())[DASHBOARD_USER]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def auth(self) -> tuple[str, str]:
        return (DASHBOARD_USER, self.secret)

    def start(self) -> "Aggregator":
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "luot.cli", "region", "--pg", self.dsn, "--mqtt", f"127.0.0.1:{self.mqtt_port}",
                 "--centres", str(self.centres_toml), "--http", f"127.0.0.1:{self.http_port}",
                 "--catch-up-seconds", str(self.catch_up), *(["--tls-ca", str(self.tls_ca)] if self.tls_ca else [])],
                stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})

        def healthy() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"aggregator exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                return httpx.get(self.url + "/health", timeout=0.5).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, 30, "the aggregator")
        return self

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


NAMES = {"hn-cua-nam": "Phường Cửa Nam", "hn-hang-bac": "Phường Hàng Bạc", "hn-a": "Phường A", "hn-b": "Phường B"}


def write_centres_toml(path: Path, centres: list[tuple[str, str, Path]], region_id: str = "ha-noi-test") -> Path:
    """centres: (id, api url, credentials file)."""
    lines = ["[region]", f'id = "{region_id}"', 'name = "Hà Nội (thử nghiệm)"', ""]
    for centre_id, api, creds in centres:
        lines += ["[[centres]]", f'id = "{centre_id}"', f'name = "{NAMES.get(centre_id, centre_id)}"', f'api = "{api}"',
                  f'credentials = "{creds}"', ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def pg_ids(dsn: str, centre: str | None = None) -> list[str]:
    with psycopg.connect(dsn) as conn:
        if centre:
            return [r[0] for r in conn.execute("SELECT id FROM events WHERE centre = %s", (centre,))]
        return [r[0] for r in conn.execute("SELECT id FROM events")]


# ------------------------------------------------------------------ centres in the test's event loop
async def until(predicate: Any, timeout: float, what: str) -> Any:
    """Poll (without blocking the loop the centres run on) until predicate() is truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await asyncio.to_thread(predicate)
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.2)


async def log_ids(runtime: CentreRuntime, published_only: bool = False) -> set[str]:
    assert runtime.storage is not None
    rows = await runtime.storage.events_after(0, 100_000)
    return {r["id"] for r in rows if not published_only or r["type"].startswith(PUBLISHED)}


async def traffic(runtime: CentreRuntime, tickets: int, serve: int, rng: random.Random, pause: float = 0.0) -> None:
    """Citizens take tickets; officers call, serve and finish some; some rate the service."""
    service = runtime.service
    assert service is not None
    config = runtime.config
    for number in [c.number for c in config.counters]:
        if service.engine.counters[number].status == "closed":
            await service.run(lambda e, t, n=number: (None, e.open_counter(n, f"cb{n}", t)))
    for _ in range(tickets):
        group = rng.choice(config.groups).code
        await service.run(lambda e, t: e.issue(group, t))
        if pause:
            await asyncio.sleep(pause)
    served = 0
    for _ in range(serve * 3):
        if served >= serve:
            break
        number = rng.choice(config.counters).number
        try:
            called = await service.run(lambda e, t: e.call_next(number, t))
            if called is None:
                continue
            await service.run(lambda e, t: e.start(number, t))
            done = await service.run(lambda e, t: e.finish(number, t))
            await service.run(lambda e, t: (None, e.record_feedback(done.id, rng.randint(1, 4), None, number, t)))
            served += 1
        except QueueError:
            continue
        if pause:
            await asyncio.sleep(pause)


def creds_of(runtime: CentreRuntime) -> Path:
    """The region-credentials.json a centre's broker start wrote (its bridge secret, its API secret)."""
    return runtime.options.data_dir / "broker" / "mosquitto" / "region-credentials.json"


def bridges_up(dsn: str, *centres: str) -> bool:
    """The bridges announced themselves to the region (a bridge queues only after its first connect)."""
    with psycopg.connect(dsn) as conn:
        up = {r[0] for r in conn.execute("SELECT centre FROM centres WHERE bridge_online")}
    return set(centres) <= up


# ------------------------------------------------------------------ the maintained tables' oracle
FIRST_CALL = "kind = 'ticket.called' AND (data->>'first_call' = 'true' OR data->>'call' = '1')"

# The province's booking figures as region/bookings.py read them from the day's events before they
# were maintained (issue 19): the reference ``booking_days`` is compared with.
BOOKINGS_SQL = """
SELECT centre,
       count(*) FILTER (WHERE kind = 'ticket.issued') AS issued,
       count(*) FILTER (WHERE kind = 'ticket.issued' AND data->>'booking' = 'remote') AS remote,
       count(*) FILTER (WHERE kind = 'ticket.issued' AND data->>'booking' = 'appointment') AS appointment,
       count(*) FILTER (WHERE kind = 'ticket.no_show') AS no_show,
       count(*) FILTER (WHERE kind = 'ticket.no_show' AND data->>'reason' = 'lapsed') AS lapsed
FROM events
WHERE at >= %(start)s AND at < %(end)s AND kind IN ('ticket.issued', 'ticket.no_show') {one}
GROUP BY centre
"""
# The mean wait of each kind of ticket called that day: a booked ticket's from its check-in (a remote
# number's ticket.issued is when it was taken at home), a walk-in's from its issue; first calls only.
WAITS_SQL = """
WITH issued AS (
    SELECT centre, ticket_id, coalesce(data->>'booking', 'walk_in') AS kind, at FROM events
    WHERE at >= %(start)s AND at < %(end)s AND kind = 'ticket.issued' AND ticket_id IS NOT NULL {one}
), checked AS (
    SELECT centre, ticket_id, min(at) AS at FROM events
    WHERE at >= %(start)s AND at < %(end)s AND kind = 'booking.checked_in' AND ticket_id IS NOT NULL {one}
    GROUP BY centre, ticket_id
), called AS (
    SELECT centre, ticket_id, min(at) AS at FROM events
    WHERE at >= %(start)s AND at < %(end)s AND kind = 'ticket.called' AND ticket_id IS NOT NULL {one}
    GROUP BY centre, ticket_id
)
SELECT i.centre, i.kind, avg(extract(epoch FROM c.at - greatest(i.at, coalesce(k.at, i.at)))) / 60
FROM issued i JOIN called c USING (centre, ticket_id) LEFT JOIN checked k USING (centre, ticket_id)
GROUP BY i.centre, i.kind
"""


def booking_reference(conn: psycopg.Connection[Any], day: Any, zone: Any, centre: str | None = None) -> dict[str, dict[str, Any]]:
    """region.bookings.booking_figures for local ``day`` as it was computed from the events."""
    start = datetime.combine(day, datetime.min.time(), zone)
    params: dict[str, Any] = {"start": start, "end": start + timedelta(days=1)}
    one = ""
    if centre is not None:
        one, params["centre"] = "AND centre = %(centre)s", centre
    kinds = ("walk_in", "remote", "appointment")
    out: dict[str, dict[str, Any]] = {}
    for centre_id, issued, remote, appointment, no_show, lapsed in conn.execute(BOOKINGS_SQL.format(one=one), params):
        out[centre_id] = {"remote": remote, "appointment": appointment, "no_show": no_show, "lapsed": lapsed,
                          "remote_share": round(remote / issued * 100, 1) if issued else None,
                          **{f"wait_{kind}_minutes": None for kind in kinds}}
    for centre_id, kind, minutes in conn.execute(WAITS_SQL.format(one=one), params):
        if centre_id in out and kind in kinds and minutes is not None:
            out[centre_id][f"wait_{kind}_minutes"] = round(float(minutes), 1)
    return out


def bookings_match_events(conn: psycopg.Connection[Any], zone: Any, first: Any = None) -> int:
    """Every local day with events (from ``first`` on): the maintained booking figures
    (region.bookings, from ``booking_days``) equal the events query's. Returns the days compared."""
    from region.bookings import booking_figures

    days = [r[0] for r in conn.execute("SELECT DISTINCT (at AT TIME ZONE %s)::date FROM events ORDER BY 1", (str(zone),))
            if first is None or r[0] >= first]
    for day in days:
        noon = datetime.combine(day, datetime.min.time(), zone) + timedelta(hours=12)
        assert booking_figures(conn, noon, zone) == booking_reference(conn, day, zone), day
    return len(days)


def maintained_match_events(dsn: str, zone: str = "Asia/Ho_Chi_Minh") -> None:
    """The tables kept in each event's transaction (region/store.py) equal what the stored events
    say, recomputed here from the events the slow way (the queries the dashboard used to run)."""
    with psycopg.connect(dsn) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        daily = {(c, g, d): (i, s, n, round(w, 3), r, rs, list(h or []))
                 for c, g, d, i, s, n, w, r, rs, h in conn.execute(
                     "SELECT centre, grp, day, issued, served, called, wait_sum, ratings, rating_sum, wait_hist FROM daily "
                     "WHERE issued + served + called + ratings + no_show + cancelled > 0")}
        want: dict[tuple[str, str, Any], list[Any]] = {}
        for c, g, d, i, s, n, w, r, rs in conn.execute(
                f"SELECT centre, grp, (at AT TIME ZONE %s)::date, count(*) FILTER (WHERE kind = 'ticket.issued'), "
                f"count(*) FILTER (WHERE kind = 'ticket.finished'), count(*) FILTER (WHERE {FIRST_CALL}), "
                f"coalesce(sum(greatest((data->>'wait_seconds')::float, 0)) FILTER (WHERE {FIRST_CALL}), 0), "
                "count(*) FILTER (WHERE kind = 'feedback.recorded' AND (data->>'rating')::int BETWEEN 1 AND 4), "
                "coalesce(sum((data->>'rating')::int) FILTER (WHERE kind = 'feedback.recorded' AND (data->>'rating')::int BETWEEN 1 AND 4), 0) "
                "FROM events WHERE grp IS NOT NULL GROUP BY 1, 2, 3", (zone,)):
            if i or s or n or r:
                want[(c, g, d)] = [i, s, n, round(w, 3), r, rs, []]
        for c, g, d, b, k in conn.execute(
                f"SELECT centre, grp, (at AT TIME ZONE %s)::date, least(floor(greatest((data->>'wait_seconds')::float, 0) / 60)::int, 599), "
                f"count(*) FROM events WHERE grp IS NOT NULL AND {FIRST_CALL} GROUP BY 1, 2, 3, 4", (zone,)):
            hist = want[(c, g, d)][6]
            hist.extend([0] * (b + 1 - len(hist)))
            hist[b] = k
        assert {k: tuple(v) for k, v in want.items()} == {k: v for k, v in daily.items() if k in want}
        assert set(daily) <= set(want), "a daily row no event explains"
        from server.summaries import percentile_from_histogram

        per_centre: dict[tuple[str, Any], list[int]] = {}
        for (c, g, d), v in want.items():
            total = per_centre.setdefault((c, d), [])
            total.extend([0] * (len(v[6]) - len(total)))
            for bucket, n in enumerate(v[6]):
                total[bucket] += n
        centre_rows = {(c, d): (list(h), p) for c, d, h, p in conn.execute("SELECT centre, day, wait_hist, wait_p90 FROM daily_centre")}
        assert {k: v for k, v in per_centre.items() if any(v)} == {k: v[0] for k, v in centre_rows.items() if v[0]}
        # a centre's day in one row: the sums of its groups' rows (what the overview reads)
        sums = "issued, called, round(wait_sum::numeric, 3), round(wait_max::numeric, 3), served, no_show, cancelled, ratings, rating_sum"
        by_centre = {tuple(r[:2]): tuple(r[2:]) for r in conn.execute(
            f"SELECT centre, day, {sums} FROM daily_centre WHERE issued + called + served + no_show + cancelled + ratings > 0")}
        from_groups = {tuple(r[:2]): tuple(r[2:]) for r in conn.execute(
            "SELECT centre, day, sum(issued), sum(called), round(sum(wait_sum)::numeric, 3), round(max(wait_max)::numeric, 3), "
            "sum(served), sum(no_show), sum(cancelled), sum(ratings), sum(rating_sum) FROM daily "
            "WHERE issued + called + served + no_show + cancelled + ratings > 0 GROUP BY centre, day")}
        assert by_centre == from_groups and by_centre, "daily_centre's sums are its groups' sums"
        group_p90 = {(c, g, d): p for c, g, d, p in conn.execute("SELECT centre, grp, day, wait_p90 FROM daily WHERE wait_p90 IS NOT NULL")}
        for key, hist in [*((k, v[6]) for k, v in want.items()), *((k, v[0]) for k, v in centre_rows.items())]:
            p90 = group_p90.get(key) if len(key) == 3 else centre_rows[key][1]
            if any(hist):
                assert p90 is not None and abs(p90 - percentile_from_histogram(enumerate(hist), 0.9)) < 0.006, (key, p90)  # it rounds to 0.01
        now_rows = {(c, g): (n, o) for c, g, n, o in conn.execute(
            "SELECT centre, grp, waiting, oldest FROM now_groups WHERE waiting > 0 AND day = (now() AT TIME ZONE %s)::date", (zone,))}
        waiting = {(c, g or ""): (n, o) for c, g, n, o in conn.execute("""
            WITH day AS (SELECT (date_trunc('day', now() AT TIME ZONE %(z)s)) AT TIME ZONE %(z)s AS start),
            last AS (
                SELECT DISTINCT ON (centre, ticket_id) centre, ticket_id, kind, grp FROM events, day
                WHERE ticket_id IS NOT NULL AND kind LIKE 'ticket.%%'
                ORDER BY centre, ticket_id, at DESC, (kind = 'ticket.issued')
            ), issued AS (
                SELECT centre, ticket_id, min(at) AS issued_at FROM events, day
                WHERE at >= day.start AND kind = 'ticket.issued' GROUP BY centre, ticket_id
            )
            SELECT last.centre, last.grp, count(*), min(issued.issued_at)
            FROM last JOIN issued USING (centre, ticket_id)
            WHERE last.kind IN ('ticket.issued', 'ticket.transferred') GROUP BY last.centre, last.grp""", {"z": zone})}
        assert now_rows == waiting
        recent = conn.execute("SELECT coalesce(sum(issued), 0), coalesce(sum(called), 0) FROM recent").fetchone()
        events = conn.execute(f"SELECT count(*) FILTER (WHERE kind = 'ticket.issued'), count(*) FILTER (WHERE {FIRST_CALL}) "
                              "FROM events WHERE grp IS NOT NULL AND at >= now() - interval '2 days'").fetchone()
        assert tuple(recent) == tuple(events)
        bookings_match_events(conn, ZoneInfo(zone))


GROUPS = ["ho-tich", "chung-thuc", "dat-dai"]
"""The procedure groups of :func:`ticket_events`."""


def noon_today(zone: ZoneInfo = ZoneInfo("Asia/Ho_Chi_Minh")) -> datetime:
    """Noon of the real local day, as a test's "now": the hours of events a test makes around it
    (:func:`ticket_events`: up to three hours before, calls and services an hour after) then never
    cross local midnight, whenever the suite runs (with ``datetime.now()`` they did from about 23:00
    in Hanoi, 16:00 UTC, and a day's counts split). The real day matters because the store keys
    who waits now by the real clock's day (region.store ``_refresh_now``); in the last two minutes
    before midnight this waits for the new day, so it cannot change during the test."""
    now = datetime.now(zone)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), zone)
    if midnight - now < timedelta(minutes=2):
        time.sleep((midnight - now).total_seconds() + 1)
        now = datetime.now(zone)
    return now.replace(hour=12, minute=0, second=0, microsecond=0).astimezone(timezone.utc)


def ticket_events(centre: str, n: int, start: datetime, rng: random.Random) -> list[RegionEvent]:
    """Tickets of one centre: issued; most called (first call with its wait), some transferred,
    served and rated, some no-shows; a few still waiting."""
    out: list[RegionEvent] = []
    for i in range(n):
        tag = f"{centre}-{start:%d%H}-{i}"
        tid, group = f"t{tag}", rng.choice(GROUPS)
        at = start + timedelta(seconds=rng.uniform(0, 3 * 3600))
        ev = lambda kind, when, **data: out.append(RegionEvent(  # noqa: E731
            centre, f"{tag}-{kind}-{len(out)}", kind, when, {"ticket_id": tid, "group": data.pop("group", group), **data}, None, "mqtt"))
        ev("ticket.issued", at)
        fate = rng.random()
        if fate < 0.15:
            continue  # still waiting
        if fate < 0.25:  # moved to another group's queue, still waiting there
            ev("ticket.transferred", at + timedelta(minutes=2), group=rng.choice(GROUPS))
            continue
        wait = rng.uniform(0, 70 * 60)
        called = at + timedelta(seconds=wait)
        ev("ticket.called", called, first_call=True, call=1, wait_seconds=wait)
        if fate < 0.32:
            ev("ticket.no_show", called + timedelta(minutes=3))
            continue
        ev("ticket.serving", called + timedelta(seconds=20))
        done = called + timedelta(minutes=5)
        ev("ticket.finished", done)
        if rng.random() < 0.5:
            out.append(RegionEvent(centre, f"{tag}-fb", "feedback.recorded", done + timedelta(seconds=5),
                                   {"ticket_id": tid, "group": group, "rating": rng.randint(1, 4)}, None, "mqtt"))
    return out
