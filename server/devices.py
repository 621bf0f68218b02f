"""The device registry: who is device X, what are its role and counter, may it still come in.

Devices come from two places: the centre file's ``[[devices]]`` (their one secret in
``secrets.json``, as before) and enrolment, where a manager adds a device, gets a one-time code and
the device claims it (``POST /api/v1/enrol``). Enrolled devices receive two unrelated secrets, an MQTT
password and an HTTP token, so the password that sits in a TV's MQTT client is never a key to the
HTTP API. Any device, declared or enrolled, can be revoked (a stolen pad). MQTT (password file and
ACL, server/broker_setup.py) and HTTP (the bearer check, per request) both ask this one registry.

Where enrolled devices live: ``<data>/devices.json`` (mode 0600), not a SQLite table. The registry
is changed by two processes, the server (an enrolment, the dashboard's buttons) and ``luot device``
on the same machine, which must work whether or not the server runs; a small file under an
exclusive ``flock`` serves both, and the server notices another process's change by the file's
``stat`` (one system call per check) instead of polling a database. The file holds the MQTT
passwords in clear, like ``secrets.json`` (the broker's password file is rendered from them), the
HTTP tokens and enrolment codes only as SHA-256 hashes (codes salted).

Codes: 8 symbols of Crockford's base-32 alphabet (no I, L, O, U: nothing to confuse) = 40 bits,
single use, valid :data:`CODE_TTL`; wrong guesses are limited per caller and in total
(:class:`AttemptLimiter`), so guessing a live code is hopeless within its ten minutes.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import re
import secrets
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterator, Literal

from luot.config import DEVICE_ID, CentreConfig, Device
from luot.credentials import SERVER_USER, Credentials, write_private

REGISTRY_FILE = "devices.json"
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base 32: 5 bits a symbol
CODE_LENGTH = 8  # 40 bits
CODE_TTL = timedelta(minutes=10)
ROLES = ("kiosk", "display", "pad", "manager")

State = Literal["pending", "active", "revoked"]


class RegistryError(Exception):
    """A refused registry operation: ``message`` in Vietnamese, ``message_en`` in English."""

    def __init__(self, status: int, code: str, message: str, message_en: str) -> None:
        super().__init__(message_en)
        self.status, self.code, self.message, self.message_en = status, code, message, message_en


@dataclass(frozen=True)
class RegisteredDevice:
    """One device as the registry knows it."""

    id: str
    role: str
    counter: int | None
    source: Literal["config", "enrolled"]
    state: State
    created_at: str | None = None
    enrolled_at: str | None = None
    revoked_at: str | None = None
    code_expires_at: str | None = None

    @property
    def device(self) -> Device:
        return Device(id=self.id, role=self.role, counter=self.counter)  # type: ignore[arg-type]

    def public(self) -> dict[str, Any]:
        """What the dashboard and ``luot device list`` show (never a secret or a code hash)."""
        return {"id": self.id, "role": self.role, "counter": self.counter, "source": self.source,
                "state": self.state, "created_at": self.created_at, "enrolled_at": self.enrolled_at,
                "revoked_at": self.revoked_at, "code_expires_at": self.code_expires_at}


@dataclass(frozen=True)
class Enrolment:
    """What a device receives once, when it claims its code."""

    device: RegisteredDevice
    mqtt_password: str
    http_token: str


def format_code(code: str) -> str:
    """``ABCD2345`` -> ``ABCD-2345``: two halves are easier to read out and type."""
    return f"{code[:4]}-{code[4:]}"


def enrolment_text(server_url: str, code: str) -> str:
    """What the QR code holds: the server's address and the code, exactly the two words that follow
    ``luot kiosk --enrol`` (no personal data: a device address and a one-time code)."""
    return f"{server_url.rstrip('/')} {format_code(code)}"


def qr_svg(text: str) -> str:
    """The QR code of ``text`` as an SVG document (the dashboard shows it; no JavaScript library)."""
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    return image.to_string(encoding="unicode")


def write_qr_png(text: str, path: Path) -> None:
    import qrcode

    qrcode.make(text, box_size=8, border=2).save(str(path))


def normalise_code(text: str) -> str:
    """What a person typed -> the code: any case, dashes and spaces ignored, O read as 0, I and L as 1."""
    cleaned = re.sub(r"[\s-]", "", text).upper().translate(str.maketrans("OIL", "011"))
    return cleaned


def _sha256(text: str, salt: str = "") -> str:
    return hashlib.sha256((salt + text).encode("utf-8")).hexdigest()


@dataclass
class AttemptLimiter:
    """At most ``per_caller`` wrong codes per caller and ``total`` overall in ``window``.

    Pure: the caller passes the time. The total limit matters because a caller's address is cheap
    to change; at 30 guesses a minute, finding one live 40-bit code takes about 10^8 years.
    """

    per_caller: int = 5
    total: int = 30
    window: timedelta = timedelta(minutes=1)
    _failures: deque[tuple[datetime, str]] = field(default_factory=deque)

    def _prune(self, now: datetime) -> None:
        while self._failures and now - self._failures[0][0] >= self.window:
            self._failures.popleft()

    def allowed(self, caller: str, now: datetime) -> bool:
        self._prune(now)
        if len(self._failures) >= self.total:
            return False
        return sum(1 for _, who in self._failures if who == caller) < self.per_caller

    def failed(self, caller: str, now: datetime) -> None:
        self._failures.append((now, caller))


TOO_MANY = RegistryError(429, "too_many_attempts", "Nhập sai mã quá nhiều lần; xin đợi một phút rồi thử lại.",
                         "Too many wrong codes; wait a minute and try again.")
BAD_CODE = RegistryError(400, "enrolment_code_invalid", "Mã đăng ký thiết bị không đúng.",
                         "This enrolment code is not valid.")
USED_CODE = RegistryError(410, "enrolment_code_used", "Mã đăng ký này đã được dùng; xin quản lý tạo mã mới.",
                          "This enrolment code has already been used; ask a manager for a new one.")
EXPIRED_CODE = RegistryError(410, "enrolment_code_expired", "Mã đăng ký đã hết hạn (10 phút); xin quản lý tạo mã mới.",
                             "This enrolment code has expired (10 minutes); ask a manager for a new one.")


class DeviceRegistry:
    """The one answer to "who is device X" for MQTT and HTTP; see the module docstring."""

    def __init__(self, config: CentreConfig, credentials: Credentials, data_dir: str | Path) -> None:
        self.config = config
        self.credentials = credentials
        self.path = Path(data_dir) / REGISTRY_FILE
        self._lock_path = Path(data_dir) / (REGISTRY_FILE + ".lock")
        self.limiter = AttemptLimiter()
        self._stat: tuple[int, int, int] | None = None
        self._data: dict[str, Any] = {"version": 1, "devices": {}}
        self.refresh()

    # ------------------------------------------------------------------ file
    def _file_stat(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return {"version": 1, "devices": {}}
        except (OSError, json.JSONDecodeError) as error:
            # Fail closed: a registry that cannot be read lets nobody enrolled in, and says why.
            raise RegistryError(503, "registry_unreadable", f"Không đọc được danh sách thiết bị {self.path}.",
                                f"cannot read the device registry {self.path}: {error}") from None
        if not isinstance(data, dict) or data.get("version") != 1 or not isinstance(data.get("devices"), dict):
            raise RegistryError(503, "registry_unreadable", f"Danh sách thiết bị {self.path} không hợp lệ.",
                                f"{self.path} is not a version 1 device registry")
        return data

    def refresh(self) -> bool:
        """Re-read the file if another process changed it; True when it did."""
        stat = self._file_stat()
        if stat == self._stat:
            return False
        self._data = self._read()
        self._stat = stat
        return True

    @contextmanager
    def _editing(self) -> Iterator[dict[str, Any]]:
        """Read, change and write the file under an exclusive lock (the server and the CLI share it)."""
        self._lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = self._read()
            yield data
            write_private(self.path, json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))
            self._data, self._stat = data, self._file_stat()

    # ------------------------------------------------------------------ questions
    def _entries(self) -> dict[str, dict[str, Any]]:
        self.refresh()
        return self._data["devices"]

    def devices(self) -> list[RegisteredDevice]:
        """Every device: declared ones (revoked or not) and enrolled ones (pending, active, revoked)."""
        entries = self._entries()
        found = [self._configured(device, entries.get(device.id)) for device in self.config.devices]
        found += [self._enrolled(device_id, entry) for device_id, entry in sorted(entries.items())
                  if entry.get("source") == "enrolled"]
        return found

    def get(self, device_id: str) -> RegisteredDevice | None:
        entries = self._entries()
        try:
            return self._configured(self.config.device(device_id), entries.get(device_id))
        except KeyError:
            entry = entries.get(device_id)
            return self._enrolled(device_id, entry) if entry and entry.get("source") == "enrolled" else None

    def active(self, device_id: str) -> Device | None:
        """The device if it may come in now (declared and not revoked, or enrolled and claimed)."""
        found = self.get(device_id)
        return found.device if found is not None and found.state == "active" else None

    def active_devices(self) -> list[Device]:
        return [d.device for d in self.devices() if d.state == "active"]

    def mqtt_config(self) -> CentreConfig:
        """The centre file with exactly the devices that may use MQTT now (for the broker's ACL)."""
        return self.config.model_copy(update={"devices": self.active_devices()})

    def mqtt_credentials(self) -> Credentials:
        """The server's and every active device's MQTT password (for the broker's password file)."""
        entries = self._entries()
        # Every secret of secrets.json stays (the region bridge's too; a revoked declared device's
        # is harmless: the password file lists only the users of mqtt_config()'s ACL).
        passwords = dict(self.credentials.secrets)
        for device in self.active_devices():
            entry = entries.get(device.id)
            if entry and entry.get("source") == "enrolled":
                passwords[device.id] = entry["mqtt_password"]
        return Credentials(self.credentials.path, passwords)

    def http_device(self, device_id: str, token: str) -> Device | None:
        """The device whose HTTP bearer is ``<device_id>:<token>``, if the token is right and it is active."""
        found = self.get(device_id)
        if found is None or found.state != "active":
            return None
        if found.source == "config":
            return found.device if self.credentials.check(device_id, token) else None
        expected = self._entries()[device_id].get("http_token_sha256", "")
        return found.device if hmac.compare_digest(expected, _sha256(token)) else None

    # ------------------------------------------------------------------ changes
    def add(self, device_id: str, role: str, counter: int | None, now: datetime) -> tuple[RegisteredDevice, str]:
        """Add a device waiting for enrolment (or a new code for one still waiting, or a revoked one to
        replace); return it and its one-time code, shown once."""
        self._check_new(device_id, role, counter)
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        salt = secrets.token_hex(16)
        with self._editing() as data:
            existing = data["devices"].get(device_id)
            # A pending device may be added again: it gets a new code and the old one stops working.
            if existing is not None and existing.get("state") == "active":
                raise RegistryError(409, "device_exists", f"Đã có thiết bị {device_id}; thu hồi nó trước nếu muốn thay.",
                                    f"device {device_id} already exists; revoke it first to replace it")
            data["devices"][device_id] = {
                "source": "enrolled", "state": "pending", "role": role, "counter": counter,
                "created_at": now.isoformat(), "code_salt": salt, "code_sha256": _sha256(code, salt),
                "code_expires_at": (now + CODE_TTL).isoformat(),
            }
        found = self.get(device_id)
        assert found is not None
        return found, code

    def enrol(self, typed_code: str, caller: str, now: datetime) -> Enrolment:
        """Claim a code: the pending device becomes active and receives its two secrets, once."""
        if not self.limiter.allowed(caller, now):
            raise TOO_MANY
        code = normalise_code(typed_code)
        if len(code) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in code):
            self.limiter.failed(caller, now)
            raise BAD_CODE
        mqtt_password, http_token = secrets.token_urlsafe(24), secrets.token_urlsafe(32)
        with self._editing() as data:
            match = next(((device_id, entry) for device_id, entry in data["devices"].items()
                          if "code_sha256" in entry
                          and hmac.compare_digest(entry["code_sha256"], _sha256(code, entry["code_salt"]))), None)
            if match is None:
                self.limiter.failed(caller, now)
                raise BAD_CODE
            device_id, entry = match
            if entry["state"] != "pending":
                raise USED_CODE
            if now >= datetime.fromisoformat(entry["code_expires_at"]):
                raise EXPIRED_CODE
            entry.update(state="active", enrolled_at=now.isoformat(), mqtt_password=mqtt_password,
                         http_token_sha256=_sha256(http_token))
        found = self.get(device_id)
        assert found is not None
        return Enrolment(found, mqtt_password, http_token)

    def revoke(self, device_id: str, now: datetime) -> RegisteredDevice:
        """Throw a device out: no MQTT login, no HTTP request from now on (the broker is told by the
        server's watcher, server/device_access.py). Revoking twice is harmless."""
        if device_id == SERVER_USER:
            raise RegistryError(400, "reserved", "Không thể thu hồi máy chủ.", "The server cannot be revoked.")
        if self.get(device_id) is None:
            raise RegistryError(404, "device_not_found", f"Không có thiết bị {device_id}.", f"No device {device_id}.")
        with self._editing() as data:
            entry = data["devices"].setdefault(device_id, {"source": "config"})
            if entry.get("state") != "revoked":
                entry.update(state="revoked", revoked_at=now.isoformat())
                for secret in ("mqtt_password", "http_token_sha256"):
                    entry.pop(secret, None)
        found = self.get(device_id)
        assert found is not None
        return found

    def revoked_ids(self) -> set[str]:
        return {d.id for d in self.devices() if d.state == "revoked"}

    # ------------------------------------------------------------------ helpers
    def _check_new(self, device_id: str, role: str, counter: int | None) -> None:
        if not re.match(DEVICE_ID, device_id) or device_id == SERVER_USER:
            raise RegistryError(400, "bad_device_id",
                                "Mã thiết bị chỉ gồm chữ thường, số và dấu gạch ngang (tối đa 40 ký tự), không được là 'server'.",
                                "A device id is lower-case letters, digits and dashes (at most 40), and not 'server'.")
        if role not in ROLES:
            raise RegistryError(400, "bad_role", f"Vai trò phải là một trong {', '.join(ROLES)}.",
                                f"role must be one of {', '.join(ROLES)}")
        if any(d.id == device_id for d in self.config.devices):
            raise RegistryError(409, "device_in_centre_file",
                                f"Thiết bị {device_id} đã khai báo trong tệp cấu hình trung tâm; chọn mã khác.",
                                f"device {device_id} is declared in the centre file; choose another id")
        counters = {c.number for c in self.config.counters}
        if counter is not None and counter not in counters:
            raise RegistryError(400, "bad_counter", f"Không có quầy số {counter}.", f"There is no counter {counter}.")
        if role == "pad" and counter is None:
            raise RegistryError(400, "counter_required", "Bảng đánh giá phải gắn với một quầy.",
                                "A satisfaction pad must name its counter.")

    @staticmethod
    def _configured(device: Device, entry: dict[str, Any] | None) -> RegisteredDevice:
        revoked = entry is not None and entry.get("state") == "revoked"
        return RegisteredDevice(device.id, device.role, device.counter, "config", "revoked" if revoked else "active",
                                revoked_at=entry.get("revoked_at") if entry else None)

    @staticmethod
    def _enrolled(device_id: str, entry: dict[str, Any]) -> RegisteredDevice:
        return RegisteredDevice(device_id, entry["role"], entry.get("counter"), "enrolled", entry["state"],
                                entry.get("created_at"), entry.get("enrolled_at"), entry.get("revoked_at"),
                                entry.get("code_expires_at") if entry["state"] == "pending" else None)
