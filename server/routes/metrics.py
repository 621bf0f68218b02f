"""``GET /metrics``: the centre's state in the Prometheus text format (server/metrics.py).

Readable from the LAN without a login, as Prometheus expects (it holds no personal data); a centre
that wants more sets ``[metrics] token`` and Prometheus sends it as a bearer token. A wrong or
missing token gets the house's 401 refusal in Vietnamese and English. The registry is the app's
own (``app.state.metrics``, made by :func:`server.api.create_app`), never the process-wide one.
"""

# No "from __future__ import annotations": FastAPI must see the real types of the handler.

import hmac

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from server.http_common import ApiError, session_token

router = APIRouter(tags=["monitoring"])

METRICS_TOKEN_NEEDED = ApiError(401, "unauthorised", "Cần mã truy cập /metrics hợp lệ.",
                                "A valid /metrics bearer token is required.")


@router.get("/metrics", response_class=Response, summary="Prometheus metrics (text format)")
async def metrics(request: Request) -> Response:
    state = request.app.state
    token = state.service.config.metrics.token
    if token is not None and not hmac.compare_digest(session_token(request).encode(), token.encode()):
        raise METRICS_TOKEN_NEEDED
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
