"""Reports by kind of ticket (server/booking_report.py) over a real SQLite file: walk-in, remote and
appointment tickets with their own mean waits (a booked ticket's from its check-in), no-shows,
lapsed bookings and the remote share."""

from __future__ import annotations

import asyncio
import json
import secrets
from datetime import timedelta
from pathlib import Path

from luot.cli import main
from luot.config import DEFAULT_CONFIG
from server.booking_report import kinds_report
from server.booking_slots import slot_starts
from server.phones import PhoneVault
from tests.booking_support import booking_config
from tests.helpers.centre import ManualClock
from tests.test_bookings_storage import HCM, MONDAY_0830, open_desk


async def test_each_kind_has_its_counts_waits_and_lapses(tmp_path: Path, capsys) -> None:
    config = booking_config(grace_minutes=15)
    clock = ManualClock(MONDAY_0830)
    database = tmp_path / "var" / Path(config.storage.path).name  # where `luot booking report --data` looks
    database.parent.mkdir()
    storage, desk = await open_desk(database, config, clock, PhoneVault(secrets.token_bytes(32)))
    service = desk.service
    day = MONDAY_0830.astimezone(HCM).date()
    walk_in = await service.run(lambda e, now: e.issue("ho-tich", now))
    here = await desk.make("remote", "ho-tich", "k1", None, "10.0.0.1", actor="citizen")
    away = await desk.make("remote", "ho-tich", "k2", None, "10.0.0.2", actor="citizen")
    await desk.make("appointment", "chung-thuc", "k3", None, "10.0.0.3", actor="citizen", slot=slot_starts(config, day)[3])
    clock.advance(minutes=10)  # 08:40
    await desk.check_in("kiosk-1", code=here["code"])
    await service.run(lambda e, now: (None, e.open_counter(1, "canbo1", now)))
    called = await service.run(lambda e, now: e.call_next(1, now))  # the walk-in, after 10 minutes
    assert called.id == walk_in.id
    clock.advance(minutes=5)  # 08:45: the remote number, 5 minutes after its check-in
    for step in ("start", "finish"):
        await service.run(lambda e, now, step=step: getattr(e, step)(1, now))
    called = await service.run(lambda e, now: e.call_next(1, now))
    assert called.id == here["ticket_id"]
    await service.run(lambda e, now: e.start(1, now))
    await service.run(lambda e, now: e.finish(1, now))
    await service.run(lambda e, now: e.call_next(1, now))  # the other remote number's turn: held, not here
    clock.advance(minutes=16)
    assert await desk.tick() == [away["id"]]  # lapsed after the grace
    clock.now = MONDAY_0830 + timedelta(hours=8, minutes=10)
    await service.run(lambda e, now: (None, e.close_day(now)))  # the appointment never came

    report = await kinds_report(storage, day, day)
    kinds = {k["kind"]: k for k in report["kinds"]}
    assert report["tickets"] == 3 and report["remote_share"] == 66.7
    assert {k: (v["issued"], v["called"], v["mean_wait_minutes"], v["no_show"]) for k, v in kinds.items()} == {
        "walk_in": (1, 1, 10.0, 0), "remote": (2, 1, 5.0, 1), "appointment": (0, 0, None, 0)}
    assert {k: (v["booked"], v["checked_in"], v["lapsed"], v["cancelled"]) for k, v in kinds.items()} == {
        "walk_in": (0, 0, 0, 0), "remote": (2, 1, 1, 0), "appointment": (1, 0, 1, 0)}
    await storage.close()
    # the same as JSON from the command line
    status = await asyncio.to_thread(main, ["booking", "report", "--from", day.isoformat(), "--to", day.isoformat(),
                                            "--config", str(DEFAULT_CONFIG), "--data", str(tmp_path / "var")])
    assert status == 0 and json.loads(capsys.readouterr().out) == report
