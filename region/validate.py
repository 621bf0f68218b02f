"""Checks every message the region receives before anything is written.

An event is accepted only when its topic is ``luot/<centre>/events/<stream>`` of a centre listed in
centres.toml, its payload is a protocol v1 envelope (:func:`luot.protocol.decode`), the payload's
``centre`` equals the topic's, its ``kind`` is a known event kind published on that topic, its
``id`` and ``at`` are well formed. Anything else raises :class:`Rejected` with a plain reason that
is logged (never the payload) and ingestion goes on. The ACL already stops centre A's bridge from
publishing under ``luot/B/``; these checks also catch a centre whose server is misconfigured.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from luot.protocol import AVAILABILITY_VALUES, ROOT, PayloadError, Topics, decode, public_data

EVENT_KINDS = frozenset({
    "ticket.issued", "ticket.called", "ticket.recalled", "ticket.serving", "ticket.finished", "ticket.no_show",
    "ticket.transferred", "ticket.cancelled", "ticket.expired",
    "counter.opened", "counter.closed", "counter.paused", "counter.resumed",
    "assistance.requested",
    # not published on MQTT, read over HTTP from the centre's event log (satisfaction, days, offline blocks)
    "feedback.recorded", "day.opened", "day.closed", "block.leased", "dossier.attached", "dossier.status",
    "feedback.refused", "clock.confirmed", "counter.taken_over",
    # bookings (docs/bookings.md): their public part only (no phone or address keys, no code hash)
    "booking.made", "booking.checked_in", "booking.turn_reached", "booking.lapsed", "booking.cancelled",
})
EVENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DEVICE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


class Rejected(ValueError):
    """A message the region will not store; the message is the reason, fit for the log."""


@dataclass(frozen=True)
class RegionEvent:
    centre: str
    id: str
    kind: str
    at: datetime
    data: dict[str, Any]
    seq: int | None = None  # the centre's log sequence number, when read over HTTP
    via: str = "mqtt"


@dataclass(frozen=True)
class Availability:
    centre: str
    what: str  # "server", "bridge" or "device"
    device: str | None
    online: bool


def _event_fields(centre: str, message: dict[str, Any], seq: int | None, via: str) -> RegionEvent:
    kind = message.get("kind") if "kind" in message else message.get("type")
    if kind not in EVENT_KINDS:
        raise Rejected(f"centre {centre}: unknown event kind {str(kind)[:40]!r}")
    event_id = message.get("id")
    if not isinstance(event_id, str) or not EVENT_ID.match(event_id):
        raise Rejected(f"centre {centre}: event id missing or malformed")
    try:
        at = datetime.fromisoformat(str(message.get("at")))
    except ValueError:
        raise Rejected(f"centre {centre}: event {event_id}: 'at' is not an ISO 8601 time") from None
    if at.tzinfo is None:
        raise Rejected(f"centre {centre}: event {event_id}: 'at' has no UTC offset")
    data = message.get("data")
    if not isinstance(data, dict):
        raise Rejected(f"centre {centre}: event {event_id}: no data object")
    group = data.get("group")
    if group is not None and not isinstance(group, str):
        raise Rejected(f"centre {centre}: event {event_id}: group is not a string")
    return RegionEvent(centre, event_id, kind, at, public_data(data), seq, via)


def parse_mqtt(topic: str, payload: bytes, centres: set[str] | frozenset[str]) -> RegionEvent | Availability:
    """Validate one message from the regional broker."""
    parts = topic.split("/")
    if len(parts) < 3 or parts[0] != ROOT:
        raise Rejected(f"topic {topic[:80]!r} is not a Luot topic")
    centre = parts[1]
    if centre not in centres:
        raise Rejected(f"topic {topic[:80]!r}: centre {centre[:40]!r} is not listed in centres.toml")
    topics = Topics(centre)
    if topic in (topics.server_availability, topics.bridge_availability) or (
            len(parts) == 5 and parts[2] == "device" and parts[4] == "availability"):
        text = payload.decode("utf-8", errors="replace").strip()
        if topic == topics.bridge_availability:
            if text not in ("0", "1"):
                raise Rejected(f"{topic}: bridge availability must be 0 or 1")
            return Availability(centre, "bridge", None, text == "1")
        if text not in AVAILABILITY_VALUES:
            raise Rejected(f"{topic}: availability must be 'online' or 'offline'")
        if parts[2] == "device":
            if not DEVICE_ID.match(parts[3]):
                raise Rejected(f"{topic}: malformed device id")
            return Availability(centre, "device", parts[3], text == "online")
        return Availability(centre, "server", None, text == "online")
    if len(parts) != 4 or parts[2] != "events":
        raise Rejected(f"topic {topic[:80]!r} is not an event topic")
    try:
        message = decode(payload)
    except PayloadError as error:
        raise Rejected(f"{topic}: {error}") from None
    if message.get("centre") != centre:
        raise Rejected(f"{topic}: payload says centre {str(message.get('centre'))[:40]!r}, topic says {centre!r}")
    event = _event_fields(centre, message, None, "mqtt")
    if topic not in topics.event_topics(event.kind):
        raise Rejected(f"{topic}: a {event.kind} event does not belong on this topic")
    return event


def parse_logged(centre: str, row: dict[str, Any]) -> RegionEvent:
    """Validate one row of a centre's ``GET /api/v1/events`` answer."""
    seq = row.get("seq")
    if not isinstance(seq, int) or seq < 1:
        raise Rejected(f"centre {centre}: event log row without a valid seq")
    return _event_fields(centre, row, seq, "http")
