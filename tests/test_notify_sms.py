"""SMS through a real Gammu SMSD (dummy phone driver, files spool): a Vietnamese message arrives
whole, a crash between the hand-over and the outbox's mark sends nothing twice, and the retention
sweep removes old phones from the outbox and from Gammu's spool."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import pytest

from luot.config import NotifySettings
from server.notify import GammuSmsdChannel, Notifier, Outbox
from server.phones import PhoneVault
from tests.helpers.gammu import HAVE_GAMMU, GammuSpool

pytestmark = pytest.mark.skipif(not HAVE_GAMMU, reason="needs gammu-smsd (scripts/setup.sh installs it)")
ROOT = Path(__file__).resolve().parents[1]
PHONE = "0912 345 678"


@pytest.fixture(scope="module")
def gammu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GammuSpool]:
    spool = GammuSpool(tmp_path_factory.mktemp("gammu")).start()
    yield spool
    spool.stop()


def message_tag(dedupe_key: str) -> str:
    """The outbox message id Gammu's spool file names carry (OutboxMessage.message_id)."""
    return hashlib.sha256(dedupe_key.encode("utf-8")).hexdigest()[:16]


def _notifier(data: Path, spool: GammuSpool) -> Notifier:
    settings = NotifySettings(channels=["sms"], gammu_config=str(spool.config))
    vault = PhoneVault.for_data_dir(data)
    return Notifier(Outbox(data / "notify-outbox.sqlite3"), vault, [GammuSmsdChannel(spool.config)], settings)


async def test_a_vietnamese_sms_reaches_the_gateway_whole(tmp_path: Path, gammu: GammuSpool,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    notifier = _notifier(tmp_path, gammu)
    text = "Mời bạn đến quầy 3 (số 1023). Còn 2 người trước bạn ở nhóm Hộ tịch, xin vui lòng có mặt. / Please go to counter 3."
    assert notifier.enqueue("called:t1", notifier.vault.seal(PHONE), text, "called")
    assert await notifier.deliver_due() == 1
    assert notifier.outbox.due(datetime.now(timezone.utc) + timedelta(days=1)) == []
    tag = message_tag("called:t1")
    sms = gammu.wait_sent([tag])[tag]
    print(f"\nGammu SMSD sent to {sms['number']}: {sms['text']}")
    assert sms == {"number": "+84912345678", "text": text}
    assert f"Transmitted OUTC" in gammu.log_text()
    row = notifier.outbox.status_of("called:t1")
    assert (row["status"], row["channel"], row["holds_phone"]) == ("sent", "sms", 0)  # the sealed phone is gone
    assert "handed to sms" in caplog.text and "912345678" not in caplog.text and "quầy" not in caplog.text
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("notify-outbox.sqlite3*"))
    assert b"912345678" not in stored




async def test_a_one_time_code_goes_through_gammu_smsd_and_the_code_it_sent_verifies(tmp_path: Path, gammu: GammuSpool) -> None:
    """The one-time codes go the same way as the turn messages: the real daemon sends the code SMS,
    and the code read back from what it sent is the one that confirms the phone."""
    import re
    import sqlite3

    from luot.config import OtpSettings
    from server.otp import CodeRefused, OneTimeCodes

    notifier = _notifier(tmp_path, gammu)
    codes = OneTimeCodes.for_data_dir(tmp_path, notifier.vault, notifier, OtpSettings())
    now = datetime.now(timezone.utc)
    codes.request(PHONE, "booking", "10.0.0.1", now)
    assert await notifier.deliver_due() == 1
    with sqlite3.connect(tmp_path / "notify-outbox.sqlite3") as outbox:
        [(key,)] = outbox.execute("SELECT dedupe_key FROM outbox WHERE kind = 'otp'").fetchall()
    tag = message_tag(key)
    sms = gammu.wait_sent([tag])[tag]
    print(f"\nGammu SMSD sent to {sms['number']}: {sms['text']}")
    found = re.fullmatch(r"Mã xác nhận Luot: (\d{6})\. Hết hạn sau 5 phút\. Không đưa mã này cho ai\. / "
                         r"Luot code: (\d{6}), valid 5 min\.", sms["text"])
    assert sms["number"] == "+84912345678" and found and found.group(1) == found.group(2)
    code = found.group(1)
    with pytest.raises(CodeRefused):
        codes.verify(PHONE, "booking", f"{(int(code) + 1) % 10 ** 6:06d}", now)
    codes.verify(PHONE, "booking", code, now)  # the code the daemon sent confirms the phone
    codes.close()
    notifier.close()


def test_kill_9_between_hand_over_and_mark_sends_each_message_once(tmp_path: Path, gammu: GammuSpool) -> None:
    data = tmp_path / "data"
    notifier = _notifier(data, gammu)
    keys = ["near:ta", "near:tb", "near:tc"]
    for n, key in enumerate(keys):
        assert notifier.enqueue(key, notifier.vault.seal(PHONE), f"Còn {n} người trước bạn (số 10{n}).", "near")
    notifier.close()
    script = textwrap.dedent(f"""
        import asyncio, os, signal
        from pathlib import Path
        from luot.config import NotifySettings
        from server.notify import GammuSmsdChannel, Notifier, Outbox
        from server.phones import PhoneVault

        class CrashAfterSecondSend(GammuSmsdChannel):
            handed = 0
            async def send(self, message_id, phone, text, kind):
                await super().send(message_id, phone, text, kind)
                CrashAfterSecondSend.handed += 1
                if CrashAfterSecondSend.handed == 2:
                    os.kill(os.getpid(), signal.SIGKILL)  # handed over, not yet marked sent

        data = Path({str(data)!r})
        notifier = Notifier(Outbox(data / "notify-outbox.sqlite3"), PhoneVault.for_data_dir(data),
                            [CrashAfterSecondSend({str(gammu.config)!r})], NotifySettings(channels=["sms"]))
        asyncio.run(notifier.deliver_due())
        """)
    child = subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(ROOT)},
                           capture_output=True, timeout=60)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]

    tags = [message_tag(key) for key in keys]
    gammu.wait_sent(tags[:2])  # the gateway sent the crashed one before the server came back
    restarted = _notifier(data, gammu)
    assert restarted.outbox.counts() == {"pending": 2, "sent": 1, "failed": 0}  # the second was never marked
    for key in keys:  # the listener offers them again after a restart: nothing is queued twice
        assert not restarted.enqueue(key, restarted.vault.seal(PHONE), "again", "near")
    asyncio.run(restarted.deliver_due())
    assert restarted.outbox.counts() == {"pending": 0, "sent": 3, "failed": 0}
    sent = gammu.wait_sent(tags)
    assert [sent[tag]["text"] for tag in tags] == [f"Còn {n} người trước bạn (số 10{n})." for n in range(3)]
    assert [len(gammu.files_named(tag)) for tag in tags] == [1, 1, 1]  # one SMS each, none twice
    assert [gammu.log_text(whole=True).count(f"_luot{tag}.smsbackup (total") for tag in tags] == [1, 1, 1]


def test_retention_sweep_removes_old_phones_from_outbox_and_spool(tmp_path: Path) -> None:
    spool = GammuSpool(tmp_path / "gammu")  # no daemon needed: the sweep reads the folders only
    notifier = _notifier(tmp_path / "data", spool)
    old, fresh = spool.spool["sent"] / "OUTC20260101_080000_00_+84912345678_luotaaaa.smsbackup", \
        spool.spool["sent"] / "OUTC20261206_080000_00_+84912345678_luotbbbb.smsbackup"
    for path in (old, fresh):
        path.write_text("[SMSBackup000]\n", encoding="utf-8")
    now = datetime.now(timezone.utc)
    forty_days = (now - timedelta(days=40)).timestamp()
    os.utime(old, (forty_days, forty_days))
    notifier.outbox.add("near:old", notifier.vault.seal(PHONE), "x", "near", now - timedelta(days=40))
    notifier.outbox.add("near:new", notifier.vault.seal(PHONE), "x", "near", now)
    assert notifier.sweep(now) == {"outbox": 1, "sms": 1}  # keep_phone_days = 30
    assert not old.exists() and fresh.exists()
    assert notifier.outbox.status_of("near:old") is None and notifier.outbox.status_of("near:new") is not None


def test_luot_notify_test_sends_through_the_configured_gateway(tmp_path: Path, gammu: GammuSpool,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """What an operator runs after plugging the modem: `luot notify test PHONE` with the centre file's
    [notify] channels = ["sms"]; the gateway then sends it. A channel that cannot be set up is named."""
    from luot.cli import main
    from luot.config import DEFAULT_CONFIG

    sample = DEFAULT_CONFIG.read_text(encoding="utf-8")
    centre = tmp_path / "centre.toml"
    centre.write_text(sample.replace('channels = []  ', f'channels = ["sms"]\ngammu_config = "{gammu.config}"\n# ', 1)
                      .replace('gammu_config = "gammu-smsdrc"', "# gammu_config", 1), encoding="utf-8")
    data = tmp_path / "data"
    assert main(["notify", "test", "0912345678", "--text", "Thử gửi tin nhắn từ Trung tâm", "--config", str(centre),
                 "--data", str(data)]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert (answer["status"], answer["channel"], answer["problems"]) == ("sent", "sms", [])
    assert "0912345678" not in json.dumps(answer) and "+84912345678" not in json.dumps(answer)
    assert gammu.wait_text("Thử gửi tin nhắn từ Trung tâm")["number"] == "+84912345678"

    broken = tmp_path / "broken.toml"
    broken.write_text(centre.read_text(encoding="utf-8").replace(str(gammu.config), str(tmp_path / "missing")), encoding="utf-8")
    assert main(["notify", "status", "--config", str(broken), "--data", str(data)]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["channels"] == [] and "no Gammu SMSD configuration" in status["problems"][0]
    assert status["outbox"] == {"pending": 0, "sent": 1, "failed": 0}


async def test_a_running_centre_texts_the_booked_ticket_when_near_and_called(tmp_path: Path, gammu: GammuSpool) -> None:
    """The whole path beside a running server: its commits → the turn listener → the outbox → the
    sender task (nobody calls deliver_due) → Gammu SMSD → the SMS, for the one ticket with a contact.
    (The booking side wires the same objects into the server itself.)"""
    import httpx

    from luot.config import load_config, parse_config
    from tests.helpers.centre import device_auth, running_centre, staff_auth
    from server.notify.turn import TurnMessages
    from tests.test_notify_turn import ContactTable

    data = load_config().model_dump(mode="json", exclude_none=True)
    data["notify"] = {"channels": ["sms"], "gammu_config": str(gammu.config), "near_ahead": 1}
    config = parse_config(data, "test")
    async with running_centre(tmp_path, config=config) as centre, \
            httpx.AsyncClient(base_url=centre.base_url) as http:
        contacts = ContactTable(tmp_path / "contacts.sqlite3")
        vault = PhoneVault.for_data_dir(tmp_path / "notify")
        notifier = Notifier.for_centre(config, tmp_path / "notify", vault, clock=centre.service.now)
        assert [c.name for c in notifier.channels] == ["sms"] and notifier.problems == []
        notifier.start()
        TurnMessages(centre.service, notifier, contacts)
        officer = await staff_auth(centre)
        kiosk = device_auth(centre, "kiosk-1")
        numbers = []
        for n in range(3):
            ticket = (await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=kiosk)).json()
            numbers.append(ticket["number"])
            if n == 2:
                contacts.add(ticket["id"], vault.seal("0987 654 321"))
        for step in ("open", "call-next", "start", "call-next", "start", "call-next"):
            assert (await http.post(f"/api/v1/counters/1/{step}", headers=officer)).status_code == 200
        # polled in a thread: the server's sender task runs on this test's event loop
        near = await asyncio.to_thread(gammu.wait_text, f"Còn 1 người trước bạn (số {numbers[2]}, Hộ tịch). Vui lòng có mặt tại Trung tâm. "
                               f"/ 1 ahead of you (no. {numbers[2]}).")
        called = await asyncio.to_thread(gammu.wait_text, f"Mời bạn đến quầy 1 (số {numbers[2]}). / Please go to counter 1 (no. {numbers[2]}).")
        assert near["number"] == called["number"] == "+84987654321"
        print(f"\nGammu SMSD sent to {called['number']}: {near['text']}\nGammu SMSD sent to {called['number']}: {called['text']}")
        await notifier.stop()
        assert notifier.outbox.counts() == {"pending": 0, "sent": 2, "failed": 0}
        notifier.close()
