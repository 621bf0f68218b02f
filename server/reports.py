"""Reports for managers: per day or ISO week, by group, counter or officer, from the rollup tables.

Each row: tickets, mean and 90th-percentile wait, mean service time, no-show rate and the
satisfaction index. Weeks are summed from the same hourly rollups and wait histogram the daily
figures come from (a week's 90th percentile is the percentile of the week's histogram, not an
average of daily percentiles). The CSV has a UTF-8 BOM so Excel shows Vietnamese correctly.
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import Any, Literal

from luot.config import CentreConfig
from server.storage import Storage, percentile_from_histogram, satisfaction_index

By = Literal["group", "counter", "officer"]
Period = Literal["day", "week"]
COLUMNS = {"group": "grp", "counter": "counter", "officer": "officer"}

# (key, Vietnamese header, English header)
FIELDS: list[tuple[str, str, str]] = [
    ("period", "Kỳ", "Period"),
    ("from", "Từ ngày", "From"),
    ("to", "Đến ngày", "To"),
    ("key", "Đối tượng", "Subject"),
    ("name", "Tên", "Name"),
    ("issued", "Số vé cấp", "Tickets issued"),
    ("called", "Số vé đã gọi", "Tickets called"),
    ("served", "Đã phục vụ", "Served"),
    ("no_show", "Vắng mặt", "No-shows"),
    ("mean_wait_minutes", "Chờ trung bình (phút)", "Mean wait (min)"),
    ("p90_wait_minutes", "Chờ P90 (phút)", "90th-percentile wait (min)"),
    ("mean_service_minutes", "Phục vụ trung bình (phút)", "Mean service (min)"),
    ("no_show_rate", "Tỷ lệ vắng mặt (%)", "No-show rate (%)"),
    ("responses", "Lượt đánh giá", "Ratings"),
    ("satisfaction_index", "Chỉ số hài lòng (0-100)", "Satisfaction index (0-100)"),
]


def periods(first: date, last: date, period: Period) -> list[tuple[str, date, date]]:
    """(label, first day, last day) of each day or ISO week touching [first, last], clipped to it."""
    result = []
    if period == "day":
        day = first
        while day <= last:
            result.append((day.isoformat(), day, day))
            day += timedelta(days=1)
        return result
    start = first - timedelta(days=first.weekday())
    while start <= last:
        end = start + timedelta(days=6)
        year, week, _ = start.isocalendar()
        result.append((f"{year}-W{week:02d}", max(start, first), min(end, last)))
        start = end + timedelta(days=1)
    return result


def _label(config: CentreConfig, by: By, key: Any) -> str:
    if by == "group":
        try:
            return config.group(str(key)).name
        except KeyError:
            return str(key)
    if by == "counter":
        try:
            return config.counter(int(key)).label
        except (KeyError, ValueError):
            return f"Quầy {key}"
    return str(key)


async def build_report(storage: Storage, config: CentreConfig, first: date, last: date,
                       by: By = "group", period: Period = "day") -> list[dict[str, Any]]:
    column = COLUMNS[by]
    rows: list[dict[str, Any]] = []
    for label, a, b in periods(first, last, period):
        span = (a.isoformat(), b.isoformat())
        cursor = await storage.db.execute(
            f"SELECT {column} AS k, SUM(issued) issued, SUM(called) called, SUM(wait_sum) wait_sum, "
            f"SUM(served) served, SUM(service_sum) service_sum, SUM(no_show) no_show "
            f"FROM stats_hourly WHERE day BETWEEN ? AND ? GROUP BY k ORDER BY k", span)
        totals = {r["k"]: dict(r) for r in await cursor.fetchall()}
        cursor = await storage.db.execute(
            f"SELECT {column} AS k, bucket, SUM(n) n FROM wait_hist WHERE day BETWEEN ? AND ? GROUP BY k, bucket", span)
        hist: dict[Any, list[tuple[int, int]]] = {}
        for r in await cursor.fetchall():
            hist.setdefault(r["k"], []).append((r["bucket"], r["n"]))
        cursor = await storage.db.execute(
            f"SELECT {column} AS k, rating, SUM(n) n FROM satisfaction_daily WHERE day BETWEEN ? AND ? "
            f"GROUP BY k, rating", span)
        ratings: dict[Any, dict[int, int]] = {}
        for r in await cursor.fetchall():
            ratings.setdefault(r["k"], {})[r["rating"]] = r["n"]
        for key in sorted(set(totals) | set(ratings), key=str):
            t = totals.get(key, {"issued": 0, "called": 0, "wait_sum": 0, "served": 0, "service_sum": 0, "no_show": 0})
            if by != "group" and key in (0, "") and not t["called"]:
                continue  # issued tickets not yet called belong to no counter or officer
            called, served, no_show = t["called"], t["served"], t["no_show"]
            attended = served + no_show
            counts = ratings.get(key, {})
            rows.append({
                "period": label, "from": a.isoformat(), "to": b.isoformat(), "key": key,
                "name": _label(config, by, key) if key not in (0, "") else "(chưa phân công)",
                "issued": t["issued"], "called": called, "served": served, "no_show": no_show,
                "mean_wait_minutes": round(t["wait_sum"] / called / 60, 2) if called else None,
                "p90_wait_minutes": percentile_from_histogram(hist[key], 0.9) if key in hist else None,
                "mean_service_minutes": round(t["service_sum"] / served / 60, 2) if served else None,
                "no_show_rate": round(no_show / attended * 100, 1) if attended else None,
                "responses": sum(counts.values()),
                "satisfaction_index": satisfaction_index(counts),
            })
    return rows


def _cell(value: Any) -> Any:
    return "" if value is None else value


Fields = list[tuple[str, str, str]]  # (key, Vietnamese heading, English heading)


def table_csv(fields: Fields, rows: list[list[Any]]) -> bytes:
    """CSV with Vietnamese headings, UTF-8 with a BOM so Excel opens the diacritics right."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([vi for _, vi, _ in fields])
    writer.writerows(rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def table_xlsx(fields: Fields, rows: list[list[Any]], title: str, sheet_name: str, freeze: str = "A4",
               wide: frozenset[str] = frozenset({"name"})) -> bytes:
    """A workbook: the title, Vietnamese headings (bold), English ones below (grey), then the rows."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    book = Workbook()
    sheet = book.active
    sheet.title = sheet_name
    sheet.append([title])
    sheet["A1"].font = Font(bold=True, size=13)
    sheet.append([vi for _, vi, _ in fields])
    sheet.append([en for _, _, en in fields])
    for cell in sheet[2]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True)
    for cell in sheet[3]:
        cell.font = Font(italic=True, color="555555")
    for row in rows:
        sheet.append(row)
    for index, (key, vi, _) in enumerate(fields, start=1):
        width = max(12, min(40, len(vi) + 2)) if key not in wide else 34
        sheet.column_dimensions[sheet.cell(2, index).column_letter].width = width
    sheet.freeze_panes = freeze
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def to_csv(rows: list[dict[str, Any]]) -> bytes:
    return table_csv(FIELDS, [[_cell(row[key]) for key, _, _ in FIELDS] for row in rows])


def to_xlsx(rows: list[dict[str, Any]], title: str) -> bytes:
    return table_xlsx(FIELDS, [[row[key] for key, _, _ in FIELDS] for row in rows], title, "Báo cáo")
