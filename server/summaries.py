"""Stored summaries of closed days, so that reports over weeks and months read a few rows per day.

A report needs, per day and key (group, hour, counter or officer), the sums of the hourly rollup
(`stats_hourly`) and the one-minute wait histogram (`wait_hist`). For today those are read from
the rollups as before. For a day before today (in the centre's time zone) they are computed once,
the first time a report asks for that day, and stored in `day_summary` (one row per day, dimension
and key: the sums, the day's 90th-percentile wait and its histogram as a JSON list of counts per
one-minute bucket, from bucket 0 to the last one used), with
the day recorded in `summarised_days`. A week's or a month's 90th percentile is then the percentile
of the merged daily histograms: exactly what the rollups give, from 7-31 rows per key.

Invalidation is in SQL (migration 4): any insert, update or delete of a `stats_hourly` or
`wait_hist` row of a summarised day deletes that day's summaries in the same transaction, so a
ticket a kiosk uploads later for a past day changes the past day's report, and nothing in Python
has to remember it.

Everything that touches the database here is a plain function of a ``sqlite3.Connection`` run in
one call on the storage's SQLite thread (:meth:`Storage.in_sqlite_thread`): no other statement of
the connection can run in between, so a summary is computed and stored in one transaction that no
commit can split, and a report's reads see one snapshot.
"""

from __future__ import annotations

import itertools
import json
import logging
import sqlite3
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:
    from server.storage import Storage

log = logging.getLogger("luot.summaries")

# report dimension -> rollup column
DIMS: dict[str, str] = {"group": "grp", "hour": "hour", "counter": "counter", "officer": "officer"}
CHUNK_DAYS = 7  # days summarised per transaction: commits of the queue can run in between
Totals = tuple[int, int, float, int, float, int]  # issued, called, wait_sum, served, service_sum, no_show

_MORE = "more"  # another chunk of days to summarise


def percentile_from_histogram(buckets: Iterable[tuple[int, int]], q: float) -> float:
    """The q-quantile in minutes from one-minute buckets (bucket b holds waits in [b, b+1))."""
    ordered = sorted(buckets)
    total = sum(n for _, n in ordered)
    if total == 0:
        return 0.0
    rank = q * total
    seen = 0
    for bucket, n in ordered:
        if seen + n >= rank:
            fraction = (rank - seen) / n if n else 0.0
            return round(bucket + fraction, 2)
        seen += n
    return float(ordered[-1][0] + 1)


class DayRow:
    """One day and key: rollup sums (None if the key has no hourly row that day), the day's
    90th-percentile wait and its histogram (None if nobody of that key was called that day)."""

    __slots__ = ("day", "key", "totals", "p90", "_hist")

    def __init__(self, day: str, key: Any, totals: Totals | None, p90: float | None,
                 hist: list[int] | str | None) -> None:
        self.day, self.key, self.totals, self.p90, self._hist = day, key, totals, p90, hist

    def counts(self) -> list[int]:
        """Waits per one-minute bucket, index = bucket; decoded from the stored JSON on first use."""
        if isinstance(self._hist, str):
            self._hist = json.loads(self._hist)
        return self._hist or []  # type: ignore[return-value]

    @property
    def has_hist(self) -> bool:
        return self._hist is not None

    def __repr__(self) -> str:
        return f"DayRow({self.day!r}, {self.key!r}, {self.totals!r}, p90={self.p90!r})"


def dense(pairs: list[tuple[int, int]]) -> list[int]:
    """(bucket, n) pairs -> counts per bucket from 0 to the last bucket used."""
    counts = [0] * (max(bucket for bucket, _ in pairs) + 1) if pairs else []
    for bucket, n in pairs:
        counts[bucket] += n
    return counts


def merged_percentile(rows: list[DayRow], q: float = 0.9) -> float:
    """The q-quantile of the summed histograms of ``rows``: exactly ``percentile_from_histogram``
    of the rollup rows of all those days (one row: its stored percentile)."""
    if len(rows) == 1 and rows[0].p90 is not None and q == 0.9:
        return rows[0].p90
    total = [sum(column) for column in itertools.zip_longest(*(row.counts() for row in rows), fillvalue=0)]
    return percentile_from_histogram([(bucket, n) for bucket, n in enumerate(total) if n], q)


# ---------------------------------------------------------------------- on the SQLite thread
def _cursor(conn: sqlite3.Connection) -> sqlite3.Cursor:
    cursor = conn.cursor()
    cursor.row_factory = None  # plain tuples
    return cursor


def iso_days(first: date, last: date) -> list[str]:
    """Every day of [first, last] as an ISO date, in order."""
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def _runs(days: list[str]) -> list[tuple[str, str]]:
    """Contiguous runs (first, last) of ascending ISO days."""
    runs: list[tuple[str, str]] = []
    for day in days:
        if runs and date.fromisoformat(runs[-1][1]) + timedelta(days=1) == date.fromisoformat(day):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def compute(conn: sqlite3.Connection, first: str, last: str, dim: str) -> list[DayRow]:
    """Per day and key of ``dim``, from the rollups: the queries reports always ran, day by day.
    Rows with hourly sums come in (day, key) order, then any key seen only in the histogram."""
    column = DIMS[dim]
    cursor = _cursor(conn)
    rows: dict[tuple[str, Any], DayRow] = {}
    out: list[DayRow] = []
    cursor.execute(
        f"SELECT day, {column} AS k, SUM(issued), SUM(called), SUM(wait_sum), SUM(served), SUM(service_sum), "
        f"SUM(no_show) FROM stats_hourly WHERE day BETWEEN ? AND ? GROUP BY day, k ORDER BY day, k",
        (first, last))
    for day, key, *totals in cursor.fetchall():
        row = rows[(day, key)] = DayRow(day, key, tuple(totals), None, None)  # type: ignore[arg-type]
        out.append(row)
    if dim == "hour":
        return out  # no percentile per hour
    # Rows come in index order (migration 3): one pass, no sort, no table look-up.
    cursor.execute(
        f"SELECT day, {column} AS k, bucket, SUM(n) FROM wait_hist WHERE day BETWEEN ? AND ? "
        f"GROUP BY day, k, bucket ORDER BY day, k, bucket",
        (first, last))
    hist: dict[tuple[str, Any], list[tuple[int, int]]] = {}
    for day, key, bucket, n in cursor.fetchall():
        hist.setdefault((day, key), []).append((bucket, n))
    for (day, key), pairs in hist.items():
        row = rows.get((day, key))
        if row is None:
            row = rows[(day, key)] = DayRow(day, key, None, None, None)
            out.append(row)
        row._hist = dense(pairs)
        row.p90 = percentile_from_histogram(pairs, 0.9)
    return out


def _closed_unsummarised(cursor: sqlite3.Cursor, days: list[str], today: str) -> tuple[set[str], list[str]]:
    cursor.execute("SELECT day FROM summarised_days WHERE day BETWEEN ? AND ?", (days[0], days[-1]))
    done = {day for (day,) in cursor.fetchall()}
    return done, [day for day in days if day < today and day not in done]


def summarise(conn: sqlite3.Connection, days: list[str]) -> None:
    """Compute and store the summaries of ``days`` (ascending), inside the caller's transaction."""
    wanted = set(days)
    conn.executemany("DELETE FROM day_summary WHERE day = ?", [(day,) for day in days])
    for dim in DIMS:
        conn.executemany(
            "INSERT INTO day_summary (day, dim, k, issued, called, wait_sum, served, service_sum, no_show, p90, hist) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(row.day, dim, row.key, *(row.totals or (None,) * 6), row.p90,
              json.dumps(row.counts(), separators=(",", ":")) if row.has_hist else None)
             for row in compute(conn, days[0], days[-1], dim) if row.day in wanted])
    conn.executemany("INSERT INTO summarised_days (day) VALUES (?)", [(day,) for day in days])


def collect(conn: sqlite3.Connection, first: date, last: date, dim: str, today: str) -> list[DayRow] | str:
    """The day rows of [first, last] for ``dim``, in (day, key) order: stored summaries for the
    summarised days, the rollups for the others. First stores the summaries of up to
    ``CHUNK_DAYS`` closed days that have none; answers ``_MORE`` when more are left. Runs in one
    call on the SQLite thread, where no transaction is ever left open between calls (a commit of
    the queue is one call too), so it opens and closes its own."""
    if dim not in DIMS:
        raise ValueError(f"cannot group by {dim!r}")
    days = iso_days(first, last)
    if not days:
        return []
    cursor = _cursor(conn)
    if conn.in_transaction:
        raise RuntimeError("summaries.collect must run outside any transaction")
    missing = _closed_unsummarised(cursor, days, today)[1]
    if missing:
        try:
            conn.execute("BEGIN IMMEDIATE")
            missing = _closed_unsummarised(cursor, days, today)[1]  # now under the write lock
            if missing:
                summarise(conn, missing[:CHUNK_DAYS])
            conn.execute("COMMIT")
        except sqlite3.Error as error:  # disk full, locked by another process: answer from the rollups
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            log.warning("could not store day summaries: %s", error)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        else:
            if len(missing) > CHUNK_DAYS:
                return _MORE
    conn.execute("BEGIN")  # one snapshot for every read below
    try:
        done = _closed_unsummarised(cursor, days, today)[0]
        cursor.execute(
            "SELECT day, k, issued, called, wait_sum, served, service_sum, no_show, p90, hist FROM day_summary "
            "WHERE day BETWEEN ? AND ? AND dim = ? ORDER BY day, k", (days[0], days[-1], dim))
        rows = [DayRow(day, key, None if issued is None else (issued, *rest), p90, hist)
                for day, key, issued, *rest, p90, hist in cursor.fetchall() if day in done]
        live = [day for day in days if day not in done]
        for a, b in _runs(live):
            rows.extend(compute(conn, a, b, dim))
    finally:
        conn.execute("COMMIT")
    if live:
        rows.sort(key=lambda row: row.day)  # stable: each day comes whole from one source, in key order
    return rows


# ---------------------------------------------------------------------- from the event loop
async def day_rows(storage: "Storage", first: date, last: date, dim: str,
                   today: date | None = None) -> list[DayRow]:
    """Per day and key of ``dim`` over [first, last], summarising closed days on the way.
    ``today`` defaults to the storage clock's date in the centre's zone; days from it on are
    always read from the rollups."""
    day = (today or storage.today()).isoformat()
    while True:
        result = await storage.in_sqlite_thread(collect, first, last, dim, day)
        if result == _MORE:
            continue  # commits of the queue run between two chunks
        assert isinstance(result, list)
        return result
