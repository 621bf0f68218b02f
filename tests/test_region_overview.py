"""Issue 19: the province overview refreshed by what changed (region.overview) equals a full
recompute (region.report.figures) at every refresh, with events, link changes and the passing of
time between refreshes, and a writer's transaction still open during one. Against the machine's
PostgreSQL (a scratch database)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from region.overview import Overview
from region.report import Recent, figures, recent_figures, slow_figures
from region.store import Store
from region.validate import Availability
from region.warnings import Thresholds, with_minutes
from tests.helpers.region import noon_today, ticket_events

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


class OpenAllDay(Thresholds):
    """Working hours at any hour the test runs, so the silent-centre rule is exercised too."""

    def working_hours(self, now: datetime) -> bool:
        return True


def comparable(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k != "sql_ms"}


def test_the_overview_refreshed_by_changes_equals_a_full_recompute(pg: str) -> None:
    rng = random.Random(1919)
    start = noon_today()  # the day's events and the 41 minutes after never cross local midnight
    centres = [f"c{i:02d}" for i in range(12)]
    store = Store.connect(pg, ZONE)
    store.create_schema()
    store.register_centres((c, f"Phường {c}", f"Phường {c}") for c in centres + ["quiet"])
    # heard once and never again, no tickets: only the time makes it silent (no data, no 5-minute buckets move)
    store.store_batch([], [(Availability("quiet", "bridge", None, True), start)], [])
    store.set_groups("c00", [{"code": "ho-tich", "name": "Hộ tịch", "wait_alert_minutes": 10}])
    events = []
    for centre in centres:
        events += ticket_events(centre, 25, start - timedelta(hours=3, minutes=5), rng)
    events.sort(key=lambda e: e.at)
    batches = [events[i::6] for i in range(6)]
    thresholds = OpenAllDay(ZONE, offline_after_minutes=20)
    kept = Overview(ZONE, thresholds)
    inc = psycopg.connect(pg, autocommit=True)
    full = psycopg.connect(pg, autocommit=True)
    for conn in (inc, full):
        conn.execute("SET TIME ZONE 'UTC'")
    slow = [slow_figures(full, start, ZONE)]  # re-read as the dashboard does every SLOW_AGE s
    reads: list[tuple[bool, int, int]] = []
    rebuilt_at = -1

    def check(now: datetime, recent: Recent | None = None) -> dict[str, Any]:
        recent = recent or recent_figures(full, now, ZONE, thresholds)
        got = kept.refresh(inc, now, slow[0], recent)
        reads.append((kept.last.full, kept.last.read, kept.last.rebuilt))
        want = figures(full, now, ZONE, thresholds, slow=slow[0], recent=recent)
        assert comparable(got) == comparable(want)  # the warnings with their slots (minutes, the growing counts) ...
        assert with_minutes([dict(w) for w in got["warnings"]], now, got["recent"]) == \
            with_minutes([dict(w) for w in want["warnings"]], now, want["recent"])  # ... and filled as they are shown
        return got

    try:
        check(start)
        for step, batch in enumerate(batches[:3]):  # a few centres at a time, then everyone
            few = [e for e in batch if e.centre in centres[step * 3:step * 3 + 3]]
            store.store_batch(few, [], [])
            check(start + timedelta(seconds=2 * (step + 1)))
        store.store_batch([], [(Availability("c04", "bridge", None, False), start),
                               (Availability("c05", "device", "kiosk-1", False), start)], [])
        check(start + timedelta(seconds=8))
        with store.conn.transaction():  # a writer's transaction still open while the overview reads
            store.conn.execute("SELECT pg_advisory_xact_lock(80210003)")
            store._write_events(batches[3])
            later = Store.connect(pg, ZONE)  # a later transaction commits first (a snapshot's xmax passes the open one)
            later.set_groups("c01", [{"code": "dat-dai", "name": "Đất đai", "wait_alert_minutes": 45}])
            later.close()
            check(start + timedelta(seconds=10))
        check(start + timedelta(seconds=12))  # now committed: its centres must be read
        store.store_batch(batches[4] + batches[5] + batches[0], [], [])  # repeats change nothing but the heard time
        check(start + timedelta(seconds=14))
        # nothing arrives for 40 minutes: waits grow past their thresholds and past twice them (the
        # warning's level), centres fall silent; each step judged from what the previous one kept
        for minutes in (3, 9, 16, 22, 27, 33, 40):
            check(start + timedelta(minutes=minutes, seconds=minutes))
        store.store_batch([], [(Availability("c04", "bridge", None, True), start + timedelta(minutes=41))], [])
        check(start + timedelta(minutes=41))
        # the 5-minute buckets roll (re-read every RECENT_AGE s): queues growing at some centres, then
        # not; the rows stay the same objects unless a warning changed (their recent figures are apart)
        at = start + timedelta(minutes=41, seconds=30)
        real = recent_figures(full, at, ZONE, thresholds)
        before = check(at, real)
        surge = Recent(real.day, {**real.by_centre, **{c: (40 + i, i, 0, 0) for i, c in enumerate(centres[:6])}})
        surged = check(at + timedelta(seconds=2), surge)
        assert {w["centre"] for w in surged["warnings"] if w["kind"] == "growing"}  # the surge warns somewhere
        assert [r for r in surged["centres"] if r["centre"] not in centres[:6]] == \
            [r for r in before["centres"] if r["centre"] not in centres[:6]]
        assert all(any(r is b for b in before["centres"]) for r in surged["centres"] if r["centre"] in centres[6:])
        calmer = Recent(real.day, {**surge.by_centre, centres[0]: (41, 1, 0, 0), centres[1]: (43, 3, 0, 0),
                                       centres[7]: (1, 0, 0, 0)})
        calmed = check(at + timedelta(seconds=4), calmer)  # two growing centres' figures change, one centre's buckets only
        # a growing warning that stays is the same dict: its counts are slots (filled from the recent part)
        grew = {w["centre"]: w for w in surged["warnings"] if w["kind"] == "growing"}
        assert centres[1] in grew and all(w is grew[w["centre"]] for w in calmed["warnings"] if w["kind"] == "growing")
        check(at + timedelta(seconds=6), real)  # the surge gone
        # the slow part re-read (every SLOW_AGE s): c01's groups changed since it was read, so a rebuild
        slow[0] = slow_figures(full, at, ZONE)
        before = check(at + timedelta(seconds=7), real)
        assert reads[-1][0]
        rebuilt_at = len(reads) - 1
        # read again with the same values: no rebuild, the same rows
        slow[0] = slow_figures(full, at, ZONE)
        same = check(at + timedelta(seconds=8), real)
        assert not reads[-1][0] and reads[-1][2] == 0
        assert all(any(r is b for b in before["centres"]) for r in same["centres"])
        # then with history arriving late (yesterday's served of one centre) and a judged dossier
        # (the Decision 766 index and so the ranks move): those rows only, no full rebuild
        yesterday = (at.astimezone(ZONE) - timedelta(days=1)).date()
        store.conn.execute("INSERT INTO daily_centre (centre, day, served, called, wait_sum) VALUES ('c03', %s, 40, 40, 24000)",
                           (yesterday,))
        store.conn.execute("INSERT INTO dossiers (centre, code, day, dissatisfied) VALUES ('c08', 'd1', %s, true), "
                           "('c09', 'd2', %s, false)", (yesterday, yesterday))
        slow[0] = slow_figures(full, at, ZONE)
        moved = check(at + timedelta(seconds=10), real)
        assert not reads[-1][0] and reads[-1][1] == 0 and reads[-1][2] == 3  # c03, c08, c09 rebuilt, no SQL ...
        ranked = {r["centre"]: r["rank_766"] for r in moved["centres"]}
        assert ranked["c09"] == 1 and ranked["c08"] == 2  # ... and the ranks put in
    finally:
        inc.close()
        full.close()
        store.close()
    # one full build, then changes only (but for the slow part whose groups changed)
    assert reads[0][0] and not any(f for i, (f, _, _) in enumerate(reads[1:], start=1) if i != rebuilt_at)
    assert reads[1][1] == 3 and reads[1][1] < len(centres)  # the first batch's three centres, not all twelve
    assert reads[4][1] == 2  # the link and the device: their two centres


def test_recent_warnings_judged_again_alone_equal_judging_everything() -> None:
    """What a bucket re-read does to a centre nothing else moved (region.warnings.with_recent_warnings)
    equals judging all its warnings again, in the same order, for every mix of link, long waits and
    recent figures; the warnings it does not judge again stay the same dicts; and when
    region.warnings.recent_moved says new figures change nothing, they do change nothing."""
    from itertools import product

    from region.warnings import centre_warnings, recent_moved, with_recent_warnings

    t = OpenAllDay(ZONE, offline_after_minutes=20)
    now = datetime(2026, 12, 6, 9, 0, tzinfo=timezone.utc)
    quiet = {"issued_recent": 2, "called_recent": 2, "ratings_recent": 0, "rating_recent": None, "ratings_before": 0,
             "rating_before": None}
    surge = {**quiet, "issued_recent": 30, "called_recent": 4}
    more = {**quiet, "issued_recent": 31, "called_recent": 4}
    sour = {**quiet, "ratings_recent": 8, "rating_recent": 1.5, "ratings_before": 20, "rating_before": 3.6}
    both = {**surge, **{k: v for k, v in sour.items() if "rating" in k}}
    links = [{}, {"bridge_online": False}, {"last_heard_at": now - timedelta(minutes=30)}]
    group = {"centre": "c1", "group": "ho-tich", "name": "Hộ tịch", "threshold_minutes": 10, "waiting": 3}
    waits = [[], [{**group, "longest_since": now - timedelta(minutes=15)}],  # past its threshold: "vừa", as growing
             [{**group, "longest_since": now - timedelta(minutes=25)}]]
    for link, groups, old, new in product(links, waits, [quiet, surge, sour, both], [quiet, surge, more, sour, both]):
        row = {"centre": "c1", "name": "Phường 1", "waiting": 12, "bridge_online": True, "server_online": True,
               "last_heard_at": now, **link}
        before = centre_warnings(row, groups, old, now, t)
        again = with_recent_warnings(row, before, new, t)
        assert again == centre_warnings(row, groups, new, now, t)
        if not recent_moved(row, old, new, t):  # region.overview keeps the warnings as they were: rightly
            assert again == before
        kept = [w for w in before if w["kind"] not in ("growing", "satisfaction")]
        assert [w for w in again if any(w is k for k in kept)] == kept
