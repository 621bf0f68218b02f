"""Ratings as the province counts them (issue 18): five levels with reasons, tied to the ticket,
officer, procedure and dossier, once per ticket and only after service; and four-face ratings
stored before the five levels still report with their own words."""

from __future__ import annotations

import json
import sqlite3
from datetime import date, datetime, timezone

import pytest

from luot.config import load_config
from luot.protocol import legacy_rating, level_of
from server.engine import Invalid, QueueError
from server.storage import MIGRATIONS, Storage
from tests.engine_support import at, make_config, new_engine

MON = 2  # 2 March 2026 is a Monday


def served(engine, counter: int = 1, officer: str = "lan", minute: int = 0):
    """One ticket issued, called and finished at ``counter``; returns (ticket, events)."""
    events = engine.open_counter(counter, officer, at(MON, 7, 30)) if engine.counters[counter].status == "closed" else []
    ticket, more = engine.issue("ho-tich", at(MON, 8, minute))
    events += more
    events += engine.call_next(counter, at(MON, 8, minute + 1))[1]
    return ticket, events


def test_five_levels_with_reasons_tied_to_officer_procedure_and_dossier() -> None:
    engine = new_engine(make_config())
    ticket, _ = served(engine)
    with pytest.raises(QueueError) as early:  # called, not yet finished
        engine.record_feedback(ticket.id, 5, "pad-1", 1, at(MON, 8, 2), scale=5)
    assert early.value.code == "not_finished"
    engine.attach_dossier(ticket.id, "000.00.12.H29-261202-0001", at(MON, 8, 3), appointment=date(2026, 3, 9))
    engine.finish(1, at(MON, 8, 5))
    refusals = [
        (dict(rating=6, scale=5), "rating"),
        (dict(rating=2, scale=3), "rating_scale"),
        (dict(rating=3, scale=5, reasons=["wait"]), "rating_reason"),  # 'bình thường' is not asked why
        (dict(rating=1, scale=5, reasons=["rude"]), "rating_reason"),
    ]
    for kwargs, code in refusals:
        with pytest.raises(Invalid) as refused:
            engine.record_feedback(ticket.id, device="pad-1", counter=1, now=at(MON, 8, 6), **kwargs)
        assert refused.value.code == code and refused.value.message  # a Vietnamese reason
    assert not engine.tickets[ticket.id].rated  # nothing half-stored by a refusal
    [event] = engine.record_feedback(ticket.id, 2, "pad-1", 1, at(MON, 8, 6), scale=5, reasons=["wait", "attitude", "wait"])
    assert {k: event.data[k] for k in (
        "ticket_id", "officer", "group", "counter", "level", "scale", "reasons", "dossier", "source", "rating")} == {
        "ticket_id": ticket.id, "officer": "lan", "group": "ho-tich", "counter": 1, "level": 2, "scale": 5,
        "reasons": ["wait", "attitude"], "dossier": "000.00.12.H29-261202-0001", "source": "pad", "rating": 1}
    engine.replay([event])
    with pytest.raises(QueueError) as twice:  # from the tracking page this time: still one per ticket
        engine.record_feedback(ticket.id, 5, None, None, at(MON, 8, 7), scale=5, source="track")
    assert twice.value.code == "already_rated"


def test_four_face_pad_still_rates_and_maps_onto_five_levels() -> None:
    engine = new_engine(make_config())
    ticket, _ = served(engine)
    engine.finish(1, at(MON, 8, 5))
    with pytest.raises(Invalid):
        engine.record_feedback(ticket.id, 5, "pad-1", 1, at(MON, 8, 6))  # four faces: 1..4
    [event] = engine.record_feedback(ticket.id, 1, "pad-1", 1, at(MON, 8, 6))
    assert (event.data["level"], event.data["scale"], event.data["rating"]) == (2, 4, 1)
    assert [level_of(r, 4) for r in (4, 3, 2, 1)] == [5, 4, 3, 2]
    assert [legacy_rating(level) for level in (5, 4, 3, 2, 1)] == [4, 3, 2, 1, 1]


async def test_ratings_stored_as_four_faces_are_migrated_with_their_words(tmp_path) -> None:
    """A database written before the five levels (schema 4): its ratings keep their words."""
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    for number, script in enumerate(MIGRATIONS[:4], start=1):
        db.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
    for n, rating in enumerate((4, 3, 2, 1, 4), start=1):
        ticket_id = f"t{n}"
        db.execute("INSERT INTO tickets (id, day, number, grp, token, status, issued_at, counter, officer, rating) "
                   "VALUES (?, '2026-03-02', ?, 'ho-tich', ?, 'done', '2026-03-02T01:00:00+00:00', 1, 'lan', ?)",
                   (ticket_id, 1000 + n, f"tok{n}", rating))
        db.execute("INSERT INTO events (id, type, at, day, data) VALUES (?, 'feedback.recorded', '2026-03-02T02:00:00+00:00', "
                   "'2026-03-02', ?)", (f"e{n}", json.dumps({"ticket_id": ticket_id, "group": "ho-tich", "counter": 1,
                                                             "officer": "lan", "rating": rating, "device": "pad-1"})))
        db.execute("INSERT INTO satisfaction_daily (day, grp, counter, officer, rating, n) VALUES ('2026-03-02', 'ho-tich', 1, 'lan', ?, 1) "
                   "ON CONFLICT DO UPDATE SET n = n + 1", (rating,))
    # a dossier attached from a scanned receipt (its procedure code in the event) and a typed one
    for code, procedure in (("HS-1", "1.000001"), ("HS-2", None)):
        db.execute("INSERT INTO dossiers (code, ticket_id, day, grp, status, attached_at, updated_at) VALUES "
                   "(?, 't1', '2026-03-02', 'ho-tich', 'received', '2026-03-02T01:30:00+00:00', '2026-03-02T01:30:00+00:00')", (code,))
        db.execute("INSERT INTO events (id, type, at, day, data) VALUES (?, 'dossier.attached', '2026-03-02T01:30:00+00:00', "
                   "'2026-03-02', ?)", (f"d-{code}", json.dumps({"ticket_id": "t1", "code": code, "procedure": procedure})))
    db.commit()
    db.close()
    storage = await Storage.open(path, load_config().zone)
    try:
        rows = await storage.satisfaction(date(2026, 3, 2), date(2026, 3, 2), by="officer")
        assert rows == [{"officer": "lan", "ratings": {"2": 1, "3": 1, "4": 1, "5": 2}, "responses": 5, "index": 70.0}]
        cursor = await storage.db.execute("SELECT ticket_id, level, scale FROM feedback ORDER BY ticket_id")
        assert [tuple(r) for r in await cursor.fetchall()] == [("t1", 5, 4), ("t2", 4, 4), ("t3", 3, 4), ("t4", 2, 4), ("t5", 5, 4)]
        cursor = await storage.db.execute("SELECT rating FROM tickets ORDER BY id")
        assert [r[0] for r in await cursor.fetchall()] == [5, 4, 3, 2, 5]
        assert [(await storage.dossier(code))["procedure"] for code in ("HS-1", "HS-2")] == ["1.000001", None]
    finally:
        await storage.close()


async def test_pad_and_tracking_page_rate_over_http_once_and_only_after_service(tmp_path) -> None:
    import httpx

    from tests.helpers.centre import device_auth, running_centre, staff_auth

    async with running_centre(tmp_path) as centre, httpx.AsyncClient(base_url=centre.base_url) as http:
        kiosk, officer, pad = device_auth(centre, "kiosk-1"), await staff_auth(centre), device_auth(centre, "pad-1")
        first = (await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=kiosk)).json()
        second = (await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=kiosk)).json()
        assert (await http.get("/api/v1/centre")).json()["rating_scale"] == 5
        track = f"/api/v1/track/{second['token']}/feedback"
        assert (await http.get(track)).json() == {"open": False, "rated": False, "scale": 5}
        early = await http.post(track, json={"rating": 5, "scale": 5})
        assert early.status_code == 409 and "sau khi được phục vụ" in early.json()["message"]
        await http.post("/api/v1/counters/1/open", headers=officer)
        await http.post("/api/v1/counters/1/call-next", headers=officer)
        await http.post("/api/v1/tickets/%s/dossier" % first["id"], json={"code": "H29.12-261206-0007", "appointment": "2026-12-20"},
                        headers=officer)
        for step in ("start", "finish", "call-next", "start"):
            assert (await http.post(f"/api/v1/counters/1/{step}", headers=officer)).status_code == 200, step
        bad = [{"ticket_id": first["id"], "rating": 9, "scale": 5}, {"ticket_id": first["id"], "rating": 2, "scale": 5, "reasons": ["rude"]},
               {"ticket_id": first["id"], "rating": 4, "scale": 5, "reasons": ["wait"]}]
        for body in bad:
            answer = await http.post("/api/v1/feedback", json=body, headers=pad)
            assert answer.status_code in (400, 422) and answer.json()["message"], body
        rated = await http.post("/api/v1/feedback", json={"ticket_id": first["id"], "rating": 1, "scale": 5,
                                                           "reasons": ["wait", "documents"]}, headers=pad)
        assert rated.status_code == 200, rated.text
        again = await http.post(f"/api/v1/track/{first['token']}/feedback", json={"rating": 5, "scale": 5})
        assert again.status_code == 409 and again.json()["message"] == "Vé này đã được đánh giá."
        await http.post("/api/v1/counters/1/finish", headers=officer)
        assert (await http.get(track)).json() == {"open": True, "rated": False, "scale": 5}
        assert (await http.post(track, json={"rating": 4, "scale": 5})).status_code == 200
        assert (await http.get(track)).json() == {"open": False, "rated": True, "scale": 5}
        assert (await http.post(track, json={"rating": 4, "scale": 5})).status_code == 409
        assert (await http.post("/api/v1/track/not-a-token/feedback", json={"rating": 4, "scale": 5})).status_code == 404
        cursor = await centre.service.storage.db.execute(
            "SELECT ticket_id, level, scale, reasons, dossier, source, officer, grp FROM feedback ORDER BY at")
        assert [tuple(r) for r in await cursor.fetchall()] == [
            (first["id"], 1, 5, '["wait", "documents"]', "H29.12-261206-0007", "pad", "canbo1", "ho-tich"),
            (second["id"], 4, 5, "[]", None, "track", "canbo1", "ho-tich")]
        dossier = (await http.get("/api/v1/dossiers/H29.12-261206-0007", headers=officer)).json()
        assert dossier["appointment"] == "2026-12-20"


async def test_decision_766_index_per_dossier_with_ratings_reasons_and_csv(tmp_path) -> None:
    """Four dossiers: one fine, one rated 'không hài lòng', one rated 'rất không hài lòng' and
    overdue, one unrated and overdue; plus a rated ticket without a dossier. Index = 1/4 = 25 %."""
    import csv
    import io
    from datetime import timedelta

    import httpx

    from tests.helpers.centre import ManualClock, device_auth, running_centre, staff_auth

    clock = ManualClock()
    async with running_centre(tmp_path, clock=clock) as centre, httpx.AsyncClient(base_url=centre.base_url) as http:
        kiosk, officer, pad = device_auth(centre, "kiosk-1"), await staff_auth(centre), device_auth(centre, "pad-1")
        manager = await staff_auth(centre, "quanly", "manager")
        today = centre.service.config.service_day(clock())
        past, future = (today - timedelta(days=1)).isoformat(), (today + timedelta(days=10)).isoformat()
        plan = [("HS-0001", future, 5, []), ("HS-0002", future, 2, ["wait"]), ("HS-0003", past, 1, ["attitude", "wait"]),
                ("HS-0004", past, None, []), (None, None, 4, [])]
        await http.post("/api/v1/counters/1/open", headers=officer)
        for code, appointment, level, reasons in plan:
            ticket = (await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=kiosk)).json()
            clock.advance(minutes=10 if level and level < 3 else 2)  # the dissatisfied waited longer
            for step in ("call-next", "start"):
                assert (await http.post(f"/api/v1/counters/1/{step}", headers=officer)).status_code == 200
            if code:  # three scanned from receipts with their procedure codes, the fourth typed
                procedure = {"HS-0001": "1.000001", "HS-0002": "1.000001", "HS-0003": "2.000002"}.get(code)
                body = {"code": f"maHoSo={code};maTTHC={procedure}" if procedure else code, "appointment": appointment}
                assert (await http.post(f"/api/v1/tickets/{ticket['id']}/dossier", json=body, headers=officer)).status_code == 200
            assert (await http.post("/api/v1/counters/1/finish", headers=officer)).status_code == 200
            if level:
                rated = await http.post("/api/v1/feedback", headers=pad,
                                        json={"ticket_id": ticket["id"], "rating": level, "scale": 5, "reasons": reasons})
                assert rated.status_code == 200, rated.text
        assert (await http.get("/api/v1/reports/satisfaction", headers=officer)).status_code == 403
        rows = (await http.get("/api/v1/reports/satisfaction?by=officer", headers=manager)).json()["rows"]
        assert [r["key"] for r in rows] == ["canbo1", "*"]
        mine = rows[0]
        assert {k: mine[k] for k in ("dossiers", "dossiers_dissatisfied", "dossiers_overdue", "dossiers_complained", "index_766",
                                     "responses", "level_5", "level_4", "level_3", "level_2", "level_1",
                                     "reason_wait", "reason_attitude", "rating_index")} == {
            "dossiers": 4, "dossiers_dissatisfied": 2, "dossiers_overdue": 2, "dossiers_complained": 0, "index_766": 25.0,
            "responses": 4, "level_5": 1, "level_4": 1, "level_3": 0, "level_2": 1, "level_1": 1,
            "reason_wait": 2, "reason_attitude": 1, "rating_index": 50.0}
        assert mine["wait_dissatisfied_minutes"] == pytest.approx(10) and mine["wait_satisfied_minutes"] == pytest.approx(2)
        raw = await http.get("/api/v1/reports/satisfaction.csv?by=officer", headers=manager)
        assert raw.content.startswith(b"\xef\xbb\xbf")
        table = list(csv.reader(io.StringIO(raw.content.decode("utf-8-sig"))))
        assert table[0][6] == "Chỉ số hài lòng theo QĐ 766 (%)" and table[1][6] == "25.0" and table[2][1] == "Toàn trung tâm"
        # per procedure (mã thủ tục from the receipts): the typed dossier and the rating without one have none
        rows = (await http.get("/api/v1/reports/satisfaction?by=procedure", headers=manager)).json()["rows"]
        assert [(r["key"], r["name"], r["dossiers"], r["dossiers_dissatisfied"], r["dossiers_overdue"], r["index_766"],
                 r["responses"]) for r in rows] == [
            ("", "(không có mã thủ tục)", 1, 0, 1, 0.0, 1), ("1.000001", "1.000001", 2, 1, 0, 50.0, 2),
            ("2.000002", "2.000002", 1, 1, 1, 0.0, 1), ("*", "Toàn trung tâm", 4, 2, 2, 25.0, 4)]
        xlsx = await http.get("/api/v1/reports/satisfaction.xlsx?by=officer", headers=manager)
        assert xlsx.status_code == 200 and xlsx.content.startswith(b"PK")
        from openpyxl import load_workbook

        sheet = load_workbook(io.BytesIO(xlsx.content)).active  # Vietnamese headings, English below, numbers as numbers
        assert [c.value for c in sheet[2]][:7] == ["Đối tượng", "Tên", "Tổng số hồ sơ", "Hồ sơ bị đánh giá không hài lòng",
                                                   "Hồ sơ trễ hẹn", "Hồ sơ có phản ánh (Luot không ghi nhận)",
                                                   "Chỉ số hài lòng theo QĐ 766 (%)"]
        assert sheet.cell(3, 7).value == "Decision 766 satisfaction index (%)" and sheet.cell(4, 7).value == 25.0


@pytest.mark.parametrize("text, expected", [
    ("000.00.12.H29-261206-0007", ("000.00.12.H29-261206-0007", None, None)),
    ("https://dvc.example.gov.vn/tra-cuu?maHoSo=000.00.12.H29-261206-0007&maTTHC=1.001234&ngayHenTra=20/12/2026",
     ("000.00.12.H29-261206-0007", "1.001234", "2026-12-20")),
    ('{"MaHoSo": "H29-1", "MaTTHC": "2.000001", "NgayHenTra": "2026-12-20T16:00:00", "HoTen": "Nguyễn Văn A"}',
     ("H29-1", "2.000001", "2026-12-20")),
    ("maHoSo=H29-261206-0007;maTTHC=1.0012;ngayHenTra=20261220", ("H29-261206-0007", "1.0012", "2026-12-20")),
    ("H29-261206-0007|1.001234|20-12-2026", ("H29-261206-0007", "1.001234", "2026-12-20")),
    # the items Circular 01/2023/TT-VPCP (Article 26) puts in the QR, labelled in its own words,
    # one a line, with the identifier (mã định danh), the paper, the system and the publication time
    ("Mã số hồ sơ: 000.00.12.H29-261206-0007\nMã thủ tục hành chính: 1.001234\nMã định danh: 001085012345\n"
     "Tên giấy tờ: Giấy tiếp nhận hồ sơ và hẹn trả kết quả\nHệ thống: Hệ thống thông tin giải quyết TTHC tỉnh\n"
     "Thời điểm xuất bản: 06/12/2026 08:30\nNgày hẹn trả kết quả: 20/12/2026",
     ("000.00.12.H29-261206-0007", "1.001234", "2026-12-20")),
    ("Ma ho so: H29-1|Ma TTHC: 2.000001|Ma dinh danh: 001085012345|Ngay hen tra: 2026-12-20",  # no diacritics
     ("H29-1", "2.000001", "2026-12-20")),
    ("ma_ho_so=H29-1&ma_tthc=2.0&ngay_hen_tra_ket_qua=20261220", ("H29-1", "2.0", "2026-12-20")),
])
def test_receipt_qr_layouts_are_read(text, expected) -> None:
    from server.receipt import parse_receipt

    receipt = parse_receipt(text).to_dict()
    assert (receipt["code"], receipt["procedure"], receipt["appointment"]) == expected
    assert "001085012345" not in repr(parse_receipt(text)) and "Nguyễn" not in repr(parse_receipt(text)), \
        "the identifier and the name in the QR are dropped"


@pytest.mark.parametrize("text, words", [
    ("hello world|x", "Không đọc được mã QR"), ("maHoSo=a b;maTTHC=1", "không có mã hồ sơ hợp lệ"),
    ("H29-1|1.0|31/02/2026", "Ngày hẹn trả"), ("x" * 2000, "quá dài"), ("maHoSo=H29-1;maTTHC=<script>", "Mã thủ tục"),
])
def test_malformed_receipts_are_refused_in_plain_words(text, words) -> None:
    from server.receipt import ReceiptError, parse_receipt

    with pytest.raises(ReceiptError) as refused:
        parse_receipt(text)
    assert words in refused.value.message and refused.value.message_en


async def test_a_scanned_receipt_attaches_its_dossier_with_the_appointment(tmp_path) -> None:
    import httpx

    from tests.helpers.centre import device_auth, running_centre, staff_auth

    async with running_centre(tmp_path) as centre, httpx.AsyncClient(base_url=centre.base_url) as http:
        officer = await staff_auth(centre)
        ticket = (await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=device_auth(centre, "kiosk-1"))).json()
        for step in ("open", "call-next", "start"):
            await http.post(f"/api/v1/counters/1/{step}", headers=officer)
        url = f"/api/v1/tickets/{ticket['id']}/dossier"
        bad = await http.post(url, json={"code": "maHoSo=??;ngayHenTra=hôm nay"}, headers=officer)
        assert bad.status_code == 422 and bad.json()["error"] == "receipt_unreadable" and bad.json()["message"]
        assert centre.service.engine.dossiers == {}, "nothing partial is stored"
        scanned = "https://dvc.example.gov.vn/tra-cuu?maHoSo=000.00.12.H29-261206-0009&maTTHC=1.001234&ngayHenTra=20/12/2026"
        attached = await http.post(url, json={"code": scanned}, headers=officer)
        assert attached.status_code == 200, attached.text
        assert (attached.json()["code"], attached.json()["appointment"]) == ("000.00.12.H29-261206-0009", "2026-12-20")
        typed = await http.post(url, json={"code": "a b"}, headers=officer)  # a typed code keeps the engine's words
        assert typed.status_code == 400 and "Mã hồ sơ chỉ gồm chữ, số" in typed.json()["message"]


def test_luot_receipt_prints_what_it_read_as_json() -> None:
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    good = subprocess.run([sys.executable, "-m", "luot.cli", "receipt", "H29-261206-0007|1.001234|20/12/2026"],
                          cwd=root, capture_output=True, text=True, timeout=60)
    assert good.returncode == 0 and json.loads(good.stdout) == {"ok": True, "code": "H29-261206-0007",
                                                                 "procedure": "1.001234", "appointment": "2026-12-20"}
    bad = subprocess.run([sys.executable, "-m", "luot.cli", "receipt", "xin chào|a"], cwd=root, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and json.loads(bad.stdout)["message"].startswith("Không đọc được mã QR")
