"""Brute-forcing one-time codes: how many guesses does an attacker get, and are the rest refused?

Prints (never asserts), over a simulated clock (the limits are about hours; the SQLite work is real):
- ``one phone``: an attacker asks for a new code as often as the limits let it (once a second, from
  a fresh network address each time, so only the per-phone limits hold) and sends 6-digit guesses
  without pause. Counted per hour and per day: codes sent, guesses actually compared with a code,
  guesses refused without a look (code dead after ``max_wrong`` wrong tries, no live code), lucky hits.
- ``one address``: a bot behind one address asking codes for 1,000 different phones in an hour.
- the cost of a verify and of a request (ms, median and p99), with the machine's state.

The chance of a hit per hour is guesses compared / 1,000,000. Run: ``python bench/bench_otp_bruteforce.py``.
"""

from __future__ import annotations

import os
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from luot.config import NotifySettings, OtpSettings  # noqa: E402
from server.notify import GammuSmsdChannel, Notifier, Outbox  # noqa: E402
from server.otp import CodeRefused, OneTimeCodes  # noqa: E402
from server.phones import PhoneVault  # noqa: E402
from tests.helpers.gammu import GammuSpool  # noqa: E402

START = datetime(2026, 12, 7, 1, 0, tzinfo=timezone.utc)


def build(root: Path, settings: OtpSettings) -> tuple[OneTimeCodes, Notifier]:
    """Codes over a real outbox whose SMS channel is a Gammu spool (messages are queued, not sent)."""
    vault = PhoneVault.for_data_dir(root)
    notifier = Notifier(Outbox(root / "outbox.sqlite3"), vault, [GammuSmsdChannel(GammuSpool(root / "gammu").config)],
                        NotifySettings(channels=["sms"]))
    return OneTimeCodes(root / "otp.sqlite3", vault, notifier, settings), notifier


def attack_one_phone(root: Path, settings: OtpSettings, hours: int) -> list[Counter[str]]:
    codes, _ = build(root, settings)
    phone = "0912345678"
    per_hour: list[Counter[str]] = [Counter() for _ in range(hours)]
    now = START
    timings: dict[str, list[float]] = {"request": [], "verify": []}
    for second in range(hours * 3600):
        tally = per_hour[second // 3600]
        started = time.perf_counter()
        try:
            codes.request(phone, "booking", f"198.51.{second // 250 % 250}.{second % 250}", now)
            tally["codes sent"] += 1
        except CodeRefused as refused:
            tally[f"code requests refused ({refused.reason})"] += 1
        timings["request"].append(time.perf_counter() - started)
        for _ in range(settings.max_wrong + 1):  # as many guesses a second as it likes; one over the limit
            guess = f"{secrets.randbelow(1_000_000):06d}"
            started = time.perf_counter()
            try:
                codes.verify(phone, "booking", guess, now)
                tally["lucky hits"] += 1
            except CodeRefused as refused:
                key = "guesses compared (wrong)" if refused.reason in ("wrong", "too-many") and refused.attempts_left is not None \
                    else f"guesses refused unchecked ({refused.reason})"
                tally[key] += 1
            timings["verify"].append(time.perf_counter() - started)
            if tally["guesses compared (wrong)"] and codes_dead(codes, phone):
                break
        now += timedelta(seconds=1)
    attack_one_phone.timings = timings  # type: ignore[attr-defined]
    return per_hour


def codes_dead(codes: OneTimeCodes, phone: str) -> bool:
    row = codes._conn.execute("SELECT state FROM otp_codes ORDER BY id DESC LIMIT 1").fetchone()
    return row is not None and row[0] != "live"


def attack_from_one_address(root: Path, settings: OtpSettings) -> Counter[str]:
    codes, notifier = build(root, settings)
    tally: Counter[str] = Counter()
    now = START
    for n in range(1000):
        try:
            codes.request(f"09{n:08d}", "booking", "203.0.113.7", now)
            tally["codes sent"] += 1
        except CodeRefused as refused:
            tally[f"refused ({refused.reason})"] += 1
        now += timedelta(seconds=3.6)
    tally["messages in the outbox"] = notifier.outbox.counts()["pending"]
    return tally


def ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    settings = OtpSettings()
    print(f"limits ([otp]): {settings.model_dump()}")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        hours = 3  # the third hour meets the daily limit (per_phone_per_day)
        started = time.perf_counter()
        per_hour = attack_one_phone(Path(tmp) / "phone", settings, hours)
        took = time.perf_counter() - started
        print(f"\none phone, attacker asking every second from a fresh address and guessing without pause ({hours} simulated hours, {took:.1f} s of real work):")
        for hour, tally in enumerate(per_hour, 1):
            compared = tally["guesses compared (wrong)"] + tally["lucky hits"]
            print(f"  hour {hour}: {dict(sorted(tally.items()))}")
            print(f"          -> {compared} guesses compared with a live code; chance of a hit this hour {compared / 1e6:.6%}")
        timings = attack_one_phone.timings  # type: ignore[attr-defined]
        print(f"  cost: request median {statistics.median(timings['request']) * 1000:.2f} ms, p99 {ms(timings['request'], 0.99):.2f} ms;"
              f" verify median {statistics.median(timings['verify']) * 1000:.2f} ms, p99 {ms(timings['verify'], 0.99):.2f} ms")
        print(f"  bound: {settings.per_phone_per_hour} codes x {settings.max_wrong} tries = "
              f"{settings.per_phone_per_hour * settings.max_wrong} guesses an hour, "
              f"{settings.per_phone_per_day * settings.max_wrong} a day, per phone")
        tally = attack_from_one_address(Path(tmp) / "address", settings)
        print(f"\none address asking codes for 1,000 phones in one hour: {dict(sorted(tally.items()))}")
    print(f"machine after: load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
