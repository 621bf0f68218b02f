"""The province view counts each centre's remote numbers, appointments, no-shows and lapsed
bookings today, and the mean wait of each kind (a booked ticket's from its check-in), from the events the centres publish (parsed as the catch-up parses them, stored
in the machine's PostgreSQL), and the province export carries the columns."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import psycopg

from region.bookings import add_booking_figures, booking_figures
from region.dashboard import export_csv
from region.report import figures
from region.store import Store
from region.validate import parse_logged
from region.warnings import Thresholds

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
