"""Reports for managers: per day or ISO week ("Tuần 49 (30/11–06/12/2026)"), by group, counter or officer, from the rollup tables.

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
import json
from datetime import date, datetime, timedelta
from typing import Any, Literal

from luot.config import CentreConfig
from luot.protocol import DISSATISFIED_BELOW, REASONS
from server import summaries
from server.ratings import REFUSAL_WORDS
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
        a, b = max(start, first), min(end, last)
        result.append((week_label(start, a, b), a, b))
        start = end + timedelta(days=1)
    return result


def week_label(monday: date, a: date, b: date) -> str:
    """'Tuần 49 (30/11–06/12/2026)': the ISO week's number as Vietnamese offices say it, with the
    days of it the report covers (clipped to the range asked), never '2026-W49'."""
    week = monday.isocalendar()[1]
    span = f"{a:%d/%m}–{b:%d/%m/%Y}" if a.year == b.year else f"{a:%d/%m/%Y}–{b:%d/%m/%Y}"
    return f"Tuần {week} ({span})"


def _label(config: CentreConfig, by: str, key: Any) -> str:
    if by == "month":  # "2026-12" -> "Tháng 12/2026"
        year, _, month = str(key).partition("-")
        return f"Tháng {month}/{year}"
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
            if by != "group":
                # A ticket is issued to a group, never to a counter or an officer (the rollups hold
                # its issue under officer ''), so "issued" per officer read 0. An officer's or a
                # counter's tickets are those they called: each was issued, and it is theirs.
                issued = called
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


def table_csv(fields: Fields, rows: list[list[Any]], excel_vi: bool = False) -> bytes:
    """CSV with Vietnamese headings, UTF-8 with a BOM so Excel opens the diacritics right.

    ``excel_vi``: for Excel on a Windows set to Vietnamese, whose list separator is ';' and decimal
    mark ',' — a comma CSV opens there as one column and "25.0" is not a number. So: ';' between
    fields and ',' in decimals, still UTF-8 with a BOM. No ``sep=;`` first line: Excel then ignores
    the BOM and shows the diacritics as mojibake. Without it: RFC 4180 commas for other programs."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";" if excel_vi else ",")
    writer.writerow([vi for _, vi, _ in fields])

    def cell(value: Any) -> Any:
        if excel_vi and isinstance(value, float):
            return str(value).replace(".", ",")
        return formula_safe(value)

    writer.writerows([[cell(value) for value in row] for row in rows])
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


def to_csv(rows: list[dict[str, Any]], excel_vi: bool = False) -> bytes:
    return table_csv(FIELDS, [[_cell(row[key]) for key, _, _ in FIELDS] for row in rows], excel_vi)


def to_xlsx(rows: list[dict[str, Any]], title: str) -> bytes:
    return table_xlsx(FIELDS, [[row[key] for key, _, _ in FIELDS] for row in rows], title, "Báo cáo")


# ---------------------------------------------------------------- satisfaction the way a centre is judged
# Decision 766/QĐ-TTg (2022) counts satisfaction per dossier: (all dossiers − dissatisfied,
# complained about or overdue) / all dossiers. Here a dossier is "dissatisfied" when the ticket it
# was handed in with was rated 'không hài lòng' or 'rất không hài lòng' (level 1 or 2), "overdue"
# when it carries an appointment date (ngày hẹn trả) and was returned after it, or is still not
# returned after it. Luot records no complaints (phản ánh, kiến nghị): that count is always 0 and
# says so in its heading.
LEVEL_KEYS = [(level, f"level_{level}") for level in (5, 4, 3, 2, 1)]
SATISFACTION_FIELDS: list[tuple[str, str, str]] = [
    ("key", "Đối tượng", "Subject"),
    ("name", "Tên", "Name"),
    ("dossiers", "Tổng số hồ sơ", "Dossiers"),
    ("dossiers_dissatisfied", "Hồ sơ bị đánh giá không hài lòng", "Dossiers rated dissatisfied"),
    ("dossiers_overdue", "Hồ sơ trễ hẹn", "Dossiers overdue"),
    ("dossiers_complained", "Hồ sơ có phản ánh (Luot không ghi nhận)", "Dossiers complained about (not recorded by Luot)"),
    ("index_766", "Chỉ số hài lòng theo QĐ 766 (%)", "Decision 766 satisfaction index (%)"),
    ("responses", "Lượt đánh giá", "Ratings"),
    ("level_5", "Rất hài lòng", "Very satisfied"),
    ("level_4", "Hài lòng", "Satisfied"),
    ("level_3", "Bình thường", "Neutral"),
    ("level_2", "Không hài lòng", "Dissatisfied"),
    ("level_1", "Rất không hài lòng", "Very dissatisfied"),
    ("reason_wait", "Lý do: thời gian chờ", "Reason: waiting time"),
    ("reason_attitude", "Lý do: thái độ", "Reason: attitude"),
    ("reason_guidance", "Lý do: hướng dẫn", "Reason: guidance"),
    ("reason_documents", "Lý do: giấy tờ", "Reason: documents"),
    ("reason_other", "Lý do khác", "Reason: other"),
    ("wait_dissatisfied_minutes", "Chờ TB của người không hài lòng (phút)", "Mean wait, dissatisfied (min)"),
    ("wait_satisfied_minutes", "Chờ TB của người hài lòng (phút)", "Mean wait, satisfied (min)"),
    ("rating_index", "Điểm hài lòng trung bình (0-100)", "Mean rating score (0-100)"),
    ("dossiers_returned", "Hồ sơ đã trả kết quả", "Dossiers returned"),
    ("dossiers_returned_on_time", "Trả kết quả đúng hẹn", "Returned on time"),
    ("returns_early", "Công dân đến nhận trước ngày hẹn", "Citizens came before the appointment"),
    ("returns_on_day", "Công dân đến nhận đúng ngày hẹn", "Citizens came on the appointment day"),
    ("returns_late", "Công dân đến nhận sau ngày hẹn", "Citizens came after the appointment"),
]
SatisfactionBy = Literal["group", "procedure", "counter", "officer", "month"]
_KEY_SQL = {"group": "t.grp", "procedure": "coalesce(d.procedure, '')", "counter": "coalesce(t.counter, 0)",
            "officer": "coalesce(t.officer, '')", "month": "substr({day}, 1, 7)"}
"""The row key of each ``by``; ``{day}`` is the service day of the table the query counts from, ``d``
the dossier of the row (none for a rating of a ticket without one). ``procedure`` is the national
procedure code (mã thủ tục hành chính) read from the dossier's receipt; a group (lĩnh vực) holds
many procedures, and a dossier whose code was typed has none."""
NO_PROCEDURE = "(không có mã thủ tục)"


def index_766(dossiers: int, flagged: int) -> float | None:
    """Decision 766's per-dossier satisfaction (%): the dossiers with none of the marks
    (dissatisfied, complained about, overdue) over all dossiers; ``flagged`` counts each marked
    dossier once however many marks it has."""
    if not dossiers:
        return None
    return round((dossiers - flagged) / dossiers * 100, 1)


def _overdue(row: Any, today: date, zone: Any) -> bool:
    if not row["appointment"]:
        return False
    due = date.fromisoformat(row["appointment"])
    if row["status"] == "returned":
        return datetime.fromisoformat(row["updated_at"]).astimezone(zone).date() > due
    return today > due


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


async def satisfaction_report(storage: Storage, config: CentreConfig, first: date, last: date,
                              by: SatisfactionBy = "group", today: date | None = None) -> list[dict[str, Any]]:
    """Rows per ``by`` key (a group, procedure, counter, officer or month) over [first, last] plus a last row
    for the whole centre (key ``*``): the Decision 766 index over the dossiers received in the range,
    ratings by level, reasons, the mean wait of dissatisfied versus satisfied citizens (Qmatic's
    feedback report), dossiers returned on time, and citizens who came for their result before, on
    or after the appointment date (counted for the dossier's own group and officer when Luot
    received it, else for the results ticket)."""
    today = today or storage.today()
    column = _KEY_SQL[by]
    span = (first.isoformat(), last.isoformat())
    per: dict[Any, dict[str, Any]] = {}

    def row_of(key: Any) -> dict[str, Any]:
        return per.setdefault(key, {"dossiers": 0, "dissatisfied": 0, "overdue": 0, "flagged": 0, "levels": {}, "reasons": {},
                                    "waits": {True: [], False: []}, "returned": 0, "on_time": 0,
                                    "early": 0, "on_day": 0, "late": 0})

    cursor = await storage.db.execute(
        f"SELECT {column.format(day='d.day')} AS k, d.status, d.appointment, d.updated_at, "
        f"(SELECT level FROM feedback f WHERE f.ticket_id = d.ticket_id) AS level "
        f"FROM dossiers d JOIN tickets t ON t.id = d.ticket_id WHERE d.day BETWEEN ? AND ?", span)
    for r in await cursor.fetchall():
        dissatisfied = r["level"] is not None and r["level"] < DISSATISFIED_BELOW
        overdue = _overdue(r, today, config.zone)
        returned = r["status"] == "returned"
        for key in (r["k"], "*"):
            acc = row_of(key)
            acc["dossiers"] += 1
            acc["dissatisfied"] += int(dissatisfied)
            acc["overdue"] += int(overdue)
            acc["flagged"] += int(dissatisfied or overdue)  # a dossier with both marks is subtracted once
            acc["returned"] += int(returned)
            acc["on_time"] += int(returned and not overdue)
    cursor = await storage.db.execute(
        f"SELECT {column.format(day='r.day')} AS k, r.days_off FROM dossier_returns r "
        f"LEFT JOIN dossiers d ON d.code = r.code JOIN tickets t ON t.id = coalesce(d.ticket_id, r.ticket_id) "
        f"WHERE r.day BETWEEN ? AND ? AND r.days_off IS NOT NULL", span)
    for r in await cursor.fetchall():
        when = "early" if r["days_off"] < 0 else "late" if r["days_off"] > 0 else "on_day"
        for key in (r["k"], "*"):
            row_of(key)[when] += 1
    cursor = await storage.db.execute(
        f"SELECT {column.format(day='f.day')} AS k, f.level, f.reasons, t.issued_at, t.first_called_at "
        f"FROM feedback f JOIN tickets t ON t.id = f.ticket_id LEFT JOIN dossiers d ON d.code = f.dossier "
        f"WHERE f.day BETWEEN ? AND ?", span)
    for r in await cursor.fetchall():
        wait = None
        if r["first_called_at"]:
            wait = (datetime.fromisoformat(r["first_called_at"]) - datetime.fromisoformat(r["issued_at"])).total_seconds() / 60
        for key in (r["k"], "*"):
            acc = row_of(key)
            acc["levels"][r["level"]] = acc["levels"].get(r["level"], 0) + 1
            for reason in json.loads(r["reasons"] or "[]"):
                acc["reasons"][reason] = acc["reasons"].get(reason, 0) + 1
            if wait is not None and r["level"] != 3:
                acc["waits"][r["level"] < DISSATISFIED_BELOW].append(wait)
    rows = []
    for key in sorted((k for k in per if k != "*"), key=str) + (["*"] if per else []):
        acc = per[key]
        rows.append({
            "key": key, "name": "Toàn trung tâm" if key == "*" else (_label(config, by, key) if key not in (0, "")
                                                                    else NO_PROCEDURE if by == "procedure" else "(chưa phân công)"),
            "dossiers": acc["dossiers"], "dossiers_dissatisfied": acc["dissatisfied"], "dossiers_overdue": acc["overdue"],
            "dossiers_complained": 0,
            "index_766": index_766(acc["dossiers"], acc["flagged"]),
            "responses": sum(acc["levels"].values()),
            **{name: acc["levels"].get(level, 0) for level, name in LEVEL_KEYS},
            **{f"reason_{code}": acc["reasons"].get(code, 0) for code in REASONS},
            "wait_dissatisfied_minutes": _mean(acc["waits"][True]), "wait_satisfied_minutes": _mean(acc["waits"][False]),
            "rating_index": satisfaction_index(acc["levels"]),
            "dossiers_returned": acc["returned"], "dossiers_returned_on_time": acc["on_time"],
            "returns_early": acc["early"], "returns_on_day": acc["on_day"], "returns_late": acc["late"],
        })
    return rows


async def refused_ratings(storage: Storage, first: date, last: date) -> list[dict[str, Any]]:
    """Ratings refused over [first, last] by refusal code and source, most first (server/ratings.py)."""
    cursor = await storage.db.execute(
        "SELECT code, source, SUM(n) n FROM rating_refusals WHERE day BETWEEN ? AND ? GROUP BY code, source "
        "ORDER BY n DESC, code, source", (first.isoformat(), last.isoformat()))
    return [{"code": r["code"], "source": r["source"], "count": r["n"],
             "name": REFUSAL_WORDS.get(r["code"], (r["code"], r["code"]))[0],
             "name_en": REFUSAL_WORDS.get(r["code"], (r["code"], r["code"]))[1]} for r in await cursor.fetchall()]


def satisfaction_csv(rows: list[dict[str, Any]], excel_vi: bool = False) -> bytes:
    return table_csv(SATISFACTION_FIELDS, [[_cell(row[key]) for key, _, _ in SATISFACTION_FIELDS] for row in rows], excel_vi)


def satisfaction_xlsx(rows: list[dict[str, Any]], title: str) -> bytes:
    return table_xlsx(SATISFACTION_FIELDS, [[row[key] for key, _, _ in SATISFACTION_FIELDS] for row in rows], title,
                      "Hài lòng", freeze="C4")
