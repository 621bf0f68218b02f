"""The Zalo OA (ZNS) adapter against a local HTTP server that checks the documented request format
(docs/notifications.md). Never run against Zalo itself."""

from __future__ import annotations

import json
import re
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from luot.config import NotifySettings
from luot.ports import free_port
from server.notify import Notifier, Outbox, ZaloOAChannel
from server.phones import PhoneVault

TOKEN = "oa-access-token-for-tests"
TEMPLATES = {"otp": "301001", "near": "301002", "called": "301003"}


class ZnsReceiver(BaseHTTPRequestHandler):
    """Answers like ZNS: checks the path, the access_token header, JSON body and its fields."""

    received: list[dict[str, Any]] = []
    answer_error = 0

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        problems = []
        if self.path != "/message/template":
            problems.append(f"path {self.path}")
        if self.headers.get("access_token") != TOKEN:
            self._reply({"error": -124, "message": "Access token is invalid"})
            return
        if not (self.headers.get("Content-Type") or "").startswith("application/json"):
            problems.append("content type")
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])).decode("utf-8"))
        if set(body) != {"phone", "template_id", "template_data", "tracking_id"}:
            problems.append(f"fields {sorted(body)}")
        if not re.fullmatch(r"84[35789]\d{8}", str(body.get("phone"))):
            problems.append(f"phone {body.get('phone')!r}")
        if body.get("template_id") not in TEMPLATES.values():
            problems.append("template_id")
        data = body.get("template_data")
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            problems.append("template_data")
        if not re.fullmatch(r"[0-9a-f]{16}", str(body.get("tracking_id"))):
            problems.append("tracking_id")
        if problems:
            self._reply({"error": -100, "message": "; ".join(problems)}, status=400)
            return
        type(self).received.append(body)
        error = type(self).answer_error
        self._reply({"error": error, "message": "Success" if error == 0 else "User not exists",
                     "data": {"msg_id": f"m{len(type(self).received)}", "sent_time": "1733470000000"}})

    def _reply(self, payload: dict[str, Any], status: int = 200) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def zns() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), ZnsReceiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _notifier(tmp_path: Path, url: str, token: str = TOKEN) -> Notifier:
    (tmp_path / "zalo-oa.token").write_text(token + "\n", encoding="utf-8")
    settings = NotifySettings(channels=["zalo"], zalo_url=f"{url}/message/template", zalo_templates=TEMPLATES)
    vault = PhoneVault.for_data_dir(tmp_path)
    return Notifier(Outbox(tmp_path / "outbox.sqlite3"), vault, [ZaloOAChannel.from_settings(settings, tmp_path)],
                    settings, clock=lambda: datetime.now(timezone.utc))


async def test_a_message_goes_out_in_the_zns_format(tmp_path: Path, zns: str) -> None:
    ZnsReceiver.received.clear()
    notifier = _notifier(tmp_path, zns)
    text = "Mời bạn đến quầy 3 (số 1023)."
    notifier.enqueue("called:t9", notifier.vault.seal("0912 345 678"), text, "called")
    assert await notifier.deliver_due() == 1
    [body] = ZnsReceiver.received
    assert body["phone"] == "84912345678" and body["template_id"] == "301003"
    assert body["template_data"] == {"content": text}
    assert notifier.outbox.status_of("called:t9")["channel"] == "zalo"


async def test_a_bad_token_is_retried_later_and_an_unknown_user_is_given_up(tmp_path: Path, zns: str) -> None:
    ZnsReceiver.received.clear()
    notifier = _notifier(tmp_path, zns, token="expired-token")
    notifier.enqueue("near:t1", notifier.vault.seal("0912345678"), "Còn 2 người trước bạn.", "near")
    assert await notifier.deliver_due() == 0
    row = notifier.outbox.status_of("near:t1")
    assert (row["status"], row["attempts"]) == ("pending", 1) and "-124" in row["last_error"]
    assert notifier.outbox.next_due() > datetime.now(timezone.utc)  # backed off, not hammering

    (tmp_path / "zalo-oa.token").write_text(TOKEN, encoding="utf-8")
    ZnsReceiver.answer_error = -118  # the phone has no Zalo account: retrying cannot help
    try:
        notifier.enqueue("near:t2", notifier.vault.seal("0912345678"), "Còn 1 người trước bạn.", "near")
        await notifier.deliver_due()
    finally:
        ZnsReceiver.answer_error = 0
    row = notifier.outbox.status_of("near:t2")
    assert (row["status"], row["holds_phone"]) == ("failed", 0) and "-118" in row["last_error"]
