"""Secrets of the centre's identities, on the server and on each device.

Server side: one random secret per MQTT user declared in the centre file (the server and each
``[[devices]]`` entry) is generated once and kept in ``secrets.json``, readable only by its owner.
For those declared devices the same secret is also the HTTP bearer credential
(``Authorization: Bearer <device-id>:<secret>``); devices that join by enrolment (server/devices.py)
get two different secrets instead, so a device's MQTT password is never also its HTTP key.

Device side: ``luot kiosk|display|pad --enrol URL CODE`` receives its identity from the centre and
keeps it in :data:`DEVICE_FILE` (mode 0600) in its data directory (:class:`DeviceCredentials`), so
nobody copies secrets files by hand. Secrets are never logged.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from luot.config import CentreConfig

SERVER_USER = "server"
DEVICE_FILE = "device-credentials.json"
"""The file an enrolled device keeps its identity in, inside its data directory."""


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable and writable by its owner only (0600).

    The temporary file is created 0600 before anything is written, so the secret is never
    readable by others, not even for a moment; ``os.replace`` makes the new file appear whole.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, 0o600)  # O_CREAT's mode is ignored when the file already existed
    os.replace(tmp, path)


@dataclass(frozen=True)
class Credentials:
    path: Path
    secrets: dict[str, str]

    def password(self, user: str) -> str:
        return self.secrets[user]

    def check(self, user: str, secret: str) -> bool:
        expected = self.secrets.get(user)
        return expected is not None and hmac.compare_digest(expected.encode(), secret.encode())

    def users(self) -> list[str]:
        return sorted(self.secrets)


def load_or_create(config: CentreConfig, path: str | Path) -> Credentials:
    """Load the secrets file, adding a secret for any configured device that lacks one."""
    file = Path(path)
    stored: dict[str, str] = {}
    if file.exists():
        try:
            stored = json.loads(file.read_text("utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"{file}: cannot read device secrets ({error}); delete it to generate new ones") from None
    wanted = [SERVER_USER, *(d.id for d in config.devices)]
    changed = False
    for user in wanted:
        if user not in stored:
            stored[user] = secrets.token_urlsafe(18)
            changed = True
    if changed or not file.exists():
        write_private(file, json.dumps(stored, indent=2, sort_keys=True))
    return Credentials(file, stored)


# ------------------------------------------------------------------------------------ device side
class DeviceCredentialsError(ValueError):
    """The device's credentials file is missing or unusable; the message says which and why."""


@dataclass(frozen=True)
class DeviceCredentials:
    """What an enrolled device received from its centre (the body of ``POST /api/v1/enrol``)."""

    centre: str
    device_id: str
    role: str
    counter: int | None
    server_url: str
    mqtt_host: str
    mqtt_port: int
    mqtt_username: str
    mqtt_password: str
    http_token: str
    """The secret part of the HTTP bearer: send ``Authorization: Bearer <device_id>:<http_token>``."""

    @classmethod
    def from_enrolment(cls, body: dict[str, Any], server_url: str) -> "DeviceCredentials":
        """Build from the enrolment answer; ``server_url`` is where the device enrolled."""
        try:
            mqtt, http = body["mqtt"], body["http"]
            return cls(centre=str(body["centre"]), device_id=str(body["device_id"]), role=str(body["role"]),
                       counter=body.get("counter"), server_url=server_url.rstrip("/"),
                       mqtt_host=str(mqtt["host"]), mqtt_port=int(mqtt["port"]),
                       mqtt_username=str(mqtt["username"]), mqtt_password=str(mqtt["password"]),
                       http_token=str(http["token"]))
        except (KeyError, TypeError, ValueError) as error:
            raise DeviceCredentialsError(f"the centre's enrolment answer lacks {error}") from None

    def save(self, data_dir: str | Path) -> Path:
        path = Path(data_dir) / DEVICE_FILE
        write_private(path, json.dumps({"version": 1, **asdict(self)}, indent=2, ensure_ascii=False))
        return path

    @classmethod
    def load(cls, data_dir: str | Path) -> "DeviceCredentials":
        path = Path(data_dir) / DEVICE_FILE
        try:
            data = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            raise DeviceCredentialsError(f"{path}: not found; enrol the device first (--enrol URL CODE)") from None
        except (OSError, json.JSONDecodeError) as error:
            raise DeviceCredentialsError(f"{path}: unreadable ({error}); enrol the device again") from None
        if not isinstance(data, dict) or data.pop("version", None) != 1:
            raise DeviceCredentialsError(f"{path}: not a version 1 device credentials file; enrol the device again")
        try:
            return cls(**data)
        except TypeError as error:
            raise DeviceCredentialsError(f"{path}: {error}; enrol the device again") from None

    @staticmethod
    def exists(data_dir: str | Path) -> bool:
        return (Path(data_dir) / DEVICE_FILE).is_file()


def enrol(server_url: str, code: str, data_dir: str | Path, timeout: float = 15.0) -> DeviceCredentials:
    """Claim a one-time enrolment code at the centre and keep what it answers in ``data_dir``.

    Raises :class:`DeviceCredentialsError` with the centre's own Vietnamese and English message
    when it refuses the code (wrong, used, expired, too many attempts).
    """
    import httpx

    url = server_url.rstrip("/")
    try:
        response = httpx.post(f"{url}/api/v1/enrol", json={"code": code}, timeout=timeout)
    except httpx.HTTPError as error:
        raise DeviceCredentialsError(f"cannot reach the centre at {url}: {error}") from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200:
        message = body.get("message") if isinstance(body, dict) else None
        message_en = body.get("message_en") if isinstance(body, dict) else None
        raise DeviceCredentialsError(f"{message or 'Đăng ký thiết bị bị từ chối'} / "
                                     f"{message_en or f'enrolment refused (HTTP {response.status_code})'}")
    credentials = DeviceCredentials.from_enrolment(body, url)
    credentials.save(data_dir)
    return credentials


def enrolled_identity(data_dir: str | Path, enrol_args: list[str] | None, role: str) -> DeviceCredentials | None:
    """The identity a device program runs with: from ``--enrol URL CODE`` (claimed now and saved),
    else from an earlier enrolment's file in ``data_dir``, else None (a device declared in the centre
    file, whose secret comes from ``secrets.json`` or ``--secret``). A file for another role is refused.
    """
    if enrol_args:
        url, code = enrol_args
        identity = enrol(url, code, data_dir)
    elif DeviceCredentials.exists(data_dir):
        identity = DeviceCredentials.load(data_dir)
    else:
        return None
    if identity.role != role:
        raise DeviceCredentialsError(f"{Path(data_dir) / DEVICE_FILE}: this device was enrolled as a {identity.role}, "
                                     f"not a {role}; use another --data directory or enrol it again")
    return identity


def add_enrol_argument(parser: Any) -> None:
    """``--enrol URL CODE``, the same for ``luot kiosk``, ``luot display`` and ``luot pad``."""
    parser.add_argument("--enrol", nargs=2, metavar=("URL", "CODE"),
                        help="join the centre with a one-time code from the dashboard or `luot device add` "
                             f"(URL = the server's address); the identity is kept in <data>/{DEVICE_FILE} (0600) "
                             "and used on every later start")
