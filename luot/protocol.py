"""The MQTT protocol shared by the server and every device (see docs/protocol.md).

Topics are built and parsed only here, so a device and the server can never disagree on a
spelling. Every payload is a JSON object with ``"v": PROTOCOL_VERSION``; inbound payloads are
validated with pydantic and a bad one raises :class:`PayloadError` with a plain message instead of
crashing whoever received it. No payload carries personal data or a tracking token.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

PROTOCOL_VERSION = 1
ROOT = "luot"
MAX_PAYLOAD_BYTES = 16_384


class PayloadError(ValueError):
    """An inbound MQTT payload that does not follow the protocol."""


class Topics:
    """Every topic of one centre. ``centre`` is the validated centre id (no '/', '+' or '#')."""

    def __init__(self, centre: str) -> None:
        self.centre = centre
        self.base = f"{ROOT}/{centre}"

    # server -> everyone (QoS 1, not retained): what happened
    @property
    def ticket_events(self) -> str:
        return f"{self.base}/events/ticket"

    @property
    def call_events(self) -> str:
        return f"{self.base}/events/call"

    @property
    def counter_events(self) -> str:
        return f"{self.base}/events/counter"

    @property
    def assistance_events(self) -> str:
        return f"{self.base}/events/assistance"

    # server -> everyone (QoS 1, retained): what is true now
    def counter_state(self, number: int) -> str:
        return f"{self.base}/state/counter/{number}"

    @property
    def counter_state_all(self) -> str:
        return f"{self.base}/state/counter/+"

    @property
    def queue_state(self) -> str:
        return f"{self.base}/state/queue"

    @property
    def recent_calls_state(self) -> str:
        return f"{self.base}/state/calls"

    @property
    def notice_state(self) -> str:
        return f"{self.base}/state/notice"

    @property
    def state_all(self) -> str:
        return f"{self.base}/state/#"

    # availability (retained, with a last will): one per device and one for the server
    @property
    def server_availability(self) -> str:
        return f"{self.base}/server/availability"

    @property
    def bridge_availability(self) -> str:
        """Written by the centre broker's bridge to the regional broker (``1`` up, ``0`` down, retained,
        and the bridge's last will there), so the region sees a centre's link drop at once."""
        return f"{self.base}/bridge/availability"

    def device_availability(self, device_id: str) -> str:
        return f"{self.base}/device/{device_id}/availability"

    @property
    def device_availability_all(self) -> str:
        return f"{self.base}/device/+/availability"

    # device -> server (QoS 1, not retained): what a citizen asked for
    def feedback(self, device_id: str) -> str:
        return f"{self.base}/device/{device_id}/feedback"

    def assistance(self, device_id: str) -> str:
        return f"{self.base}/device/{device_id}/assistance"

    def event_topics(self, kind: str) -> list[str]:
        """Where the server publishes an event of type ``kind``; ``[]`` for internal events.

        A call goes to ``events/ticket`` (the whole ticket story) and also to ``events/call``, the
        one topic a hall display needs for its announcements.
        """
        if kind in ("ticket.called", "ticket.recalled"):
            return [self.ticket_events, self.call_events]
        if kind.startswith("ticket."):
            return [self.ticket_events]
        if kind.startswith("counter."):
            return [self.counter_events]
        if kind == "assistance.requested":
            return [self.assistance_events]
        return []

    @property
    def inbound_all(self) -> list[str]:
        return [f"{self.base}/device/+/feedback", f"{self.base}/device/+/assistance"]

    def device_of(self, topic: str) -> str | None:
        """The device id inside a ``.../device/<id>/...`` topic of this centre, else None."""
        parts = topic.split("/")
        if len(parts) == 5 and parts[0] == ROOT and parts[1] == self.centre and parts[2] == "device":
            return parts[3]
        return None


BOOKING_PRIVATE_FIELDS = frozenset({"phone_key", "address_key", "code_hash"})
"""A booking's keyed hashes of the phone and the network address, and the hash of its check-in
code: the server needs them for limits and check-in; nobody outside does (docs/bookings.md)."""
PRIVATE_FIELDS = frozenset({"token", "token_hash", "source"}) | BOOKING_PRIVATE_FIELDS
"""Event fields that never leave the server: the tracking token is the key to a citizen's ticket
page, ``source`` names the kiosk that printed a ticket. The priority class is reduced to a boolean:
whether someone is elderly, disabled or pregnant is nobody else's business."""
BOOKING_CODE_ALPHABET = "ACDEFGHJKLMNPQRTUVWXY3479"
"""Letters and digits nobody misreads on a phone screen (no 0/O, 1/I, 2/Z, 5/S, 6/G, 8/B): the
kiosk's keypad shows exactly these."""
BOOKING_CODE_LENGTH = 8
"""A check-in code: 8 of 25 characters, 37 bits. Only kiosks and staff (authenticated) can try
codes; the QR carries a 128-bit token instead."""


def public_data(data: dict[str, Any]) -> dict[str, Any]:
    """The part of an event's data that may be published (see :data:`PRIVATE_FIELDS`)."""
    public = {key: value for key, value in data.items() if key not in PRIVATE_FIELDS}
    if "priority" in public:
        public["priority"] = bool(public["priority"])
    return public


AVAILABILITY_VALUES = ("online", "offline")
"""Availability topics carry the plain text ``online`` or ``offline`` (retained; ``offline`` is also
the last will), the convention most MQTT tools understand."""


def encode(kind: str, data: dict[str, Any], **envelope: Any) -> bytes:
    """A protocol message: ``{"v": 1, "kind": ..., **envelope, "data": {...}}`` as UTF-8 JSON."""
    message = {"v": PROTOCOL_VERSION, "kind": kind, **envelope, "data": data}
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def decode(payload: bytes) -> dict[str, Any]:
    """Parse any protocol message; raise PayloadError with a plain reason when it is not one."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadError(f"payload of {len(payload)} bytes is larger than {MAX_PAYLOAD_BYTES}")
    try:
        message = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError:
        raise PayloadError("payload is not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise PayloadError(f"payload is not JSON: {error.msg} at character {error.pos}") from None
    if not isinstance(message, dict):
        raise PayloadError("payload must be a JSON object")
    if message.get("v") != PROTOCOL_VERSION:
        raise PayloadError(f"unsupported protocol version {message.get('v')!r}; this server speaks v{PROTOCOL_VERSION}")
    if not isinstance(message.get("data"), dict):
        raise PayloadError("payload needs a 'data' object")
    return message


class _Inbound(BaseModel):
    """Strict: a JSON ``true`` is not the rating 1, ``"4"`` is not 4 and ``1.0`` is not 1. A device
    that sends the wrong type has a bug, and guessing what it meant stores something nobody said."""

    model_config = ConfigDict(extra="forbid", strict=True)


Reason = Literal["wait", "attitude", "guidance", "documents", "other"]


class FeedbackData(_Inbound):
    """A satisfaction tap. Without ``scale`` (the four-face pad, protocol as first published):
    4 = rất hài lòng, 3 = hài lòng, 2 = bình thường, 1 = không hài lòng. With ``scale`` 5 (the
    province's form): 5 = rất hài lòng … 1 = rất không hài lòng, plus ``reasons`` when below
    'bình thường'. The two fields are additive; the engine checks the combination."""

    ticket_id: str = Field(min_length=1, max_length=64)
    rating: int = Field(ge=-1000, le=1000)
    """Any integer a pad could plausibly send: a level the form does not have (0, 9) is refused by
    the engine with its reason and counted in ``luot_ratings_refused_total`` (server/ratings.py),
    as over HTTP; only absurd values are malformed data (``luot_mqtt_rejected_total``)."""
    request_id: str = Field(min_length=1, max_length=64)
    scale: Literal[4, 5] = 4
    reasons: list[Reason] = Field(default_factory=list, max_length=5)


class AssistanceData(_Inbound):
    """A visitor asked for a staff member to come to the device."""

    request_id: str = Field(min_length=1, max_length=64)
    reason: Literal["help", "guided", "language", "other"] = "help"


def parse_inbound(kind: Literal["feedback", "assistance"], payload: bytes) -> BaseModel:
    message = decode(payload)
    model = FeedbackData if kind == "feedback" else AssistanceData
    try:
        return model.model_validate(message["data"])
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "data"
        raise PayloadError(f"{kind} payload: data.{where}: {first['msg']}") from None


# The province's five levels (the national evaluation form): level -> (Vietnamese, English).
LEVELS = {
    5: ("Rất hài lòng", "Very satisfied"),
    4: ("Hài lòng", "Satisfied"),
    3: ("Bình thường", "Neutral"),
    2: ("Không hài lòng", "Dissatisfied"),
    1: ("Rất không hài lòng", "Very dissatisfied"),
}
# Why a citizen was dissatisfied (asked only below 'bình thường'): code -> (Vietnamese, English).
REASONS = {
    "wait": ("Thời gian chờ đợi", "Waiting time"),
    "attitude": ("Thái độ cán bộ", "Officer's attitude"),
    "guidance": ("Hướng dẫn chưa rõ", "Guidance"),
    "documents": ("Giấy tờ yêu cầu", "Documents asked for"),
    "other": ("Lý do khác", "Other"),
}
DISSATISFIED_BELOW = 3  # levels 1 and 2 are the 'không hài lòng' of Decision 766


def level_of(rating: int, scale: int) -> int:
    """A rating as a five-level value. A four-face rating keeps its words: rất hài lòng 4 -> 5,
    hài lòng 3 -> 4, bình thường 2 -> 3, không hài lòng 1 -> 2 (the four faces never offered
    'rất không hài lòng', so none of them is counted as that)."""
    return rating + 1 if scale == 4 else rating


def legacy_rating(level: int) -> int:
    """The four-face value of a level, for readers written for 1..4 (the region's averages):
    5 -> 4, 4 -> 3, 3 -> 2, 2 and 1 -> 1."""
    return max(1, level - 1)


RATING_LABELS = {
    4: ("Rất hài lòng", "Very satisfied"),
    3: ("Hài lòng", "Satisfied"),
    2: ("Bình thường", "Neutral"),
    1: ("Không hài lòng", "Not satisfied"),
}
