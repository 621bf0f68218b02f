"""Backups and restore (server/backup.py, ``luot backup``, ``luot restore``) and the database's
start-up checks: what an operator sees when a disk dies and a backup is put back, or when the
database file is missing, empty or damaged."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from luot.config import load_config
from server.app import CentreRuntime, RuntimeOptions
from server.backup import (BackupError, BackupScheduler, backups_in, make_backup, prune, restore, run_backup,
                           storage_health)
from server.engine import Event
from server.storage import Storage, StorageError
from tests.helpers.centre import ManualClock, device_auth, running_centre

ROOT = Path(__file__).resolve().parents[1]
CONFIG = load_config()


def luot(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "luot.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def issue(runtime: CentreRuntime, group: str, count: int) -> list[dict]:
    async with httpx.AsyncClient(base_url=runtime.base_url) as http:
        tickets = []
        for _ in range(count):
            answer = await http.post("/api/v1/tickets", json={"group": group}, headers=device_auth(runtime, "kiosk-1"))
            assert answer.status_code == 201, answer.text
            tickets.append(answer.json())
        return tickets


def ticket_rows(database: Path) -> list[tuple]:
    import sqlite3

    db = sqlite3.connect(database)
    try:
        return db.execute("SELECT id, number, grp, token_hash, status FROM tickets ORDER BY id").fetchall()
    finally:
        db.close()


def event_rows(database: Path, up_to: int) -> list[tuple]:
    import sqlite3

    db = sqlite3.connect(database)
    try:
        return db.execute("SELECT seq, id FROM events WHERE seq <= ? ORDER BY seq", (up_to,)).fetchall()
    finally:
        db.close()


async def test_backup_while_live_then_restore_on_a_fresh_directory_continues_the_numbering(tmp_path: Path) -> None:
    clock = ManualClock()
    old = tmp_path / "old"
    async with running_centre(old, clock=clock) as centre:
        before = await issue(centre, "ho-tich", 5) + await issue(centre, "cu-tru", 3)
        made = luot("backup", "--data", str(old / "var"))  # online: the server keeps running
        assert made.returncode == 0, made.stderr
        backup = json.loads(made.stdout)
        assert backup["tickets"] == 8 and backup["size"] == Path(backup["path"]).stat().st_size
        assert len(backup["sha256"]) == 64 and backup["seconds"] >= 0
        saved = ticket_rows(old / "var" / "luot.sqlite3")
        saved_events = event_rows(old / "var" / "luot.sqlite3", backup["last_seq"])
    fresh = tmp_path / "fresh" / "var"
    # no slip went out after the backup (the server stopped with it): nothing to skip
    restored = luot("restore", "--skip-numbers", "0", "--data", str(fresh), backup["path"])
    assert restored.returncode == 0, restored.stderr
    answer = json.loads(restored.stdout)
    assert answer["ok"] and answer["tickets"] == 8 and answer["previous"] is None
    assert {g["skipped"] for g in answer["numbering"]["groups"].values()} == {0}
    assert ticket_rows(fresh / "luot.sqlite3") == saved
    assert answer["next_seq"] > backup["last_seq"] + 100_000  # the province's catch-up sees new events
    assert mode(fresh / "luot.sqlite3") == 0o600 and mode(fresh) == 0o700
    # A restored database is an existing centre: no --init needed, no new first manager.
    runtime = CentreRuntime(CONFIG, RuntimeOptions(data_dir=fresh, http_port=0, mqtt=False, clock=clock))
    await runtime.start()
    try:
        assert not (fresh / "first-login.txt").exists()
        [next_ho_tich] = await issue(runtime, "ho-tich", 1)
        [next_cu_tru] = await issue(runtime, "cu-tru", 1)
        assert next_ho_tich["number"] == max(t["number"] for t in before if t["group"] == "ho-tich") + 1
        assert next_cu_tru["number"] == max(t["number"] for t in before if t["group"] == "cu-tru") + 1
        rows = ticket_rows(fresh / "luot.sqlite3")
        assert len(rows) == 10 and len({(r[2], r[1]) for r in rows}) == 10  # no number twice
        events = await runtime.storage.events_after(0, limit=10_000)
        kept = [(e["seq"], e["id"]) for e in events if e["seq"] <= backup["last_seq"]]
        assert kept == saved_events  # the backup's events keep their ids and seqs: nothing sent twice
        assert min(e["seq"] for e in events if e["seq"] > backup["last_seq"]) >= answer["next_seq"]
    finally:
        await runtime.stop()


async def test_a_restore_during_the_day_never_gives_out_again_a_number_issued_after_the_backup(tmp_path: Path) -> None:
    """The disk dies at 08:45; the last backup is from 08:00. The slips issued in between are in
    citizens' hands: the restored centre's numbering continues past them (server.restore_numbering),
    in every group, not above the highest number in the backup."""
    local = datetime.now(CONFIG.zone)
    monday = (local + timedelta(days=7 - local.weekday())).replace(hour=8, minute=0, second=0, microsecond=0)
    clock = ManualClock(monday.astimezone(timezone.utc))
    old = tmp_path / "old"
    async with running_centre(old, clock=clock) as centre:
        kept = await issue(centre, "ho-tich", 4)
        made = luot("backup", "--data", str(old / "var"))
        assert made.returncode == 0, made.stderr
        backup = Path(json.loads(made.stdout)["path"])
        clock.advance(minutes=40)
        lost = await issue(centre, "ho-tich", 12) + await issue(centre, "cu-tru", 5)  # then the disk dies
    clock.advance(minutes=5)
    fresh = tmp_path / "fresh" / "var"
    answer = restore(CONFIG, fresh, backup, now=clock.now)
    numbering = answer["numbering"]
    assert numbering["day"] == monday.date().isoformat() and numbering["lost_hours"] == 0.75
    assert numbering["groups"]["ho-tich"]["highest_in_backup"] == max(t["number"] for t in kept)
    assert numbering["groups"]["cu-tru"]["highest_in_backup"] is None  # none in the backup, 5 lost
    runtime = CentreRuntime(CONFIG, RuntimeOptions(data_dir=fresh, http_port=0, mqtt=False, clock=clock))
    await runtime.start()
    try:
        after = await issue(runtime, "ho-tich", 3) + await issue(runtime, "cu-tru", 3)
    finally:
        await runtime.stop()
    given = {(t["group"], t["number"]) for t in kept + lost}
    assert not {(t["group"], t["number"]) for t in after} & given
    for group in ("ho-tich", "cu-tru"):
        assert min(t["number"] for t in after if t["group"] == group) == numbering["groups"][group]["next_number"]
    refused = luot("restore", "--skip-numbers", "-3", "--data", str(tmp_path / "other"), str(backup))
    assert refused.returncode == 2 and "must be a whole number from 0" in refused.stderr


async def test_restore_is_refused_while_the_server_runs_on_that_database(tmp_path: Path) -> None:
    async with running_centre(tmp_path) as centre:
        await issue(centre, "ho-tich", 2)
        backup = json.loads(luot("backup", "--data", str(tmp_path / "var")).stdout)
        await issue(centre, "ho-tich", 1)
        refused = luot("restore", "--data", str(tmp_path / "var"), backup["path"])
        assert refused.returncode == 1
        reason = json.loads(refused.stderr)
        assert "running luot server" in reason["message_en"] and reason["message"]
        assert len(ticket_rows(tmp_path / "var" / "luot.sqlite3")) == 3  # nothing replaced under it
    # stopped: the same restore goes through and keeps the replaced database aside
    restored = json.loads(luot("restore", "--data", str(tmp_path / "var"), backup["path"]).stdout)
    assert restored["tickets"] == 2 and len(ticket_rows(Path(restored["previous"]))) == 3


async def test_a_damaged_backup_is_refused_and_the_database_is_left_alone(tmp_path: Path) -> None:
    async with running_centre(tmp_path) as centre:
        await issue(centre, "ho-tich", 2)
    data = tmp_path / "var"
    backup = Path(run_backup(CONFIG, data).path)
    damaged = bytearray(backup.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    backup.write_bytes(bytes(damaged))
    refused = luot("restore", "--data", str(data), str(backup))
    assert refused.returncode == 1 and "checksum" in json.loads(refused.stderr)["message_en"]
    assert len(ticket_rows(data / "luot.sqlite3")) == 2
    assert not list(data.glob("*.before-restore-*"))
    Path(str(backup) + ".sha256").unlink()
    refused = luot("restore", "--data", str(data), str(backup))
    assert refused.returncode == 1 and "checksum file" in json.loads(refused.stderr)["message_en"]


@pytest.mark.parametrize("damage", ["missing", "empty", "corrupt"])
def test_a_missing_empty_or_corrupt_database_stops_the_server_with_the_reason(tmp_path: Path, damage: str) -> None:
    data = tmp_path / "var"
    data.mkdir()
    if damage == "empty":
        (data / "luot.sqlite3").write_bytes(b"")
    elif damage == "corrupt":
        (data / "luot.sqlite3").write_bytes(b"SQLite format 3\x00" + os.urandom(8192))
    started = luot("server", "--data", str(data), "--port", "0", "--no-mqtt", timeout=60)  # before: alive forever
    assert started.returncode == 1
    expected = {"missing": "does not exist; create a new centre with luot server --init",
                "empty": "is empty (0 bytes); create a new centre with luot server --init",
                "corrupt": "file is not a database"}[damage]
    assert expected in started.stderr
    assert not (data / "first-login.txt").exists()  # no new centre, no new manager


async def damaged_database(path: Path) -> None:
    """A database whose file opens but has index pages overwritten (a failing disk sector)."""
    import sqlite3

    await (await Storage.open(path, CONFIG.zone)).close()
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE filler (x TEXT)")
    db.executemany("INSERT INTO filler VALUES (?)", [("x" * 500,) for _ in range(2000)])
    db.execute("CREATE INDEX filler_x ON filler(x)")
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    raw = bytearray(path.read_bytes())
    page = 4096
    for offset in range(len(raw) - 40 * page, len(raw) - 30 * page):  # index pages near the end
        raw[offset] = 0x55
    path.write_bytes(bytes(raw))


async def test_a_database_with_a_damaged_page_fails_quick_check_at_start(tmp_path: Path) -> None:
    path = tmp_path / "luot.sqlite3"
    await damaged_database(path)
    with pytest.raises(StorageError) as refused:
        await Storage.open(path, CONFIG.zone, create=False)
    assert "is corrupt (quick_check:" in str(refused.value), refused.value


async def test_a_backup_that_finds_the_database_damaged_is_storage_trouble(tmp_path: Path) -> None:
    data = tmp_path / "var"
    data.mkdir()
    await damaged_database(data / "luot.sqlite3")
    scheduler = BackupScheduler(CONFIG, data)
    with pytest.raises(BackupError):
        await scheduler.run_now()
    assert not backups_in(data / "backups")  # a damaged copy never counts as a backup
    healthy = await Storage.open(tmp_path / "other.sqlite3", CONFIG.zone)
    try:
        health = storage_health(healthy, 0, scheduler)
    finally:
        await healthy.close()
    assert health["status"] == "storage-trouble" and health["problems"][0]["problem"] == "quick-check-failed"
    assert "quick_check" in health["backup"]["error"]


async def test_database_wal_shm_and_backups_are_readable_by_the_service_user_only(tmp_path: Path) -> None:
    async with running_centre(tmp_path) as centre:
        await issue(centre, "ho-tich", 1)
        data = tmp_path / "var"
        assert mode(data) == 0o700
        for name in ("luot.sqlite3", "luot.sqlite3-wal", "luot.sqlite3-shm"):
            assert mode(data / name) == 0o600, name
        result = await centre.backups.run_now()
        backup = Path(result.path)
        assert mode(backup) == 0o600 and mode(Path(result.path + ".sha256")) == 0o600 and mode(backup.parent) == 0o700


def test_retention_keeps_the_newest_of_each_recent_hour_and_day(tmp_path: Path) -> None:
    database = tmp_path / "src.sqlite3"
    import sqlite3

    db = sqlite3.connect(database)
    db.executescript("CREATE TABLE tickets (id); CREATE TABLE events (seq INTEGER PRIMARY KEY); PRAGMA user_version=1;")
    db.close()
    start = datetime(2026, 12, 1, 0, 30, tzinfo=timezone.utc)
    for hour in range(72):  # three days of hourly backups, two in each hour
        for minute in (0, 20):
            make_backup(database, tmp_path / "b", start + timedelta(hours=hour, minutes=minute))
    removed = prune(tmp_path / "b", keep_hourly=5, keep_daily=3, zone=timezone.utc)  # type: ignore[arg-type]
    kept = [stamp for stamp, _ in backups_in(tmp_path / "b")]
    newest = start + timedelta(hours=71, minutes=20)
    hourly = [newest - timedelta(hours=h) for h in range(5)]
    daily = [datetime(2026, 12, d, 23, 50, tzinfo=timezone.utc) for d in (1, 2)]  # newest of the older days
    assert sorted(kept, reverse=True) == sorted(set(hourly + daily), reverse=True)
    assert len(removed) == 144 - len(kept)
    assert sorted(p.name for p in (tmp_path / "b").glob("*.sha256")) == sorted(f"{p.name}.sha256" for _, p in backups_in(tmp_path / "b"))


async def test_second_location_gets_a_verified_copy_and_a_missing_one_is_reported_not_fatal(tmp_path: Path) -> None:
    usb = tmp_path / "usb" / "luot-backups"
    config = CONFIG.model_copy(update={"backup": CONFIG.backup.model_copy(update={"second_location": str(usb)})})
    async with running_centre(tmp_path, config=config) as centre:
        await issue(centre, "ho-tich", 1)
        missing = await centre.backups.run_now()
        assert missing.second_location["ok"] is False and "not mounted" in missing.second_location["message_en"]
        assert Path(missing.path).exists() and not usb.exists()  # the backup itself is made; nothing created
        usb.mkdir(parents=True)
        copied = await centre.backups.run_now()
        assert copied.second_location["ok"] is True
        copy = Path(copied.second_location["path"])
        assert copy.read_bytes() == Path(copied.path).read_bytes()
        assert copied.sha256 in Path(str(copy) + ".sha256").read_text()
        health = storage_health(centre.storage, 0, centre.backups)
        assert health["status"] == "ok" and health["backup"]["second_location_ok"] is True


async def test_storage_health_reports_a_failed_commit_and_a_nearly_full_disk(tmp_path: Path) -> None:
    path = tmp_path / "luot.sqlite3"
    storage = await Storage.open(path, CONFIG.zone)
    try:
        assert storage_health(storage, 0)["status"] == "ok"
        full = storage_health(storage, 10**9)  # a threshold above any disk: "nearly full"
        assert full["status"] == "storage-trouble" and full["problems"][0]["problem"] == "disk-nearly-full"
        now = datetime.now(timezone.utc)
        event = Event("e-1", "day.opened", now, now.date().isoformat(), {})
        await storage.db.execute("PRAGMA query_only=ON")  # every write now fails inside SQLite
        with pytest.raises(StorageError):
            await storage.commit([event])
        failed = storage_health(storage, 0)
        assert failed["status"] == "storage-trouble" and failed["problems"][0]["problem"] == "commit-failed"
        await storage.db.execute("PRAGMA query_only=OFF")
        await storage.commit([event])
        assert storage_health(storage, 0)["status"] == "ok"
    finally:
        await storage.close()


async def test_a_second_server_on_the_same_database_is_refused(tmp_path: Path) -> None:
    async with running_centre(tmp_path):
        second = CentreRuntime(CONFIG, RuntimeOptions(data_dir=tmp_path / "var", http_port=0, mqtt=False))
        with pytest.raises(Exception) as refused:
            await second.start()
        assert "another process" in str(refused.value)
        await second.stop()


async def test_the_scheduler_backs_up_on_its_own_without_stopping_the_queue(tmp_path: Path) -> None:
    async with running_centre(tmp_path) as centre:
        scheduler = BackupScheduler(CONFIG, tmp_path / "var", interval_seconds=0.3)
        scheduler.start()
        try:
            # Count the backups the scheduler made, not the files: retention keeps only the newest
            # backup of each hour, so two files stand together only between a backup and its pruning
            # (the test once saw just the one, on a quiet machine).
            made: set[str] = set()
            for _ in range(3):
                await issue(centre, "ho-tich", 2)
                await asyncio.sleep(0.4)
                made |= {scheduler.last.path} if scheduler.last else set()
            deadline = asyncio.get_running_loop().time() + 60
            while len(made) < 2 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
                made |= {scheduler.last.path} if scheduler.last else set()
        finally:
            await scheduler.stop()
        assert len(made) >= 2
        assert [path for _, path in backups_in(tmp_path / "var" / "backups")][:1] == [Path(scheduler.last.path)]
        assert scheduler.status()["error"] is None


async def test_health_answers_503_while_commits_fail_and_ok_again_after(tmp_path: Path) -> None:
    async with running_centre(tmp_path) as centre:
        async with httpx.AsyncClient(base_url=centre.base_url) as http:
            healthy = await http.get("/health")
            assert healthy.status_code == 200 and healthy.json()["status"] == "ok"
            await centre.storage.db.execute("PRAGMA query_only=ON")  # every write now fails inside SQLite
            refused = await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=device_auth(centre, "kiosk-1"))
            assert refused.status_code >= 500 and refused.json()["message_en"]
            trouble = await http.get("/health")
            assert trouble.status_code == 503 and trouble.json()["status"] == "storage-trouble"
            assert [p["problem"] for p in trouble.json()["storage"]["problems"]] == ["commit-failed"]
            await centre.storage.db.execute("PRAGMA query_only=OFF")
            assert (await http.post("/api/v1/tickets", json={"group": "ho-tich"},
                                    headers=device_auth(centre, "kiosk-1"))).status_code == 201
            assert (await http.get("/health")).status_code == 200


async def test_health_answers_503_when_the_disk_is_nearly_full(tmp_path: Path) -> None:
    config = CONFIG.model_copy(update={"storage": CONFIG.storage.model_copy(update={"min_free_mb": 10**9})})
    async with running_centre(tmp_path, config=config) as centre:
        async with httpx.AsyncClient(base_url=centre.base_url) as http:
            answer = await http.get("/health")
    assert answer.status_code == 503 and answer.json()["ok"] is False
    [problem] = answer.json()["storage"]["problems"]
    assert problem["problem"] == "disk-nearly-full" and "MB free" in problem["message_en"] and problem["message"]


def test_a_restarted_server_backs_up_when_the_interval_since_the_newest_backup_ends() -> None:
    from server.backup import first_delay

    assert first_delay(3600, None) == 3600  # a new centre: one interval
    assert first_delay(3600, 600) == 3000  # restarted 10 minutes after a backup: 50 minutes more
    assert first_delay(3600, 7200) == 60  # overdue: soon, but not in the busy start itself
    assert first_delay(3600, -30) == 3600  # a backup "from the future" (clock moved back): one interval


def test_init_only_creates_a_database_once_and_never_replaces_a_damaged_one(tmp_path: Path) -> None:
    data = tmp_path / "var"
    first = luot("server", "--init-only", "--data", str(data))
    assert first.returncode == 0 and json.loads(first.stdout)["created"] is True
    assert mode(data / "luot.sqlite3") == 0o600
    again = luot("server", "--init-only", "--data", str(data))
    assert again.returncode == 0 and json.loads(again.stdout)["created"] is False
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    junk = b"SQLite format 3\x00" + os.urandom(8192)
    (damaged / "luot.sqlite3").write_bytes(junk)
    refused = luot("server", "--init-only", "--data", str(damaged))
    assert refused.returncode == 1 and json.loads(refused.stdout)["ok"] is False
    assert (damaged / "luot.sqlite3").read_bytes() == junk


def test_the_hours_a_restore_may_have_lost_start_at_the_backup_or_before_the_day_could_issue() -> None:
    """server.restore_numbering.lost_open_hours on the sample centre (Monday 07:30-16:30, Sunday closed)."""
    from server.restore_numbering import lost_open_hours

    zone = CONFIG.zone
    monday = datetime(2026, 12, 7, tzinfo=zone)
    at = lambda day, h, m=0: day.replace(hour=h, minute=m)  # noqa: E731
    assert lost_open_hours(CONFIG, at(monday, 9), at(monday, 9, 30)) == 0.5  # the backup half an hour old
    assert lost_open_hours(CONFIG, at(monday - timedelta(days=3), 16), at(monday, 6)) == 0  # before anyone could issue
    assert lost_open_hours(CONFIG, at(monday - timedelta(days=3), 16), at(monday, 9)) == 2.5  # since 06:30
    assert lost_open_hours(CONFIG, None, at(monday, 7)) == 0.5  # a backup with no event at all
    sunday = monday - timedelta(days=1)
    assert lost_open_hours(CONFIG, at(sunday - timedelta(days=2), 16), at(sunday, 3)) == 3  # closed: from midnight


def test_the_numbers_a_restore_skips_follow_the_busiest_hour_but_never_pass_the_busiest_day() -> None:
    from server.restore_numbering import numbers_lost

    assert numbers_lost(per_hour=100, per_day=800, hours=0.5) == 75  # 100 an hour for half an hour, x1.5
    assert numbers_lost(per_hour=40, per_day=200, hours=1.5) == 90
    assert numbers_lost(per_hour=5, per_day=20, hours=1.5) == 68  # a quiet history: 30 an hour at least
    assert numbers_lost(per_hour=40, per_day=200, hours=0.1) == 50  # a few minutes: at least 50
    assert numbers_lost(per_hour=40, per_day=400, hours=30) == 600  # a day and more lost: the busiest day, x1.5
    assert numbers_lost(per_hour=40, per_day=400, hours=0) == 0
