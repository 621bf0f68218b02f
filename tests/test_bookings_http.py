"""Bookings over HTTP on a real centre (SQLite file, uvicorn), one-time codes sent through the real
Gammu SMSD spool, and 64 clients racing for the last seats of a slot."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from luot.config import parse_config
from server import booking_service
from server.booking_slots import slot_starts
from server.notify.gammu import decode_smsbackup
from tests.engine_support import sample_data
from tests.helpers.centre import ManualClock, device_auth, running_centre, staff_auth
from tests.helpers.gammu import GammuSpool

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
MONDAY_0830 = datetime(2026, 3, 2, 8, 30, tzinfo=HCM).astimezone(timezone.utc)
PHONE = "0912 345 678"


def centre_config(tmp_path: Path, **booking):
    data = sample_data()
    # Gammu's spool without its daemon: the notifier hands the SMS to the outbox folder, where the
    # test reads it (sending it on is tests/test_notify_sms.py's business)
    data["notify"] = {"channels": ["sms"], "gammu_config": str(GammuSpool(tmp_path / "gammu").config)}
    data["booking"] = booking
    return parse_config(data, "test")


async def sms_sent_to(outbox: Path, seen: dict[Path, str], pattern: str) -> re.Match[str]:
    """The first SMS handed to Gammu's outbox (the notifier sends in the background) whose text
    matches ``pattern``, among those not seen yet or already seen; every message read is kept in
    ``seen`` (path -> text)."""
    for _ in range(400):
        for path in sorted(p for p in outbox.glob("*.smsbackup") if p not in seen):
            message = decode_smsbackup(path)
            assert message["number"] == "+84912345678"
            seen[path] = message["text"]
        for text in seen.values():
            found = re.search(pattern, text)
            if found:
                return found
        await asyncio.sleep(0.025)
    raise AssertionError(f"no SMS matching {pattern!r} reached Gammu's outbox: {list(seen.values())}")


async def code_sent_to(outbox: Path, seen: dict[Path, str]) -> str:
    """The one-time code in the next code SMS handed to Gammu's outbox (the notifier sends in the
    background); every message seen is kept in ``seen`` (path -> text)."""
    for _ in range(400):
        for path in sorted(p for p in outbox.glob("*.smsbackup") if p not in seen):
            message = decode_smsbackup(path)
            assert message["number"] == "+84912345678"
            seen[path] = message["text"]
            found = re.search(r"Mã xác nhận Luot: (\d{6})", message["text"])
            if found:
                return found.group(1)
        await asyncio.sleep(0.025)
    raise AssertionError(f"no code SMS reached Gammu's outbox: {list(seen.values())}")


async def test_a_citizen_books_from_the_phone_and_checks_in_at_the_kiosk(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(booking_service, "CHECKIN_FAILURES_ALL", 11)  # the centre-wide limit, reached below
    clock = ManualClock(MONDAY_0830)
    config = centre_config(tmp_path)
    async with running_centre(tmp_path, config, clock=clock) as runtime:
        officer = await staff_auth(runtime)
        kiosk = device_auth(runtime, "kiosk-1")
        seen: dict[Path, str] = {}
        outbox = tmp_path / "gammu" / "spool" / "outbox"
        async with httpx.AsyncClient(base_url=runtime.base_url) as http:
            slots = (await http.get("/api/v1/bookings/slots", params={"group": "ho-tich"})).json()
            assert slots["open_from"] == "08:00" and slots["days"][0] == "2026-03-02"
            assert slots["slots"][0]["time"] == "09:00" and slots["slots"][0]["left"] == 2  # 08:30 has begun

            refused = await http.post("/api/v1/bookings/code", json={"phone": "12345"})
            assert refused.status_code == 400 and refused.json()["error"] == "phone_invalid"
            assert (await http.post("/api/v1/bookings/code", json={"phone": PHONE})).status_code == 202
            code = await code_sent_to(outbox, seen)
            wrong = await http.post("/api/v1/bookings", json={"phone": PHONE, "code": "000000" if code != "000000" else "111111",
                                                               "group": "ho-tich", "kind": "remote"})
            assert wrong.status_code == 400 and wrong.json()["message"]

            walk_in = (await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=kiosk)).json()
            made = await http.post("/api/v1/bookings", json={"phone": PHONE, "code": code, "group": "ho-tich", "kind": "remote"})
            assert made.status_code == 201, made.text
            remote = made.json()
            assert remote["kind"] == "remote" and remote["number"] == walk_in["number"] + 1
            assert remote["ticket"]["booking"] == "remote" and remote["ticket"]["checked_in"] is False
            assert remote["ticket"]["ahead"] == 1 and remote["ticket"]["wait_text"]
            assert re.fullmatch(r"[A-Z0-9]{8}", remote["code"]) and remote["tracking_url"].endswith("/t/" + remote["token"])
            # the tracking token is the ticket's: the existing tracking page follows it
            assert (await http.get(f"/api/v1/track/{remote['token']}")).json()["number"] == remote["number"]

            clock.advance(minutes=2)  # the one-time code's resend gap
            assert (await http.post("/api/v1/bookings/code", json={"phone": PHONE})).status_code == 202
            code = await code_sent_to(outbox, seen)
            slot = slot_starts(config, clock.now.astimezone(HCM).date() + timedelta(days=1))[0]
            appointment = (await http.post("/api/v1/bookings", json={
                "phone": PHONE, "code": code, "group": "chung-thuc", "kind": "appointment",
                "slot": slot.isoformat()})).json()
            assert appointment["slot_time"] == "07:30" and appointment["ticket"] is None

            clock.advance(minutes=2)
            assert (await http.post("/api/v1/bookings/code", json={"phone": PHONE})).status_code == 202
            code = await code_sent_to(outbox, seen)
            third = await http.post("/api/v1/bookings", json={"phone": PHONE, "code": code, "group": "ho-tich",
                                                               "kind": "remote"})
            assert third.status_code == 409 and third.json()["error"] == "phone_group_limit"
            assert "lĩnh vực" in third.json()["message"]
            # refused before the code was checked: the same code still books another group
            other = await http.post("/api/v1/bookings", json={"phone": PHONE, "code": code, "group": "dat-dai",
                                                               "kind": "remote"})
            assert other.status_code == 201, other.text

            # the kiosk: a USB scanner types the QR's whole URL
            anonymous = await http.post("/api/v1/bookings/check-in", json={"token": remote["tracking_url"]})
            assert anonymous.status_code == 401
            checked = await http.post("/api/v1/bookings/check-in", json={"token": remote["tracking_url"]}, headers=kiosk)
            assert checked.status_code == 200, checked.text
            assert checked.json()["status"] == "checked_in" and checked.json()["ticket"]["checked_in"] is True
            again = await http.post("/api/v1/bookings/check-in", json={"code": remote["code"]}, headers=kiosk)
            assert again.status_code == 404  # a used code opens nothing
            too_early = await http.post(f"/api/v1/bookings/{appointment['id']}/check-in", headers=officer)
            assert too_early.status_code == 409 and too_early.json()["error"] == "booking_other_day"

            listing = (await http.get("/api/v1/bookings", headers=officer)).json()
            assert [b["number"] for b in listing["bookings"]] == [remote["number"], other.json()["number"]]
            assert (await http.get("/api/v1/bookings", headers=kiosk)).status_code == 403
            cancelled = await http.post(f"/api/v1/bookings/by-token/{appointment['token']}/cancel")
            assert cancelled.json()["status"] == "cancelled"

            # guessing codes through a kiosk: the used code above was one unknown code, nine more...
            for n in range(9):
                guess = await http.post("/api/v1/bookings/check-in", json={"code": f"AAAA{n:04d}"}, headers=kiosk)
                assert guess.status_code == 404
            stopped = await http.post("/api/v1/bookings/check-in", json={"code": other.json()["code"]}, headers=kiosk)
            assert stopped.status_code == 429 and stopped.json()["error"] == "checkin_rate"
            unknown_id = await http.post("/api/v1/bookings/no-such-booking/check-in", headers=officer)
            assert unknown_id.status_code == 404  # a pick from the desk's list is not a guess: not counted
            wrong = await http.post("/api/v1/bookings/check-in", json={"code": "AAAA9999"}, headers=officer)
            assert wrong.status_code == 404  # the help desk is another actor: its own first wrong code...
            by_code = await http.post("/api/v1/bookings/check-in", json={"code": other.json()["code"]}, headers=officer)
            assert by_code.status_code == 429 and by_code.json()["error"] == "checkin_rate"  # ...the centre's 11th
            desk_checked = await http.post(f"/api/v1/bookings/{other.json()['id']}/check-in", headers=officer)
            assert desk_checked.status_code == 200, desk_checked.text  # from the list, still

        # "your turn is near" reached the booking's phone (server/notify/turn.py, fed by the desk; the
        # notifier sends in the background, so the test waits for the file)
        await sms_sent_to(outbox, seen, rf"trước bạn \(số {remote['number']}, Hộ tịch\)")
        # and only the sealed contact keeps the phone

        desk = runtime.app.state.bookings
        sealed = desk.contact_for_ticket(remote["ticket_id"])
        assert runtime.app.state.vault.open(sealed) == "+84912345678"
        assert desk.contact_for_ticket(walk_in["id"]) is None
        database = sqlite3.connect(runtime.storage.path)
        dump = "\n".join(database.iterdump())
        database.close()
        for secret in ("912345678", remote["code"], remote["token"]):
            assert secret not in dump
        # nor the phone's local prefix, typed or masked ("0912 ...", "0912***678"), anywhere but inside
        # the dump's random hexadecimal ids and hashes (an event id once held "0912" by chance: the
        # test failed about once in many runs), which are 15 hex digits or more; a 10-digit phone is not
        assert "0912" not in re.sub(r"[0-9a-f]{12,}", "", dump)


async def test_64_clients_racing_for_the_last_seats_book_exactly_the_capacity(tmp_path: Path) -> None:
    clock = ManualClock(MONDAY_0830)
    config = centre_config(tmp_path, slot_capacity=3)
    async with running_centre(tmp_path, config, clock=clock) as runtime:
        desk = runtime.app.state.bookings
        slot = slot_starts(config, clock.now.astimezone(HCM).date() + timedelta(days=2))[4]
        await desk.make("appointment", "dat-dai", "first-phone", None, None, actor="test", slot=slot)

        async def client(n: int):
            try:
                return await desk.make("appointment", "dat-dai", f"phone-{n}", None, f"10.0.{n}.1", actor="test", slot=slot)
            except Exception as error:  # noqa: BLE001 - the refusals are what is counted
                return error

        results = await asyncio.gather(*(client(n) for n in range(64)))
        booked = [r for r in results if isinstance(r, dict)]
        refused = [r for r in results if not isinstance(r, dict)]
        assert len(booked) == 2 and {getattr(r, "code", None) for r in refused} == {"slot_full"}
        row = await (await runtime.storage.db.execute(
            "SELECT COUNT(*), COUNT(DISTINCT seat) FROM bookings WHERE slot = ? AND grp = 'dat-dai' AND status = 'booked'",
            (slot.isoformat(),))).fetchone()
        assert tuple(row) == (3, 3)


async def test_luot_booking_makes_lists_checks_in_and_cancels_as_json(tmp_path: Path, monkeypatch, capsys) -> None:
    from luot.cli import main
    from luot.config import DEFAULT_CONFIG

    clock = ManualClock(MONDAY_0830)
    config = centre_config(tmp_path)
    async with running_centre(tmp_path, config, clock=clock) as runtime:
        await staff_auth(runtime)
        sessions = "SELECT COUNT(*) FROM sessions"
        open_before = (await (await runtime.storage.db.execute(sessions)).fetchone())[0]
        monkeypatch.setenv("LUOT_PASSWORD", "matkhau-123")
        where = ["--server", runtime.base_url, "--user", "canbo1", "--config", str(DEFAULT_CONFIG),
                 "--data", str(tmp_path / "var")]

        async def luot(*argv: str) -> tuple[int, dict]:
            status = await asyncio.to_thread(main, ["booking", *argv, *where])
            return status, json.loads(capsys.readouterr().out)

        status, made = await luot("make", "--group", "ho-tich", "--phone", PHONE)
        assert status == 0 and made["kind"] == "remote" and made["number"] == 1001
        slot = slot_starts(config, clock.now.astimezone(HCM).date())[6].isoformat()
        status, appointment = await luot("make", "--group", "ho-tich", "--phone", "0987654321", "--slot", slot)
        assert status == 0 and appointment["slot"] == slot
        status, refused = await luot("make", "--group", "ho-tich", "--phone", PHONE)
        assert status == 1 and refused["error"] == "phone_group_limit"
        status, checked = await luot("check-in", made["code"])
        assert status == 0 and checked["status"] == "checked_in"
        status, cancelled = await luot("cancel", appointment["id"])
        assert status == 0 and cancelled["status"] == "cancelled"
        status, listed = await luot("list", "--day", "2026-03-02")
        assert status == 0
        assert {(b["kind"], b["status"]) for b in listed["bookings"]} == {("remote", "checked_in"), ("appointment", "cancelled")}
        assert "phone_key" not in listed["bookings"][0]
        # every command signed out again: no session left behind (luot.staff_http.signed_in)
        assert (await (await runtime.storage.db.execute(sessions)).fetchone())[0] == open_before


async def test_a_remote_numbers_turn_is_sent_once_through_gammu(tmp_path: Path) -> None:
    """booking.turn_reached (the line reached a remote number not checked in): its phone gets "Đã
    đến lượt bạn … xác nhận tại máy lấy số trong 15 phút" once (dedupe key ``turn:<ticket>``), read
    back from Gammu SMSD's spool; a walk-in's turn sends nothing."""
    clock = ManualClock(MONDAY_0830)
    async with running_centre(tmp_path, centre_config(tmp_path), clock=clock) as runtime:
        officer = await staff_auth(runtime)
        outbox = tmp_path / "gammu" / "spool" / "outbox"
        async with httpx.AsyncClient(base_url=runtime.base_url) as http:
            made = await http.post("/api/v1/bookings/staff", json={"phone": PHONE, "group": "ho-tich", "kind": "remote"},
                                   headers=officer)
            assert made.status_code == 201, made.text
            remote = made.json()
        service = runtime.service
        await service.run(lambda e, now: (None, e.open_counter(1, "canbo1", now)), actor="canbo1")
        await service.run(lambda e, now: e.issue("ho-tich", now), actor="kiosk-1")  # a walk-in behind it
        await service.run(lambda e, now: e.call_next(1, now), actor="canbo1")  # the remote number's turn: held
        turns = [e for e in await runtime.storage.events_after(0, 1000) if e["type"] == "booking.turn_reached"]
        assert [t["data"]["ticket_id"] for t in turns] == [remote["ticket_id"]]
        seen: dict[Path, str] = {}
        found = await sms_sent_to(outbox, seen, r"Đã đến lượt bạn \(số (\d+), Hộ tịch\): xin đến Trung tâm và xác nhận "
                                                r"tại máy lấy số trong (\d+) phút\. / It is your turn")
        assert found.groups() == (str(remote["number"]), "15")
        for _ in range(3):  # later commits (more calls, recalls) queue nothing more for it
            await service.run(lambda e, now: e.issue("ho-tich", now), actor="kiosk-1")
        outbox_db = sqlite3.connect(tmp_path / "var" / "notify-outbox.sqlite3")
        keys = [row[0] for row in outbox_db.execute("SELECT dedupe_key FROM outbox WHERE kind = 'turn'")]
        outbox_db.close()
        assert keys == [f"turn:{remote['ticket_id']}"]
        assert sum("Đã đến lượt bạn" in text for text in seen.values()) == 1


async def test_the_running_server_deletes_phones_after_the_configured_days_on_its_own(tmp_path: Path, monkeypatch) -> None:
    """Retention is a job of the running server, not only a function: with ``booking.keep_phone_days``
    = 1 and ``[notify] keep_phone_days`` = 1, a Monday booking's sealed phone (``booking_contacts``)
    and the Monday message's outbox row are still there on Tuesday and gone on Wednesday, deleted by
    the server's own periodic tasks (the booking tick and the notifier's sweep; their periods are
    shortened here, nothing calls them)."""
    from server.notify import notifier as notifier_module

    monkeypatch.setattr(booking_service, "TICK_SECONDS", 0.05)
    monkeypatch.setattr(notifier_module, "SWEEP_SECONDS", 0.05)
    monkeypatch.setattr(notifier_module, "IDLE_SECONDS", 0.05)
    data = sample_data()
    data["notify"] = {"channels": ["sms"], "gammu_config": str(GammuSpool(tmp_path / "gammu").config), "keep_phone_days": 1}
    data["booking"] = {"keep_phone_days": 1}
    clock = ManualClock(MONDAY_0830)
    async with running_centre(tmp_path, parse_config(data, "test"), clock=clock) as runtime:
        officer = await staff_auth(runtime)
        async with httpx.AsyncClient(base_url=runtime.base_url) as http:
            made = await http.post("/api/v1/bookings/staff", json={"phone": PHONE, "group": "ho-tich", "kind": "remote"},
                                   headers=officer)
            assert made.status_code == 201, made.text
        notifier = runtime.app.state.notifier
        assert notifier.enqueue("test:monday", runtime.app.state.vault.seal(PHONE), "Luot: thử / test", "test")

        async def contacts() -> list[str]:
            rows = await (await runtime.storage.db.execute("SELECT day FROM booking_contacts")).fetchall()
            return [r[0] for r in rows]

        async def outbox_holds() -> bool:
            return notifier.outbox.status_of("test:monday") is not None

        async def sent() -> bool:
            return notifier.outbox.status_of("test:monday")["status"] == "sent"

        async def gone() -> bool:
            return not await contacts() and not await outbox_holds()

        async def until(condition, what: str) -> None:
            for _ in range(200):
                if await condition():
                    return
                await asyncio.sleep(0.025)
            raise AssertionError(what)

        assert await contacts() == ["2026-03-02"]
        await until(sent, "the test message was not handed to Gammu")
        clock.now = MONDAY_0830 + timedelta(hours=23)  # Tuesday 07:30: one day kept, nothing goes
        await asyncio.sleep(0.4)  # several ticks and sweeps
        assert await contacts() == ["2026-03-02"] and await outbox_holds()
        clock.now = MONDAY_0830 + timedelta(days=2)  # Wednesday: Monday's phone is older than a day
        await until(gone, "the running server kept Monday's phones past keep_phone_days")
        assert runtime.app.state.bookings.contact_for_ticket(made.json()["ticket_id"]) is None


async def test_the_phone_page_is_small_and_can_choose_a_group_with_what_one_request_brings(tmp_path: Path) -> None:
    """Fast on a cheap phone: the page, its script and styles are all from this server, together
    under 40 KB, and the centre's groups are written into the page (no API call before choosing)."""
    async with running_centre(tmp_path, centre_config(tmp_path), clock=ManualClock(MONDAY_0830)) as runtime, \
            httpx.AsyncClient(base_url=runtime.base_url) as http:
        page = await http.get("/dat-so")
        assert page.status_code == 200
        assets = re.findall(r'<(?:script[^>]*\bsrc|link[^>]*\bhref)="([^"]+)"', page.text)
        assert assets and all(a.startswith("/static/") for a in assets), assets
        sizes = {"/dat-so": len(page.content)}
        for asset in assets:
            answer = await http.get(asset)
            assert answer.status_code == 200, asset
            sizes[asset] = len(answer.content)
        assert sum(sizes.values()) < 40_000, sizes
        embedded = json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>', page.text, re.S).group(1))
        assert {g["name"] for g in embedded["groups"]} == {g.name for g in runtime.config.groups}
