"""Early warnings for a province leader, each with its reason in plain Vietnamese (English second).

Pure functions over the figures of :mod:`region.report`, so the rules are tested without a
database. Levels: ``cao`` (act now) and ``vừa`` (watch).

A warning whose text counts minutes (someone waiting past a threshold, a centre silent) carries
when that began (``since``) and a :data:`MINUTES` slot in its ``vi`` and ``en`` texts, not the
minutes themselves (issue 19): the warning then changes only with the data, so the province's
shared snapshot keeps it (and its encoded JSON) from one refresh to the next. Whoever shows it
fills the slot at the moment it shows (:func:`with_minutes`; the province page:
``Region.withMinutes`` in region/web/region.js, from the snapshot's ``now``), with the minutes the
table beside it shows (:func:`minutes_since`, then rounded half up to whole minutes). A warning's
level still moves with the time (a wait past twice its threshold is ``cao``).

The growing warning likewise carries :data:`ISSUED` and :data:`CALLED` slots, not the growth
window's ticket and call counts: the 5-minute buckets are re-read every 30 s and move them at almost
every centre, while the warning itself (it exists, its level) rarely changes. The same fillers put in
the counts of the overview's ``recent`` part (region.report.recent_part, ``{centre: [issued,
called]}``), which holds exactly the figures the warning was judged on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Thresholds:
    zone: ZoneInfo
    default_wait_minutes: int = 30
    growth_window_minutes: int = 30
    growth_min_excess: int = 5  # issued minus called over the window before it counts as growing
    waiting_min: int = 5
    offline_after_minutes: float = 15
    satisfaction_drop: float = 0.5  # on the 1-4 scale
    satisfaction_min_ratings: int = 5

    def working_hours(self, now: datetime) -> bool:
        """Mon-Fri 7:30-17:00 local: when a silent centre is a problem rather than closed."""
        local = now.astimezone(self.zone)
        return local.weekday() < 5 and (7, 30) <= (local.hour, local.minute) < (17, 0)


MINUTES = "{minutes}"
"""Where a warning's text puts its minutes (filled by :func:`with_minutes`)."""
ISSUED = "{issued}"
"""Where the growing warning's text puts the tickets issued in the growth window (:func:`with_minutes`)."""
CALLED = "{called}"
"""Where it puts the first calls in the same window."""


def minutes_since(now: datetime, moment: datetime | None) -> float:
    """Minutes from ``moment`` to ``now``, to a tenth (0 when there is no moment): a row's or a
    group's longest wait, the minutes a warning counts."""
    return round(max(0.0, (now - moment).total_seconds() / 60), 1) if moment else 0.0


def whole_minutes(now: datetime, moment: datetime | None) -> int:
    """:func:`minutes_since` rounded half up, as the pages print it (``Math.round``)."""
    return int(minutes_since(now, moment) + 0.5)


def with_minutes(warnings: list[dict[str, Any]], now: datetime, recent: dict[str, list[int]]) -> list[dict[str, Any]]:
    """``warnings`` with their slots filled (in place: fresh results only, never the shared
    snapshot's): :data:`MINUTES` at ``now``, :data:`ISSUED` and :data:`CALLED` from ``recent`` (the
    result's ``recent`` part: per centre, issued and called in the growth window; a centre without
    buckets has 0 and 0). For one centre's page and the national view."""
    for w in warnings:
        if w.get("since") is not None:
            minutes = str(whole_minutes(now, w["since"]))
            w["vi"], w["en"] = w["vi"].replace(MINUTES, minutes), w["en"].replace(MINUTES, minutes)
        if w["kind"] == "growing":
            issued, called = (str(n) for n in recent.get(w["centre"], NO_COUNTS))
            w["vi"] = w["vi"].replace(ISSUED, issued).replace(CALLED, called)
            w["en"] = w["en"].replace(ISSUED, issued).replace(CALLED, called)
    return warnings


NO_COUNTS = (0, 0)


def _hhmm(moment: datetime | None, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%H:%M %d/%m") if moment else "?"


def _warning(row: dict[str, Any], level: str, kind: str, vi: str, en: str,
             since: datetime | None = None) -> dict[str, Any]:
    """``since``: when what the text counts in minutes (its :data:`MINUTES` slot) began."""
    return {"centre": row["centre"], "name": row["name"], "level": level, "kind": kind, "vi": vi, "en": en,
            "since": since}


def centre_warnings(row: dict[str, Any], groups: list[dict[str, Any]], recent: dict[str, Any], now: datetime,
                    t: Thresholds) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    zone = t.zone
    # the link first: everything else is stale when it is down
    if row.get("bridge_online") is False:
        found.append(_warning(row, "cao", "bridge-down",
                              f"Mất đường truyền về tỉnh từ {_hhmm(row.get('bridge_at'), zone)}; trung tâm vẫn phục vụ, "
                              "số liệu sẽ được bù khi có mạng lại.",
                              f"Link to the province down since {_hhmm(row.get('bridge_at'), zone)}; figures catch up when it returns."))
    elif row.get("server_online") is False:
        found.append(_warning(row, "cao", "server-down",
                              f"Máy chủ trung tâm ngừng hoạt động từ {_hhmm(row.get('server_at'), zone)}: "
                              "máy lấy số chuyển sang chế độ ngoại tuyến.",
                              f"Centre server offline since {_hhmm(row.get('server_at'), zone)}; kiosks issue offline tickets."))
    else:
        heard = row.get("last_heard_at")
        if heard is not None and now - heard > timedelta(minutes=t.offline_after_minutes) and t.working_hours(now):
            found.append(_warning(row, "cao", "silent",
                                  f"Không nhận được dữ liệu từ trung tâm đã {MINUTES} phút trong giờ làm việc.",
                                  f"No data from the centre for {MINUTES} minutes during working hours.", heard))
    found += _growing_warning(row, recent, t)
    for g in groups:
        limit = g["threshold_minutes"]
        waited = minutes_since(now, g["longest_since"])
        if g["waiting"] and waited > limit:
            found.append(_warning(row, "cao" if waited > 2 * limit else "vừa", "long-wait",
                                  f"Lĩnh vực {g['name']}: có người đã chờ {MINUTES} phút, "
                                  f"vượt ngưỡng {limit} phút ({g['waiting']} người đang chờ).",
                                  f"{g['name']}: someone has waited {MINUTES} min, over the "
                                  f"{limit} min threshold ({g['waiting']} waiting).", g["longest_since"]))
    found += _falling_warning(row, recent, t)
    return found


LINK_KINDS = frozenset({"bridge-down", "server-down", "silent"})
"""The warnings a centre's list begins with (:func:`centre_warnings`)."""
RECENT_KINDS = frozenset({"growing", "satisfaction"})
"""The warnings judged from the recent figures (the 5-minute buckets)."""


def with_recent_warnings(row: dict[str, Any], found: list[dict[str, Any]], recent: dict[str, Any],
                         t: Thresholds) -> list[dict[str, Any]]:
    """A centre's warnings ``found`` by :func:`centre_warnings` with its growing and satisfaction
    warnings judged again from new ``recent`` figures, the others kept (the same dicts), in the
    order :func:`centre_warnings` gives them: for a centre whose other warnings the time did not
    move (region.overview, when the 5-minute buckets are re-read)."""
    rest = [w for w in found if w["kind"] not in RECENT_KINDS]
    links = sum(1 for w in rest if w["kind"] in LINK_KINDS)
    return rest[:links] + _growing_warning(row, recent, t) + rest[links:] + _falling_warning(row, recent, t)


def _growing_warning(row: dict[str, Any], recent: dict[str, Any], t: Thresholds) -> list[dict[str, Any]]:
    if not growing(row, recent, t):
        return []
    # the counts as slots: they move with almost every bucket re-read, the warning rarely
    return [_warning(row, "vừa", "growing",
                     f"Hàng chờ tăng nhanh hơn tốc độ phục vụ: {t.growth_window_minutes} phút qua có {ISSUED} người "
                     f"lấy số nhưng chỉ {CALLED} người được gọi; đang chờ {row['waiting']} người.",
                     f"Queue growing faster than it is served: {ISSUED} tickets vs {CALLED} calls in "
                     f"{t.growth_window_minutes} min; {row['waiting']} waiting.")]


def _falling_warning(row: dict[str, Any], recent: dict[str, Any], t: Thresholds) -> list[dict[str, Any]]:
    if not falling(recent, t):
        return []
    recent_avg, before_avg = recent["rating_recent"], recent["rating_before"]
    return [_warning(row, "vừa", "satisfaction",
                     f"Mức hài lòng đang giảm: 60 phút qua trung bình {recent_avg:.1f}/4 "
                     f"({recent['ratings_recent']} lượt), trước đó trong ngày {before_avg:.1f}/4.",
                     f"Satisfaction falling: {recent_avg:.1f}/4 in the last hour vs {before_avg:.1f}/4 earlier today.")]


def growing(row: dict[str, Any], recent: dict[str, Any], t: Thresholds) -> bool:
    """The queue grows faster than it is served (the "growing" warning), from the recent figures."""
    issued, called = int(recent.get("issued_recent") or 0), int(recent.get("called_recent") or 0)
    return row["waiting"] >= t.waiting_min and issued - called >= max(t.growth_min_excess, called // 2)


def falling(recent: dict[str, Any], t: Thresholds) -> bool:
    """Satisfaction in the last hour fell from earlier in the day (the "satisfaction" warning)."""
    recent_avg, before_avg = recent.get("rating_recent"), recent.get("rating_before")
    return (recent_avg is not None and before_avg is not None
            and int(recent.get("ratings_recent") or 0) >= t.satisfaction_min_ratings
            and int(recent.get("ratings_before") or 0) >= t.satisfaction_min_ratings
            and before_avg - recent_avg >= t.satisfaction_drop)


def recent_moved(row: dict[str, Any], before: dict[str, Any], recent: dict[str, Any], t: Thresholds) -> bool:
    """Whether new recent figures may change the centre's warnings (region.overview, when its
    buckets move and nothing else did): its growing warning came or went (its counts are slots, the
    rest of its text is the row's), or it has a satisfaction warning before or now (its text prints
    the ratings' figures). Otherwise it keeps its warnings, the same dicts."""
    return growing(row, before, t) != growing(row, recent, t) or falling(before, t) or falling(recent, t)
