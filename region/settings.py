"""The regional box's configuration: ``centres.toml`` lists the region and every centre in it.

Validated strictly like a centre file (unknown keys are errors). Paths inside the file are relative
to the file itself. Each centre's credentials file is what ``luot bridge-config`` wrote at that
centre (``region-credentials.json``): its bridge's MQTT secret and the API secret of its
``region`` manager device. Secrets of the regional box itself (the aggregator's MQTT user, the
dashboard's password) live in ``secrets`` and are created on first use.
"""

from __future__ import annotations

import json
import os
import secrets as random_secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from luot.config import SLUG, ConfigError, explain

AGGREGATOR_USER = "aggregator"
DASHBOARD_USER = "tinh"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegionInfo(Strict):
    id: Annotated[str, Field(pattern=SLUG)]
    name: str = Field(min_length=1)
    timezone: str = "Asia/Ho_Chi_Minh"
    secrets: str = "region-secrets.json"
    catch_up_seconds: float = Field(60, gt=0, le=3600, description="how often each centre's event log is read over HTTP")
    offline_after_minutes: float = Field(15, gt=0, le=1440, description="no word from an open centre this long: warn")
    growth_window_minutes: int = Field(30, ge=5, le=240)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        ZoneInfo(value)
        return value


class CentreEntry(Strict):
    id: Annotated[str, Field(pattern=SLUG)]
    name: str = Field(min_length=1)
    api: str = Field(pattern=r"^https?://[^\s/]+", description="the centre server's address, e.g. http://10.8.0.12:8080")
    credentials: str = Field(min_length=1, description="the region-credentials.json written by `luot bridge-config` at the centre")
    ward: str = Field("", description="the ward, commune or special zone the centre serves (2025 map: province -> ward/commune)")

    @model_validator(mode="before")
    @classmethod
    def _no_districts(cls, data: Any) -> Any:
        if isinstance(data, dict) and "district" in data:
            raise ValueError("district: since 1 July 2025 there are no districts (province -> ward/commune); "
                             "write ward = \"<phường/xã/đặc khu>\" instead, or drop the key")
        return data


class RegionSettings(Strict):
    region: RegionInfo
    centres: list[CentreEntry] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> "RegionSettings":
        listed_once(self.centres, "id", "centres")
        return self


def listed_once(items: list[Any], key: str, where: str) -> None:
    """Refuse a list in which two items share ``key`` (a centre, a province listed twice)."""
    seen: set[Any] = set()
    for index, item in enumerate(items):
        value = getattr(item, key)
        if value in seen:
            raise ValueError(f"{where}[{index}].{key}: {value!r} is listed twice")
        seen.add(value)


Settings = TypeVar("Settings", bound=BaseModel)


def read_settings(path: str | Path, model: type[Settings], what: str) -> tuple[Path, Settings]:
    """A strict TOML settings file (``what``: "region", "national") read and validated, or a
    ConfigError saying what is wrong, key by key. Returns the resolved path and the settings."""
    file = Path(path).resolve()
    try:
        data = tomllib.loads(file.read_text("utf-8"))
    except OSError as error:
        raise ConfigError(f"{file}: cannot read the {what} file ({error.strerror})") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{file}: not valid TOML: {error}") from None
    try:
        return file, model.model_validate(data)
    except ValidationError as error:
        raise ConfigError(explain(error, str(file)).replace("centre configuration", f"{what} configuration")) from None


@dataclass(frozen=True)
class CentreAccess:
    """What the region needs to reach one centre."""

    id: str
    name: str
    ward: str
    api: str
    mqtt_username: str
    mqtt_password: str
    api_device: str
    api_secret: str

    @property
    def api_auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_device}:{self.api_secret}"}


@dataclass(frozen=True)
class Region:
    settings: RegionSettings
    base: Path
    centres: dict[str, CentreAccess]
    secrets: dict[str, str]

    @property
    def info(self) -> RegionInfo:
        return self.settings.region

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.info.timezone)


def read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text("utf-8"))
    except OSError as error:
        raise ConfigError(f"{path}: cannot read {what} ({error.strerror})") from None
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path}: {what} is not JSON ({error.msg})") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {what} must be a JSON object")
    return value


def load_secrets(path: Path, wanted: tuple[str, ...] = (AGGREGATOR_USER, DASHBOARD_USER)) -> dict[str, str]:
    """The regional box's own secrets (mode 0600), adding any that are missing."""
    stored = read_json(path, "region secrets") if path.exists() else {}
    missing = [user for user in wanted if user not in stored]
    for user in missing:
        stored[user] = random_secrets.token_urlsafe(18)
    if missing:
        write_private_json(path, stored)
    return stored


def write_private_json(path: Path, value: dict[str, Any]) -> Path:
    """A JSON file holding secrets: mode 0600 from its creation, written whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(value, handle, indent=2, sort_keys=True)
    os.replace(tmp, path)
    return path


def load_region(path: str | Path) -> Region:
    """Read and validate centres.toml and every centre's credentials file it names."""
    file, settings = read_settings(path, RegionSettings, "region")
    base = file.parent
    centres: dict[str, CentreAccess] = {}
    for entry in settings.centres:
        cred_path = base / entry.credentials
        cred = read_json(cred_path, f"credentials of centre {entry.id}")
        if cred.get("centre") != entry.id:
            raise ConfigError(f"{cred_path}: these credentials are for centre {cred.get('centre')!r}, not {entry.id!r}")
        try:
            centres[entry.id] = CentreAccess(entry.id, entry.name, entry.ward, entry.api.rstrip("/"),
                                             str(cred["mqtt_username"]), str(cred["mqtt_password"]),
                                             str(cred["api_device"]), str(cred["api_secret"]))
        except KeyError as error:
            raise ConfigError(f"{cred_path}: missing {error.args[0]!r}; regenerate it with `luot bridge-config`") from None
    return Region(settings, base, centres, load_secrets(base / settings.region.secrets))
