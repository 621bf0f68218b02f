"""Phone numbers and one-time codes: every usual spelling of a Vietnamese mobile becomes one
number, the vault's keys and seals hold, and a code is refused once expired, used, replaced or
guessed at too often, with request limits per phone and per network address. Codes travel the
notifier's real outbox (a Gammu spool channel, no daemon needed to queue)."""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from luot.config import NotifySettings, OtpSettings
from server.notify import GammuSmsdChannel, Notifier, Outbox
from server.otp import CodeRefused, OneTimeCodes
from server.phones import PhoneRefused, PhoneVault, SealBroken, mask_phone, normalise_phone
from tests.helpers.gammu import GammuSpool

T0 = datetime(2026, 12, 7, 1, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("raw", ["0912345678", "0912 345 678", "091.234.5678", "091-234-5678", "+84912345678",
                                 "+84 912 345 678", "84912345678", "0084912345678", "(+84) 0912 345 678", " 912345678 "])
def test_every_usual_spelling_is_one_number(raw: str) -> None:
    assert normalise_phone(raw) == "+84912345678"


@pytest.mark.parametrize("raw, says", [("", "nhập số"), ("0241234567", "không hợp lệ"), ("01662345678", "2018"),
                                       ("+14155550123", "+84"), ("0912abc678", "chữ số"), ("091234567", "không hợp lệ"),
                                       ("09123456789", "không hợp lệ")])
def test_numbers_that_are_not_vietnamese_mobiles_are_refused_with_a_reason(raw: str, says: str) -> None:
    with pytest.raises(PhoneRefused) as refused:
        normalise_phone(raw)
    assert says in refused.value.message_vi and refused.value.message_en


@settings(max_examples=60, deadline=None)
@given(st.sampled_from("35789"), st.text("0123456789", min_size=8, max_size=8),
       st.sampled_from(["0{}", "+84{}", "84{}", "0084{}", "+84 0{}"]))
def test_key_is_the_same_for_every_spelling_and_seal_round_trips(first: str, rest: str, form: str) -> None:
    vault = PhoneVault(b"k" * 32)
    national = first + rest
    spelled = form.format(national)
    assert vault.key(spelled) == vault.key("0" + national)
    sealed = vault.seal(spelled)
    assert national not in sealed and vault.open(sealed) == "+84" + national


def test_vault_keeps_its_secret_private_and_refuses_altered_seals(tmp_path: Path) -> None:
    vault = PhoneVault.for_data_dir(tmp_path)
    key_file = tmp_path / "phone-vault.key"
    assert oct(os.stat(key_file).st_mode & 0o777) == "0o600"
    again = PhoneVault.for_data_dir(tmp_path)  # a restart reads the same secret
    sealed = vault.seal("0987654321")
    assert again.open(sealed) == "+84987654321" and again.key("0987654321") == vault.key("+84987654321")
    assert vault.seal("0987654321") != sealed  # a fresh nonce each time: equal phones do not show as equal
    assert vault.key("0987654321") != PhoneVault(b"other secret, other centre!!!!!!").key("0987654321")
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    for broken in (flipped, sealed[:20], "v1.", "+84987654321"):
        with pytest.raises(SealBroken):
            vault.open(broken)
    with pytest.raises(SealBroken):
        PhoneVault(b"x" * 32).open(sealed)
    assert mask_phone("0987654321") == "098****321"


# ---------------------------------------------------------------------------------- one-time codes
class Codes:
    """OneTimeCodes over a real outbox; the code is read back from the message queued for the phone."""

    def __init__(self, root: Path, **limits: int) -> None:
        spool = GammuSpool(root / "gammu")
        self.vault = PhoneVault.for_data_dir(root)
        self.notifier = Notifier(Outbox(root / "notify-outbox.sqlite3"), self.vault, [GammuSmsdChannel(spool.config)],
                                 NotifySettings(channels=["sms"]), clock=lambda: self.now)
        self.now = T0
        self.codes = OneTimeCodes(root / "otp.sqlite3", self.vault, self.notifier, OtpSettings(**limits))

    def request(self, phone: str = "0912345678", address: str = "10.0.0.5", purpose: str = "booking") -> str:
        self.codes.request(phone, purpose, address, self.now)
        message = self.notifier.outbox.due(self.now + timedelta(days=1), limit=1000)[-1]
        assert self.vault.open(message.sealed_phone) == normalise_phone(phone) and message.kind == "otp"
        return re.search(r"\b(\d{6})\b", message.text).group(1)

    def refusal(self, call) -> CodeRefused:
        with pytest.raises(CodeRefused) as refused:
            call()
        assert refused.value.message_vi and refused.value.message_en
        return refused.value


def test_a_code_works_once_and_is_stored_only_as_a_keyed_hash(tmp_path: Path) -> None:
    c = Codes(tmp_path)
    code = c.request()
    c.codes.verify("+84 912 345 678", "booking", code, c.now + timedelta(seconds=30))
    assert c.refusal(lambda: c.codes.verify("0912345678", "booking", code, c.now)).reason == "used"
    stored = (tmp_path / "otp.sqlite3").read_bytes() + (tmp_path / "otp.sqlite3-wal").read_bytes()
    assert code.encode() not in stored and b"912345678" not in stored and b"10.0.0.5" not in stored


def test_expired_replaced_and_other_purpose_codes_are_refused(tmp_path: Path) -> None:
    c = Codes(tmp_path, resend_seconds=0)
    first = c.request()
    c.now += timedelta(seconds=10)
    second = c.request()
    assert c.refusal(lambda: c.codes.verify("0912345678", "cancel", second, c.now)).reason == "no-code"
    if first != second:
        assert c.refusal(lambda: c.codes.verify("0912345678", "booking", first, c.now)).reason == "wrong"
    late = c.now + timedelta(seconds=300)
    assert c.refusal(lambda: c.codes.verify("0912345678", "booking", second, late)).reason == "expired"


def test_five_wrong_tries_kill_the_code_even_for_the_right_one(tmp_path: Path) -> None:
    c = Codes(tmp_path)
    code = c.request()
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    left = [c.refusal(lambda: c.codes.verify("0912345678", "booking", wrong, c.now)).attempts_left for _ in range(5)]
    assert left == [4, 3, 2, 1, 0]
    refused = c.refusal(lambda: c.codes.verify("0912345678", "booking", code, c.now))
    assert refused.reason == "too-many"


def test_request_limits_per_phone_and_per_address(tmp_path: Path) -> None:
    c = Codes(tmp_path, resend_seconds=60, per_phone_per_hour=3, per_address_per_hour=4)
    c.request()
    soon = c.refusal(lambda: c.request())
    assert (soon.reason, soon.retry_after_s) == ("too-soon", 60)
    for _ in range(2):
        c.now += timedelta(seconds=61)
        c.request()
    c.now += timedelta(seconds=61)
    hourly = c.refusal(lambda: c.request())
    assert hourly.reason == "phone-hourly" and 0 < hourly.retry_after_s <= 3600
    c.request(phone="0987654321")  # a fourth code from this address, to another phone
    bot = c.refusal(lambda: c.request(phone="0971111111"))
    assert bot.reason == "address-hourly" and bot.retry_after_s > 0
    c.request(phone="0971111111", address="10.0.0.6")  # another address is not blocked
    c.now += timedelta(hours=1, seconds=1)
    c.request()  # an hour later the phone may ask again
    assert c.notifier.outbox.counts()["pending"] == 6


def test_no_channel_means_no_code(tmp_path: Path) -> None:
    vault = PhoneVault.for_data_dir(tmp_path)
    notifier = Notifier(Outbox(tmp_path / "outbox.sqlite3"), vault, [], NotifySettings())
    codes = OneTimeCodes(tmp_path / "otp.sqlite3", vault, notifier, OtpSettings())
    with pytest.raises(CodeRefused) as refused:
        codes.request("0912345678", "booking", "10.0.0.5", T0)
    assert refused.value.reason == "no-channel" and notifier.outbox.counts()["pending"] == 0


def test_code_rows_are_forgotten_after_a_day_by_the_next_request(tmp_path: Path) -> None:
    c = Codes(tmp_path)
    c.request()
    rows = lambda: c.codes._conn.execute("SELECT (SELECT COUNT(*) FROM otp_codes) + (SELECT COUNT(*) FROM otp_requests)").fetchone()[0]  # noqa: E731
    assert rows() == 2
    c.now += timedelta(days=1, seconds=1)
    c.request(phone="0987654321")
    assert rows() == 2  # the day-old code and request are gone, the new ones stand
