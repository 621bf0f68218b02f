"""The national dashboard: provinces ranked, centres ranked, early warnings, from replicated rows.

A small FastAPI app like the province's (region/dashboard.py), on the national box, reading only
the national database (:mod:`region.national_report`). Pages: ``/`` (one page: the country).
Data: ``/api/overview`` (one snapshot shared by every viewer, computed at most every
``SNAPSHOT_MAX_AGE`` seconds: at 34 provinces it is the national box's heaviest read) and
``/api/province/<code>`` (one province with all its centres). The page polls the overview (the
national box has no intake to signal changes; the provinces' rows arrive by replication).
Access: HTTP Basic, user ``quocgia`` with the secret from the national secrets file.
"""

# No "from __future__ import annotations": FastAPI must see the closures used in Depends().

import json
import threading
import time
from datetime import datetime, timedelta
from typing import Annotated, Any, Callable

import psycopg
from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

from region.dashboard import CENTRE_WEB_DIR, SLOW_AGE, WEB_DIR, basic_viewer, jsonable
from region.live import Cached
from region.national_report import national_figures
from region.national_settings import NATIONAL_USER, National
from region.report import Slow, utc_now
from region.warnings import Thresholds

SNAPSHOT_MAX_AGE = 10.0
"""Seconds: the national figures are recomputed at most this often, for all viewers together."""


def create_app(national: National, dsn: str, clock: Callable[[], datetime] = utc_now) -> FastAPI:
    app = FastAPI(title="Luot – toàn quốc", docs_url=None, redoc_url=None, openapi_url=None)
    viewer = basic_viewer(NATIONAL_USER, national.secrets[NATIONAL_USER], "Luot quoc gia")
    info = national.info
    thresholds = Thresholds(national.zone, offline_after_minutes=info.offline_after_minutes,
                            growth_window_minutes=info.growth_window_minutes)
    stale_after = timedelta(minutes=info.stale_after_minutes)
    slow: dict[str, Slow] = {}  # per province, the 30-day part; emptied every SLOW_AGE seconds
    slow_lock = threading.Lock()
    slow_at = [time.monotonic()]

    def read(only: str | None = None) -> dict[str, Any]:
        with slow_lock, psycopg.connect(dsn) as conn:
            conn.execute("SET TIME ZONE 'UTC'")
            if time.monotonic() - slow_at[0] > SLOW_AGE:
                slow.clear()
                slow_at[0] = time.monotonic()
            result = national_figures(conn, clock(), national.zone, thresholds, slow, stale_after, only=only)
        result["national"] = {"name": info.name, "timezone": info.timezone}
        return result

    def compute() -> tuple[dict[str, Any], bytes]:
        result = read()
        return result, json.dumps(jsonable(result), ensure_ascii=False).encode("utf-8")

    snapshot = Cached(compute, SNAPSHOT_MAX_AGE)
    app.state.snapshot = snapshot
    app.mount("/static", StaticFiles(directory=CENTRE_WEB_DIR), name="static")
    app.mount("/region-static", StaticFiles(directory=WEB_DIR), name="region-static")

    @app.get("/", include_in_schema=False)
    def index(who: Annotated[str, Depends(viewer)]) -> FileResponse:
        return FileResponse(WEB_DIR / "national.html", headers={"Cache-Control": "no-store"})

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"ok": True}

    @app.get("/api/overview")
    def api_overview(who: Annotated[str, Depends(viewer)]) -> Response:
        return Response(snapshot.get()[1], media_type="application/json")

    @app.get("/api/province/{code}")
    def api_province(code: str, who: Annotated[str, Depends(viewer)]) -> Response:
        if code not in {p.code for p in national.provinces}:
            raise HTTPException(404, "Không có tỉnh này / no such province")
        return Response(json.dumps(jsonable(read(code)), ensure_ascii=False), media_type="application/json")

    return app

