"""SQLite storage: an append-only event log, current-state tables and rollups.

Durability: WAL with ``synchronous=FULL``, so a commit that returned survives kill -9 and power
loss. Commits are grouped: every operation waiting at the same moment goes into one transaction
(one fsync), and each caller is released only after that transaction is on disk. Reports read
rollup tables (per day, hour, group, counter, officer) and a wait histogram, never the raw log,
so their cost does not grow with history; days before today are read from stored summaries of
those rollups (server/summaries.py), so a month costs a few rows per day and key.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import sqlite3
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, TypeVar
from zoneinfo import ZoneInfo

from server import summaries
from luot.protocol import level_of
from server.engine import Event, token_hash
from server.login_store import LOGIN_GUARD_DDL
from server.restore_numbering import NUMBER_FLOORS_DDL, USED_NUMBERS_SQL
from server.sqlite_thread import SqliteThread
from server.wait_history import TicketRecord
from server.summaries import percentile_from_histogram  # re-exported: reports and tests import it from here

log = logging.getLogger("luot.storage")
T = TypeVar("T")

WAIT_BUCKETS = 240  # one-minute buckets; the last one holds every wait of 4 hours or more

def _unsummarising_triggers(table: str) -> str:
    """Triggers that drop a summarised day's summaries whenever a row of ``table`` of that day is
    inserted, updated or deleted (migration 4): a late ticket for a past day changes its report."""
    days = {"INSERT": "NEW.day", "UPDATE": "OLD.day, NEW.day", "DELETE": "OLD.day"}
    return "".join(f"""
    CREATE TRIGGER {table}_{operation.lower()}_unsummarises AFTER {operation} ON {table}
    WHEN EXISTS (SELECT 1 FROM summarised_days WHERE day IN ({which})) BEGIN
        DELETE FROM day_summary WHERE day IN ({which});
        DELETE FROM summarised_days WHERE day IN ({which});
    END;""" for operation, which in days.items())


MIGRATIONS: list[str] = [
    # 1: the base schema
    """
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        at TEXT NOT NULL,
        day TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX events_day_opened ON events(type, seq) WHERE type = 'day.opened';
    CREATE TABLE tickets (
        id TEXT PRIMARY KEY,
        day TEXT NOT NULL,
        number INTEGER NOT NULL,
        grp TEXT NOT NULL,
        token TEXT NOT NULL UNIQUE,
        priority TEXT,
        source TEXT,
        offline INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL,
        issued_at TEXT NOT NULL,
        first_called_at TEXT,
        started_at TEXT,
        finished_at TEXT,
        counter INTEGER,
        officer TEXT,
        calls INTEGER NOT NULL DEFAULT 0,
        rating INTEGER,
        UNIQUE (day, grp, number)
    );
    CREATE TABLE stats_hourly (
        day TEXT NOT NULL,
        hour INTEGER NOT NULL,
        grp TEXT NOT NULL,
        counter INTEGER NOT NULL DEFAULT 0,
        officer TEXT NOT NULL DEFAULT '',
        issued INTEGER NOT NULL DEFAULT 0,
        called INTEGER NOT NULL DEFAULT 0,
        wait_sum REAL NOT NULL DEFAULT 0,
        served INTEGER NOT NULL DEFAULT 0,
        service_sum REAL NOT NULL DEFAULT 0,
        no_show INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (day, hour, grp, counter, officer)
    );
    CREATE TABLE wait_hist (
        day TEXT NOT NULL,
        grp TEXT NOT NULL,
        counter INTEGER NOT NULL,
        officer TEXT NOT NULL,
        bucket INTEGER NOT NULL,
        n INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (day, grp, counter, officer, bucket)
    );
    CREATE TABLE satisfaction_daily (
        day TEXT NOT NULL,
        grp TEXT NOT NULL,
        counter INTEGER NOT NULL,
        officer TEXT NOT NULL,
        rating INTEGER NOT NULL,
        n INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (day, grp, counter, officer, rating)
    );
    CREATE TABLE users (
        username TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('officer', 'manager')),
        password_hash TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY,
        username TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
        expires_at TEXT NOT NULL
    );
    """,
    # 2: dossiers (hồ sơ) handed in at a counter, and each one's status history for the tracking page
    """
    CREATE TABLE dossiers (
        code TEXT PRIMARY KEY,
        ticket_id TEXT NOT NULL,
        day TEXT NOT NULL,
        grp TEXT NOT NULL,
        status TEXT NOT NULL,
        attached_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX dossiers_ticket ON dossiers(ticket_id);
    CREATE TABLE dossier_events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        code TEXT NOT NULL REFERENCES dossiers(code),
        status TEXT NOT NULL,
        at TEXT NOT NULL
    );
    CREATE INDEX dossier_events_code ON dossier_events(code, seq);
    """,
    # 3: covering indexes for the 90th-percentile wait: a report's histogram rows stream out of the
    # index already in (day, key, bucket) order, with no table look-up and no sort (a month of
    # histograms cost 22 ms before, at any history size; bench/bench_history.py)
    """
    CREATE INDEX wait_hist_by_group ON wait_hist(day, grp, bucket, n);
    CREATE INDEX wait_hist_by_counter ON wait_hist(day, counter, bucket, n);
    CREATE INDEX wait_hist_by_officer ON wait_hist(day, officer, bucket, n);
    """,
    # 4: summaries of closed days (server/summaries.py): per day, dimension ('group', 'hour',
    # 'counter', 'officer') and key, the rollup sums, the 90th-percentile wait and the day's wait
    # histogram as a JSON list of counts per one-minute bucket (index = bucket); `k` has no type so counters and hours
    # stay integers and groups and officers text. Any change to a summarised day's rollup rows
    # deletes its summaries in the same transaction (a late offline ticket for a past day), so a
    # stored summary always equals what the rollups give.
    """
    CREATE TABLE day_summary (
        day TEXT NOT NULL,
        dim TEXT NOT NULL,
        k NOT NULL,
        issued INTEGER,
        called INTEGER,
        wait_sum REAL,
        served INTEGER,
        service_sum REAL,
        no_show INTEGER,
        p90 REAL,
        hist TEXT,
        PRIMARY KEY (day, dim, k)
    ) WITHOUT ROWID;
    CREATE TABLE summarised_days (day TEXT PRIMARY KEY) WITHOUT ROWID;
    """ + _unsummarising_triggers("stats_hourly") + _unsummarising_triggers("wait_hist"),
    # 5: tracking tokens kept only as SHA-256 hashes (server.engine.token_hash), in the tickets
    # table and in the log: a copied database opens nobody's tracking page. A token is unique per
    # service day (the engine knows the day's tokens and refuses a repeat; it cannot know every
    # earlier day's, and the database must never refuse what the engine accepted, or one kiosk's
    # replayed token would fail everyone's group commit). ``luot_sha256`` is registered on the
    # connection by Storage.open. Leases get an index so start-up reads each day's highest number.
    """
    CREATE TABLE tickets_v5 (
        id TEXT PRIMARY KEY,
        day TEXT NOT NULL,
        number INTEGER NOT NULL,
        grp TEXT NOT NULL,
        token_hash TEXT NOT NULL,
        priority TEXT,
        source TEXT,
        offline INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL,
        issued_at TEXT NOT NULL,
        first_called_at TEXT,
        started_at TEXT,
        finished_at TEXT,
        counter INTEGER,
        officer TEXT,
        calls INTEGER NOT NULL DEFAULT 0,
        rating INTEGER,
        UNIQUE (day, grp, number),
        UNIQUE (day, token_hash)
    );
    INSERT INTO tickets_v5 (id, day, number, grp, token_hash, priority, source, offline, status, issued_at,
                            first_called_at, started_at, finished_at, counter, officer, calls, rating)
        SELECT id, day, number, grp, luot_sha256(token), priority, source, offline, status, issued_at,
               first_called_at, started_at, finished_at, counter, officer, calls, rating FROM tickets;
    DROP TABLE tickets;
    ALTER TABLE tickets_v5 RENAME TO tickets;
    CREATE INDEX tickets_token_hash ON tickets(token_hash);
    UPDATE events SET data = json_set(json_remove(data, '$.token'), '$.token_hash',
                                      luot_sha256(json_extract(data, '$.token')))
        WHERE type = 'ticket.issued' AND json_extract(data, '$.token') IS NOT NULL;
    CREATE INDEX events_leases ON events(day) WHERE type = 'block.leased';
    """,
    # 6: the province's five satisfaction levels (issue 18). Ratings stored before were four faces
    # (4 rất hài lòng .. 1 không hài lòng); each keeps its words on the five-level scale
    # (4->5, 3->4, 2->3, 1->2, luot.protocol.level_of), in tickets.rating and satisfaction_daily
    # (via negative values: the primary key forbids a clash half-way). `feedback` holds one row per
    # rated ticket with its reasons and dossier, backfilled from the log. Dossiers may carry the
    # appointment date of their receipt (overdue dossiers count against the Decision 766 index).
    """
    UPDATE tickets SET rating = rating + 1 WHERE rating IS NOT NULL;
    UPDATE satisfaction_daily SET rating = -(rating + 1);
    UPDATE satisfaction_daily SET rating = -rating;
    CREATE TABLE feedback (
        ticket_id TEXT PRIMARY KEY,
        event_id TEXT NOT NULL,
        day TEXT NOT NULL,
        at TEXT NOT NULL,
        grp TEXT NOT NULL,
        counter INTEGER NOT NULL DEFAULT 0,
        officer TEXT NOT NULL DEFAULT '',
        level INTEGER NOT NULL CHECK (level BETWEEN 1 AND 5),
        scale INTEGER NOT NULL,
        reasons TEXT NOT NULL DEFAULT '[]',
        dossier TEXT,
        source TEXT NOT NULL DEFAULT 'pad'
    );
    CREATE INDEX feedback_day ON feedback(day);
    INSERT OR IGNORE INTO feedback (ticket_id, event_id, day, at, grp, counter, officer, level, scale, dossier)
        SELECT json_extract(e.data, '$.ticket_id'), e.id, e.day, e.at, json_extract(e.data, '$.group'),
               coalesce(json_extract(e.data, '$.counter'), 0), coalesce(json_extract(e.data, '$.officer'), ''),
               json_extract(e.data, '$.rating') + 1, 4,
               (SELECT code FROM dossiers d WHERE d.ticket_id = json_extract(e.data, '$.ticket_id') ORDER BY attached_at LIMIT 1)
        FROM events e WHERE e.type = 'feedback.recorded' ORDER BY e.seq;
    ALTER TABLE dossiers ADD COLUMN appointment TEXT;
    """,
    # 7: how far each export receiver has acknowledged the feed (server/export.py, docs/export.md)
    """
    CREATE TABLE export_cursor (name TEXT PRIMARY KEY, seq INTEGER NOT NULL, updated_at TEXT NOT NULL);
    """,
    # bookings (issue 15, docs/bookings.md): remote numbers and appointments. A booking holds a seat
    # of its slot (1..capacity, assigned by the engine); a cancelled one gives it up (NULL), so the
    # database itself refuses more bookings of a slot than it has seats. Phones are only keyed
    # hashes here; the encrypted phone sits in booking_contacts until it is deleted.
    """
    CREATE TABLE bookings (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('remote', 'appointment')),
        day TEXT NOT NULL,
        grp TEXT NOT NULL,
        slot TEXT,
        seat INTEGER CHECK (seat IS NULL OR seat >= 1),
        made_day TEXT NOT NULL,
        made_at TEXT NOT NULL,
        phone_key TEXT NOT NULL,
        address_key TEXT,
        code_hash TEXT NOT NULL,
        token_hash TEXT NOT NULL,
        status TEXT NOT NULL,
        ticket_id TEXT,
        number INTEGER,
        checked_in_at TEXT,
        late INTEGER NOT NULL DEFAULT 0,
        ended_at TEXT,
        UNIQUE (day, grp, slot, seat)
    );
    CREATE INDEX bookings_phone ON bookings(phone_key, day);
    CREATE INDEX bookings_ticket ON bookings(ticket_id);
    CREATE INDEX bookings_day ON bookings(day);
    CREATE INDEX events_bookings ON events(json_extract(data, '$.booking_id')) WHERE type LIKE 'booking.%';
    CREATE TABLE booking_contacts (
        booking_id TEXT PRIMARY KEY REFERENCES bookings(id) ON DELETE CASCADE,
        sealed_phone TEXT NOT NULL,
        day TEXT NOT NULL
    );
    """,
    # Issue 18: citizens coming back for a result (a results-group ticket from a dossier receipt),
    # with the appointment the receipt promised and how many days early (<0) or late (>0) they came;
    # and ratings the engine refused (counted per day, refusal code and source; no rating is kept).
    """
    CREATE TABLE dossier_returns (
        ticket_id TEXT PRIMARY KEY, day TEXT NOT NULL, at TEXT NOT NULL, code TEXT NOT NULL,
        appointment TEXT, days_off INTEGER
    );
    CREATE INDEX dossier_returns_day ON dossier_returns(day);
    CREATE TABLE rating_refusals (
        day TEXT NOT NULL, code TEXT NOT NULL, source TEXT NOT NULL, n INTEGER NOT NULL,
        PRIMARY KEY (day, code, source)
    );
    """,
    # 10: numbers a restore holds back for today (the lost hours' slips: server.restore_numbering)
    NUMBER_FLOORS_DDL,
    # 11 (issue 18): the national procedure code (mã thủ tục hành chính) a scanned receipt gave its
    # dossier, so the satisfaction report can be read per procedure and not only per group;
    # filled from the stored events for dossiers attached before.
    """
    ALTER TABLE dossiers ADD COLUMN procedure TEXT;
    UPDATE dossiers SET procedure = (
        SELECT json_extract(e.data, '$.procedure') FROM events e
        WHERE e.type = 'dossier.attached' AND json_extract(e.data, '$.code') = dossiers.code ORDER BY e.seq DESC LIMIT 1);
    """,
    # 12: the login guard's failed sign-ins per address and per username, and the PCs each user
    # has signed in from, so a restart gives a guesser no fresh attempts (server.login_store)
    LOGIN_GUARD_DDL,
]


def _sha256_sql(text: str | None) -> str | None:
    """``luot_sha256(text)`` in SQL, for migration 5: the same hash as :func:`server.engine.token_hash`."""
    return None if text is None else token_hash(text)


@functools.lru_cache(maxsize=None)
def _bump_sql(columns: tuple[str, ...]) -> str:
    """The upsert adding ``columns`` to an hourly rollup row (built once per set of columns)."""
    names = ", ".join(columns)
    values = ", ".join("?" for _ in columns)
    updates = ", ".join(f"{name} = {name} + excluded.{name}" for name in columns)
    return (f"INSERT INTO stats_hourly (day, hour, grp, counter, officer, {names}) VALUES (?, ?, ?, ?, ?, {values}) "
            f"ON CONFLICT (day, hour, grp, counter, officer) DO UPDATE SET {updates}")


class StorageError(Exception):
    """The database could not record an operation; nothing was acknowledged."""


def _check_database_file(file: Path, create: bool) -> None:
    """Refuse a database file that would silently start a new centre unless ``create``; make a
    new one (and its directory) readable by the service user only."""
    if file.exists() and not file.is_file():
        raise StorageError(f"{file} không phải là tệp / {file} is not a file")
    size = file.stat().st_size if file.exists() else None
    if not create and not size:
        what = "không có" if size is None else "rỗng (0 byte)"
        what_en = "does not exist" if size is None else "is empty (0 bytes)"
        raise StorageError(f"cơ sở dữ liệu {file} {what}; tạo trung tâm mới bằng luot server --init / "
                           f"the database {file} {what_en}; create a new centre with luot server --init")
    if size is None:
        file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.close(os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


class Storage:
    """All persistence of one centre. Create with :meth:`open`, finish with :meth:`close`."""

    def __init__(self, db: SqliteThread, zone: ZoneInfo) -> None:
        self.db = db
        self.zone = zone
        self._pending: list[tuple[list[Event], int | None, asyncio.Future[None]]] = []
        self._writing = False
        self._failed_epoch = -1
        self.fault: Callable[[list[Event]], None] | None = None
        """Fault injection for tests and drills: called inside each commit's transaction, after its
        statements and before COMMIT; whatever it raises fails that commit exactly as a full disk
        or an I/O error would (the transaction is rolled back)."""
        self._wakeup = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self.after_commit: Callable[[list[Event]], Awaitable[None] | None] | None = None
        # Decides which days are closed (before today in the centre's zone) and may be summarised;
        # CentreService sets its own clock here.
        self.clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
        self.commits = 0
        self.committed_events = 0
        self.last_commit_error: str | None = None  # the reason the latest commit failed; /health reports it
        self.path: Path | None = None

    @classmethod
    async def open(cls, path: str | Path, zone: ZoneInfo, create: bool = True) -> "Storage":
        """Open (and migrate) the centre's database, or refuse with :class:`StorageError`.

        ``create=False`` is how a server starts: a missing, empty (0 bytes) or schema-less file is
        then refused instead of silently becoming a new centre with a new manager and numbering
        from the start (only ``luot server --init`` creates one). ``PRAGMA quick_check`` runs on an
        existing database, so a corrupt file stops the start with the reason. On any refusal the
        connection and its thread are closed, so a failed start ends the process (before, a
        corrupt database left it alive with nothing listening, and systemd never restarted it).
        The file is created 0600 (SQLite gives its -wal and -shm the database file's mode).
        """
        file = Path(path)
        memory = str(file) == ":memory:"
        if not memory:
            _check_database_file(file, create)
        db = await SqliteThread.open(str(file))
        try:
            if not memory:  # an existing centre's files too (installed before this rule)
                for each in (file, file.with_name(file.name + "-wal"), file.with_name(file.name + "-shm")):
                    if each.exists():
                        each.chmod(0o600)
            version = (await (await db.execute("PRAGMA user_version")).fetchone())[0]
            if version == 0 and not create:
                raise StorageError(f"cơ sở dữ liệu {file} không có dữ liệu Luot (tạo mới bằng luot server --init) / "
                                   f"the database {file} has no Luot schema (create a new centre with luot server --init)")
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=FULL")
            await db.execute("PRAGMA foreign_keys=ON")
            # a deleted row's bytes are overwritten (the sealed phones deleted after keep_phone_days):
            # deletions are rare here (phones, sessions), so the extra writes cost nothing measurable
            await db.execute("PRAGMA secure_delete=ON")
            await db.execute("PRAGMA busy_timeout=5000")
            await db.call(lambda connection: connection.create_function(
                "luot_sha256", 1, _sha256_sql, deterministic=True))  # migration 5
            if version:
                problems = [row[0] for row in await (await db.execute("PRAGMA quick_check")).fetchall()]
                if problems != ["ok"]:
                    raise StorageError(f"cơ sở dữ liệu {file} bị hỏng / the database {file} is corrupt "
                                       f"(quick_check: {'; '.join(problems[:5])})")
            storage = cls(db, zone)
            storage.path = None if memory else file  # where its disk's free space is measured (/health)
            await storage._migrate()
        except Exception as error:
            await db.close()
            if isinstance(error, StorageError):
                raise
            raise StorageError(f"không mở được cơ sở dữ liệu {file} / could not open the database {file}: {error}") from error
        storage._writer = asyncio.create_task(storage._write_loop(), name="luot-storage-writer")
        return storage

    async def close(self) -> None:
        if self._writer:
            while self._pending:
                await asyncio.sleep(0.001)
            self._writer.cancel()
            try:
                await self._writer
            except asyncio.CancelledError:
                pass
        await self.db.close()

    async def _migrate(self) -> None:
        row = await (await self.db.execute("PRAGMA user_version")).fetchone()
        version = row[0]
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            log.info("applying schema migration %d", number)
            await self.db.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")

    async def schema_version(self) -> int:
        row = await (await self.db.execute("PRAGMA user_version")).fetchone()
        return int(row[0])

    def today(self) -> date:
        """The centre's local date by :attr:`clock`: days before it are closed."""
        return self.clock().astimezone(self.zone).date()

    # ------------------------------------------------------------------ commits
    def submit(self, events: list[Event], epoch: int | None = None) -> asyncio.Future[None]:
        """Queue events for the next group commit. Call synchronously right after the engine
        produced them, so commits keep the engine's order.

        ``epoch`` is the generation of the engine state the events were computed on
        (:class:`server.service.CentreService`). When a commit fails, every later submission of
        that epoch or an earlier one was computed on top of events that are not on disk: it fails
        too, without being written, until the caller has rebuilt its engine and moved to a new
        epoch. So the log never holds an event whose cause was lost (a call of a ticket whose
        issue failed). ``None``: events not tied to an engine's epoch (tests, tools).

        Events of no command (a command that changed nothing) still wait here while earlier
        events are being written, so that its answer, read from the engine, is durable too.
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if epoch is not None and epoch <= self._failed_epoch:
            future.set_exception(_stale(epoch))
            return future
        if not events and not self._pending and not self._writing:
            future.set_result(None)
            return future
        self._pending.append((events, epoch, future))
        self._wakeup.set()
        return future

    async def commit(self, events: list[Event]) -> None:
        await self.submit(events)

    async def _write_loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            if not self._pending:
                continue
            batch, self._pending = self._pending, []
            live = []
            for entry in batch:
                epoch, future = entry[1], entry[2]
                if epoch is not None and epoch <= self._failed_epoch:
                    if not future.done():  # computed on a state that a failed commit never made durable
                        future.set_exception(_stale(epoch))
                else:
                    live.append(entry)
            events = [event for group, _, _ in live for event in group]
            self._writing = True
            try:
                if events:
                    await self._write(events)
            except Exception as error:  # disk full, I/O error: nothing in this batch is acknowledged
                log.error("could not commit %d events: %s", len(events), error)
                self.last_commit_error = str(error)
                epochs = [epoch for _, epoch, _ in live if epoch is not None]
                if epochs:
                    self._failed_epoch = max(self._failed_epoch, *epochs)
                for _, _, future in live:
                    if not future.done():
                        future.set_exception(StorageError(f"không lưu được dữ liệu / could not save: {error}"))
                continue
            finally:
                self._writing = False
            if events:
                self.commits += 1
                self.committed_events += len(events)
                self.last_commit_error = None
                if self.after_commit is not None:
                    try:
                        result = self.after_commit(events)
                        if asyncio.iscoroutine(result):
                            await result
                    except Exception:  # publishing must never undo or block a commit
                        log.exception("after-commit hook failed")
            for _, _, future in live:
                if not future.done():
                    future.set_result(None)

    async def _write(self, events: list[Event]) -> None:
        await self.in_sqlite_thread(self._write_transaction, events)

    async def in_sqlite_thread(self, function: Callable[[sqlite3.Connection], T], *args: Any) -> T:
        """Run ``function(connection, *args)`` on the storage's SQLite thread, in one hop.

        Why: a commit is BEGIN, the event INSERT, one to three projection statements per event and
        COMMIT. Awaited one by one, each is a round trip between the event loop and the SQLite
        thread (a queue put, a thread wake-up, a call_soon_threadsafe back), and that cost more
        than the SQL itself under load (bench/bench_load.py). In one call the whole transaction
        also runs without anything else on the connection slipping in between its statements
        (server/sqlite_thread.py owns the connection and its one thread).
        """
        return await self.db.call(function, *args)

    def _write_transaction(self, db: sqlite3.Connection, events: list[Event]) -> None:
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT INTO events (id, type, at, day, data) VALUES (?, ?, ?, ?, ?)",
                [(e.id, e.type, e.at.isoformat(), e.day, json.dumps(e.data, ensure_ascii=False)) for e in events],
            )
            for event in events:
                self._project(db, event)
            if self.fault is not None:
                self.fault(events)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _hour(self, at: datetime) -> int:
        return at.astimezone(self.zone).hour

    def _bump(self, db: sqlite3.Connection, event: Event, **columns: float) -> None:
        d = event.data
        key = (event.day, self._hour(event.at), d["group"], d.get("counter") or 0, d.get("officer") or "")
        db.execute(_bump_sql(tuple(columns)), (*key, *columns.values()))

    def _project(self, db: sqlite3.Connection, event: Event) -> None:
        """Keep the current-state tables and rollups in step with one event (same transaction)."""
        d = event.data
        at = event.at.isoformat()
        kind = event.type
        if kind == "ticket.issued":
            db.execute(
                "INSERT INTO tickets (id, day, number, grp, token_hash, priority, source, offline, status, issued_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'waiting', ?)",
                (d["ticket_id"], event.day, d["number"], d["group"], d.get("token_hash") or token_hash(d["token"]),
                 d.get("priority"), d.get("source"),
                 int(bool(d.get("offline"))), d.get("issued_at", at)),
            )
            self._bump(db, event, issued=1)
            if d.get("returns_dossier"):
                db.execute("INSERT INTO dossier_returns (ticket_id, day, at, code, appointment, days_off) VALUES (?, ?, ?, ?, ?, ?)",
                           (d["ticket_id"], event.day, at, d["returns_dossier"], d.get("appointment"), d.get("return_days")))
        elif kind == "ticket.called":
            db.execute(
                "UPDATE tickets SET status = 'called', counter = ?, officer = ?, calls = 1, "
                "first_called_at = COALESCE(first_called_at, ?) WHERE id = ?",
                (d["counter"], d.get("officer"), at, d["ticket_id"]),
            )
            if d.get("first_call"):
                self._bump(db, event, called=1, wait_sum=float(d["wait_seconds"]))
                bucket = min(int(d["wait_seconds"] // 60), WAIT_BUCKETS)
                db.execute(
                    "INSERT INTO wait_hist (day, grp, counter, officer, bucket, n) VALUES (?, ?, ?, ?, ?, 1) "
                    "ON CONFLICT (day, grp, counter, officer, bucket) DO UPDATE SET n = n + 1",
                    (event.day, d["group"], d["counter"], d.get("officer") or "", bucket),
                )
        elif kind == "ticket.recalled":
            db.execute("UPDATE tickets SET calls = ? WHERE id = ?", (d["call"], d["ticket_id"]))
        elif kind == "ticket.serving":
            db.execute("UPDATE tickets SET status = 'serving', started_at = ? WHERE id = ?", (at, d["ticket_id"]))
        elif kind == "ticket.finished":
            db.execute("UPDATE tickets SET status = 'done', finished_at = ? WHERE id = ?", (at, d["ticket_id"]))
            self._bump(db, event, served=1, service_sum=float(d["service_seconds"]))
        elif kind == "ticket.no_show":
            db.execute("UPDATE tickets SET status = 'no_show', finished_at = ? WHERE id = ?", (at, d["ticket_id"]))
            self._bump(db, event, no_show=1)
            db.execute("UPDATE bookings SET status = 'no_show', ended_at = ? WHERE ticket_id = ? AND status = 'checked_in'",
                       (at, d["ticket_id"]))
        elif kind == "ticket.transferred":
            db.execute(
                "UPDATE tickets SET status = 'waiting', grp = ?, counter = NULL, started_at = NULL WHERE id = ?",
                (d["group"], d["ticket_id"]),
            )
        elif kind in ("ticket.cancelled", "ticket.expired"):
            status = "cancelled" if kind == "ticket.cancelled" else "expired"
            db.execute("UPDATE tickets SET status = ?, finished_at = ? WHERE id = ?", (status, at, d["ticket_id"]))
            if kind == "ticket.cancelled":
                db.execute("UPDATE bookings SET status = 'cancelled', seat = NULL, ended_at = ? "
                           "WHERE ticket_id = ? AND status IN ('booked', 'checked_in')", (at, d["ticket_id"]))
        elif kind.startswith("booking."):
            self._project_booking(db, event)
        elif kind == "feedback.recorded":
            level = d.get("level") or level_of(d["rating"], 4)  # an event from before the five levels
            db.execute("UPDATE tickets SET rating = ? WHERE id = ?", (level, d["ticket_id"]))
            db.execute(
                "INSERT INTO satisfaction_daily (day, grp, counter, officer, rating, n) VALUES (?, ?, ?, ?, ?, 1) "
                "ON CONFLICT (day, grp, counter, officer, rating) DO UPDATE SET n = n + 1",
                (event.day, d["group"], d.get("counter") or 0, d.get("officer") or "", level),
            )
            db.execute(
                "INSERT INTO feedback (ticket_id, event_id, day, at, grp, counter, officer, level, scale, reasons, dossier, source) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (d["ticket_id"], event.id, event.day, at, d["group"], d.get("counter") or 0, d.get("officer") or "", level,
                 d.get("scale") or 4, json.dumps(d.get("reasons") or []), d.get("dossier"), d.get("source") or "pad"),
            )

        elif kind == "feedback.refused":
            db.execute("INSERT INTO rating_refusals (day, code, source, n) VALUES (?, ?, ?, 1) "
                       "ON CONFLICT (day, code, source) DO UPDATE SET n = n + 1", (event.day, d["code"], d.get("source") or "pad"))
        elif kind == "dossier.attached":
            db.execute(
                "INSERT INTO dossiers (code, ticket_id, day, grp, status, attached_at, updated_at) "
                "VALUES (?, ?, ?, ?, 'received', ?, ?)",
                (d["code"], d["ticket_id"], event.day, d.get("group") or "", at, at),
            )
            db.execute("UPDATE dossiers SET appointment = ?, procedure = ? WHERE code = ?",
                       (d.get("appointment"), d.get("procedure"), d["code"]))
            db.execute(  # a dossier attached after its ticket was rated (the rating came first)
                "UPDATE feedback SET dossier = ? WHERE ticket_id = ? AND dossier IS NULL", (d["code"], d["ticket_id"]),
            )
        elif kind == "dossier.status":
            db.execute("UPDATE dossiers SET status = ?, updated_at = ? WHERE code = ?", (d["status"], at, d["code"]))
            db.execute("INSERT INTO dossier_events (code, status, at) VALUES (?, ?, ?)", (d["code"], d["status"], at))

    def _project_booking(self, db: sqlite3.Connection, event: Event) -> None:
        d = event.data
        at = event.at.isoformat()
        kind = event.type
        if kind == "booking.made":
            db.execute(
                "INSERT INTO bookings (id, kind, day, grp, slot, seat, made_day, made_at, phone_key, address_key, "
                "code_hash, token_hash, status, ticket_id, number) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'booked', ?, ?)",
                (d["booking_id"], d["kind"], d["day"], d["group"], d.get("slot"), d.get("seat"), event.day, at,
                 d["phone_key"], d.get("address_key"), d["code_hash"], d["token_hash"], d.get("ticket_id"), d.get("number")))
        elif kind == "booking.checked_in":
            db.execute("UPDATE bookings SET status = 'checked_in', checked_in_at = ?, late = ?, ticket_id = ?, "
                       "number = COALESCE(?, number) WHERE id = ?",
                       (at, int(bool(d.get("late"))), d.get("ticket_id"), d.get("number"), d["booking_id"]))
        elif kind == "booking.lapsed":
            db.execute("UPDATE bookings SET status = 'lapsed', ended_at = ? WHERE id = ?", (at, d["booking_id"]))
        elif kind == "booking.cancelled":
            db.execute("UPDATE bookings SET status = 'cancelled', seat = NULL, ended_at = ? WHERE id = ?",
                       (at, d["booking_id"]))

    # ------------------------------------------------------------------ bookings
    async def carried_booking_events(self, since_day: str) -> list[Event]:
        """Booking events logged before the last ``day.opened`` of bookings for
        ``since_day`` or later: replayed before today's log, so a restarted engine knows the
        appointments made on earlier days (QueueEngine keeps them across day openings)."""
        cursor = await self.db.execute(
            "SELECT id, type, at, day, data FROM events WHERE type LIKE 'booking.%' "
            "AND seq < (SELECT COALESCE(MAX(seq), 0) FROM events WHERE type = 'day.opened') "
            "AND json_extract(data, '$.booking_id') IN (SELECT id FROM bookings WHERE day >= ?) ORDER BY seq",
            (since_day,))
        return [Event(r["id"], r["type"], datetime.fromisoformat(r["at"]), r["day"], json.loads(r["data"]))
                for r in await cursor.fetchall()]

    async def booking_no_shows(self, phone_key: str, first_day: str, before_day: str) -> int:
        """How many bookings of this phone lapsed or were not answered on days ``first_day``..before
        ``before_day`` (today's are the engine's to count)."""
        row = await (await self.db.execute(
            "SELECT COUNT(*) FROM bookings WHERE phone_key = ? AND day >= ? AND day < ? AND status IN ('lapsed', 'no_show')",
            (phone_key, first_day, before_day))).fetchone()
        return int(row[0])

    async def bookings_of_day(self, day: str) -> list[dict[str, Any]]:
        """The bookings for ``day`` as stored (no phone: keyed hashes are left out too)."""
        cursor = await self.db.execute(
            "SELECT id, kind, day, grp AS 'group', slot, seat, made_at, status, ticket_id, number, checked_in_at, late, "
            "ended_at FROM bookings WHERE day = ? ORDER BY COALESCE(slot, made_at), made_at", (day,))
        return [{**dict(r), "late": bool(r["late"])} for r in await cursor.fetchall()]

    async def save_contact(self, booking_id: str, sealed_phone: str, day: str) -> None:
        await self.db.execute("INSERT OR REPLACE INTO booking_contacts (booking_id, sealed_phone, day) VALUES (?, ?, ?)",
                              (booking_id, sealed_phone, day))

    async def booking_contacts_from(self, day: str) -> dict[str, str]:
        """booking id -> sealed phone of the bookings for ``day`` or later."""
        cursor = await self.db.execute("SELECT booking_id, sealed_phone FROM booking_contacts WHERE day >= ?", (day,))
        return {r[0]: r[1] for r in await cursor.fetchall()}

    async def booking_contact(self, ticket_id: str) -> str | None:
        row = await (await self.db.execute(
            "SELECT c.sealed_phone FROM booking_contacts c JOIN bookings b ON b.id = c.booking_id WHERE b.ticket_id = ?",
            (ticket_id,))).fetchone()
        return row[0] if row else None

    async def forget_contacts(self, before_day: str) -> int:
        """Delete the encrypted phones of bookings for days before ``before_day``."""
        cursor = await self.db.execute("DELETE FROM booking_contacts WHERE day < ?", (before_day,))
        return cursor.rowcount

    # ------------------------------------------------------------------ reading the log
    async def current_day_events(self) -> list[Event]:
        """Events since the last ``day.opened``: all a restarted engine needs to rebuild its state."""
        row = await (await self.db.execute("SELECT MAX(seq) FROM events WHERE type = 'day.opened'")).fetchone()
        start = row[0] or 0
        cursor = await self.db.execute("SELECT id, type, at, day, data FROM events WHERE seq >= ? ORDER BY seq", (start,))
        return [Event(r["id"], r["type"], datetime.fromisoformat(r["at"]), r["day"], json.loads(r["data"]))
                for r in await cursor.fetchall()]

    async def events_after(self, seq: int, limit: int = 500) -> list[dict[str, Any]]:
        cursor = await self.db.execute(
            "SELECT seq, id, type, at, day, data FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit))
        return [{"seq": r["seq"], "id": r["id"], "type": r["type"], "at": r["at"], "day": r["day"],
                 "data": json.loads(r["data"])} for r in await cursor.fetchall()]

    async def last_seq(self) -> int:
        row = await (await self.db.execute("SELECT MAX(seq) FROM events")).fetchone()
        return int(row[0] or 0)

    async def count_tickets(self, day: str | None = None) -> int:
        if day is None:
            row = await (await self.db.execute("SELECT COUNT(*) FROM tickets")).fetchone()
        else:
            row = await (await self.db.execute("SELECT COUNT(*) FROM tickets WHERE day = ?", (day,))).fetchone()
        return int(row[0])

    async def ticket_by_token(self, token: str) -> dict[str, Any] | None:
        """The ticket a tracking token belongs to (the latest day's, should a kiosk have reused one)."""
        cursor = await self.db.execute("SELECT * FROM tickets WHERE token_hash = ? ORDER BY day DESC LIMIT 1",
                                       (token_hash(token),))
        row = await cursor.fetchone()
        return dict(row) if row else None

    async def history_records(self, first_day: str, before_day: str, weekday: int) -> list[TicketRecord]:
        """Tickets of the service days ``first_day`` up to, not including, ``before_day`` that fall
        on ``weekday`` (0 = Monday, as :meth:`date.weekday`): what the wait estimator's profile of
        previous days is made of (server/wait_history.py). Group, priority or not and times only:
        nothing about the person. The weekday is chosen here, so only those rows are read and parsed."""
        cursor = await self.db.execute(
            "SELECT day, grp, priority, issued_at, first_called_at, finished_at FROM tickets "
            "WHERE day >= ? AND day < ? AND CAST(strftime('%w', day) AS INTEGER) = ? ORDER BY day, issued_at",
            (first_day, before_day, (weekday + 1) % 7))  # SQLite's %w counts from Sunday
        return [TicketRecord(date.fromisoformat(r["day"]), r["grp"], r["priority"] is not None,
                             datetime.fromisoformat(r["issued_at"]),
                             datetime.fromisoformat(r["first_called_at"]) if r["first_called_at"] else None,
                             datetime.fromisoformat(r["finished_at"]) if r["finished_at"] else None)
                for r in await cursor.fetchall()]

    async def used_numbers(self, since: str) -> dict[tuple[str, str], int]:
        """The highest number stored per (service day, group) from day ``since`` on: tickets, leased
        blocks (a leased number may not be imported yet, and must not be issued again) and the
        floors a restore wrote (numbers the lost hours may have given out).
        The engine gets these at start-up (QueueEngine(used_numbers=...)), so a day it opens
        continues after them even if the log's last ``day.opened`` is not where that day began."""
        cursor = await self.db.execute(USED_NUMBERS_SQL, {"since": since})
        return {(day, group): int(highest) for day, group, highest in await cursor.fetchall()}

    async def dossier(self, code: str) -> dict[str, Any] | None:
        """A dossier with its status timeline (oldest first), or None."""
        row = await (await self.db.execute("SELECT * FROM dossiers WHERE code = ?", (code,))).fetchone()
        if row is None:
            return None
        cursor = await self.db.execute("SELECT status, at FROM dossier_events WHERE code = ? ORDER BY seq", (code,))
        return {"code": row["code"], "ticket_id": row["ticket_id"], "status": row["status"], "day": row["day"],
                "attached_at": row["attached_at"], "updated_at": row["updated_at"], "appointment": row["appointment"],
                "procedure": row["procedure"], "timeline": [{"status": r["status"], "at": r["at"]} for r in await cursor.fetchall()]}

    async def dossiers_of_ticket(self, ticket_id: str) -> list[dict[str, Any]]:
        cursor = await self.db.execute("SELECT code FROM dossiers WHERE ticket_id = ? ORDER BY attached_at", (ticket_id,))
        codes = [r["code"] for r in await cursor.fetchall()]
        return [d for d in [await self.dossier(code) for code in codes] if d is not None]

    # ------------------------------------------------------------------ aggregates (rollups only)
    async def waiting_stats(self, first: date, last: date, by: str = "group",
                            today: date | None = None) -> list[dict[str, Any]]:
        """Tickets, waits, service times and no-shows per day and ``by`` ('group', 'hour',
        'counter', 'officer'), with the 90th-percentile wait from the histogram. Days before
        ``today`` (default: :meth:`today`) come from their stored summaries (server/summaries.py)."""
        result = []
        for row in await summaries.day_rows(self, first, last, by, today):  # ValueError for an unknown ``by``
            if row.totals is None:
                continue  # a key with histogram rows only (never written by the projection)
            issued, called, wait_sum, served, service_sum, no_show = row.totals
            attended = served + no_show
            result.append({
                "day": row.day, by: row.key, "issued": issued, "called": called, "served": served,
                "no_show": no_show,
                "mean_wait_minutes": round(wait_sum / called / 60, 2) if called else None,
                "p90_wait_minutes": row.p90 if by != "hour" else None,
                "mean_service_minutes": round(service_sum / served / 60, 2) if served else None,
                "no_show_rate": round(no_show / attended, 3) if attended else None,
            })
        return result

    async def satisfaction(self, first: date, last: date, by: str = "counter") -> list[dict[str, Any]]:
        """Ratings per ``by`` ('counter', 'officer', 'group'): counts per face and a 0-100 index."""
        columns = {"counter": "counter", "officer": "officer", "group": "grp"}
        column = columns[by]
        cursor = await self.db.execute(
            f"SELECT {column} AS k, rating, SUM(n) n FROM satisfaction_daily WHERE day BETWEEN ? AND ? "
            f"GROUP BY k, rating ORDER BY k, rating",
            (first.isoformat(), last.isoformat()),
        )
        table: dict[Any, dict[int, int]] = {}
        for r in await cursor.fetchall():
            table.setdefault(r["k"], {})[r["rating"]] = r["n"]
        return [{by: key, "ratings": {str(k): v for k, v in sorted(counts.items())},
                 "responses": sum(counts.values()), "index": satisfaction_index(counts)}
                for key, counts in table.items()]


def _stale(epoch: int) -> StorageError:
    return StorageError(f"không lưu được dữ liệu (thao tác dựa trên lần ghi đã hỏng) / could not save: "
                        f"this operation built on a commit that failed (epoch {epoch})")


def satisfaction_index(counts: dict[int, int]) -> float | None:
    """0-100 over the five levels: 'rất hài lòng' counts 100, 'hài lòng' 75, 'bình thường' 50,
    'không hài lòng' 25, 'rất không hài lòng' 0 (the mean rating, not Decision 766's per-dossier
    index, which server/reports.py computes)."""
    total = sum(counts.values())
    if not total:
        return None
    return round(sum((level - 1) / 4 * 100 * n for level, n in counts.items()) / total, 1)
