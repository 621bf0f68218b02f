"""Per-device secrets: every kiosk, display, pad and the server has its own identity.

One random secret per MQTT user (the server, each configured device) is generated once and kept in
a JSON file readable only by its owner. The same secret is the device's HTTP bearer credential
(``Authorization: Bearer <device-id>:<secret>``), so a device has one identity everywhere and a
kiosk can never speak as another kiosk. Secrets are never logged.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from luot.config import CentreConfig

SERVER_USER = "server"


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
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(stored, handle, indent=2, sort_keys=True)
        os.replace(tmp, file)
    return Credentials(file, stored)
