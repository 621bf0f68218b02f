"""Officers and managers sign in and out; the pages ask who the session belongs to."""

# No "from __future__ import annotations": FastAPI must see the real types used in Depends().

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from server.accounts import Accounts
from server.http_common import SESSION_COOKIE, ApiError, Body, Principal, get_accounts, get_service, staff
from server.service import CentreService

router = APIRouter(tags=["staff"])


class LoginBody(Body):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


@router.post("/api/v1/login")
async def login(body: LoginBody, accounts: Annotated[Accounts, Depends(get_accounts)],
                service: Annotated[CentreService, Depends(get_service)]) -> JSONResponse:
    user = await accounts.verify_user(body.username, body.password)
    if user is None:
        raise ApiError(401, "bad_login", "Sai tên đăng nhập hoặc mật khẩu.", "Wrong username or password.")
    token = await accounts.create_session(user.username, service.now())
    response = JSONResponse({"token": token, "username": user.username, "name": user.name, "role": user.role})
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", max_age=12 * 3600)
    return response


@router.post("/api/v1/logout")
async def logout(request: Request, accounts: Annotated[Accounts, Depends(get_accounts)]) -> JSONResponse:
    token = request.cookies.get(SESSION_COOKIE) or request.headers.get("authorization", "")[7:]
    if token:
        await accounts.end_session(token)
    response = JSONResponse({"ok": True})
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/api/v1/me")
async def me(who: Annotated[Principal, Depends(staff)]) -> dict[str, Any]:
    """Who the session belongs to: the pages ask this to decide whether to show the login form."""
    return {"username": who.id, "role": who.role}
