"""Online backups of a centre's database, their verification and restore, and storage health.

Why this shape:
- A backup is SQLite's online backup API (``sqlite3.Connection.backup``) from a connection of its
  own, in one step, run in a worker thread: in WAL mode a reader never blocks the server's
  commits, and one step means the copy is never restarted by the server's writes (a stepped
  backup restarts whenever another connection writes, so under load it may never finish). The
  aiosqlite queue that carries the commits is not used at all, and the server runs its scheduled
  backups in a child process (:func:`run_backup_in_child`: the GIL stays the server's).
- The copy is switched to rollback-journal mode so a backup is ONE self-contained file, checked
  with ``PRAGMA quick_check`` before it counts, and gets a ``sha256sum -c`` compatible checksum
  file beside it. Files are written under a temporary name, fsynced and renamed, so a power cut
  leaves either no backup or a whole one.
- A second location (a directory on a USB disk) gets a copy too; a missing directory (the disk
  is not mounted) is reported, never fatal, and never created (that would fill the root disk).
- Restore is refused while a server holds the database lock (:class:`DatabaseLock`, an ``flock``
  the kernel drops when the server dies, even by kill -9), verifies the checksum and
  ``PRAGMA integrity_check``, and swaps the file in with a rename; the previous database (with
  its -wal and -shm) is kept aside under a ``.before-restore-<time>`` name, never deleted.
Everything here is readable by the service user only: files 0600, directories 0700.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import sqlite3
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from luot.aio import cancel_and_wait
from luot.config import CentreConfig
from luot.paths import database_file
from server.restore_numbering import hold_lost_numbers

log = logging.getLogger("luot.backup")
PROJECT_ROOT = Path(__file__).resolve().parents[1]

NAME = re.compile(r"^luot-(\d{8}T\d{6}\d{3})Z\.sqlite3$")
STAMP = "%Y%m%dT%H%M%S"
CHECKSUM_SUFFIX = ".sha256"
CHUNK = 1 << 20
STALE_SECONDS = 3600  # a temporary file this old belongs to no running backup
RESTORE_SEQ_GAP = 1_000_000
"""How far a restore moves the event log's next ``seq`` on. The province aggregator catches up by
``GET /api/v1/events?after=<highest seq it has seen>``; the lost centre may have written events
past the backup's last seq, and a restored centre numbering its new events from there would have
them skipped by that catch-up. Seq values are only an order (nothing needs them contiguous), so
the restored log continues far above anything the lost one can have reached (a busy day is about
15,000 events); the events in the backup keep their ids and seqs, so nothing is sent twice."""


class BackupError(Exception):
    """A backup or restore that did not happen, with the reason in Vietnamese and English."""

    def __init__(self, message: str, message_en: str, problem: str = "backup-failed") -> None:
        super().__init__(f"{message} / {message_en}")
        self.message = message
        self.message_en = message_en
        self.problem = problem  # "quick-check-failed": the database itself is damaged (see storage_health)


# ---------------------------------------------------------------------------------------- paths
def backup_directory(config: CentreConfig, data_dir: Path) -> Path:
    directory = Path(config.backup.directory)
    return directory if directory.is_absolute() else Path(data_dir) / directory


def private_directory(path: Path) -> Path:
    """Create ``path`` if needed and make it 0700 (the service user only)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


def _fsync(path: Path) -> None:
    """Flush a file, or a directory's entries (a rename), to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------------------- lock
class DatabaseBusy(BackupError):
    """Another process (a running server, or a restore) holds the database."""


class DatabaseLock:
    """An exclusive ``flock`` on ``<database>.lock``, held by a running server and by a restore.

    The kernel releases it when the holder exits in any way (kill -9, power loss), so there is no
    stale pid file to clean up and no pid that may by now belong to another process."""

    def __init__(self, database: Path) -> None:
        self.path = database.with_name(database.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> "DatabaseLock":
        private_directory(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DatabaseBusy(f"một tiến trình khác (máy chủ Luot đang chạy?) đang dùng {self.path.parent}",
                               f"another process (a running luot server?) is using the database in {self.path.parent}") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())  # for a person looking; the lock itself is the flock
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> "DatabaseLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


# ------------------------------------------------------------------------------------ checksums
def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def checksum_path(backup: Path) -> Path:
    return backup.with_name(backup.name + CHECKSUM_SUFFIX)


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary name, fsync, rename), mode 0600."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def write_checksum(backup: Path, digest: str) -> Path:
    """``<backup>.sha256`` in ``sha256sum`` format, so ``sha256sum -c`` checks it too."""
    target = checksum_path(backup)
    _write_private(target, f"{digest}  {backup.name}\n".encode())
    return target


def read_checksum(backup: Path) -> str:
    target = checksum_path(backup)
    try:
        text = target.read_text(encoding="ascii").split()
    except (OSError, UnicodeDecodeError) as error:
        raise BackupError(f"không đọc được tệp kiểm tra {target.name}",
                          f"cannot read the checksum file {target.name}: {error}") from None
    if not text or not re.fullmatch(r"[0-9a-f]{64}", text[0]):
        raise BackupError(f"tệp kiểm tra {target.name} không hợp lệ", f"the checksum file {target.name} is not valid")
    return text[0]


def _check(db: sqlite3.Connection, pragma: str) -> list[str]:
    return [str(row[0]) for row in db.execute(f"PRAGMA {pragma}")]


# --------------------------------------------------------------------------------------- backup
@dataclass
class BackupResult:
    path: str
    size: int
    sha256: str
    seconds: float
    created_at: str
    tickets: int
    last_seq: int
    second_location: dict[str, Any] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def backup_name(now: datetime) -> str:
    now = now.astimezone(timezone.utc)
    return f"luot-{now.strftime(STAMP)}{now.microsecond // 1000:03d}Z.sqlite3"


def _snapshot(database: Path, target: Path) -> tuple[int, int]:
    """Copy ``database`` into the new file ``target`` in one backup step; return (tickets, last seq)."""
    source = sqlite3.connect(f"file:{database}?mode=rw", uri=True, isolation_level=None, timeout=10)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        copy = sqlite3.connect(target, isolation_level=None)
        try:
            source.backup(copy)  # pages=-1: one step, one consistent snapshot, never restarted
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
            problems = _check(copy, "quick_check")
            if problems != ["ok"]:
                raise BackupError("bản sao lưu không qua được quick_check (cơ sở dữ liệu hỏng?)",
                                  f"the backup copy fails quick_check (is the database corrupt?): {'; '.join(problems[:5])}",
                                  problem="quick-check-failed")
            tickets = copy.execute("SELECT COUNT(*) FROM tickets").fetchone()[0]
            last_seq = copy.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
        finally:
            copy.close()
    finally:
        source.close()
    _fsync(target)
    return int(tickets), int(last_seq)


def make_backup(database: Path, directory: Path, now: datetime | None = None) -> BackupResult:
    """One online backup of ``database`` into ``directory`` with its checksum file (blocking: run
    it in a worker thread from the server)."""
    if not database.is_file() or database.stat().st_size == 0:
        raise BackupError(f"không có cơ sở dữ liệu để sao lưu: {database}", f"no database to back up: {database}")
    started = time.perf_counter()
    now = now or datetime.now(timezone.utc)
    private_directory(directory)
    final = directory / backup_name(now)
    tmp = final.with_name(final.name + ".tmp")
    for stale in directory.glob("luot-*.tmp"):  # left by a backup killed half-way (power cut, server stop)
        if stale.stat().st_mtime < time.time() - STALE_SECONDS:
            stale.unlink(missing_ok=True)
    try:
        tickets, last_seq = _snapshot(database, tmp)
        digest = sha256_of(tmp)
        os.replace(tmp, final)
        write_checksum(final, digest)
        _fsync(directory)
    except sqlite3.Error as error:
        raise BackupError("sao lưu thất bại", f"the backup failed: {error}") from error
    finally:
        tmp.unlink(missing_ok=True)
    return BackupResult(path=str(final), size=final.stat().st_size, sha256=digest,
                        seconds=round(time.perf_counter() - started, 3), created_at=now.isoformat(),
                        tickets=tickets, last_seq=last_seq)


def copy_to(backup: Path, digest: str, directory: Path) -> dict[str, Any]:
    """Copy a finished backup and its checksum file into ``directory`` (which must exist: a missing
    one is an unmounted disk and is reported, not created); the copy is re-hashed."""
    if not directory.is_dir():
        return {"path": str(directory), "ok": False,
                "message": f"không thấy thư mục sao lưu thứ hai {directory} (chưa cắm/gắn ổ USB?)",
                "message_en": f"the second backup location {directory} is missing (USB disk not mounted?)"}
    target = directory / backup.name
    tmp = target.with_name(target.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "wb") as out, open(backup, "rb") as source:
            shutil.copyfileobj(source, out, CHUNK)
            out.flush()
            os.fsync(out.fileno())
        if sha256_of(tmp) != digest:
            raise OSError("the copy's checksum differs from the backup's")
        os.replace(tmp, target)
        write_checksum(target, digest)
        _fsync(directory)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        return {"path": str(directory), "ok": False, "message": f"không chép được sang {directory}",
                "message_en": f"could not copy to {directory}: {error}"}
    return {"path": str(target), "ok": True}


def backups_in(directory: Path) -> list[tuple[datetime, Path]]:
    """The backups in ``directory``, newest first, by the time in their names."""
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        match = NAME.match(path.name)
        if match:
            stamp = datetime.strptime(match.group(1)[:15], STAMP).replace(tzinfo=timezone.utc)
            found.append((stamp.replace(microsecond=int(match.group(1)[15:]) * 1000), path))
    return sorted(found, reverse=True)


def prune(directory: Path, keep_hourly: int, keep_daily: int, zone: ZoneInfo) -> list[Path]:
    """Delete backups beyond retention: kept are the newest backup of each of the ``keep_hourly``
    most recent hours that have one, and of each of the ``keep_daily`` most recent days (the
    centre's local days). The newest backup is always kept. Returns the removed files."""
    found = backups_in(directory)
    keep: set[Path] = {found[0][1]} if found else set()
    for width, count in ((13, keep_hourly), (10, keep_daily)):  # "YYYY-MM-DDTHH" / "YYYY-MM-DD"
        seen: list[str] = []
        for stamp, path in found:
            period = stamp.astimezone(zone).isoformat()[:width]
            if period not in seen:
                if len(seen) == count:
                    break
                seen.append(period)
                keep.add(path)
    removed = []
    for _, path in found:
        if path not in keep:
            path.unlink(missing_ok=True)
            checksum_path(path).unlink(missing_ok=True)
            removed.append(path)
    return removed


def run_backup(config: CentreConfig, data_dir: Path, now: datetime | None = None) -> BackupResult:
    """A backup as configured: make it, copy it to the second location, apply retention to both."""
    settings = config.backup
    result = make_backup(database_file(Path(data_dir), config), backup_directory(config, data_dir), now)
    backup = Path(result.path)
    removed = prune(backup.parent, settings.keep_hourly, settings.keep_daily, config.zone)
    if settings.second_location:
        second = Path(settings.second_location)
        result.second_location = copy_to(backup, result.sha256, second)
        if result.second_location["ok"]:
            removed += prune(second, settings.keep_hourly, settings.keep_daily, config.zone)
        else:
            log.warning("backup: %s", result.second_location["message_en"])
    result.removed = [str(path) for path in removed]
    return result


# -------------------------------------------------------------------------------------- restore
def verify_backup(backup: Path) -> str:
    """The backup's SHA-256 after checking it against its checksum file and ``PRAGMA
    integrity_check``; :class:`BackupError` otherwise."""
    if not backup.is_file():
        raise BackupError(f"không có tệp {backup}", f"no such file: {backup}")
    expected = read_checksum(backup)
    actual = sha256_of(backup)
    if actual != expected:
        raise BackupError(f"mã kiểm tra của {backup.name} không khớp (tệp hỏng hoặc bị sửa)",
                          f"the checksum of {backup.name} does not match (damaged or altered file): "
                          f"expected {expected}, got {actual}")
    try:
        db = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
        try:
            problems = _check(db, "integrity_check")
            version = db.execute("PRAGMA user_version").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error as error:
        raise BackupError(f"{backup.name} không phải cơ sở dữ liệu dùng được",
                          f"{backup.name} is not a usable database: {error}") from None
    if problems != ["ok"]:
        raise BackupError(f"{backup.name} không qua được integrity_check",
                          f"{backup.name} fails integrity_check: {'; '.join(problems[:5])}")
    if not version:
        raise BackupError(f"{backup.name} không phải bản sao lưu Luot", f"{backup.name} is not a Luot database")
    return actual


def restore(config: CentreConfig, data_dir: Path, backup: Path, now: datetime | None = None,
            skip_numbers: int | None = None) -> dict[str, Any]:
    """Put ``backup`` in place of the centre's database in ``data_dir``, or refuse.

    Refused while a server (or another restore) holds the database lock. The backup is verified,
    copied next to the database under a temporary name, fsynced and verified again, and then the
    current database with its -wal and -shm is renamed aside (never deleted: -wal first, so a
    stale -wal can never be applied to the restored file) and the copy renamed into place. The
    event log's next seq is moved on by :data:`RESTORE_SEQ_GAP` (why: see there), and today's
    numbering continues past the numbers the hours since the backup may have given out
    (:mod:`server.restore_numbering`; ``skip_numbers`` per group instead of its estimate)."""
    started = time.perf_counter()
    now = now or datetime.now(timezone.utc)
    target = database_file(Path(data_dir), config)
    private_directory(Path(data_dir))
    with DatabaseLock(target):
        digest = verify_backup(backup)
        tmp = target.with_name(target.name + ".restore.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with open(fd, "wb") as out, open(backup, "rb") as source:
                shutil.copyfileobj(source, out, CHUNK)
                out.flush()
                os.fsync(out.fileno())
            if sha256_of(tmp) != digest:
                raise BackupError("bản chép vào thư mục dữ liệu bị sai", "the copy in the data directory differs from the backup")
            next_seq = _skip_seq(tmp)
            numbering = hold_lost_numbers(str(tmp), config, now, skip_numbers)
            aside = None
            if target.exists():
                aside = target.with_name(f"{target.name}.before-restore-{now.astimezone(timezone.utc).strftime(STAMP)}Z")
            for suffix in ("-wal", "-shm", ""):
                current = target.with_name(target.name + suffix)
                if current.exists():
                    if aside is None:  # a -wal or -shm without its database: nothing to keep it with
                        current.unlink()
                    else:
                        os.replace(current, aside.with_name(aside.name + suffix))
            os.replace(tmp, target)
            _fsync(target.parent)
        finally:
            tmp.unlink(missing_ok=True)
        db = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
        try:
            tickets = db.execute("SELECT COUNT(*) FROM tickets").fetchone()[0]
            last_seq = db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
        finally:
            db.close()
    return {"ok": True, "restored": str(target), "from": str(backup), "sha256": digest,
            "size": target.stat().st_size, "tickets": tickets, "last_seq": last_seq,
            "next_seq": next_seq, "numbering": numbering, "previous": str(aside) if aside else None,
            "seconds": round(time.perf_counter() - started, 3)}


def _skip_seq(database: Path) -> int:
    """Move the event log's AUTOINCREMENT on by :data:`RESTORE_SEQ_GAP`; return the next seq."""
    db = sqlite3.connect(database, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        top = db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
        db.execute("DELETE FROM sqlite_sequence WHERE name = 'events'")
        db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('events', ?)", (top + RESTORE_SEQ_GAP,))
        db.execute("COMMIT")
    finally:
        db.close()
    _fsync(database)
    return int(top) + RESTORE_SEQ_GAP + 1


# ------------------------------------------------------------------------------------ scheduler
async def run_backup_in_child(config: CentreConfig, data_dir: Path) -> BackupResult:
    """:func:`run_backup` in a child Python process at nice +10 (``python -m server.backup``).

    Why a process: the copy, its quick_check and its SHA-256 take one to five seconds of a core per
    150 MB; in a child they share neither the server's GIL nor its priority (systemd runs the
    server at nice -5). bench/drill_restore.py (100,000 tickets, kiosks issuing 48 tickets a
    second, a loaded 2-core machine) saw the issue latency's median unchanged during the backup
    and its p99 and maximum about 100 ms higher, the same, within the noise, as a backup in a
    thread of the server. The child gets the centre's configuration as JSON on stdin, so it
    backs up exactly as configured; it answers with the result as JSON, or a
    :class:`BackupError` as JSON."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server.backup", str(Path(data_dir).resolve()), cwd=PROJECT_ROOT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await process.communicate(config.model_dump_json().encode())
    except asyncio.CancelledError:  # the server is stopping: end the copy (its .tmp file is removed later)
        process.kill()
        await process.wait()
        raise
    if process.returncode == 0:
        return BackupResult(**json.loads(out))
    lines = err.decode("utf-8", "replace").strip().splitlines()
    try:
        reason = json.loads(lines[-1])
        raise BackupError(reason["message"], reason["message_en"], reason.get("problem", "backup-failed"))
    except (IndexError, ValueError, KeyError, TypeError):
        raise BackupError("tiến trình sao lưu bị lỗi", f"the backup process failed ({process.returncode}): "
                          f"{' '.join(lines[-3:])[:500]}") from None


def _child_main() -> int:
    """``python -m server.backup DATA_DIR`` with the centre's configuration as JSON on stdin."""
    try:
        os.nice(10)  # behind the server (systemd runs it at nice -5) and anything else
    except OSError:
        pass
    config = CentreConfig.model_validate_json(sys.stdin.read())
    try:
        result = run_backup(config, Path(sys.argv[1]))
    except BackupError as error:
        print(json.dumps({"message": error.message, "message_en": error.message_en, "problem": error.problem},
                         ensure_ascii=False), file=sys.stderr)
        return 1
    except OSError as error:
        print(json.dumps({"message": "sao lưu thất bại", "message_en": f"the backup failed: {error}"}), file=sys.stderr)
        return 1
    print(json.dumps(result.as_dict()))
    return 0


def first_delay(interval: float, newest_age: float | None, settle: float = 60.0) -> float:
    """Seconds until a starting server's first scheduled backup: the rest of the interval since
    the newest backup, so a server restarted more often than ``interval`` still backs up on time
    (never sooner than ``settle`` after the start, which is busy enough); a full interval when
    there is none yet (a new centre has nothing worth copying)."""
    if newest_age is None:
        return interval
    return min(interval, max(settle, interval - newest_age))


class BackupScheduler:
    """Scheduled backups of a running server: every ``interval_minutes``, in a child process.

    The last result (or error) is kept for /health. A backup that finds the database corrupt
    (its copy fails quick_check) is recorded as storage trouble."""

    def __init__(self, config: CentreConfig, data_dir: Path, interval_seconds: float | None = None) -> None:
        self.config = config
        self.data_dir = Path(data_dir)
        self.interval = config.backup.interval_minutes * 60 if interval_seconds is None else interval_seconds
        self.last: BackupResult | None = None
        self.last_error: BackupError | None = None
        self.last_at: datetime | None = None
        self._task: asyncio.Task[None] | None = None
        self._running = asyncio.Lock()

    def start(self) -> None:
        if self.interval > 0:
            self._task = asyncio.create_task(self._loop(), name="luot-backups")

    async def run_now(self) -> BackupResult:
        async with self._running:  # never two at once
            self.last_at = datetime.now(timezone.utc)
            try:
                result = await run_backup_in_child(self.config, self.data_dir)
            except BackupError as error:
                self.last_error = error
                raise
            except OSError as error:
                self.last_error = BackupError("sao lưu thất bại", f"the backup failed: {error}")
                raise self.last_error from error
            self.last, self.last_error = result, None
            return result

    async def _loop(self) -> None:
        found = backups_in(backup_directory(self.config, self.data_dir))
        age = (datetime.now(timezone.utc) - found[0][0]).total_seconds() if found else None
        delay = first_delay(self.interval, age)
        while True:
            await asyncio.sleep(delay)
            delay = self.interval
            try:
                result = await self.run_now()
                log.info("backup %s: %d bytes in %.2f s", result.path, result.size, result.seconds)
            except BackupError as error:
                log.error("scheduled backup failed: %s", error.message_en)

    async def stop(self) -> None:
        await cancel_and_wait(self._task)

    def status(self) -> dict[str, Any]:
        second = self.last.second_location if self.last else {}
        return {"last": self.last.path if self.last else None,
                "last_at": self.last_at.isoformat() if self.last_at else None,
                "error": self.last_error.message_en if self.last_error else None,
                "second_location_ok": second.get("ok") if second else None}


# --------------------------------------------------------------------------------------- health
def storage_health(storage: Any, min_free_mb: int, backups: BackupScheduler | None = None) -> dict[str, Any]:
    """Storage trouble a manager must hear about: ``status`` is "ok" or "storage-trouble" (answer
    503), with each problem in Vietnamese and English. Trouble: less than ``min_free_mb`` free
    on the database's disk, the latest commit failed, or the latest backup found the database
    corrupt. A backup that could not be made or copied to the second location is reported under
    ``backup`` without turning the status (the queue still works)."""
    problems: list[dict[str, str]] = []
    stats = os.statvfs(storage.path.parent if storage.path else ".")
    free_mb = stats.f_bavail * stats.f_frsize // (1 << 20)
    if free_mb < min_free_mb:
        problems.append({"problem": "disk-nearly-full", "message": f"ổ đĩa sắp đầy: còn {free_mb} MB",
                         "message_en": f"disk nearly full: {free_mb} MB free (threshold {min_free_mb} MB)"})
    if storage.last_commit_error:
        problems.append({"problem": "commit-failed", "message": "lần ghi dữ liệu gần nhất thất bại",
                         "message_en": f"the latest commit failed: {storage.last_commit_error}"})
    error = backups.last_error if backups else None
    if error is not None and error.problem == "quick-check-failed":
        problems.append({"problem": error.problem, "message": error.message, "message_en": error.message_en})
    result: dict[str, Any] = {"status": "storage-trouble" if problems else "ok", "free_mb": free_mb,
                              "problems": problems}
    if backups is not None:
        result["backup"] = backups.status()
    return result


if __name__ == "__main__":
    sys.exit(_child_main())
