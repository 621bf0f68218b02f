"""One-time codes that confirm a citizen holds a phone number (booking a number from home).

A code is 6 digits from ``secrets``; only a keyed hash of it is stored (the vault's key: a copied
file cannot be brute-forced offline in a million hashes), it lives ``[otp] ttl_seconds``, dies
after ``max_wrong`` wrong tries or its first right one, and a new code for the same phone and
purpose kills the previous one. Requests are limited per phone (a gap between codes, a number an
hour and a day) and per network address, so an attacker gets at most
``per_phone_per_hour * max_wrong`` guesses an hour at one phone (bench/bench_otp_bruteforce.py).

Neither phones nor addresses are stored: rows hold the vault's keyed hashes of both. The code
travels through the notifier (server/notify/), the same outbox and channels as "your turn is near".
Calls are synchronous and short (one SQLite transaction), and safe from several threads.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from datetime import datetime, timedelta
from pathlib import Path

from luot.config import OtpSettings
from server.notify.notifier import Notifier
from server.notify.store import open_private_sqlite
from server.phones import PhoneVault, normalise_phone

OTP_FILE = "otp.sqlite3"
CODE_DIGITS = 6
KEEP_REQUESTS = timedelta(days=1)
"""Request rows are needed for the daily limit only."""
SCHEMA = """
CREATE TABLE IF NOT EXISTS otp_codes (
    id INTEGER PRIMARY KEY,
    phone_key TEXT NOT NULL,
    purpose TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    wrong INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'live'
);
CREATE INDEX IF NOT EXISTS otp_codes_phone ON otp_codes (phone_key, purpose, id);
CREATE INDEX IF NOT EXISTS otp_codes_created ON otp_codes (created_at);
CREATE TABLE IF NOT EXISTS otp_requests (
    id INTEGER PRIMARY KEY,
    phone_key TEXT NOT NULL,
    address_key TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS otp_requests_phone ON otp_requests (phone_key, at);
CREATE INDEX IF NOT EXISTS otp_requests_address ON otp_requests (address_key, at);
"""
LIVE, USED, DEAD, REPLACED = "live", "used", "dead", "replaced"


class CodeRefused(Exception):
    """A code request or check that is refused. ``reason`` (stable, for programs):

    request: ``no-channel``, ``too-soon``, ``phone-hourly``, ``phone-daily``, ``address-hourly``;
    verify: ``no-code``, ``expired``, ``used``, ``wrong`` (``attempts_left`` > 0), ``too-many``
    (the code is dead: ask for a new one). ``retry_after_s``: when asking again can succeed (0 = now).
    """

    def __init__(self, reason: str, message_vi: str, message_en: str, retry_after_s: int = 0,
                 attempts_left: int | None = None) -> None:
        super().__init__(f"{reason}: {message_en}")
        self.reason = reason
        self.message_vi = message_vi
        self.message_en = message_en
        self.retry_after_s = max(0, int(retry_after_s))
        self.attempts_left = attempts_left


def _seconds_until(later: datetime, now: datetime) -> int:
    return max(1, int((later - now).total_seconds() + 0.999))


class OneTimeCodes:
    def __init__(self, path: str | Path, vault: PhoneVault, notifier: Notifier, settings: OtpSettings) -> None:
        self.vault = vault
        self.notifier = notifier
        self.settings = settings
        self._conn = open_private_sqlite(path, SCHEMA)
        self._lock = threading.Lock()

    @classmethod
    def for_data_dir(cls, data_dir: str | Path, vault: PhoneVault, notifier: Notifier,
                     settings: OtpSettings) -> "OneTimeCodes":
        return cls(Path(data_dir) / OTP_FILE, vault, notifier, settings)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _code_hash(self, phone_key: str, purpose: str, code: str) -> str:
        return self.vault.keyed("otp", f"{phone_key}\x00{purpose}\x00{code}")

    # ------------------------------------------------------------------ request
    def request(self, phone: str, purpose: str, address: str, now: datetime) -> None:
        """Send a new code for ``purpose`` (e.g. ``"booking"``) to ``phone``; ``address`` is the
        requester's network address. Raises :class:`~server.phones.PhoneRefused` for a number that
        is not a Vietnamese mobile, :class:`CodeRefused` when a limit says no."""
        phone = normalise_phone(phone)
        if not self.notifier.can_send:
            raise CodeRefused("no-channel", "Trung tâm chưa thể gửi tin nhắn; vui lòng lấy số tại quầy.",
                              "This centre cannot send messages yet; please take a number in the hall.")
        s = self.settings
        phone_key = self.vault.key(phone)
        address_key = self.vault.keyed("address", address)
        code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
        expires = now + timedelta(seconds=s.ttl_seconds)
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._forget_before(now - KEEP_REQUESTS)  # retention as it goes: no job to forget
                self._check_limits(phone_key, address_key, now)
                conn.execute("UPDATE otp_codes SET state = ? WHERE phone_key = ? AND purpose = ? AND state = ?",
                             (REPLACED, phone_key, purpose, LIVE))
                cursor = conn.execute(
                    "INSERT INTO otp_codes (phone_key, purpose, code_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                    (phone_key, purpose, self._code_hash(phone_key, purpose, code), now.isoformat(), expires.isoformat()))
                conn.execute("INSERT INTO otp_requests (phone_key, address_key, at) VALUES (?, ?, ?)",
                             (phone_key, address_key, now.isoformat()))
                code_id = cursor.lastrowid
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        minutes = max(1, s.ttl_seconds // 60)
        text = (f"Mã xác nhận Luot: {code}. Hết hạn sau {minutes} phút. Không đưa mã này cho ai. / "
                f"Luot code: {code}, valid {minutes} min.")
        # each request is a new message: the key only has to be unique (not derived from the phone)
        self.notifier.enqueue(f"otp:{code_id}:{secrets.token_hex(8)}", self.vault.seal(phone), text, "otp",
                              expires_at=expires)

    def _check_limits(self, phone_key: str, address_key: str, now: datetime) -> None:
        s = self.settings
        conn = self._conn
        hour_ago, day_ago = (now - timedelta(hours=1)).isoformat(), (now - timedelta(days=1)).isoformat()
        last = conn.execute("SELECT MAX(at) FROM otp_requests WHERE phone_key = ?", (phone_key,)).fetchone()[0]
        if last is not None and s.resend_seconds:
            ready = datetime.fromisoformat(last) + timedelta(seconds=s.resend_seconds)
            if now < ready:
                wait = _seconds_until(ready, now)
                raise CodeRefused("too-soon", f"Mã vừa được gửi; vui lòng đợi {wait} giây rồi yêu cầu lại.",
                                  f"A code was just sent; please wait {wait} s before asking again.", wait)
        for window, since, limit, reason, vi, en in (
                (timedelta(hours=1), hour_ago, s.per_phone_per_hour, "phone-hourly",
                 "Số điện thoại này đã nhận quá nhiều mã trong một giờ.", "Too many codes to this phone in an hour."),
                (timedelta(days=1), day_ago, s.per_phone_per_day, "phone-daily",
                 "Số điện thoại này đã nhận quá nhiều mã hôm nay.", "Too many codes to this phone today.")):
            rows = conn.execute("SELECT at FROM otp_requests WHERE phone_key = ? AND at > ? ORDER BY at",
                                (phone_key, since)).fetchall()
            if len(rows) >= limit:
                wait = _seconds_until(datetime.fromisoformat(rows[len(rows) - limit][0]) + window, now)
                raise CodeRefused(reason, f"{vi} Vui lòng thử lại sau {wait // 60 + 1} phút.",
                                  f"{en} Please try again in {wait // 60 + 1} min.", wait)
        rows = conn.execute("SELECT at FROM otp_requests WHERE address_key = ? AND at > ? ORDER BY at",
                            (address_key, hour_ago)).fetchall()
        if len(rows) >= s.per_address_per_hour:
            wait = _seconds_until(datetime.fromisoformat(rows[len(rows) - s.per_address_per_hour][0])
                                  + timedelta(hours=1), now)
            raise CodeRefused("address-hourly", "Quá nhiều yêu cầu mã từ mạng này; vui lòng thử lại sau.",
                              "Too many code requests from this network; please try again later.", wait)

    # ------------------------------------------------------------------ verify
    def verify(self, phone: str, purpose: str, code: str, now: datetime) -> None:
        """Accept ``code`` once, or raise :class:`CodeRefused` (a wrong try counts against the code)."""
        phone_key = self.vault.key(phone)
        given = str(code or "").strip()
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._verify_locked(phone_key, purpose, given, now)
                conn.execute("COMMIT")
            except CodeRefused:
                conn.execute("COMMIT")  # a wrong try is counted even though the answer is a refusal
                raise
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def _verify_locked(self, phone_key: str, purpose: str, given: str, now: datetime) -> None:
        conn = self._conn
        row = conn.execute("SELECT * FROM otp_codes WHERE phone_key = ? AND purpose = ? ORDER BY id DESC LIMIT 1",
                           (phone_key, purpose)).fetchone()
        if row is None or row["state"] == REPLACED:
            raise CodeRefused("no-code", "Chưa có mã nào được gửi cho số này; vui lòng yêu cầu mã.",
                              "No code was sent to this number; please ask for one.")
        if row["state"] == USED:
            raise CodeRefused("used", "Mã này đã được dùng; vui lòng yêu cầu mã mới.",
                              "This code was already used; please ask for a new one.")
        if row["state"] == DEAD or row["wrong"] >= self.settings.max_wrong:
            raise CodeRefused("too-many", "Nhập sai quá nhiều lần; mã đã bị hủy, vui lòng yêu cầu mã mới.",
                              "Too many wrong tries; the code is cancelled, please ask for a new one.")
        if now >= datetime.fromisoformat(row["expires_at"]):
            raise CodeRefused("expired", "Mã đã hết hạn; vui lòng yêu cầu mã mới.",
                              "The code has expired; please ask for a new one.")
        expected = row["code_hash"]
        if hmac.compare_digest(expected, self._code_hash(phone_key, purpose, given)):
            conn.execute("UPDATE otp_codes SET state = ? WHERE id = ?", (USED, row["id"]))
            return
        wrong = row["wrong"] + 1
        left = self.settings.max_wrong - wrong
        conn.execute("UPDATE otp_codes SET wrong = ?, state = ? WHERE id = ?",
                     (wrong, DEAD if left <= 0 else LIVE, row["id"]))
        if left <= 0:
            raise CodeRefused("too-many", "Nhập sai quá nhiều lần; mã đã bị hủy, vui lòng yêu cầu mã mới.",
                              "Too many wrong tries; the code is cancelled, please ask for a new one.", attempts_left=0)
        raise CodeRefused("wrong", f"Mã không đúng; còn {left} lần thử.", f"Wrong code; {left} tries left.",
                          attempts_left=left)

    # ------------------------------------------------------------------ retention
    def sweep(self, now: datetime) -> int:
        """Delete codes and request rows older than a day (they hold keyed hashes only). Each
        :meth:`request` does this too, so a running centre needs no separate job."""
        with self._lock:
            return self._forget_before(now - KEEP_REQUESTS)

    def _forget_before(self, moment: datetime) -> int:
        before = moment.isoformat()
        removed = self._conn.execute("DELETE FROM otp_codes WHERE created_at < ?", (before,)).rowcount
        return removed + self._conn.execute("DELETE FROM otp_requests WHERE at < ?", (before,)).rowcount
