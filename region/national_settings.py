"""The national box's configuration: ``national.toml`` lists the provinces it subscribes to.

Like centres.toml for a province (region/settings.py): strict (unknown keys are errors), paths
relative to the file. Each province's ``credentials`` file is what ``luot national publish`` wrote
at that province (``national-credentials.json``: the province code, the replication user and its
password), carried to the national box the way a centre's region-credentials.json is carried to
its province. The national box's own secret (the dashboard password, user ``quocgia``) lives in
``secrets`` and is created on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

from psycopg.conninfo import make_conninfo
from pydantic import Field, model_validator

from luot.config import SLUG, ConfigError
from region.national import ProvinceSource
from region.settings import read_json, Strict, listed_once, load_secrets, read_settings, write_private_json

NATIONAL_USER = "quocgia"
"""The national dashboard's HTTP Basic user."""
PUBLISH_SECRET = "national"
"""Key of the replication user's password in a province's region secrets file."""


class NationalInfo(Strict):
    name: str = Field("Toàn quốc", min_length=1)
    timezone: str = "Asia/Ho_Chi_Minh"
    secrets: str = "national-secrets.json"
    offline_after_minutes: float = Field(15, gt=0, le=1440)
    growth_window_minutes: int = Field(30, ge=5, le=240)
    stale_after_minutes: float = Field(5, gt=0, le=1440, description="a province not heard from this long: warn")


class ProvinceEntry(Strict):
    code: Annotated[str, Field(pattern=SLUG)]
    name: str = Field(min_length=1)
    host: str = Field(min_length=1, description="the provincial PostgreSQL's address, as the national box reaches it")
    port: int = Field(5432, gt=0, lt=65536)
    dbname: str = Field("luot_region", min_length=1)
    credentials: str = Field(min_length=1, description="the national-credentials.json written by `luot national publish`")
    sslmode: str = Field("prefer", pattern=r"^(disable|allow|prefer|require|verify-ca|verify-full)$")


class NationalSettings(Strict):
    national: NationalInfo = NationalInfo()
    provinces: list[ProvinceEntry] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> "NationalSettings":
        listed_once(self.provinces, "code", "provinces")
        return self


@dataclass(frozen=True)
class National:
    settings: NationalSettings
    base: Path
    provinces: list[ProvinceSource]
    secrets: dict[str, str]

    @property
    def info(self) -> NationalInfo:
        return self.settings.national

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.info.timezone)


def load_national(path: str | Path) -> National:
    """Read and validate national.toml and every province's credentials file it names."""
    file, settings = read_settings(path, NationalSettings, "national")
    sources = []
    for entry in settings.provinces:
        cred_path = file.parent / entry.credentials
        cred = read_json(cred_path, f"credentials of province {entry.code}")
        if cred.get("province") != entry.code:
            raise ConfigError(f"{cred_path}: these credentials are for province {cred.get('province')!r}, not {entry.code!r}")
        try:
            conninfo = make_conninfo(host=entry.host, port=str(entry.port), dbname=entry.dbname, user=str(cred["user"]),
                                     password=str(cred["password"]), sslmode=entry.sslmode, connect_timeout="10")
        except KeyError as error:
            raise ConfigError(f"{cred_path}: missing {error.args[0]!r}; run `luot national publish` at the province again") from None
        sources.append(ProvinceSource(entry.code, entry.name, conninfo))
    secrets = load_secrets(file.parent / settings.national.secrets, (NATIONAL_USER,))
    return National(settings, file.parent, sources, secrets)


def write_credentials(path: Path, province: str, user: str, password: str) -> Path:
    """The file a province hands to the national box (mode 0600, written atomically)."""
    return write_private_json(path, {"province": province, "user": user, "password": password})
