"""Zalo: the ZNS ("Zalo Notification Service") send-template call of a Zalo Official Account.

NOT RUN AGAINST ZALO. This adapter follows the format Zalo's partners and SDKs document for
``POST https://business.openapi.zalo.me/message/template`` and was tested only against a local
server that checks that format (tests/test_notify_zalo.py). Before using it, a centre needs an
approved OA with ZNS rights, one approved template per message kind, and an access token.

The request (docs/notifications.md has the whole contract)::

    POST <[notify] zalo_url>
    access_token: <OA access token, from [notify] zalo_token_file>
    Content-Type: application/json

    {"phone": "84912345678", "template_id": "<id for this kind>",
     "template_data": {"content": "<the message text>"}, "tracking_id": "<outbox message id>"}

and the answer ``{"error": 0, "message": "Success", "data": {"msg_id": "…", …}}``; any other
``error`` is a refusal. Why ZNS and not the OA "consultation" message: those need the citizen's
Zalo user id (they must follow the OA first); ZNS reaches a phone number, which is what a booking has.
``tracking_id`` is the outbox's stable id, the same on every retry, so Zalo's reports can show a
repeated hand-over; Zalo itself is not known to drop repeats (at least once).
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

from luot.config import NotifySettings
from server.notify.channel import SendFailed

RECIPIENT_ERRORS = {-108, -118, -119, -137}
"""ZNS errors about the phone (invalid, no Zalo account, cannot receive): retrying will not help."""


class ZaloOAChannel:
    name = "zalo"

    def __init__(self, url: str, token_file: str | Path, templates: dict[str, str], timeout: float = 10.0) -> None:
        self.url = url
        self.token_file = Path(token_file)
        self.templates = dict(templates)
        self.timeout = timeout

    @classmethod
    def from_settings(cls, settings: NotifySettings, data_dir: Path) -> "ZaloOAChannel":
        path = Path(settings.zalo_token_file)
        return cls(settings.zalo_url, path if path.is_absolute() else data_dir / path, settings.zalo_templates)

    def request_body(self, message_id: str, phone: str, text: str, kind: str) -> dict[str, object]:
        template = self.templates.get(kind)
        if not template:
            raise SendFailed(f"no ZNS template for messages of kind {kind!r} ([notify] zalo_templates)", retry=False)
        return {"phone": phone.lstrip("+"), "template_id": template, "template_data": {"content": text},
                "tracking_id": message_id}

    def _token(self) -> str:
        """Read at each send, so an operator (or a refresh job) can replace the token without a restart."""
        try:
            token = self.token_file.read_text(encoding="utf-8").strip()
        except OSError:
            token = ""
        if not token:
            raise SendFailed(f"no Zalo OA access token in {self.token_file.name}")
        return token

    async def send(self, message_id: str, phone: str, text: str, kind: str) -> None:
        body = json.dumps(self.request_body(message_id, phone, text, kind), ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(self.url, data=body, method="POST", headers={
            "access_token": self._token(), "Content-Type": "application/json; charset=utf-8"})
        answer = await asyncio.to_thread(self._post, request)
        error = answer.get("error")
        if error != 0:
            code = error if isinstance(error, int) else None
            raise SendFailed(f"Zalo error {error}: {str(answer.get('message', ''))[:120]}",
                             retry=code not in RECIPIENT_ERRORS)

    def _post(self, request: urllib.request.Request) -> dict[str, object]:
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                data = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as error:
            raise SendFailed(f"Zalo answered HTTP {error.code}", retry=error.code >= 500 or error.code == 429) from None
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            raise SendFailed(f"Zalo unreachable: {getattr(error, 'reason', error)}") from None
        except json.JSONDecodeError:
            raise SendFailed("Zalo's answer is not JSON") from None
        if not isinstance(data, dict):
            raise SendFailed("Zalo's answer is not a JSON object")
        return data

    def sweep(self, older_than: datetime) -> int:
        return 0  # nothing kept on this box
