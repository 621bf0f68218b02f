"""The province view counts each centre's remote numbers, appointments, no-shows and lapsed
bookings today, and the mean wait of each kind (a booked ticket's from its check-in), from the
events the centres publish (parsed as the catch-up parses them, stored in the machine's
PostgreSQL), and the province export carries the columns. The figures are maintained by the write
path (``booking_days``, issue 19) and must equal what the day's events say, computed by the events
query they replace (tests/helpers/region.py), whatever the order the events arrive in."""

from __future__ import annotations

import csv
import io
import itertools
import random
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import psycopg

from region.bookings import TodayBookings, add_booking_figures, booking_figures
from region.deltas import Deltas
from region.dashboard import export_csv
from region.overview import Overview
from region.report import figures, recent_figures, slow_figures
from region.store import SCHEMA_VERSION, Store
from region.validate import RegionEvent, parse_logged
from region.warnings import Thresholds
from tests.helpers.region import GROUPS, bookings_match_events

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


def logged(n: int, kind: str, at: datetime, **data: object) -> dict[str, object]:
    """One row of a centre's event log as the catch-up reads it (private fields included: the
    parser must drop them)."""
    return {"seq": n, "id": f"{n:026d}", "type": kind, "at": at.isoformat(),
            "data": {"ticket_id": f"t{n}", "group": "ho-tich", "actor": "kiosk-1", **data}}


def test_remote_numbers_and_lapsed_bookings_are_counted_per_centre(pg: str) -> None:
    now = datetime.now(timezone.utc)
    morning = datetime.combine(now.astimezone(ZONE).date(), datetime.min.time(), ZONE) + timedelta(minutes=1)
    yesterday = morning - timedelta(days=1)
    rows = [
        logged(1, "ticket.issued", morning, source="kiosk-1"),                                   # walk-in
        logged(2, "ticket.issued", morning, source="remote", booking="remote", booking_id="b1"),
        logged(3, "ticket.issued", morning, source="remote", booking="remote", booking_id="b2"),
        logged(4, "ticket.issued", morning, source="appointment", booking="appointment", booking_id="b3"),
        logged(5, "ticket.no_show", morning, counter=None, reason="lapsed"),                     # b2 never came
        logged(6, "ticket.no_show", morning, counter=1),                                         # a walk-in absent
        logged(7, "ticket.issued", yesterday, source="remote", booking="remote", booking_id="b0"),  # not today
        # waits: the walk-in called 8 min after its issue; remote b1, taken at home, checked in 50 min
        # later and called 10 min after that (its wait is 10, not 60); appointment b3 called 5 min in
        logged(9, "ticket.called", morning + timedelta(minutes=8), ticket_id="t1", counter=1),
        logged(10, "booking.checked_in", morning + timedelta(minutes=50), ticket_id="t2", booking_id="b1"),
        logged(11, "ticket.called", morning + timedelta(minutes=60), ticket_id="t2", counter=1),
        logged(12, "ticket.called", morning + timedelta(minutes=5), ticket_id="t4", counter=2),
    ]
    events = [parse_logged("c1", row) for row in rows] + [parse_logged("c2", logged(8, "ticket.issued", morning))]
    assert all("source" not in e.data for e in events)  # what the region keeps is public
    store = Store.connect(pg, ZONE)
    store.create_schema()
    store.register_centres([("c1", "Phường Một", "Phường Một"), ("c2", "Phường Hai", "Phường Hai")])
    store.store_batch(events, [], [])
    store.close()
    with psycopg.connect(pg) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        found = booking_figures(conn, now, ZONE)
        assert found["c1"] == {"remote": 2, "appointment": 1, "no_show": 2, "lapsed": 1, "remote_share": 50.0,
                               "wait_walk_in_minutes": 8.0, "wait_remote_minutes": 10.0, "wait_appointment_minutes": 5.0}
        assert found["c2"]["remote"] == 0 and found["c2"]["remote_share"] == 0.0
        result = add_booking_figures(figures(conn, now, ZONE, Thresholds(ZONE)), conn, now, ZONE)
        one = add_booking_figures(figures(conn, now, ZONE, Thresholds(ZONE), centre="c2"), conn, now, ZONE, "c2")
    by_centre = {row["centre"]: row for row in result["centres"]}
    assert (by_centre["c1"]["remote"], by_centre["c1"]["lapsed"], by_centre["c1"]["issued"]) == (2, 1, 4)
    assert [row["centre"] for row in one["centres"]] == ["c2"] and one["centres"][0]["remote"] == 0
    table = list(csv.reader(io.StringIO(export_csv(result["centres"], ZONE).decode("utf-8-sig"))))
    header = next(r for r in table if "Số trực tuyến hôm nay" in r)
    c1 = next(r for r in table if r and r[0] == "c1")
    assert c1[header.index("Số trực tuyến hôm nay")] == "2" and c1[header.index("Số hẹn không đến")] == "1"
    assert c1[header.index("Chờ TB số trực tuyến, từ khi đến (phút)")] in ("10.0", "10,0", "10")


def booking_day(centre: str, start: datetime, n: int, rng: random.Random) -> list[RegionEvent]:
    """A centre's day as its engine writes it (server/engine.py): walk-ins; remote numbers taken from
    home (ticket.issued with ``booking = "remote"`` hours before), most checked in and called from
    their check-in, some lapsed (booking.lapsed + ticket.no_show ``reason = "lapsed"``), a few called
    before they checked in (a check-in logged late); appointments (ticket.issued and
    booking.checked_in together at the kiosk); recalls, no-shows; a few tickets of the evening called
    after midnight (counted on no day)."""
    out: list[RegionEvent] = []
    group = lambda: rng.choice(GROUPS)  # noqa: E731
    for i in range(n):
        tid, g = f"t{centre}{start:%d}{i}", group()
        ev = lambda what, when, **data: out.append(RegionEvent(  # noqa: E731
            centre, f"{tid}-{len(out)}", what, when, {"ticket_id": tid, "group": g, **data}, None, "mqtt"))
        at = start + timedelta(seconds=rng.uniform(0, 8 * 3600))
        kind = rng.choices(["walk_in", "remote", "appointment"], [5, 3, 2])[0]
        queued = at
        if kind == "walk_in":
            ev("ticket.issued", at, number=i, **({"booking": None} if rng.random() < 0.3 else {}))
        elif kind == "remote":
            ev("ticket.issued", at, number=i, booking="remote", booking_id=f"b{tid}")
            if rng.random() < 0.2:  # never came: its turn passed
                lapse = at + timedelta(minutes=rng.uniform(20, 120))
                ev("booking.lapsed", lapse, booking_id=f"b{tid}", kind="remote", reason="grace_passed")
                ev("ticket.no_show", lapse, counter=None, calls=0, reason="lapsed")
                continue
            queued = at + timedelta(minutes=rng.uniform(5, 180))
            ev("booking.checked_in", queued, booking_id=f"b{tid}", kind="remote", late=False)
        else:
            ev("ticket.issued", at, number=i, booking="appointment", booking_id=f"b{tid}", queue_since=at.isoformat())
            ev("booking.checked_in", at, booking_id=f"b{tid}", kind="appointment", late=rng.random() < 0.2)
        if rng.random() < 0.1:
            continue  # still waiting
        wait = rng.uniform(0, 50 * 60)
        called = queued + timedelta(seconds=wait)
        if kind == "remote" and rng.random() < 0.05:  # called, and its check-in logged a minute after the call
            ev("booking.checked_in", called + timedelta(minutes=1), booking_id=f"b{tid}", kind="remote", late=False)
        ev("ticket.called", called, counter=1, call=1, first_call=True, wait_seconds=wait)
        for k in range(rng.choice([0, 0, 0, 1, 2])):  # recalls
            ev("ticket.called", called + timedelta(minutes=k + 1), counter=1, call=k + 2, first_call=False, wait_seconds=wait)
        if rng.random() < 0.1:
            ev("ticket.no_show", called + timedelta(minutes=4), counter=1, calls=2)
        else:
            ev("ticket.finished", called + timedelta(minutes=6), counter=1)
    for i in range(3):  # issued at 23:50, called after midnight: on no day's waits
        tid, g = f"t{centre}{start:%d}late{i}", group()
        evening = datetime.combine(start.astimezone(ZONE).date(), datetime.min.time(), ZONE) + timedelta(hours=23, minutes=50)
        out.append(RegionEvent(centre, f"{tid}-i", "ticket.issued", evening, {"ticket_id": tid, "group": g, "number": 900 + i}, None, "mqtt"))
        out.append(RegionEvent(centre, f"{tid}-c", "ticket.called", evening + timedelta(minutes=20),
                               {"ticket_id": tid, "group": g, "call": 1, "first_call": True, "wait_seconds": 1200}, None, "mqtt"))
    return out


def booking_days_of(centres: list[str], now: datetime, rng: random.Random) -> list[RegionEvent]:
    """Yesterday's and today's (up to ``now``) events of every centre."""
    events: list[RegionEvent] = []
    today = datetime.combine(now.astimezone(ZONE).date(), datetime.min.time(), ZONE)
    for centre in centres:
        for start in (today - timedelta(days=1) + timedelta(hours=7, minutes=30), today + timedelta(hours=7, minutes=30)):
            events += booking_day(centre, start, 70, rng)
    return events


def test_maintained_booking_figures_equal_the_events_query_whatever_the_order(pg: str) -> None:
    """booking_days, kept by the write path, gives what the events query gave (tests/helpers/region.py)
    for yesterday and today, with every event stored twice, shuffled, in batches: an issue, a check-in
    or a call may come before or after the others, in the same batch or another."""
    rng = random.Random(1915)
    now = datetime.now(timezone.utc)
    centres = ["c1", "c2", "c3"]
    events = booking_days_of(centres, now, rng)
    twice = events + [RegionEvent(e.centre, e.id, e.kind, e.at, e.data, None, "http") for e in events]
    rng.shuffle(twice)
    store = Store.connect(pg, ZONE)
    store.create_schema()
    store.register_centres((c, f"Phường {c}", "") for c in centres)
    new, at = 0, 0
    while at < len(twice):
        size = rng.randint(1, 60)
        new += store.store_batch(twice[at:at + size], [], [])
        at += size
    store.close()
    assert new == len(events)
    with psycopg.connect(pg) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        assert bookings_match_events(conn, ZONE) >= 2
        today = booking_figures(conn, now, ZONE)
        assert set(today) == set(centres)
        for row in today.values():  # the day has every kind, its waits and lapses
            assert row["remote"] and row["appointment"] and row["lapsed"] and row["no_show"] > row["lapsed"]
            assert all(row[f"wait_{k}_minutes"] is not None for k in ("walk_in", "remote", "appointment"))
        assert booking_figures(conn, now, ZONE, "c2") == {"c2": today["c2"]}


def test_a_check_in_logged_after_the_call_moves_the_wait_once(pg: str) -> None:
    """A remote number called 60 min after it was taken at home, whose check-in (50 min after) comes
    in a later batch (the catch-up): its wait goes from 60 to 10 min, and a repeat changes nothing."""
    morning = datetime.combine(datetime.now(ZONE).date(), datetime.min.time(), ZONE) + timedelta(hours=8)
    issued = parse_logged("c1", logged(1, "ticket.issued", morning, booking="remote", booking_id="b1"))
    called = parse_logged("c1", logged(2, "ticket.called", morning + timedelta(minutes=60), ticket_id="t1", call=1))
    checked = parse_logged("c1", logged(3, "booking.checked_in", morning + timedelta(minutes=50), ticket_id="t1", booking_id="b1"))
    store = Store.connect(pg, ZONE)
    store.create_schema()
    store.register_centres([("c1", "Phường Một", "")])

    def wait() -> float | None:
        return booking_figures(store.conn, morning, ZONE)["c1"]["wait_remote_minutes"]

    store.store_batch([called], [], [])
    assert booking_figures(store.conn, morning, ZONE) == {}  # a call alone: no ticket issued today yet
    store.store_batch([issued, called], [], [])
    assert wait() == 60.0
    store.store_batch([checked], [], [])
    assert wait() == 10.0
    store.store_batch([checked, issued, called], [], [])
    assert wait() == 10.0
    assert store.conn.execute("SELECT remote, remote_called, remote_wait_us FROM booking_days").fetchall() == [(1, 1, 600_000_000)]
    store.close()


def test_a_schema_5_database_gets_its_booking_figures_from_the_stored_events(pg: str) -> None:
    rng = random.Random(6)
    now = datetime.now(timezone.utc)
    store = Store.connect(pg, ZONE)
    store.create_schema()
    store.register_centres([("c1", "Phường Một", ""), ("c2", "Phường Hai", "")])
    events = booking_days_of(["c1", "c2"], now, rng)
    week_ago = [RegionEvent(e.centre, "old-" + e.id, e.kind, e.at - timedelta(days=7),
                            {**e.data, "ticket_id": "old-" + e.data["ticket_id"]}, None, "http")
                for e in booking_days_of(["c1"], now, rng)]  # (a ticket id is never used twice)
    for i in range(0, len(events), 200):  # each ticket's events mostly in one batch, in the order written
        store.store_batch(events[i:i + 200] + week_ago[i:i + 200], [], [])
    assert bookings_match_events(store.conn, ZONE) >= 4
    # back to schema 5: no booking tables
    store.conn.execute("DROP TABLE booking_days, ticket_waits")
    store.conn.execute("UPDATE schema_version SET version = 5")
    store.close()
    again = Store.connect(pg, ZONE)
    again.create_schema(now)
    assert again.conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] == SCHEMA_VERSION
    # today and the two days before are filled (BOOKING_FILL_DAYS); a week ago is not: nothing reads it
    since = (now - timedelta(days=2)).astimezone(ZONE).date()
    assert bookings_match_events(again.conn, ZONE, since) >= 2
    assert again.conn.execute("SELECT min(day) FROM booking_days").fetchone()[0] >= since
    # the tickets still pruned-young are kept: a check-in arriving now moves its wait like before
    assert again.conn.execute("SELECT count(*) FROM ticket_waits").fetchone()[0] > 0
    late = [e for e in events if e.kind == "booking.checked_in"][:1]
    again.store_batch([RegionEvent(e.centre, e.id + "-again", e.kind, e.at - timedelta(minutes=1), e.data, None, "http")
                       for e in late], [], [])
    assert bookings_match_events(again.conn, ZONE, since) >= 2
    again.close()


def test_a_batch_folds_a_tickets_events_the_same_in_any_order() -> None:
    """region.deltas: what one batch keeps of a ticket (its kind and issue, first check-in, first
    call, latest event) does not depend on the order its events come in."""
    t0 = datetime(2026, 3, 3, 1, 0, tzinfo=timezone.utc)
    story = [("ticket.issued", t0, {"booking": "remote"}), ("booking.checked_in", t0 + timedelta(minutes=40), {}),
             ("booking.checked_in", t0 + timedelta(minutes=45), {}), ("ticket.called", t0 + timedelta(minutes=50), {}),
             ("ticket.called", t0 + timedelta(minutes=52), {}), ("ticket.no_show", t0 + timedelta(minutes=55), {"reason": "x"})]
    seen = set()
    for order in itertools.permutations(story):
        deltas = Deltas()
        for kind, at, data in order:
            deltas.add_booking("c1", kind, at, "t1", data, lambda at: at.astimezone(ZONE).date())
        w = deltas.waits[("c1", "t1")]
        seen.add((w.kind, w.issued_at, w.checked_at, w.called_at, w.last_at, tuple(deltas.booking_days[("c1", t0.date())])))
    assert seen == {("remote", t0, t0 + timedelta(minutes=40), t0 + timedelta(minutes=50), t0 + timedelta(minutes=52),
                     (1, 1, 0, 1, 0))}


def test_the_snapshot_rereads_only_the_changed_centres_and_equals_a_full_read(pg: str) -> None:
    """region.bookings.TodayBookings (the dashboard's shared snapshot): after each batch, what it
    holds equals a full read, though it re-read only the rows of the centres the batch touched."""
    rng = random.Random(77)
    now = datetime.now(timezone.utc)
    centres = ["c1", "c2", "c3", "c4"]
    events = [e for e in booking_days_of(centres, now, rng) if e.at.astimezone(ZONE).date() == now.astimezone(ZONE).date()]
    rng.shuffle(events)
    store = Store.connect(pg, ZONE)
    store.create_schema()
    store.register_centres((c, f"Phường {c}", "") for c in centres)
    store.store_batch(events[:100], [], [])
    today = TodayBookings(ZONE)
    with psycopg.connect(pg, autocommit=True) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        assert today.figures(conn, now) == booking_figures(conn, now, ZONE) and today.read == len(centres)
        rest = events[100:]
        for i in range(0, len(rest), 40):
            one = rest[i:i + 40]
            mine = [e for e in one if e.centre == one[0].centre]  # one centre's events this time
            store.store_batch(mine, [], [])
            assert dict(today.figures(conn, now)) == booking_figures(conn, now, ZONE)
            assert today.read == 1
            store.store_batch(one, [], [])
            assert dict(today.figures(conn, now)) == booking_figures(conn, now, ZONE)
        assert today.figures(conn, now) == booking_figures(conn, now, ZONE) and today.read == 0  # nothing changed
    store.close()


def test_the_dashboard_reads_booking_figures_and_rows_from_one_snapshot(pg: str) -> None:
    """The dashboard reads today's booking figures inside the overview's own REPEATABLE READ
    transaction (region.overview ``Overview.refresh(also=...)`` with ``TodayBookings.read_in``): a
    batch committed between the overview's reads and the booking read is in neither the rows nor
    the booking columns of that refresh, and the next refresh reads it into both (nothing missed
    between two snapshots, and only the centre it changed is read again)."""
    rng = random.Random(78)
    now = datetime.now(timezone.utc)
    centres = ["c1", "c2", "c3"]
    events = [e for e in booking_days_of(centres, now, rng) if e.at.astimezone(ZONE).date() == now.astimezone(ZONE).date()]
    late = [e for e in events if e.centre == "c2"][-30:]
    early = [e for e in events if e not in late]
    store = Store.connect(pg, ZONE)
    store.create_schema()
    store.register_centres((c, f"Phường {c}", "") for c in centres)
    store.store_batch(early, [], [])
    thresholds = Thresholds(ZONE)
    kept, today = Overview(ZONE, thresholds), TodayBookings(ZONE)
    with psycopg.connect(pg, autocommit=True) as conn, psycopg.connect(pg, autocommit=True) as other:
        for c in (conn, other):
            c.execute("SET TIME ZONE 'UTC'")
        slow, recent = slow_figures(other, now, ZONE), recent_figures(other, now, ZONE, thresholds)

        def rows_then_bookings(reading: psycopg.Connection, snapshot: str) -> None:
            store.store_batch(late, [], [])  # committed by another connection while the refresh reads
            today.read_in(reading, now, snapshot)

        before_rows = figures(other, now, ZONE, thresholds, slow=slow, recent=recent)["centres"]
        before_bookings = booking_figures(other, now, ZONE)
        got = kept.refresh(conn, now, slow, recent, also=rows_then_bookings)
        assert got["centres"] == before_rows
        assert dict(today.current) == before_bookings
        after_bookings = booking_figures(other, now, ZONE)
        assert after_bookings["c2"] != before_bookings["c2"]  # the late batch moves c2's figures
        got = kept.refresh(conn, now, slow, recent, also=lambda reading, snapshot: today.read_in(reading, now, snapshot))
        assert got["centres"] == figures(other, now, ZONE, thresholds, slow=slow, recent=recent)["centres"]
        assert got["centres"] != before_rows
        assert dict(today.current) == after_bookings and today.read == 1
    store.close()
