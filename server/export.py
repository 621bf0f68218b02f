"""The hand-off to a province's systems (issue 18, docs/export.md): ratings and ticket-dossier
links as JSON lines, read with a since-cursor over HTTP, pushed to a webhook signed with
HMAC-SHA256, and as a daily CSV.

Why the event log is the outbox: every rating (``feedback.recorded``) and every dossier link
(``dossier.attached``) is already an event with a sequence number, committed before anyone is
told. A record is a pure function of its event, so the feed, the webhook and the CSV agree, and
nothing needs a second copy. The webhook keeps one cursor (the last sequence number the receiver
acknowledged with a 2xx) in the centre's database (``export_cursor``), advanced only after the
acknowledgement: a restart resends at most the one batch whose answer was lost, and each record's
``event_id`` lets the receiver drop that repeat. No record is ever skipped.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import sqlite3
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from luot.aio import cancel_and_wait
from luot.config import CentreConfig
from luot.protocol import LEVELS, REASONS, level_of
from server.reports import table_csv
from server.storage import Storage

log = logging.getLogger("luot.export")

FEED_TYPES = {"feedback.recorded": "danh_gia", "dossier.attached": "lien_ket_ho_so"}
SCHEMA = "luot.export/1"


@dataclass(frozen=True)
class FeedField:
    """One field of a feed record: its key, the label of the national evaluation form it stands
    for (Vietnamese), what it holds, and whether the *key* is Luot's own naming (``mapping``):
    no provincial system was connected, so every key is ours; ``form_item`` says which item of
    the form the value answers, where there is one."""

    key: str
    form_item: str
    meaning: str
    kinds: tuple[str, ...] = ("danh_gia", "lien_ket_ho_so")
    mapping: bool = True


FIELDS: list[FeedField] = [
    FeedField("schema", "—", f"always {SCHEMA!r}: the record layout version"),
    FeedField("seq", "—", "the event's sequence number at this centre: the cursor (since=seq resumes after it)"),
    FeedField("event_id", "—", "unique id of the event; a receiver keeps it to drop a repeated delivery"),
    FeedField("loai", "—", "'danh_gia' (a rating) or 'lien_ket_ho_so' (a dossier handed in with a ticket)"),
    FeedField("ma_don_vi", "Đơn vị / cơ quan giải quyết", "the centre's id ([centre] id)"),
    FeedField("ten_don_vi", "Đơn vị / cơ quan giải quyết", "the centre's name"),
    FeedField("ma_ho_so", "Mã hồ sơ", "the dossier code on the receipt, or null when the ticket had none"),
    FeedField("ngay_hen_tra", "Ngày hẹn trả kết quả", "the receipt's appointment date (YYYY-MM-DD) or null",
              ("lien_ket_ho_so",)),
    FeedField("ma_thu_tuc", "Mã thủ tục hành chính", "the procedure code read from the receipt's QR (server/receipt.py), or null "
              "when the code was typed", ("lien_ket_ho_so",)),
    FeedField("linh_vuc", "Lĩnh vực / thủ tục hành chính",
              "Luot's group code (a field of procedures, from the centre file); the national procedure code is "
              "ma_thu_tuc of the dossier's lien_ket_ho_so record (join a rating to it by ma_ho_so)"),
    FeedField("ten_linh_vuc", "Lĩnh vực / thủ tục hành chính", "the group's Vietnamese name"),
    FeedField("can_bo", "Cán bộ tiếp nhận / giải quyết", "the officer's Luot username (no full name, no ID number)"),
    FeedField("quay", "—", "counter number"),
    FeedField("so_ve", "—", "ticket number (as printed)"),
    FeedField("ma_ve", "—", "ticket id in Luot"),
    FeedField("muc_do", "Mức độ hài lòng", "5 rất hài lòng, 4 hài lòng, 3 bình thường, 2 không hài lòng, 1 rất không hài lòng",
              ("danh_gia",)),
    FeedField("muc_do_ten", "Mức độ hài lòng", "the level in the form's words", ("danh_gia",)),
    FeedField("ly_do", "Lý do không hài lòng", "codes: wait, attitude, guidance, documents, other (only below 3)", ("danh_gia",)),
    FeedField("ly_do_ten", "Lý do không hài lòng", "the reasons in Vietnamese words", ("danh_gia",)),
    FeedField("thang_do_goc", "—", "5, or 4 for a rating given on the four-face pad (mapped: 4->5, 3->4, 2->3, 1->2)",
              ("danh_gia",)),
    FeedField("kenh", "Kênh đánh giá", "'pad' (at the counter) or 'track' (the citizen's phone, tracking page)", ("danh_gia",)),
    FeedField("thoi_diem", "Thời gian đánh giá / tiếp nhận", "ISO 8601 time with its offset"),
    FeedField("ngay", "—", "the service day (YYYY-MM-DD, centre time)"),
]


def record(event: dict[str, Any], config: CentreConfig) -> dict[str, Any] | None:
    """The feed record of one stored event (``Storage.events_after`` form), or None for an
    event the feed does not carry. Events from before the five levels are mapped (4->5 ... 1->2)."""
    kind = FEED_TYPES.get(event["type"])
    if kind is None:
        return None
    d = event["data"]
    group = d.get("group") or ""
    try:
        group_name = config.group(group).name
    except KeyError:
        group_name = group
    common = {"schema": SCHEMA, "seq": event["seq"], "event_id": event["id"], "loai": kind,
              "ma_don_vi": config.centre.id, "ten_don_vi": config.centre.name,
              "linh_vuc": group, "ten_linh_vuc": group_name, "can_bo": d.get("officer"), "quay": d.get("counter"),
              "so_ve": d.get("number"), "ma_ve": d.get("ticket_id"),
              "thoi_diem": datetime.fromisoformat(event["at"]).astimezone(config.zone).isoformat(), "ngay": event["day"]}
    if kind == "lien_ket_ho_so":
        return {**common, "ma_ho_so": d["code"], "ngay_hen_tra": d.get("appointment"), "ma_thu_tuc": d.get("procedure")}
    level = d.get("level") or level_of(int(d["rating"]), 4)
    reasons = list(d.get("reasons") or [])
    return {**common, "ma_ho_so": d.get("dossier"), "muc_do": level, "muc_do_ten": LEVELS[level][0],
            "ly_do": reasons, "ly_do_ten": [REASONS[r][0] for r in reasons if r in REASONS],
            "thang_do_goc": d.get("scale") or 4, "kenh": d.get("source") or "pad"}


async def feed(storage: Storage, config: CentreConfig, since: int, limit: int = 500) -> tuple[list[dict[str, Any]], int]:
    """Up to ``limit`` records after sequence number ``since``, and the cursor to ask with next
    (the last event *looked at*, so a long stretch of other events is crossed once)."""
    records: list[dict[str, Any]] = []
    cursor = since
    while len(records) < limit:
        events = await storage.events_after(cursor, 1000)
        if not events:
            break
        for event in events:
            item = record(event, config)
            if item is not None:
                records.append(item)
            cursor = event["seq"]
            if len(records) >= limit:
                break
    return records, cursor


def ndjson(records: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n" for r in records)


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """``sha256=`` + hex HMAC-SHA256 of ``timestamp + "." + body``: the timestamp is signed too,
    so a receiver can refuse an old delivery replayed later."""
    return "sha256=" + hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


CSV_KINDS = ("danh_gia", "lien_ket_ho_so")


def daily_csv(records: list[dict[str, Any]]) -> bytes:
    """One day's records as CSV (UTF-8 with BOM, Vietnamese headings: the form's item, then our key)."""
    fields = [(f.key, f"{f.form_item} ({f.key})" if f.form_item != "—" else f.key, f.key) for f in FIELDS]
    rows = []
    for item in records:
        row = []
        for f in FIELDS:
            value = item.get(f.key)
            row.append("; ".join(value) if isinstance(value, list) else ("" if value is None else value))
        rows.append(row)
    return table_csv(fields, rows)


async def day_records(storage: Storage, config: CentreConfig, day: date) -> list[dict[str, Any]]:
    """Every record of one service day (read through the log's ``day`` column)."""
    cursor = await storage.db.execute(
        "SELECT seq, id, type, at, day, data FROM events WHERE day = ? AND type IN (?, ?) ORDER BY seq",
        (day.isoformat(), *FEED_TYPES))
    records = []
    for r in await cursor.fetchall():
        item = record({"seq": r["seq"], "id": r["id"], "type": r["type"], "at": r["at"], "day": r["day"],
                       "data": json.loads(r["data"])}, config)
        if item is not None:
            records.append(item)
    return records


# ---------------------------------------------------------------- the webhook push
async def load_cursor(storage: Storage, name: str) -> int:
    row = await (await storage.db.execute("SELECT seq FROM export_cursor WHERE name = ?", (name,))).fetchone()
    return int(row[0]) if row else 0


def _save(db: sqlite3.Connection, name: str, seq: int, at: str) -> None:
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("INSERT INTO export_cursor (name, seq, updated_at) VALUES (?, ?, ?) "
                   "ON CONFLICT (name) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at", (name, seq, at))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


async def save_cursor(storage: Storage, name: str, seq: int) -> None:
    await storage.in_sqlite_thread(_save, name, seq, datetime.now(timezone.utc).isoformat())


class DeliveryError(Exception):
    pass


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError) as error:
        raise DeliveryError(str(getattr(error, "reason", error))) from None


class WebhookPusher:
    """Pushes the feed to one URL in batches, in order, each signed; retries with a growing
    pause (``min_delay`` doubling up to ``max_delay``) until the receiver answers 2xx."""

    def __init__(self, storage: Storage, config: CentreConfig, url: str, secret: bytes, name: str = "webhook",
                 batch: int = 100, poll_seconds: float = 2.0, min_delay: float = 1.0, max_delay: float = 60.0,
                 timeout: float = 10.0) -> None:
        self.storage, self.config, self.url, self.secret, self.name = storage, config, url, secret, name
        self.batch, self.poll_seconds, self.timeout = batch, poll_seconds, timeout
        self.min_delay, self.max_delay = min_delay, max_delay
        self.delivered = 0  # records acknowledged since start
        self.failures = 0  # failed attempts since start
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"luot-export-{self.name}")

    def wake(self) -> None:
        """New events were committed: look now instead of at the next poll."""
        self._wake.set()

    async def stop(self) -> None:
        await cancel_and_wait(self._task)

    async def push_once(self) -> int:
        """Deliver the next batch; returns how many records were acknowledged (0: nothing new).
        Raises DeliveryError when the receiver did not acknowledge (the cursor stays)."""
        since = await load_cursor(self.storage, self.name)
        records, cursor = await feed(self.storage, self.config, since, self.batch)
        if cursor == since:
            return 0
        if records:
            body = ndjson(records)
            stamp = str(int(time.time()))
            headers = {"Content-Type": "application/x-ndjson; charset=utf-8", "X-Luot-Timestamp": stamp,
                       "X-Luot-Signature": signature(self.secret, stamp, body), "X-Luot-Schema": SCHEMA,
                       "X-Luot-Delivery": f"{self.config.centre.id}:{records[0]['seq']}-{records[-1]['seq']}"}
            status = await asyncio.to_thread(_post, self.url, body, headers, self.timeout)
            if not 200 <= status < 300:
                raise DeliveryError(f"receiver answered HTTP {status}")
        await save_cursor(self.storage, self.name, cursor)  # only after the acknowledgement
        self.delivered += len(records)
        return len(records)

    async def _run(self) -> None:
        delay = self.min_delay
        while True:
            try:
                if await self.push_once():
                    delay = self.min_delay
                    continue
                self.last_error = None
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
                except asyncio.TimeoutError:
                    pass
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - a receiver's trouble must never stop the centre
                self.failures += 1
                self.last_error = str(error)
                log.warning("export to %s failed (%s); retrying in %.0f s", self.url, error, delay)
                await asyncio.sleep(delay)
                delay = min(self.max_delay, delay * 2)


def webhook_secret(path: Path) -> bytes:
    """The HMAC key shared with the receiver: read from ``path``, created (32 random bytes as
    hex, mode 600) when missing. The operator hands the file's text to the integrator."""
    if not path.exists():
        path.write_text(secrets.token_hex(32) + "\n", encoding="ascii")
        path.chmod(0o600)
    key = path.read_text(encoding="ascii").strip()
    if len(key) < 32:
        raise ValueError(f"{path}: the export webhook key must be at least 32 characters")
    return key.encode("ascii")


def start_webhook(config: CentreConfig, storage: Storage, data_dir: Path) -> WebhookPusher:
    """The running pusher of ``[export] webhook_url`` (server/app.py starts it after the web server)."""
    path = Path(config.export.secret_file)
    pusher = WebhookPusher(storage, config, config.export.webhook_url,
                           webhook_secret(path if path.is_absolute() else Path(data_dir) / path), batch=config.export.batch)
    pusher.start()
    return pusher
