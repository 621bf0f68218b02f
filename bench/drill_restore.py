"""Drill: back up a loaded centre, restore it onto a fresh data directory, and check the result.

1. A centre database is filled with ``--history`` past tickets (default 100,000) and their four
   log events each (issued, called, serving, finished; as the engine writes them), so the backup
   has a real size. ``Storage.open`` on it is timed (it runs ``PRAGMA quick_check``).
2. A real ``luot server`` (Mosquitto from broker_config/, MQTT link on) runs on it with
   ``[backup] interval_minutes = 1`` and a second location; kiosks issue tickets at a steady pace
   over HTTP, each request timed (an issue is answered only after its commit is on disk, so its
   latency carries any commit stall). Meanwhile an operator runs ``luot backup`` (its own process),
   and the server makes its scheduled backup (worker thread inside the server).
3. The newest backup is restored with ``luot restore`` into a FRESH data directory (with the
   old secrets.json, as docs/backup.md asks an operator to keep it), and ``luot server`` starts on
   it WITHOUT ``--init``. Checked and printed: every ticket acknowledged before the backup began is
   there with the same id, number and token (hash); a new ticket in each group is numbered above the
   highest of its group; no (day, group, number) twice; the backup's events keep their ids and
   seqs; the restored centre's new events come after the old centre's last seq (the province's
   catch-up asks for ``after=<its high-water seq>``) and have ids the province has not seen (it
   de-duplicates by event id: the statement is printed from region/store.py).

Prints figures, never asserts; exits 1 only if a check above fails.

    .venv/bin/python bench/drill_restore.py [--history 100000] [--kiosks 4] [--rate 12]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psutil  # noqa: E402

from bench_history import create_schema, generate  # noqa: E402
from loadkit import ROOT, Centre, Http, percentile  # noqa: E402
from server.engine import token_hash  # noqa: E402
from server.storage import Storage  # noqa: E402
from tests.helpers.process import ServerProcess  # noqa: E402

GROUP_CODES = ["ho-tich", "chung-thuc", "dat-dai", "cu-tru", "bao-tro-xa-hoi", "ho-kinh-doanh", "khac"]
NAME_TIME = re.compile(r"luot-(\d{8}T\d{6})(\d{3})Z\.sqlite3")


def fill_history(path: Path, tickets: int) -> dict[str, float]:
    """Past tickets with rollups (bench_history.generate) plus the log events the engine writes
    (their order within a day is not the engine's; the backup copies pages, not meaning)."""
    started = time.perf_counter()
    generate(path, tickets, 400)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous=OFF")
    db.execute("BEGIN")
    for kind, extra in (
        ("ticket.issued", "'token', token, 'priority', priority, 'source', 'kiosk-1', 'offline', json('false'), 'issued_at', issued_at"),
        ("ticket.called", "'counter', counter, 'officer', officer, 'call', 1, 'wait_seconds', 612.5, 'first_call', json('true'), 'priority', json('false')"),
        ("ticket.serving", "'counter', counter, 'officer', officer"),
        ("ticket.finished", "'counter', counter, 'officer', officer, 'service_seconds', 431.25"),
    ):
        db.execute(f"""INSERT INTO events (id, type, at, day, data)
                       SELECT lower(hex(randomblob(16))), '{kind}', issued_at, day,
                              json_object('ticket_id', id, 'number', number, 'group', grp, {extra})
                       FROM tickets ORDER BY rowid""")
    # The log's latest day.opened, as a centre's log has after each day: a restart replays from it
    # (without one the server would replay the whole history at start).
    last = db.execute("SELECT MAX(day) FROM tickets").fetchone()[0]
    db.execute("INSERT INTO events (id, type, at, day, data) VALUES (lower(hex(randomblob(16))), 'day.opened', ?, ?, ?)",
               (f"{last}T00:00:00+00:00", last, json.dumps({"day": last})))
    # ... and closed by its manager, as a centre's days are: a day left open for weeks makes the
    # server refuse every ticket until a manager confirms the clock (docs/web.md, clock)
    db.execute("INSERT INTO events (id, type, at, day, data) VALUES (lower(hex(randomblob(16))), 'day.closed', ?, ?, ?)",
               (f"{last}T10:00:00+00:00", last, json.dumps({"day": last, "reason": "manager"})))
    db.execute("COMMIT")
    db.close()
    return {"seconds": time.perf_counter() - started}


async def kiosk(centre: Centre, rate: float, stop: asyncio.Event, out: list[dict], index: int) -> None:
    """One kiosk issuing ``rate`` tickets a second, round the groups; every answer timed."""
    async with Http(centre.url, centre.device_header("kiosk-1")) as http:
        n = index
        next_at = time.monotonic()
        while not stop.is_set():
            group = GROUP_CODES[n % len(GROUP_CODES)]
            n += 1
            sent = time.time()
            t0 = time.perf_counter()
            status, body = await http.request("POST", "/api/v1/tickets", {"group": group})
            latency = time.perf_counter() - t0
            out.append({"sent": sent, "latency": latency, "status": status,
                        **({k: body[k] for k in ("number", "group", "token", "id")} if status == 201 else {})})
            next_at += 1 / rate
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))


def window_of(path: str, seconds: float) -> tuple[float, float]:
    match = NAME_TIME.search(path)
    assert match, path
    start = datetime.strptime(match.group(1) + "+0000", "%Y%m%dT%H%M%S%z").timestamp() + int(match.group(2)) / 1000
    return start, start + seconds


def latency_line(label: str, rows: list[dict]) -> str:
    values = [r["latency"] * 1000 for r in rows]
    if not values:
        return f"  {label:38s} (no request)"
    return (f"  {label:38s} n={len(values):5d}  p50 {percentile(values, 0.5):7.1f} ms  p99 {percentile(values, 0.99):7.1f} ms"
            f"  max {max(values):7.1f} ms")


def rows_of(database: Path, sql: str, *args: object) -> list[tuple]:
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def dedup_statement() -> str:
    text = (ROOT / "region" / "store.py").read_text("utf-8")
    match = re.search(r"INSERT INTO event_ids[^\n]*\n[^\n]*", text)
    return " ".join(match.group(0).split()) if match else "(not found)"


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=100_000, help="past tickets in the database")
    parser.add_argument("--kiosks", type=int, default=4)
    parser.add_argument("--rate", type=float, default=12.0, help="tickets a second per kiosk")
    parser.add_argument("--max-seconds", type=float, default=150.0, help="give up waiting for the scheduled backup")
    parser.add_argument("--keep", help="keep the drill's files in this directory")
    args = parser.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="luot-drill-restore-"))
    work.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    print(f"machine: {psutil.cpu_count()} cores, load average {psutil.getloadavg()[0]:.2f}, "
          f"free disk {shutil.disk_usage(work).free // 2**20} MB in {work}")

    centre = Centre(work / "old", capacity=9999)
    usb = work / "usb" / "luot-backups"
    usb.mkdir(parents=True)
    text = centre.config_path.read_text("utf-8")
    text = text.replace("interval_minutes = 60", "interval_minutes = 1")
    text = text.replace('# second_location = "/media/luot-usb/luot-backups"', f'second_location = "{usb}"')
    centre.config_path.write_text(text, "utf-8")
    database = centre.data / "luot.sqlite3"

    create_schema(database)  # the schema bench_history.generate writes (migrations 1-3); Storage.open migrates it
    filled = fill_history(database, args.history)
    t0 = time.perf_counter()
    storage = await Storage.open(database, centre.config.zone, create=False)  # quick_check included
    open_seconds = time.perf_counter() - t0
    await storage.close()
    print(f"history: {args.history} tickets, {rows_of(database, 'SELECT COUNT(*) FROM events')[0][0]} events, "
          f"{database.stat().st_size / 2**20:.1f} MB, filled in {filled['seconds']:.1f} s; "
          f"Storage.open with quick_check {open_seconds * 1000:.0f} ms")

    centre.start_broker()
    centre.start_server()
    started_at = time.time()
    answers: list[dict] = []
    stop = asyncio.Event()
    kiosks = [asyncio.create_task(kiosk(centre, args.rate, stop, answers, i)) for i in range(args.kiosks)]
    await asyncio.sleep(8)
    manual = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "luot.cli", "backup", "--config", str(centre.config_path), "--data", str(centre.data),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await manual.communicate()
    if manual.returncode != 0:
        print("luot backup failed:", err.decode())
        failures.append("luot backup failed")
        manual_result = None
    else:
        manual_result = json.loads(out)
    scheduled: tuple[str, float] | None = None
    log = centre.data / "server.log"
    while time.time() - started_at < args.max_seconds:
        found = re.findall(r"backup (\S+): (\d+) bytes in ([\d.]+) s", log.read_text("utf-8", "replace"))
        if found:
            scheduled = (found[-1][0], float(found[-1][2]))
            break
        await asyncio.sleep(0.5)
    await asyncio.sleep(3)  # some load after the scheduled backup too
    stop.set()
    await asyncio.gather(*kiosks)
    centre.close()  # server (SIGTERM) and broker

    acked = [a for a in answers if a["status"] == 201]
    refused = [a for a in answers if a["status"] != 201]
    windows = {}
    if manual_result:
        windows["luot backup (own process)"] = window_of(manual_result["path"], manual_result["seconds"])
    if scheduled:
        windows["scheduled backup (in the server)"] = window_of(scheduled[0], scheduled[1])
    print(f"\nload: {len(answers)} issue requests by {args.kiosks} kiosks at {args.rate}/s each, "
          f"{len(acked)} acknowledged, {len(refused)} refused")
    inside = [a for a in answers if any(s <= a["sent"] <= e for s, e in windows.values())]
    print(latency_line("issue latency outside backups", [a for a in answers if a not in inside]))
    # The latency grows with the waiting line (nobody is served), so each backup is compared with
    # the 5 s just before and just after it, not with the whole run.
    for label, (s, e) in windows.items():
        print(f"  {label}:")
        print(latency_line("5 s before", [a for a in answers if s - 5 <= a["sent"] < s]))
        print(latency_line("during", [a for a in answers if s <= a["sent"] <= e]))
        print(latency_line("5 s after", [a for a in answers if e < a["sent"] <= e + 5]))
    if manual_result:
        print(f"\nluot backup: {manual_result['size'] / 2**20:.1f} MB in {manual_result['seconds']:.2f} s "
              f"({manual_result['tickets']} tickets, last seq {manual_result['last_seq']}); "
              f"second location ok: {manual_result['second_location'].get('ok')}")
    if scheduled:
        print(f"scheduled backup: {scheduled[0]} in {scheduled[1]:.2f} s")
    else:
        print("scheduled backup: did not happen within the time allowed")
        failures.append("no scheduled backup")
    usb_copies = sorted(p.name for p in usb.glob("luot-*.sqlite3"))
    print(f"second location: {len(usb_copies)} copies {usb_copies}")

    # ------------------------------------------------------------------ restore on a fresh directory
    chosen = scheduled[0] if scheduled else (manual_result or {}).get("path")
    if not chosen:
        print("no backup to restore")
        return 1
    backup = Path(chosen)
    backup_start = window_of(chosen, 0)[0]
    fresh = work / "new" / "var"
    t0 = time.perf_counter()
    restore = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "luot.cli", "restore", str(backup), "--config", str(centre.config_path),
        "--data", str(fresh), cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await restore.communicate()
    restore_wall = time.perf_counter() - t0
    if restore.returncode != 0:
        print("luot restore failed:", err.decode())
        return 1
    restored = json.loads(out)
    print(f"\nluot restore: {restored['size'] / 2**20:.1f} MB, {restored['tickets']} tickets, verified and in place in "
          f"{restored['seconds']:.2f} s ({restore_wall:.2f} s with the command's start); next seq {restored['next_seq']}")
    shutil.copy2(centre.data / "secrets.json", fresh / "secrets.json")

    old_db, new_db = database, fresh / "luot.sqlite3"
    backup_tickets = rows_of(backup, "SELECT id, day, grp, number, token_hash FROM tickets ORDER BY id")
    if rows_of(new_db, "SELECT id, day, grp, number, token_hash FROM tickets ORDER BY id") != backup_tickets:
        failures.append("restored tickets differ from the backup's")
    in_backup = {row[4] for row in backup_tickets}
    before = [a for a in acked if a["sent"] + a["latency"] < backup_start]
    after = [a for a in acked if a["sent"] > backup_start]
    missing = [a for a in before if token_hash(a["token"]) not in in_backup]
    print(f"tickets acknowledged before the backup began: {len(before)}, missing from the restored centre: {len(missing)}")
    print(f"tickets acknowledged after the backup began (lost with the old disk; their slips are in citizens' "
          f"hands): {len([a for a in after if token_hash(a['token']) not in in_backup])}")
    saved_ids = {b[0] for b in backup_tickets}
    lost_numbers = {(row[2], row[3]) for row in rows_of(old_db, "SELECT id, day, grp, number FROM tickets")
                    if row[0] not in saved_ids and row[1] == restored["numbering"]["day"]}
    skipped = {g: v["skipped"] for g, v in restored["numbering"]["groups"].items()}
    print(f"numbering after the restore: {restored['numbering']['lost_hours']} open hours may be lost; skipped per group {skipped}")
    if missing:
        failures.append(f"{len(missing)} acknowledged tickets missing")
    today = rows_of(new_db, "SELECT MAX(day) FROM tickets")[0][0]
    highest = dict(rows_of(new_db, "SELECT grp, MAX(number) FROM tickets WHERE day = ? GROUP BY grp", today))
    old_last_seq = rows_of(old_db, "SELECT MAX(seq) FROM events")[0][0]
    old_ids = {row[0] for row in rows_of(old_db, "SELECT id FROM events")}

    server = ServerProcess(fresh, extra=["--config", str(centre.config_path), "--no-mqtt"], init=False)
    t0 = time.perf_counter()
    server.start(timeout=120)
    print(f"server on the restored directory (no --init) healthy in {time.perf_counter() - t0:.2f} s")
    try:
        async with Http(server.url, centre.device_header("kiosk-1")) as http:
            for group in GROUP_CODES:
                status, body = await http.request("POST", "/api/v1/tickets", {"group": group})
                top = highest.get(group)
                ok = (status == 201 and (top is None or body["number"] > top)
                      and (group, body["number"]) not in lost_numbers)  # a lost slip's number is never given again
                print(f"  {group:15s} highest restored {top}  next issued {body.get('number') if status == 201 else body}"
                      f"  {'ok' if ok else 'WRONG'}")
                if not ok:
                    failures.append(f"numbering of {group}")
            if before:  # the citizen's slip holds the token; the database only its hash
                status, body = await http.request("GET", f"/api/v1/track/{before[-1]['token']}")
                print(f"  a restored ticket's tracking page (its slip's token): HTTP {status}")
                if status != 200:
                    failures.append("a restored ticket's tracking page")
    finally:
        server.stop()
    duplicates = rows_of(new_db, "SELECT day, grp, number, COUNT(*) FROM tickets GROUP BY day, grp, number HAVING COUNT(*) > 1")
    print(f"(day, group, number) issued twice in the restored centre: {len(duplicates)}")
    if duplicates:
        failures.append("duplicate numbers")
    backup_last = rows_of(backup, "SELECT MAX(seq) FROM events")[0][0]
    same = rows_of(new_db, "SELECT seq, id FROM events WHERE seq <= ? ORDER BY seq", backup_last) == \
        rows_of(old_db, "SELECT seq, id FROM events WHERE seq <= ? ORDER BY seq", backup_last)
    new_events = rows_of(new_db, "SELECT seq, id FROM events WHERE seq > ? ORDER BY seq", backup_last)
    print(f"events: the backup's {backup_last} keep their seq and id in the restored log: {same}")
    print(f"events: old centre's last seq {old_last_seq}; restored centre's new events: {len(new_events)}, "
          f"seqs {new_events[0][0] if new_events else '-'}..{new_events[-1][0] if new_events else '-'}; "
          f"all above the old last seq (province catch-up after its high-water sees them): "
          f"{all(seq > old_last_seq for seq, _ in new_events)}; ids the province already has: "
          f"{sum(1 for _, event_id in new_events if event_id in old_ids)}")
    print(f"province de-duplication (region/store.py): by event id: {dedup_statement()}")
    if not same or not all(seq > old_last_seq for seq, _ in new_events):
        failures.append("event seq/id continuity")
    print(f"\n{'FAILED: ' + '; '.join(failures) if failures else 'all checks passed'}  (files: {work})")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
