"""Reports for managers: per day or ISO week, by group, counter or officer, from the rollup tables.

Each row: tickets, mean and 90th-percentile wait, mean service time, no-show rate and the
satisfaction index. Weeks are summed from the same per-day sums and wait histograms the daily
figures come from (a week's 90th percentile is the percentile of the week's merged histogram, not
an average of daily percentiles); closed days come from their stored summaries
(server/summaries.py), so a month reads a few rows per day and key. The CSV has a UTF-8 BOM so
Excel shows Vietnamese correctly.
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import Any, Literal

from luot.config import CentreConfig
from server import summaries
from server.storage import Storage, satisfaction_index

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
                       by: By = "group", period: Period = "day", today: date | None = None) -> list[dict[str, Any]]:
    """Rows per period and key. Days before ``today`` (default: the storage clock's date) are read
    from their stored daily summaries, later ones from the rollups (server/summaries.py)."""
    column = COLUMNS[by]
    by_day: dict[str, list[summaries.DayRow]] = {}
    for day_row in await summaries.day_rows(storage, first, last, by, today):
        by_day.setdefault(day_row.day, []).append(day_row)
    cursor = await storage.db.execute(
        f"SELECT day, {column} AS k, rating, SUM(n) n FROM satisfaction_daily WHERE day BETWEEN ? AND ? "
        f"GROUP BY day, k, rating", (first.isoformat(), last.isoformat()))
    ratings_by_day: dict[str, list[tuple[Any, int, int]]] = {}
    for r in await cursor.fetchall():
        ratings_by_day.setdefault(r["day"], []).append((r["k"], r["rating"], r["n"]))
    rows: list[dict[str, Any]] = []
    for label, a, b in periods(first, last, period):
        days = summaries.iso_days(a, b)
        totals: dict[Any, list[Any]] = {}
        hists: dict[Any, list[summaries.DayRow]] = {}
        ratings: dict[Any, dict[int, int]] = {}
        for day in days:
            for day_row in by_day.get(day, ()):
                if day_row.totals is not None:
                    sums = totals.get(day_row.key)
                    if sums is None:
                        totals[day_row.key] = list(day_row.totals)
                    else:
                        for i, value in enumerate(day_row.totals):
                            sums[i] += value
                if day_row.has_hist:
                    hists.setdefault(day_row.key, []).append(day_row)
            for key, rating, n in ratings_by_day.get(day, ()):
                counts = ratings.setdefault(key, {})
                counts[rating] = counts.get(rating, 0) + n
        for key in sorted(set(totals) | set(ratings), key=str):
            issued, called, wait_sum, served, service_sum, no_show = totals.get(key, (0, 0, 0, 0, 0, 0))
            if by != "group" and key in (0, "") and not called:
                continue  # issued tickets not yet called belong to no counter or officer
            attended = served + no_show
            counts = ratings.get(key, {})
            rows.append({
                "period": label, "from": days[0], "to": days[-1], "key": key,
                "name": _label(config, by, key) if key not in (0, "") else "(chưa phân công)",
                "issued": issued, "called": called, "served": served, "no_show": no_show,
                "mean_wait_minutes": round(wait_sum / called / 60, 2) if called else None,
                "p90_wait_minutes": summaries.merged_percentile(hists[key]) if key in hists else None,
                "mean_service_minutes": round(service_sum / served / 60, 2) if served else None,
                "no_show_rate": round(no_show / attended * 100, 1) if attended else None,
                "responses": sum(counts.values()),
                "satisfaction_index": satisfaction_index(dict(sorted(counts.items()))),  # summed in rating order
            })
    return rows


def _cell(value: Any) -> Any:
    return "" if value is None else value


Fields = list[tuple[str, str, str]]  # (key, Vietnamese heading, English heading)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def formula_safe(cell: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula (``=HYPERLINK(...)`` typed as a
    dossier code or a name) is written with a leading apostrophe, as OWASP advises for CSV;
    numbers stay numbers."""
    if isinstance(cell, str) and cell.startswith(FORMULA_STARTS):
        return "'" + cell
    return cell


def table_csv(fields: Fields, rows: list[list[Any]]) -> bytes:
    """CSV with Vietnamese headings, UTF-8 with a BOM so Excel opens the diacritics right."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([vi for _, vi, _ in fields])
    writer.writerows([[formula_safe(cell) for cell in row] for row in rows])
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
        for cell in sheet[sheet.max_row]:
            if cell.data_type == "f":  # openpyxl takes any text starting with "=" for a formula
                cell.data_type = "s"
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
