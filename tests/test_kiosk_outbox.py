"""The kiosk's offline machinery without a screen: leased numbers, the outbox, the hand-over.

Real SQLite files and a real centre (tests/helpers/centre.py); "offline" is a server that is not
there (a closed port), exactly what the kiosk sees when the link is cut.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

from kiosk.backend import CentreLink, DeviceIdentity, KioskError, popular_groups, read_secret
from kiosk.outbox import LeaseExhausted, Outbox
from server.app import free_port
from tests.helpers.centre import running_centre


async def test_numbers_are_taken_once_even_when_asked_concurrently(tmp_path: Path) -> None:
    outbox = await Outbox.open(tmp_path / "o.sqlite3")
    await outbox.add_lease("2026-11-23", "ho-tich", 1001, 1010)
    now = datetime.now(timezone.utc)
    results = await asyncio.gather(*(outbox.take("2026-11-23", "ho-tich", None, now) for _ in range(10)))
    assert sorted(t.number for t in results) == list(range(1001, 1011))
    assert len({t.token for t in results}) == 10 and all(len(t.token) >= 22 for t in results)
    with pytest.raises(LeaseExhausted):
        await outbox.take("2026-11-23", "ho-tich", None, now)
    await outbox.close()
    # committed before anything is shown: a fresh connection (a rebooted kiosk) sees all ten
    reopened = await Outbox.open(tmp_path / "o.sqlite3")
    assert len(await reopened.pending()) == 10
    assert await reopened.remaining("2026-11-23", "ho-tich") == 0
    await reopened.close()


async def test_a_lease_of_another_day_is_never_used(tmp_path: Path) -> None:
    outbox = await Outbox.open(tmp_path / "o.sqlite3")
    await outbox.add_lease("2026-11-22", "ho-tich", 1001, 1030)
    with pytest.raises(LeaseExhausted):
        await outbox.take("2026-11-23", "ho-tich", None, datetime.now(timezone.utc))
    await outbox.close()


async def test_kiosk_issues_offline_then_hands_over_without_duplicates(tmp_path: Path) -> None:
    async with running_centre(tmp_path / "centre") as runtime:
        secret = read_secret(tmp_path / "centre" / "var", "kiosk-1")
        link = CentreLink(runtime.base_url, DeviceIdentity("kiosk-1", secret), tmp_path / "kiosk", lease_size=12)
        await link.start()
        try:
            assert link.online and await link.outbox.remaining(link.service_day(), "chung-thuc") == 12
            online = await link.issue("chung-thuc")
            assert not online.offline and online.number == 2013  # 2001-2012 are leased to the kiosk
            # the server "disappears": the kiosk points at a closed port
            link._client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{free_port()}", timeout=2.0,
                                             headers=link.identity.headers)
            offline = [await link.issue("chung-thuc", "elderly") for _ in range(3)]
            assert [t.offline for t in offline] == [True] * 3 and not link.online
            assert [t.number for t in offline] == [2001, 2002, 2003]
            assert all(t.tracking_url.endswith("/t/" + t.token) for t in offline)
            # the link returns
            link._client = httpx.AsyncClient(base_url=runtime.base_url, timeout=2.0, headers=link.identity.headers)
            assert await link.refresh()
            assert await link.outbox.pending() == []
            assert await link.sync() == 0  # nothing left: handing over is done once
            engine = runtime.service.engine
            numbers = sorted(t.number for t in engine.tickets.values())
            assert numbers == [2001, 2002, 2003, 2013]
            for ticket in offline:
                stored = engine.ticket_by_token(ticket.token)
                assert stored is not None and stored.offline and stored.priority == "elderly"
            # 9 leased numbers left < 10: a new block was leased on return, so the next online number follows it
            assert await link.outbox.remaining(link.service_day(), "chung-thuc") == 9 + 12
            after = await link.issue("chung-thuc")
            assert after.number == 2026 and not after.offline
        finally:
            await link.stop()


async def test_offline_with_no_lease_left_says_so_plainly(tmp_path: Path) -> None:
    centre = {"groups": [{"code": "ho-tich", "letter": "A", "name": "Hộ tịch"}], "counters": []}
    link = CentreLink(f"http://127.0.0.1:{free_port()}", DeviceIdentity("kiosk-1", "x"), tmp_path, fallback_centre=centre)
    await link.start()
    try:
        assert not link.online
        with pytest.raises(KioskError) as error:
            await link.issue("ho-tich")
        assert "quầy hướng dẫn" in error.value.message
    finally:
        await link.stop()


async def test_assistance_falls_back_to_http_and_is_recorded(tmp_path: Path) -> None:
    async with running_centre(tmp_path / "centre") as runtime:
        secret = json.loads((tmp_path / "centre" / "var" / "secrets.json").read_text())["kiosk-1"]
        link = CentreLink(runtime.base_url, DeviceIdentity("kiosk-1", secret), tmp_path / "kiosk")
        await link.start()
        try:
            await link.post_request("assistance", {"request_id": "r-1", "reason": "guided"})
            rows = await runtime.storage.events_after(0, 1000)
            assert [r["data"]["request_id"] for r in rows if r["type"] == "assistance.requested"] == ["r-1"]
            with pytest.raises(KioskError):  # a kiosk may not rate: refused with a plain message
                await link.post_request("feedback", {"ticket_id": "t1", "rating": 4})
        finally:
            await link.stop()


def test_guided_screen_shows_the_groups_this_kiosk_issues_most() -> None:
    groups = [{"code": c} for c in ("a", "b", "c", "d", "khac")]
    assert popular_groups({}, groups, 3, "khac") == ["a", "b", "c"]
    assert popular_groups({"d": 5, "c": 2, "khac": 9}, groups, 3, "khac") == ["d", "c", "a"]


def test_keyboard_tone_marks_land_on_the_last_vowel() -> None:
    import os

    os.environ.setdefault("KIVY_NO_ARGS", "1")
    from kiosk.widgets import TONES, add_tone

    assert add_tone("khai sinh", TONES["sắc"]) == "khai sính"
    assert add_tone("ket hon", TONES["ngã"]) == "ket hõn"
    assert add_tone("ket hõn", TONES["huyền"]) == "ket hòn"  # a new tone replaces the old one
    assert add_tone("dươ", TONES["nặng"]) == "dượ"
    assert add_tone("", TONES["sắc"]) == ""
