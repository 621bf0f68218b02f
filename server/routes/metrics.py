"""``GET /metrics``: the centre's state in the Prometheus text format (server/metrics.py).

Readable from the LAN without a login, as Prometheus expects (it holds no personal data); a centre
that wants more sets ``[metrics] token`` and Prometheus sends it as a bearer token. A wrong or
missing token gets the house's 401 refusal in Vietnamese and English.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from server.metrics import CentreMetrics

router = APIRouter(tags=["monitoring"])


def install_metrics(app: FastAPI) -> None:
    """Give ``app`` its own metrics registry (hooked into the commit path now, so no commit before
    the first scrape is missed) and the /metrics route. Call after the live hub is mounted."""
    state = app.state
    state.metrics = CentreMetrics(state.service, state.link, getattr(state, "live", None))
    app.include_router(router)


def _authorised(request: Request, token: str | None) -> bool:
    if token is None:
        return True
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


@router.get("/metrics", response_class=Response, summary="Prometheus metrics (text format)")
async def metrics(request: Request) -> Response:
    state = request.app.state
    if not _authorised(request, state.service.config.metrics.token):
        return JSONResponse({"error": "unauthorised", "message": "Cần mã truy cập /metrics hợp lệ.",
                             "message_en": "A valid /metrics bearer token is required."},
                            status_code=401, headers={"WWW-Authenticate": "Bearer"})
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
