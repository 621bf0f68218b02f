"""Signing in to the running server as a staff account, for commands that act through its API.

Why through the API: only the running server may change the queue (its engine is the one source
of truth), so ``luot clock confirm`` and the like ask it over HTTP, signed in as ``--user`` with
the password from ``LUOT_PASSWORD`` or asked for (read from stdin when piped), and sign out again
so no session is left behind. Answers are the API's own JSON, refusals included
({"error", "message", "message_en"}).
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any, Iterator

import httpx

from luot.config import CentreConfig

PASSWORD_ENV = "LUOT_PASSWORD"
USER_NEEDED = {"error": "user_needed", "message": "Cần --user (tài khoản cán bộ)", "message_en": "--user is needed"}
"""What a command answers (exit status 2) when it was given no ``--user``."""


class StaffRefused(Exception):
    """The server refused (or could not be reached); ``answer`` is the JSON to print."""

    def __init__(self, answer: dict[str, Any]) -> None:
        super().__init__(answer.get("message_en", "refused"))
        self.answer = answer


def server_address(given: str | None, config: CentreConfig) -> str:
    """``--server``, else this box's server on the centre file's ``[http] port``."""
    return (given or f"http://127.0.0.1:{config.http.port}").rstrip("/")


def staff_password() -> str:
    password = os.environ.get(PASSWORD_ENV)
    if password is None:
        password = getpass.getpass("Mật khẩu / password: ") if sys.stdin.isatty() else sys.stdin.readline().strip()
    return password


def answer_json(answer: httpx.Response) -> dict[str, Any]:
    """The API's JSON; a body that is not JSON (a proxy's page) becomes a refusal in the usual shape."""
    try:
        body = answer.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        return body
    return {"error": "bad_answer", "message": f"Máy chủ trả lời không hợp lệ (HTTP {answer.status_code})",
            "message_en": f"The server's answer is not JSON (HTTP {answer.status_code})"}


@contextmanager
def signed_in(base: str, user: str, password: str) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    """An HTTP client and the bearer header of a fresh session (ended on leaving)."""
    try:
        with httpx.Client(base_url=base, timeout=30) as http:
            login = http.post("/api/v1/login", json={"username": user, "password": password})
            if login.status_code != 200:
                raise StaffRefused(answer_json(login))
            headers = {"Authorization": f"Bearer {login.json()['token']}"}
            try:
                yield http, headers
            finally:
                http.post("/api/v1/logout", headers=headers)
    except httpx.TransportError as error:
        raise StaffRefused({"error": "server_unreachable", "message": f"Không kết nối được máy chủ {base}: {error}",
                            "message_en": f"Could not reach the server at {base}: {error}"}) from None


def ask(base: str, user: str, request: Callable[[httpx.Client, dict[str, str]], httpx.Response]) -> tuple[int, dict[str, Any]]:
    """(exit status, JSON to print) of ``request(http, headers)`` made signed in as ``user``:
    0 when the API accepted it, 1 when it (or the sign-in, or the network) refused."""
    try:
        with signed_in(base, user, staff_password()) as (http, headers):
            answer = request(http, headers)
            return (0 if answer.is_success else 1), answer_json(answer)
    except StaffRefused as refused:
        return 1, refused.answer
