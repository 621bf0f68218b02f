"""Early warnings for a province leader, each with its reason in plain Vietnamese (English second).

Pure functions over the figures of :mod:`region.report`, so the rules are tested without a
database. Levels: ``cao`` (act now) and ``vừa`` (watch).
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


def _hhmm(moment: datetime | None, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%H:%M %d/%m") if moment else "?"


def _warning(row: dict[str, Any], level: str, kind: str, vi: str, en: str) -> dict[str, Any]:
    return {"centre": row["centre"], "name": row["name"], "level": level, "kind": kind, "vi": vi, "en": en}


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
            minutes = int((now - heard).total_seconds() // 60)
            found.append(_warning(row, "cao", "silent",
                                  f"Không nhận được dữ liệu từ trung tâm đã {minutes} phút trong giờ làm việc.",
                                  f"No data from the centre for {minutes} minutes during working hours."))
    issued, called = int(recent.get("issued_recent") or 0), int(recent.get("called_recent") or 0)
    if row["waiting"] >= t.waiting_min and issued - called >= max(t.growth_min_excess, called // 2):
        found.append(_warning(row, "vừa", "growing",
                              f"Hàng chờ tăng nhanh hơn tốc độ phục vụ: {t.growth_window_minutes} phút qua có {issued} người "
                              f"lấy số nhưng chỉ {called} người được gọi; đang chờ {row['waiting']} người.",
                              f"Queue growing faster than it is served: {issued} tickets vs {called} calls in "
                              f"{t.growth_window_minutes} min; {row['waiting']} waiting."))
    for g in groups:
        limit = g["threshold_minutes"]
        if g["waiting"] and g["longest_wait_minutes"] > limit:
            found.append(_warning(row, "cao" if g["longest_wait_minutes"] > 2 * limit else "vừa", "long-wait",
                                  f"Lĩnh vực {g['name']}: có người đã chờ {g['longest_wait_minutes']:.0f} phút, "
                                  f"vượt ngưỡng {limit} phút ({g['waiting']} người đang chờ).",
                                  f"{g['name']}: someone has waited {g['longest_wait_minutes']:.0f} min, over the "
                                  f"{limit} min threshold ({g['waiting']} waiting)."))
    recent_avg, before_avg = recent.get("rating_recent"), recent.get("rating_before")
    if (recent_avg is not None and before_avg is not None
            and int(recent.get("ratings_recent") or 0) >= t.satisfaction_min_ratings
            and int(recent.get("ratings_before") or 0) >= t.satisfaction_min_ratings
            and before_avg - recent_avg >= t.satisfaction_drop):
        found.append(_warning(row, "vừa", "satisfaction",
                              f"Mức hài lòng đang giảm: 60 phút qua trung bình {recent_avg:.1f}/4 "
                              f"({recent['ratings_recent']} lượt), trước đó trong ngày {before_avg:.1f}/4.",
                              f"Satisfaction falling: {recent_avg:.1f}/4 in the last hour vs {before_avg:.1f}/4 earlier today."))
    return found
