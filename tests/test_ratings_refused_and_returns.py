"""Issue 18, the rest: refused ratings are refused with a reason AND counted (metric and report)
with nothing partial stored; a citizen coming back for a result gets a results-group ticket from
the receipt at the kiosk, with the appointment date, and the report counts early and late comers."""

from __future__ import annotations

from datetime import timedelta

import httpx

from server.engine import QueueError
from luot.config import parse_config
from tests.engine_support import at, make_config, new_engine, sample_data
from tests.helpers.centre import ManualClock, device_auth, running_centre, staff_auth

MON = 2


def results_config():
    """The sample centre with a results group ([centre] results_group = "khac")."""
    data = sample_data()
    data["centre"]["results_group"] = "khac"
    return parse_config(data, "results")


def test_engine_counts_refusals_and_a_replay_counts_the_same() -> None:
    engine = new_engine(make_config())
    events = engine.refuse_feedback("already_rated", "pad-1", 1, at(MON, 9)) + engine.refuse_feedback("rating", None, None, at(MON, 9, 1), source="track")
    assert engine.refused_ratings == {("already_rated", "pad"): 1, ("rating", "track"): 1}
    assert [e.type for e in events] == ["feedback.refused", "feedback.refused"]
    assert all("rating" not in e.data and "reasons" not in e.data for e in events), "nothing of the rating is kept"
    again = new_engine(make_config())
    again.replay(events)
    assert again.refused_ratings == engine.refused_ratings
    # a pad that keeps sending bad ratings is recorded up to the day's cap, then only logged
    from server.engine import REFUSALS_RECORDED_PER_DAY, RateLimited

    ticket, more = engine.issue("ho-tich", at(MON, 9, 2))
    for _ in range(REFUSALS_RECORDED_PER_DAY):
        engine.refuse_feedback("already_rated", "pad-1", 1, at(MON, 9, 3))
    try:
        engine.refuse_feedback("already_rated", "pad-1", 1, at(MON, 9, 4))
        raise AssertionError("the cap did not hold")
    except RateLimited as capped:
        assert capped.code == "refusals_capped"
    assert engine.refuse_feedback("rating", "pad-2", 2, at(MON, 9, 4))  # another pad is still counted


def test_engine_return_ticket_carries_the_appointment_and_how_early_or_late() -> None:
    engine = new_engine(make_config())
    try:
        engine.issue_return("H29-1", None, at(MON, 9))
        raise AssertionError("a centre without a results group issued a results ticket")
    except QueueError as refused:
        assert refused.code == "no_results_group"
    engine = new_engine(results_config())
    ticket, events = engine.issue_return("H29-261206-0007", at(MON, 9).date() + timedelta(days=3), at(MON, 9))
    assert ticket.group == "khac" and ticket.returns_dossier == "H29-261206-0007"
    assert events[-1].data["return_days"] == -3 and events[-1].data["appointment"] == "2026-03-05"
    try:
        engine.issue_return("H29-261206-0007", None, at(MON, 9, 5))
        raise AssertionError("a second waiting ticket for the same dossier was issued")
    except QueueError as refused:
        assert refused.code == "return_waiting" and "đã có số" in refused.message


async def test_bad_ratings_are_refused_counted_and_leave_nothing(tmp_path) -> None:
    clock = ManualClock()
    async with running_centre(tmp_path, config=results_config(), clock=clock) as centre, httpx.AsyncClient(base_url=centre.base_url) as http:
        kiosk, officer, pad, other_pad = (device_auth(centre, "kiosk-1"), await staff_auth(centre),
                                          device_auth(centre, "pad-1"), device_auth(centre, "pad-2"))
        manager = await staff_auth(centre, "quanly", "manager")
        first = (await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=kiosk)).json()
        await http.post("/api/v1/counters/1/open", headers=officer)
        await http.post("/api/v1/counters/1/call-next", headers=officer)

        async def refused(body: dict, headers: dict, status: int, words: str) -> None:
            answer = await http.post("/api/v1/feedback", json=body, headers=headers)
            assert answer.status_code == status and words in answer.json()["message"], answer.text

        rating = {"ticket_id": first["id"], "rating": 5, "scale": 5}
        await refused(rating, pad, 409, "sau khi được phục vụ")  # not yet served
        for step in ("start", "finish"):
            await http.post(f"/api/v1/counters/1/{step}", headers=officer)
        await refused({**rating, "rating": 9}, pad, 400, "Mức hài lòng phải từ 1 đến 5")  # unknown level
        await refused({**rating, "rating": 0}, pad, 400, "Mức hài lòng")
        await refused(rating, other_pad, 400, "quầy của thiết bị")  # another counter's pad
        assert (await http.post("/api/v1/feedback", json=rating, headers=pad)).status_code == 200
        await refused({**rating, "rating": 1, "reasons": ["wait"]}, pad, 409, "đã được đánh giá")  # twice
        track = await http.post(f"/api/v1/track/{first['token']}/feedback", json={"rating": 2, "scale": 5})
        assert track.status_code == 409

        cursor = await centre.service.storage.db.execute("SELECT ticket_id, level, reasons FROM feedback")
        assert [tuple(r) for r in await cursor.fetchall()] == [(first["id"], 5, "[]")], "only the one good rating is stored"
        metrics = (await http.get("/metrics")).text
        for line in ('luot_ratings_refused_total{reason="not_finished",source="pad"} 1.0',
                     'luot_ratings_refused_total{reason="rating",source="pad"} 2.0',
                     'luot_ratings_refused_total{reason="wrong_counter",source="pad"} 1.0',
                     'luot_ratings_refused_total{reason="already_rated",source="pad"} 1.0',
                     'luot_ratings_refused_total{reason="already_rated",source="track"} 1.0'):
            assert line in metrics, line
        report = (await http.get("/api/v1/reports/satisfaction", headers=manager)).json()
        assert {(r["code"], r["source"]): r["count"] for r in report["refused"]} == {
            ("rating", "pad"): 2, ("not_finished", "pad"): 1, ("wrong_counter", "pad"): 1,
            ("already_rated", "pad"): 1, ("already_rated", "track"): 1}
        assert report["refused"][0]["name"] == "Mức đánh giá không có"

        # -- a citizen comes back with the receipt: a results ticket with the appointment date
        today = centre.service.config.service_day(clock())
        before = await centre.service.storage.count_tickets()
        bad = await http.post("/api/v1/tickets/return", json={"receipt": "xin chào|a"}, headers=kiosk)
        assert bad.status_code == 422 and bad.json()["message"].startswith("Không đọc được mã QR")
        assert await centre.service.storage.count_tickets() == before, "a malformed QR issues nothing"
        late_day = (today - timedelta(days=2)).strftime("%d/%m/%Y")
        scanned = f"https://dvc.example.gov.vn/tra-cuu?maHoSo=H29-000-0001&maTTHC=1.001234&ngayHenTra={late_day}"
        late = await http.post("/api/v1/tickets/return", json={"receipt": scanned}, headers=kiosk)
        assert late.status_code == 201, late.text
        late = late.json()
        assert (late["group"], late["returns_dossier"], late["return_days"]) == ("khac", "H29-000-0001", 2)
        assert late["appointment"] == (today - timedelta(days=2)).isoformat() and late["tracking_url"]
        # a typed code: the appointment comes from the dossier Luot stored when it was received
        second = (await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=kiosk)).json()
        await http.post("/api/v1/counters/1/call-next", headers=officer)
        await http.post(f"/api/v1/tickets/{second['id']}/dossier", headers=officer,
                        json={"code": "H29-000-0002", "appointment": (today + timedelta(days=5)).isoformat()})
        early = (await http.post("/api/v1/tickets/return", json={"receipt": "H29-000-0002"}, headers=kiosk)).json()
        assert (early["appointment"], early["return_days"]) == ((today + timedelta(days=5)).isoformat(), -5)
        followed = (await http.get(f"/api/v1/track/{early['token']}")).json()["dossiers"]  # the tracking page follows it
        assert [(d["code"], d["appointment"], d["days_left"]) for d in followed] == [
            ("H29-000-0002", (today + timedelta(days=5)).isoformat(), 5)]
        received = (await http.get(f"/api/v1/track/{second['token']}")).json()["dossiers"]
        assert received[0]["days_left"] == 5 and received[0]["status"] == "received"
        rows = (await http.get("/api/v1/reports/satisfaction?by=month", headers=manager)).json()["rows"]
        month = rows[0]
        assert month["key"] == today.isoformat()[:7] and month["name"] == f"Tháng {today:%m/%Y}"
        assert (month["returns_early"], month["returns_on_day"], month["returns_late"]) == (1, 0, 1)
        assert month["responses"] == 1 and month["level_5"] == 1
        by_officer = (await http.get("/api/v1/reports?by=officer", headers=manager)).json()["rows"]
        mine = [r for r in by_officer if r["key"] == "canbo1"]
        assert mine and mine[0]["issued"] == mine[0]["called"] == 2, "an officer's tickets are not 0"
        csv_text = (await http.get("/api/v1/reports/satisfaction.csv?by=month", headers=manager)).content.decode("utf-8-sig")
        assert "Công dân đến nhận sau ngày hẹn" in csv_text.splitlines()[0]
        # Excel on a Vietnamese Windows: ';' between fields and ',' in decimals, so it opens in columns
        raw = (await http.get("/api/v1/reports/satisfaction.csv?by=month&excel=vi", headers=manager)).content
        assert raw.startswith(b"\xef\xbb\xbf") and not raw[3:].startswith(b"sep=")
        lines = raw.decode("utf-8-sig").splitlines()
        header, first_row = lines[0].split(";"), lines[1].split(";")
        assert len(header) == len(first_row) > 20 and "," not in lines[0]
        assert first_row[header.index("Điểm hài lòng trung bình (0-100)")] == "100,0"


def test_simulated_visitors_rate_five_levels_and_grow_dissatisfied_with_the_wait() -> None:
    from server.simulation import five_level

    moods = [i / 200 for i in range(200)]
    share = {wait: sum(five_level(m, wait, 0.5)[0] <= 2 for m in moods) / len(moods) for wait in (0, 20, 60)}
    assert share[0] < share[20] < share[60] and share[0] <= 0.05 and share[60] >= 0.3
    levels = {five_level(m, 30, 0.5)[0] for m in moods}
    assert levels == {1, 2, 3, 4, 5}
    level, reasons = five_level(0.0, 40, 0.5)
    assert level == 1 and reasons == ["wait"]
    assert five_level(0.0, 0, 0.1) == (1, ["attitude"]) and five_level(0.99, 0, 0.1) == (5, [])


def test_weeks_read_as_vietnamese_offices_say_them() -> None:
    from datetime import date

    from server.reports import periods

    weeks = periods(date(2026, 12, 1), date(2026, 12, 13), "week")
    assert [w[0] for w in weeks] == ["Tuần 49 (01/12–06/12/2026)", "Tuần 50 (07/12–13/12/2026)"]
    assert periods(date(2026, 12, 28), date(2027, 1, 3), "week")[0][0] == "Tuần 53 (28/12/2026–03/01/2027)"
