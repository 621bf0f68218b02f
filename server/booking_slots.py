"""Appointment slots and booking hours, worked out from the centre file (pure: no clock, no I/O).

Why slots come from ``[hours]`` and are never stored: a centre that changes its hours changes its
slots the next time anyone asks; a booking keeps the start time it was made for, and the engine
checks a new booking against the slots of the moment.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from luot.config import WEEKDAYS, CentreConfig


def slot_starts(config: CentreConfig, day: date) -> list[datetime]:
    """The appointment slots of ``day`` (aware, centre's zone): each session of ``[hours]`` cut into
    ``booking.slot_minutes`` pieces; a piece that would run past the session's end is left out."""
    length = timedelta(minutes=config.booking.slot_minutes)
    zone = config.zone
    starts: list[datetime] = []
    for session in config.hours.get(WEEKDAYS[day.weekday()], []):
        first, last = (time.fromisoformat(part) for part in session.split("-"))
        start = datetime.combine(day, first, tzinfo=zone)
        end = datetime.combine(day, last, tzinfo=zone)
        while start + length <= end:
            starts.append(start)
            start += length
    return starts


def booking_window(config: CentreConfig, now: datetime) -> tuple[datetime, datetime]:
    """Today's hours (``booking.open_from``..``open_until``, local) in which numbers can be taken."""
    local = now.astimezone(config.zone)
    zone = config.zone
    return (datetime.combine(local.date(), time.fromisoformat(config.booking.open_from), tzinfo=zone),
            datetime.combine(local.date(), time.fromisoformat(config.booking.open_until), tzinfo=zone))


def bookable_days(config: CentreConfig, now: datetime) -> list[date]:
    """Today and the next ``booking.days_ahead`` days on which the centre has opening hours."""
    today = config.service_day(now)
    days = (today + timedelta(days=n) for n in range(config.booking.days_ahead + 1))
    return [day for day in days if config.opening_hours(day) is not None]


def checkin_window(config: CentreConfig, slot: datetime) -> tuple[datetime, datetime]:
    """When an appointment may check in and keep its place: from ``checkin_early_minutes`` before
    its slot until ``grace_minutes`` after it began. Later it becomes an ordinary ticket."""
    rules = config.booking
    return slot - timedelta(minutes=rules.checkin_early_minutes), slot + timedelta(minutes=rules.grace_minutes)
