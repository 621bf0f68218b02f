"""Centre configuration: one TOML file describes one centre.

The file is validated at start-up with pydantic; every mistake is reported with the key that is
wrong (``groups[2].service_minutes``) and what was expected, so an operator can fix it without
reading code. Validation is strict: unknown keys are errors (a typo must not be silently ignored).
"""

from __future__ import annotations

import re
import tomllib
from datetime import date, datetime, time
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

SLUG = r"^[a-z0-9][a-z0-9-]{0,39}$"
DEVICE_ID = r"^[a-z0-9][a-z0-9-]{0,39}$"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "assets" / "centre.sample.toml"


class ConfigError(Exception):
    """A configuration file that cannot be used; the message is meant for the operator."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CentreInfo(_Strict):
    id: Annotated[str, Field(pattern=SLUG, description="lowercase letters, digits and '-'")]
    name: str = Field(min_length=1)
    name_en: str = ""
    province: str = ""
    timezone: str = "Asia/Ho_Chi_Minh"
    languages: list[Literal["vi", "en"]] = ["vi", "en"]
    public_url: str = Field("http://127.0.0.1:8080", description="base of every ticket's QR link; must open from a phone in the hall")
    single_box: bool = Field(False, description="everything runs on this one machine: public_url and [http] host may stay on loopback")
    notice: str = ""
    notice_en: str = ""
    rating_scale: Literal[4, 5] = Field(5, description="the pad's question: 5 = the province's five levels with reasons, 4 = the four faces")
    results_group: str | None = Field(None, description="the group (trả kết quả) whose ticket a citizen gets at the kiosk by "
                                                       "scanning a dossier receipt; none: the kiosk offers no return ticket")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; expected e.g. 'Asia/Ho_Chi_Minh'") from None
        return value

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("expected an http:// or https:// address such as 'http://192.168.1.10:8080'")
        return value.rstrip("/")


class QueueRules(_Strict):
    priority_run_limit: int = Field(3, ge=1, le=20)
    max_calls: int = Field(3, ge=1, le=10)
    wait_alert_minutes: int = Field(30, ge=1, le=600)
    lease_limit: int = Field(200, ge=1, le=5000, description="numbers of one group a kiosk may hold leased and unused")


class PriorityClass(_Strict):
    code: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,30}$")]
    name: str = Field(min_length=1)
    name_en: str = ""


class Group(_Strict):
    code: Annotated[str, Field(pattern=SLUG)]
    letter: Annotated[str, Field(pattern=r"^[A-Z]$", description="one capital letter")]
    first_number: int = Field(1, ge=1, le=98_001)
    capacity: int = Field(999, ge=1, le=9_999, description="most tickets a day")
    name: str = Field(min_length=1)
    name_en: str = ""
    description: str = ""
    service_minutes: float = Field(gt=0, le=480)
    legal_days: int = Field(0, ge=0, le=365)
    documents: list[str] = []
    wait_alert_minutes: int | None = Field(None, ge=1, le=600)

    @property
    def last_number(self) -> int:
        return self.first_number + self.capacity - 1


class Counter(_Strict):
    number: int = Field(ge=1, le=999)
    name: str = ""
    groups: list[str] = Field(min_length=1)
    opens: str | None = Field(None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$",
                              description="HH:MM this counter usually opens when later than the centre "
                                          "(a part-time officer): wait estimates expect it then")

    @property
    def label(self) -> str:
        return self.name or f"Quầy {self.number}"


class Device(_Strict):
    id: Annotated[str, Field(pattern=DEVICE_ID)]
    role: Literal["kiosk", "display", "pad", "manager"]
    counter: int | None = None


class MqttSettings(_Strict):
    host: str | None = Field(None, description="broker host; leave out to start one with the server")
    port: int = Field(18830, ge=1, le=65535)
    bind: str = Field("127.0.0.1", description="address the started broker listens on; 0.0.0.0 for devices on the LAN")
    tls: bool = False


class HttpSettings(_Strict):
    host: str = Field("0.0.0.0", description="address the web server listens on; 0.0.0.0 = every interface, so phones reach QR links")
    port: int = Field(8080, ge=0, le=65535)


class StaffSettings(_Strict):
    """Staff sign-in rules (server/accounts.py, server/login_guard.py)."""

    officer_idle_minutes: int = Field(30, ge=1, le=24 * 60, description="an officer's session ends after this long unused")
    manager_idle_minutes: int = Field(30, ge=1, le=24 * 60, description="a manager's session ends after this long unused")
    session_hours: int = Field(12, ge=1, le=72, description="a session ends this long after sign-in, used or not")
    min_password_length: int = Field(10, ge=8, le=128)
    address_free_failures: int = Field(5, ge=1, le=100, description="wrong logins from one address before it must wait")
    user_free_failures: int = Field(10, ge=1, le=1000, description="wrong logins for one username before it must wait")
    lock_base_seconds: float = Field(2.0, gt=0, le=600, description="first wait; each further failure doubles it")
    address_lock_max_seconds: float = Field(900.0, gt=0, le=86_400)
    user_lock_max_seconds: float = Field(120.0, gt=0, le=3600, description="cap, so an attacker cannot lock a manager out for long")


class MetricsSettings(_Strict):
    """``[metrics]``: who may read /metrics (docs/monitoring.md). Without a token it is open to the LAN,
    as Prometheus expects; it holds no personal data either way."""

    token: str | None = Field(None, min_length=16, pattern=r"^[A-Za-z0-9._~+/=-]+$",
                              description="bearer token Prometheus must send (authorization.credentials)")


class GreeterSettings(_Strict):
    """``[greeter]``: which of this centre's groups serves each procedure field or procedure id of the
    greeter's catalogue (kiosk/procedure_catalogue.toml); unmapped ones go to ``guidance_group``."""

    procedure_groups: dict[str, str] = Field({}, description="field or procedure id -> group code")
    guidance_group: str | None = Field(None, description="default: the group 'khac', else the last group")

    @model_validator(mode="after")
    def _slugs(self) -> "GreeterSettings":
        bad = [key for key in self.procedure_groups if not re.fullmatch(SLUG, key)]
        if bad:
            raise ValueError(f"procedure_groups: {', '.join(map(repr, bad))} are not field or procedure ids "
                             "(lowercase letters, digits and dashes)")
        return self


class ExportSettings(_Strict):
    """``[export]``: the signed webhook push of ratings and dossier links (docs/export.md). Empty
    ``webhook_url``: no push (the HTTP feed and the daily CSV are always there for managers)."""

    webhook_url: str = Field("", pattern=r"^(https?://\S+)?$", description="where to POST the JSON-lines batches")
    secret_file: str = Field("export-webhook.key", description="the HMAC-SHA256 key, relative to the data directory; "
                                                                "created (random, mode 600) when missing")
    batch: int = Field(100, ge=1, le=1000)


class NotifySettings(_Strict):
    """``[notify]``: messages to citizens who booked (one-time codes, "your turn is near", "please come
    to counter N") through an outbox and its channels (docs/notifications.md). No channel: nothing
    can reach a phone, so one-time codes are refused (fail closed) and turn messages wait."""

    channels: list[Literal["sms", "zalo"]] = Field([], description="tried in this order for each message; "
                                                                     "sms = Gammu SMSD, zalo = Zalo OA (ZNS)")
    near_ahead: int = Field(3, ge=0, le=50, description="message when this many people or fewer are ahead; 0 = never")
    keep_phone_days: int = Field(30, ge=1, le=365, description="sealed phones (outbox, Gammu's sent folder) are deleted after this many days")
    retry_base_seconds: float = Field(5.0, gt=0, le=3600, description="first wait after a failed send; each further failure doubles it")
    retry_max_seconds: float = Field(300.0, gt=0, le=86_400)
    give_up_minutes: int = Field(60, ge=1, le=24 * 60, description="a turn message still unsent this long after it was queued is dropped")
    gammu_config: str = Field("gammu-smsdrc", min_length=1, description="the Gammu SMSD configuration (service = files); "
                                                                        "relative paths are inside the data directory")
    sms_max_chars: int = Field(320, ge=70, le=1000, description="longest SMS text; longer texts are cut (each 70 characters of Vietnamese is one SMS part)")
    zalo_url: str = Field("https://business.openapi.zalo.me/message/template", pattern=r"^https?://\S+$",
                          description="ZNS send-template endpoint")
    zalo_token_file: str = Field("zalo-oa.token", min_length=1, description="the OA access token, relative to the data directory")
    zalo_templates: dict[str, str] = Field({}, description="message kind (otp, near, called, turn) -> approved ZNS template id")


class OtpSettings(_Strict):
    """``[otp]``: one-time codes that confirm a phone number (server/otp.py). The defaults give an
    attacker at most ``per_phone_per_hour * max_wrong`` guesses an hour at one phone (15 in a
    million: bench/bench_otp_bruteforce.py)."""

    ttl_seconds: int = Field(300, ge=60, le=3600, description="a code is good for this long")
    max_wrong: int = Field(5, ge=1, le=20, description="wrong tries that kill a code")
    resend_seconds: int = Field(60, ge=0, le=3600, description="shortest gap between two codes to one phone")
    per_phone_per_hour: int = Field(3, ge=1, le=100)
    per_phone_per_day: int = Field(6, ge=1, le=1000)
    per_address_per_hour: int = Field(10, ge=1, le=10_000, description="codes requested from one network address (a bot's)")


class StorageSettings(_Strict):
    path: str = "var/luot.sqlite3"
    min_free_mb: int = Field(500, ge=0, description="/health answers 503 when the database's disk has less free space")


class BackupSettings(_Strict):
    """``[backup]``: online copies of the database (server/backup.py, docs/backup.md)."""

    directory: str = Field("backups", min_length=1, description="where backups go; relative paths are inside the data directory")
    second_location: str | None = Field(None, min_length=1, description="a second copy, e.g. a directory on a USB disk; must exist (a missing one is reported, not fatal)")
    interval_minutes: int = Field(60, ge=0, le=1440, description="minutes between scheduled backups; 0 turns the schedule off")
    keep_hourly: int = Field(24, ge=0, le=1000, description="keep the newest backup of each of the last N hours that have one")
    keep_daily: int = Field(14, ge=0, le=1000, description="keep the newest backup of each of the last N days that have one")


class VoiceSettings(_Strict):
    voice: str = "vi"
    rate: int = Field(150, ge=60, le=400)
    volume: float = Field(1.0, ge=0.0, le=1.0)
    repeat: int = Field(1, ge=1, le=5)
    english: bool = False


class RegionLink(_Strict):
    """Optional ``[region]``: the regional broker this centre's Mosquitto bridges its events to.

    Leave the table out and the centre runs exactly as before. See docs/region.md.
    """

    host: str = Field(min_length=1, pattern=r"^[^\s/:]+$", description="regional broker host name or address")
    port: int = Field(8883, ge=1, le=65535)
    username: Annotated[str, Field(pattern=SLUG)] | None = Field(None, description="MQTT user on the regional broker; default: the centre id")
    ca_file: str | None = Field(None, min_length=1, description="CA certificate that signed the regional broker's (turns TLS on)")
    cert_file: str | None = Field(None, min_length=1, description="this centre's client certificate (with key_file)")
    key_file: str | None = Field(None, min_length=1)
    api_device: Annotated[str, Field(pattern=DEVICE_ID)] = Field("region", description="manager device whose secret the region uses for catch-up")
    max_queued_messages: int = Field(60_000, ge=10, le=2_000_000, description="bridge queue while the region is unreachable")
    reconnect_min_seconds: int = Field(5, ge=1, le=3600)
    reconnect_max_seconds: int = Field(60, ge=1, le=3600)

    @model_validator(mode="after")
    def _tls_pairs(self) -> "RegionLink":
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together: give both or neither")
        if self.cert_file is not None and self.ca_file is None:
            raise ValueError("a client certificate needs ca_file too (TLS to the regional broker)")
        if self.reconnect_max_seconds < self.reconnect_min_seconds:
            raise ValueError("reconnect_max_seconds must not be below reconnect_min_seconds")
        return self


class BookingSettings(_Strict):
    """``[booking]``: numbers taken from a phone and appointments (docs/bookings.md). The defaults are
    Hanoi's iHanoi online-number rules: numbers taken 08:00-16:00, at most 2 a person a day and 1 a
    procedure group, booking today or up to 6 days ahead."""

    enabled: bool = Field(True, description="false: the booking endpoints refuse and the kiosk hides its check-in button")
    open_from: str = Field("08:00", pattern=r"^\d\d:\d\d$", description="local time from which numbers and appointments can be taken")
    open_until: str = Field("16:00", pattern=r"^\d\d:\d\d$", description="local time after which they cannot")
    days_ahead: int = Field(6, ge=0, le=60, description="appointments today or up to this many days ahead")
    per_phone_day: int = Field(2, ge=1, le=50, description="bookings one phone may hold for one service day")
    per_phone_group_day: int = Field(1, ge=1, le=50, description="bookings one phone may hold for one group on one day")
    per_address_day: int = Field(10, ge=1, le=10_000, description="bookings made from one network address in one day")
    per_kiosk_day: int = Field(30, ge=1, le=10_000, description="appointments one kiosk may book in a day for citizens "
                               "standing at it (no phone: this cap replaces the per-phone limits)")
    no_show_limit: int = Field(2, ge=1, le=100, description="a phone with this many no-shows in no_show_days may not book")
    no_show_days: int = Field(30, ge=1, le=365)
    grace_minutes: int = Field(15, ge=1, le=240, description="how long a number whose turn came keeps its place before check-in")
    checkin_early_minutes: int = Field(30, ge=0, le=240, description="how early before its slot an appointment may check in")
    slot_minutes: int = Field(30, ge=5, le=240)
    slot_capacity: int = Field(2, ge=1, le=500, description="appointments per slot and group")
    group_slot_capacity: dict[str, int] = Field({}, description="per-group override of slot_capacity")
    keep_phone_days: int = Field(7, ge=0, le=365, description="the encrypted phone of a booking is deleted after this many days")

    @model_validator(mode="after")
    def _times(self) -> "BookingSettings":
        for name in ("open_from", "open_until"):
            hours, minutes = map(int, getattr(self, name).split(":"))
            if hours > 23 or minutes > 59:
                raise ValueError(f"{name}: {getattr(self, name)!r} is not a time; write e.g. '08:00'")
        if self.open_from >= self.open_until:
            raise ValueError("open_from must be before open_until")
        bad = [g for g, n in self.group_slot_capacity.items() if not 1 <= n <= 500]
        if bad:
            raise ValueError(f"group_slot_capacity: {bad[0]!r} must be 1 to 500")
        return self

    def capacity(self, group: str) -> int:
        return self.group_slot_capacity.get(group, self.slot_capacity)


class CentreConfig(_Strict):
    """The whole validated configuration of one centre."""

    centre: CentreInfo
    hours: dict[str, list[str]] = {}
    queue: QueueRules = QueueRules()
    priority_classes: list[PriorityClass] = []
    groups: list[Group] = Field(min_length=1)
    counters: list[Counter] = Field(min_length=1)
    devices: list[Device] = []
    mqtt: MqttSettings = MqttSettings()
    http: HttpSettings = HttpSettings()
    storage: StorageSettings = StorageSettings()
    staff: StaffSettings = StaffSettings()
    backup: BackupSettings = BackupSettings()
    voice: VoiceSettings = VoiceSettings()
    region: RegionLink | None = None
    metrics: MetricsSettings = MetricsSettings()
    greeter: GreeterSettings = GreeterSettings()
    export: ExportSettings = ExportSettings()
    booking: BookingSettings = BookingSettings()
    notify: NotifySettings = NotifySettings()
    otp: OtpSettings = OtpSettings()

    @field_validator("hours")
    @classmethod
    def _valid_hours(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        problems: list[str] = []  # all of them at once: an operator fixes the file in one go
        for day, sessions in value.items():
            if day not in WEEKDAYS:
                problems.append(f"unknown day {day!r}; expected one of {', '.join(WEEKDAYS)}")
                continue
            ranges = []
            for session in sessions:
                match = re.fullmatch(r"(\d\d):(\d\d)-(\d\d):(\d\d)", session)
                if not match:
                    problems.append(f"{day}: {session!r} is not 'HH:MM-HH:MM'; write two digits each, e.g. '07:30-12:00'")
                    continue
                h1, m1, h2, m2 = map(int, match.groups())
                if not (h1 < 24 and h2 < 24 and m1 < 60 and m2 < 60 and (h1, m1) < (h2, m2)):
                    problems.append(f"{day}: {session!r} is not a valid time range (start before end, hours below 24); "
                                    "write e.g. '13:00-16:30'")
                    continue
                ranges.append(((h1, m1), (h2, m2), session))
            problems += _overlaps(day, ranges)
        if problems:
            raise ValueError("\n".join(problems))
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> "CentreConfig":
        # Every problem is collected and reported together (one per line), not the first alone.
        problems = _unique([g.code for g in self.groups], "groups", "code")
        problems += _unique([g.letter for g in self.groups], "groups", "letter")
        problems += _unique([c.number for c in self.counters], "counters", "number")
        problems += _unique([d.id for d in self.devices], "devices", "id")
        problems += _unique([p.code for p in self.priority_classes], "priority_classes", "code")
        codes = {g.code for g in self.groups}
        for index, counter in enumerate(self.counters):
            for code in counter.groups:
                if code not in codes:
                    problems.append(
                        f"counters[{index}].groups: counter {counter.number} serves {code!r}, "
                        f"which is not a group code; use one of the known groups: {', '.join(sorted(codes))}"
                    )
        if self.centre.results_group is not None and self.centre.results_group not in codes:
            problems.append(f"centre.results_group: {self.centre.results_group!r} is not a group code; "
                            f"use one of the known groups: {', '.join(sorted(codes))}")
        served = {code for c in self.counters for code in c.groups}
        for index, group in enumerate(self.groups):
            if group.code not in served:
                problems.append(f"groups[{index}]: no counter serves group {group.code!r}; add it to a counter's groups")
        ranges = sorted((g.first_number, g.last_number, g.code) for g in self.groups)
        for (a_first, a_last, a_code), (b_first, _b_last, b_code) in zip(ranges, ranges[1:]):
            if b_first <= a_last:
                problems.append(
                    f"groups: numbers of {a_code!r} ({a_first}-{a_last}) overlap those of {b_code!r} "
                    f"(from {b_first}); change first_number or capacity so each number names one group"
                )
        numbers = {c.number for c in self.counters}
        for index, device in enumerate(self.devices):
            if device.counter is not None and device.counter not in numbers:
                problems.append(f"devices[{index}].counter: there is no counter {device.counter}")
            if device.role == "pad" and device.counter is None:
                problems.append(f"devices[{index}]: a satisfaction pad must name its counter")
        if self.region is not None:
            api = next((d for d in self.devices if d.id == self.region.api_device), None)
            if api is None or api.role != "manager":
                problems.append(
                    f"region: the region reads this centre's event log as device {self.region.api_device!r}; "
                    f"add [[devices]] id = \"{self.region.api_device}\", role = \"manager\"")
        for key, code in self.greeter.procedure_groups.items():
            if code not in codes:
                problems.append(f"greeter.procedure_groups: {key!r} goes to {code!r}, which is not a group code; "
                                f"use one of: {', '.join(sorted(codes))}")
        for code in self.booking.group_slot_capacity:
            if code not in codes:
                problems.append(f"booking.group_slot_capacity: {code!r} is not a group code")
        if self.greeter.guidance_group is not None and self.greeter.guidance_group not in codes:
            problems.append(f"greeter.guidance_group: {self.greeter.guidance_group!r} is not a group code")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    # -- lookups used everywhere ------------------------------------------------------------
    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.centre.timezone)

    def group(self, code: str) -> Group:
        for group in self.groups:
            if group.code == code:
                return group
        raise KeyError(code)

    def counter(self, number: int) -> Counter:
        for counter in self.counters:
            if counter.number == number:
                return counter
        raise KeyError(number)

    def device(self, device_id: str) -> Device:
        for device in self.devices:
            if device.id == device_id:
                return device
        raise KeyError(device_id)

    def group_of_number(self, number: int) -> Group | None:
        for group in self.groups:
            if group.first_number <= number <= group.last_number:
                return group
        return None

    def wait_alert_minutes(self, group_code: str) -> int:
        return self.group(group_code).wait_alert_minutes or self.queue.wait_alert_minutes

    def service_day(self, now: datetime) -> date:
        """The centre's local date at ``now``: computed on every use, never cached."""
        return now.astimezone(self.zone).date()

    def opening_hours(self, day: date) -> tuple[time, time] | None:
        """When ``day``'s first session starts and its last one ends (local time); None when closed."""
        sessions = [tuple(time.fromisoformat(part) for part in session.split("-"))
                    for session in self.hours.get(WEEKDAYS[day.weekday()], [])]
        if not sessions:
            return None
        return min(start for start, _ in sessions), max(end for _, end in sessions)

    def is_open(self, now: datetime) -> bool:
        local = now.astimezone(self.zone)
        for session in self.hours.get(WEEKDAYS[local.weekday()], []):
            start, end = (time.fromisoformat(part) for part in session.split("-"))
            if start <= local.time() < end:
                return True
        return False


def _unique(values: list[Any], section: str, key: str) -> list[str]:
    seen: set[Any] = set()
    problems = []
    for index, value in enumerate(values):
        if value in seen:
            problems.append(f"{section}[{index}].{key}: {value!r} is used twice; give each of the {section} its own {key}")
        seen.add(value)
    return problems


def _overlaps(day: str, ranges: list[tuple[tuple[int, int], tuple[int, int], str]]) -> list[str]:
    """Sessions of one day that overlap (the centre would be "open" twice at once, and the demo and
    reports would count those minutes twice)."""
    problems = []
    ordered = sorted(ranges)
    for (_, a_end, a_text), (b_start, _, b_text) in zip(ordered, ordered[1:]):
        if b_start < a_end:
            problems.append(f"{day}: sessions {a_text!r} and {b_text!r} overlap; "
                            f"end the first before the second starts, or merge them into one session")
    return problems


def _location(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


_KEY_PREFIX = re.compile(r"^([A-Za-z0-9_\-\[\]\.]+): (.+)$", re.S)


def error_items(error: ValidationError) -> list[dict[str, Any]]:
    """Every problem of a failed validation as ``{"key", "message", "type", "got"}``.

    Validators that check several things report them all, one per line; each line becomes its own
    item, and a line that starts with its own key (``counters[0].groups: ...``) is filed under it.
    """
    items = []
    for item in error.errors():
        where = _location(tuple(item["loc"]))
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key (a typo?); remove it or check the spelling in assets/centre.sample.toml"
        elif item["type"] == "missing":
            message = "required key is missing"
        got = item.get("input")
        shown = item["type"] not in ("missing", "extra_forbidden") and not isinstance(got, (dict, list))
        for line in message.split("\n"):
            key, text = where, line
            match = _KEY_PREFIX.match(line)
            if match:
                key = match.group(1) if where == "(top level)" else f"{where}.{match.group(1)}"
                text = match.group(2)
            items.append({"key": key, "message": text, "type": item["type"], "got": got if shown else None,
                          "ctx": item.get("ctx", {})})
    return items


def explain(error: ValidationError, source: str) -> str:
    """Turn pydantic's report into lines an operator can act on."""
    items = error_items(error)
    lines = [f"{source}: the centre configuration has {len(items)} problem(s):"]
    for item in items:
        shown = "" if item["got"] is None else f" (got {item['got']!r})"
        lines.append(f"  - {item['key']}: {item['message']}{shown}")
    return "\n".join(lines)


def parse_config(data: dict[str, Any], source: str = "config") -> CentreConfig:
    try:
        return CentreConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(explain(error, source)) from None


def read_centre_file(path: str | Path | None = None) -> tuple[Path, dict[str, Any]]:
    """The centre file as parsed TOML, not yet validated (``None``: the shipped sample centre)."""
    file = Path(path) if path else DEFAULT_CONFIG
    try:
        raw = file.read_bytes()
    except OSError as error:
        raise ConfigError(f"{file}: cannot read the centre configuration ({error.strerror})") from None
    try:
        return file, tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{file}: the file is not UTF-8 text; save it as UTF-8") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{file}: not valid TOML: {error}") from None


def load_config(path: str | Path | None = None) -> CentreConfig:
    """Read and validate a centre file; ``None`` means the shipped sample centre."""
    file, data = read_centre_file(path)
    return parse_config(data, str(file))
