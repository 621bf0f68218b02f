"""Shared pieces of the booking tests: a centre with small slot capacity and the engine's full state."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from typing import Any

from luot.config import CentreConfig, parse_config
from server.booking_slots import slot_starts
from server.engine import QueueEngine
from tests.engine_support import sample_data, state_of


def booking_config(**rules: Any) -> CentreConfig:
    """The sample centre with ``[booking]`` rules changed (capacity 2 a slot by default)."""
    data = sample_data()
    data["booking"] = {**data.get("booking", {}), **rules}
    return parse_config(data, "test")


def full_state(engine: QueueEngine, now: datetime) -> dict[str, Any]:
    """:func:`tests.engine_support.state_of` plus the bookings (raw code and token left out: they
    are known only to the process that made the booking)."""
    return {**state_of(engine, now),
            "bookings": {bid: {k: v for k, v in dataclasses.asdict(b).items() if k not in ("code", "token")}
                         for bid, b in engine.bookings.items()},
            "by_code": dict(engine.bookings_by_code), "by_token": dict(engine.bookings_by_token)}


def slot_of(config: CentreConfig, day: date, local_time: str) -> datetime:
    """The slot of ``day`` starting at ``local_time`` ('HH:MM')."""
    return next(s for s in slot_starts(config, day) if s.astimezone(config.zone).strftime("%H:%M") == local_time)
