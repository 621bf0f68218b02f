"""Officers and managers sign in (optionally at a counter) and out, change their passwords;
managers reset others'. The pages ask who the session belongs to."""

# No "from __future__ import annotations": FastAPI must see the real types used in Depends().

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from server import counter_hold
from server.accounts import Accounts, User, token_hash
from server.http_common import (SESSION_COOKIE, ApiError, Body, Principal, client_address, get_accounts, get_service,
                                manager, session_token, signed_in, staff)
from server.service import CentreService

router = APIRouter(tags=["staff"])


class LoginBody(Body):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)
    counter: int | None = Field(None, ge=1, le=999, description="sign in at this counter: it opens for you")


class PasswordBody(Body):
    old_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


def _about(user: User, accounts: Accounts, counter: int | None) -> dict[str, Any]:
    return {"username": user.username, "name": user.name, "role": user.role,
            "must_change_password": user.must_change_password, "counter": counter,
            "last_counter": user.last_counter,
            "idle_minutes": int(accounts.idle_limit(user.role).total_seconds() // 60)}


@router.post("/api/v1/login")
async def login(body: LoginBody, request: Request, accounts: Annotated[Accounts, Depends(get_accounts)],
                service: Annotated[CentreService, Depends(get_service)]) -> JSONResponse:
    """Sign in; with ``counter``, also open that counter for you (403 if someone else holds it).
    ``must_change_password``: only ``POST /api/v1/password`` works until it is changed."""
    user = await accounts.login(body.username, body.password, client_address(request))
    at = body.counter if not user.must_change_password else None
    if at is not None:
        counter_hold.check(service.engine, at, user.username, service.now())  # 404 / 403 before a session exists
    token = await accounts.create_session(user.username, service.now())
    if at is not None:
        try:
            await counter_hold.open_for(service, accounts, user.username, user.role, token_hash(token), at)
        except Exception:  # refused at the counter: no half-made sign-in is left behind
            await accounts.end_session(token)
            raise
        user = await accounts.get_user(user.username) or user
    response = JSONResponse({"token": token, **_about(user, accounts, at)})
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict",
                        max_age=accounts.settings.session_hours * 3600)
    return response


@router.post("/api/v1/logout")
async def logout(request: Request, accounts: Annotated[Accounts, Depends(get_accounts)]) -> JSONResponse:
    token = session_token(request)
    if token and ":" not in token:
        await accounts.end_session(token)
    response = JSONResponse({"ok": True})
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/api/v1/me")
async def me(who: Annotated[Principal, Depends(staff)], accounts: Annotated[Accounts, Depends(get_accounts)],
             service: Annotated[CentreService, Depends(get_service)]) -> dict[str, Any]:
    """Who the session belongs to, the counter it works at, the counter this person held last
    (the console's default) and the counters they hold open now."""
    user = await accounts.get_user(who.id)
    if user is None:
        raise ApiError(401, "unauthorised", "Cần đăng nhập.", "Log in.")
    return {**_about(user, accounts, who.counter),
            "held": counter_hold.held_counters(service.engine, who.id, service.now())}


@router.post("/api/v1/password")
async def change_password(body: PasswordBody, request: Request, who: Annotated[Principal, Depends(signed_in)],
                          accounts: Annotated[Accounts, Depends(get_accounts)]) -> dict[str, Any]:
    """Change your own password (old + new). Your other sessions end; this one stays."""
    ended = await accounts.change_password(who.id, body.old_password, body.new_password,
                                           client_address(request), keep=who.session)
    return {"ok": True, "ended_sessions": ended}


@router.get("/api/v1/users")
async def users(who: Annotated[Principal, Depends(manager)],
                accounts: Annotated[Accounts, Depends(get_accounts)]) -> dict[str, Any]:
    """The centre's staff accounts (no hashes)."""
    return {"users": [{"username": u.username, "name": u.name, "role": u.role,
                       "must_change_password": u.must_change_password, "last_counter": u.last_counter}
                      for u in await accounts.list_users()]}


@router.post("/api/v1/users/{username}/reset-password")
async def reset_password(username: Annotated[str, Path(min_length=1, max_length=64)],
                         who: Annotated[Principal, Depends(manager)],
                         accounts: Annotated[Accounts, Depends(get_accounts)]) -> dict[str, Any]:
    """A manager gives ``username`` a one-time password (shown once): their sessions end and
    their next sign-in must choose a new password."""
    if who.kind == "user" and username == who.id:
        raise ApiError(400, "reset_self", "Hãy dùng chức năng đổi mật khẩu cho tài khoản của bạn.",
                       "Use change password for your own account.")
    password = await accounts.reset_password(username)
    return {"username": username, "one_time_password": password, "must_change_password": True}
