"""Bookings through the service and a real SQLite file: a restart on a later day keeps the
appointments made before it, no-shows of earlier days count, and phones are deleted on time."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from server.booking_service import BookingDesk
from server.booking_slots import slot_starts
from server.engine import QueueError
from server.phones import PhoneVault
from server.service import CentreService
from server.storage import Storage
from tests.booking_support import booking_config
from tests.helpers.centre import ManualClock

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
MONDAY_0830 = datetime(2026, 3, 2, 8, 30, tzinfo=HCM).astimezone(timezone.utc)


async def open_desk(path: Path, config, clock, vault) -> tuple[Storage, BookingDesk]:
    storage = await Storage.open(path, config.zone)
    service = await CentreService.start(config, storage, clock)
    return storage, BookingDesk(service, vault)


async def test_a_restart_on_a_later_day_keeps_appointments_counts_no_shows_and_forgets_phones(tmp_path: Path) -> None:
    config = booking_config(keep_phone_days=0, no_show_limit=1)
    clock = ManualClock(MONDAY_0830)
    vault = PhoneVault(secrets.token_bytes(32))
    database = tmp_path / "centre.sqlite3"
    storage, desk = await open_desk(database, config, clock, vault)
    tuesday_0800 = slot_starts(config, MONDAY_0830.astimezone(HCM).date() + timedelta(days=1))[1]
    key_a, key_b = vault.key("0912345678"), vault.key("0987654321")
    appointment = await desk.make("appointment", "ho-tich", key_a, vault.seal("0912345678"), "10.0.0.1",
                                  actor="citizen", slot=tuesday_0800)
    remote = await desk.make("remote", "ho-tich", key_b, vault.seal("0987654321"), "10.0.0.2", actor="citizen")
    assert desk.contact_for_ticket(remote["ticket_id"]) is not None
    clock.now = MONDAY_0830 + timedelta(hours=8, minutes=10)  # 16:40: the manager closes the day
    await desk.service.run(lambda engine, now: (None, engine.close_day(now)), actor="quanly")
    await storage.close()

    clock.now = tuesday_0800 - timedelta(minutes=15)  # Tuesday 07:45: a walk-in opens the day
    storage, desk = await open_desk(database, config, clock, vault)
    await desk.service.run(lambda engine, now: engine.issue("chung-thuc", now))
    await storage.close()
    clock.now = tuesday_0800 - timedelta(minutes=10)  # 07:50: the server restarts; today's log starts at 07:45
    storage, desk = await open_desk(database, config, clock, vault)
    await desk.load_contacts()
    assert appointment["id"] in desk.service.engine.bookings  # made on Monday, replayed from before Tuesday
    checked = await desk.check_in("kiosk-1", code=appointment["code"])  # the day opens with this command
    assert checked["status"] == "checked_in" and checked["ticket"]["booking"] == "appointment"
    assert vault.open(desk.contact_for_ticket(checked["ticket_id"])) == "+84912345678"
    # Monday's remote number never checked in: it lapsed when the day closed, a no-show for its phone
    monday = await storage.bookings_of_day("2026-03-02")
    assert [(b["kind"], b["status"]) for b in monday] == [("remote", "lapsed")]
    assert "phone_key" not in monday[0]
    clock.now = tuesday_0800 + timedelta(minutes=30)
    try:
        await desk.make("remote", "chung-thuc", key_b, None, "10.0.0.2", actor="citizen")
    except QueueError as error:
        assert error.code == "no_show_limit"
    else:
        raise AssertionError("a phone at the no-show limit booked again")
    # keep_phone_days = 0: Monday's phones go at the first tick of Tuesday, Tuesday's stay
    await desk.tick()
    rows = await (await storage.db.execute("SELECT day FROM booking_contacts")).fetchall()
    assert [r[0] for r in rows] == ["2026-03-03"]
    await storage.close()


async def test_the_database_refuses_a_seat_twice(tmp_path: Path) -> None:
    """The engine assigns seats; should it ever be wrong, the table's UNIQUE key refuses the booking."""
    config = booking_config()
    clock = ManualClock(MONDAY_0830)
    storage, desk = await open_desk(tmp_path / "c.sqlite3", config, clock, PhoneVault(secrets.token_bytes(32)))
    slot = slot_starts(config, MONDAY_0830.astimezone(HCM).date())[5]
    made = await desk.make("appointment", "ho-tich", "k1", None, None, actor="t", slot=slot)
    import sqlite3

    import pytest

    with pytest.raises(sqlite3.IntegrityError):
        await storage.db.execute(
            "INSERT INTO bookings (id, kind, day, grp, slot, seat, made_day, made_at, phone_key, code_hash, token_hash, status) "
            "SELECT 'bX', kind, day, grp, slot, seat, made_day, made_at, 'k2', 'c', 't', status FROM bookings WHERE id = ?",
            (made["id"],))
    await storage.close()


async def test_old_phones_are_deleted_even_when_the_clock_stops_the_lapses(tmp_path: Path) -> None:
    """A clock set back refuses the tick's lapses until a manager confirms it; the deletion of
    phones older than ``keep_phone_days`` must not wait for that."""
    import pytest

    config = booking_config(keep_phone_days=0)
    clock = ManualClock(MONDAY_0830)
    vault = PhoneVault(secrets.token_bytes(32))
    storage, desk = await open_desk(tmp_path / "c.sqlite3", config, clock, vault)
    await desk.make("remote", "ho-tich", vault.key("0912345678"), vault.seal("0912345678"), "10.0.0.1", actor="citizen")
    clock.now = MONDAY_0830 + timedelta(hours=8, minutes=10)
    await desk.service.run(lambda engine, now: (None, engine.close_day(now)), actor="quanly")
    clock.now = MONDAY_0830 + timedelta(days=1)  # Tuesday 08:30: a remote number, its turn comes before it is here
    await desk.make("remote", "ho-tich", vault.key("0987654321"), vault.seal("0987654321"), "10.0.0.2", actor="citizen")
    await desk.service.run(lambda engine, now: (None, engine.open_counter(1, "canbo1", now)), actor="canbo1")
    await desk.service.run(lambda engine, now: engine.issue("ho-tich", now), actor="kiosk-1")
    await desk.service.run(lambda engine, now: engine.call_next(1, now), actor="canbo1")
    clock.now += timedelta(minutes=40)
    await desk.service.run(lambda engine, now: engine.issue("ho-tich", now), actor="kiosk-1")
    clock.now -= timedelta(minutes=20)  # set back 20 minutes; the held number's grace has passed
    with pytest.raises(QueueError) as refused:
        await desk.tick()
    assert refused.value.code == "clock_suspect"
    rows = await (await storage.db.execute("SELECT day FROM booking_contacts")).fetchall()
    assert [r[0] for r in rows] == ["2026-03-03"]
    await storage.close()


async def test_a_deleted_phone_is_gone_from_the_database_files(tmp_path: Path) -> None:
    """``forget_contacts`` deletes the sealed phone, and its bytes do not stay behind in a free
    page of the file or in the WAL (PRAGMA secure_delete): a copied disk gives nothing back."""
    config = booking_config()
    clock = ManualClock(MONDAY_0830)
    vault = PhoneVault(secrets.token_bytes(32))
    path = tmp_path / "c.sqlite3"
    storage, desk = await open_desk(path, config, clock, vault)
    sealed = vault.seal("0912345678")
    await desk.make("remote", "ho-tich", vault.key("0912345678"), sealed, "10.0.0.1", actor="citizen")
    await storage.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert sealed.encode() in path.read_bytes()  # written to the database file itself
    assert await storage.forget_contacts("2026-03-04") == 1
    await storage.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    files = [path, path.with_name(path.name + "-wal")]
    assert not any(sealed.encode() in f.read_bytes() for f in files if f.exists())
    await storage.close()
