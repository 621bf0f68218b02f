"""Shared helpers for the queue-engine tests: the real sample centre, explicit clocks, replay checks.

The engine never reads a clock, so every test passes aware datetimes. ``at(...)`` builds them in
the centre's local time (Asia/Ho_Chi_Minh, UTC+7), which is how an officer would describe a moment.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import tomllib
from datetime import datetime, timedelta, timezone
from typing import Any, Callable
from zoneinfo import ZoneInfo

from luot.config import DEFAULT_CONFIG, CentreConfig, parse_config
from server.engine import Event, QueueEngine

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
TOKENS = ("Q3YjBjrYUeNusAGAc64ppg", "loe8HmFlbaVOkFMGEOlntw", "vUpaBd59PXTD9PWRX0UBVw", "ey9JRj-r6WBBb_f0ITfAqw")
"""Offline tracking tokens as a kiosk makes them (secrets.token_urlsafe(16)): 128 random bits."""
UTC = timezone.utc


def sample_data() -> dict[str, Any]:
    """The shipped sample centre as plain data, so a test can change one rule."""
    return tomllib.loads(DEFAULT_CONFIG.read_text(encoding="utf-8"))


def make_config(**queue_rules: Any) -> CentreConfig:
    data = sample_data()
    data.setdefault("queue", {}).update(queue_rules)
    return parse_config(data, "test")


def small_config(**queue_rules: Any) -> CentreConfig:
    """A compact centre for stateful tests: three groups, three counters sharing groups."""
    data = sample_data()
    data["queue"].update(queue_rules)
    data["groups"] = [
        {"code": "ho-tich", "letter": "A", "first_number": 1001, "capacity": 400, "name": "Hộ tịch",
         "service_minutes": 8},
        {"code": "chung-thuc", "letter": "B", "first_number": 2001, "capacity": 400, "name": "Chứng thực",
         "service_minutes": 4},
        {"code": "dat-dai", "letter": "C", "first_number": 3001, "capacity": 400, "name": "Đất đai",
         "service_minutes": 15},
    ]
    data["counters"] = [
        {"number": 1, "groups": ["ho-tich"]},
        {"number": 2, "groups": ["ho-tich", "chung-thuc"]},
        {"number": 3, "groups": ["chung-thuc", "dat-dai"]},
    ]
    data["devices"] = [{"id": "kiosk-1", "role": "kiosk"}]
    data.pop("greeter", None)  # the sample's procedure mapping names groups this small centre has not
    return parse_config(data, "test")


def at(day: int, hour: int, minute: int = 0, month: int = 3, year: int = 2026) -> datetime:
    """A moment in the centre's local time, returned as an aware UTC datetime (as adapters would)."""
    return datetime(year, month, day, hour, minute, tzinfo=HCM).astimezone(UTC)


def counting_ids(prefix: str = "") -> Callable[[], str]:
    """Deterministic, unique ids (32 hex chars like uuid4().hex) so failures are reproducible."""
    counter = itertools.count(1)
    return lambda: f"{prefix}{next(counter):015x}".ljust(32, "0")[:32]  # the engine keeps the first 15 for tickets


def new_engine(config: CentreConfig) -> QueueEngine:
    tokens = itertools.count(1)
    return QueueEngine(config, new_id=counting_ids(), new_token=lambda: f"tok{next(tokens):020d}")


def state_of(engine: QueueEngine, now: datetime) -> dict[str, Any]:
    """Everything the engine knows, in comparable form: what replay must reproduce exactly."""
    return {
        "snapshot": engine.snapshot(now),
        "day": engine.day,
        "day_closed": engine.day_closed,
        # the raw token is known only to the process that issued a ticket: never part of the state
        "tickets": {tid: {k: v for k, v in dataclasses.asdict(t).items() if k != "token"}
                    for tid, t in engine.tickets.items()},
        "by_token_hash": dict(engine.by_token_hash),
        "last_at": engine.last_at,
        "assistance": (set(engine.assistance_ids), {d: list(t) for d, t in engine.assistance_times.items()}),
        "counters": {n: dataclasses.asdict(c) for n, c in engine.counters.items()},
        "numbering": copy.deepcopy(dataclasses.asdict(engine.numbering)),
        "service_sum": dict(engine.service_sum),
        "service_count": dict(engine.service_count),
        "rated": set(engine.rated_tickets),
        "estimates": {k: dataclasses.asdict(v) for k, v in engine.estimates(now).items()},
    }


def replayed(config: CentreConfig, events: list[Event]) -> QueueEngine:
    """A fresh engine that has seen only the events (through their dict form, as storage keeps them)."""
    fresh = QueueEngine(config)
    fresh.replay(Event.from_dict(e.to_dict()) for e in events)
    return fresh


def recorded(log: list[Event], result: Any) -> Any:
    """An engine command's answer with its events appended to ``log`` (as the server would persist
    them): commands return either a list of events or ``(value, events)``."""
    if isinstance(result, list):
        log.extend(result)
        return result
    value, events = result
    log.extend(events)
    return value


def later(moment: datetime, minutes: float) -> datetime:
    return moment + timedelta(minutes=minutes)
