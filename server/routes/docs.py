"""``/docs``: the API's Swagger UI, served entirely from this box.

FastAPI's own ``/docs`` (and ``/redoc``) load Swagger UI's script, style sheet and favicon from
public CDNs, so in a centre with no internet the page stays blank. Here the same page comes from
FastAPI's public :func:`fastapi.openapi.docs.get_swagger_ui_html`, pointed at Swagger UI's files
shipped in the ``swagger-ui-bundle-v2`` package (Swagger UI 5, which reads the OpenAPI 3.1 that
FastAPI writes; the older ``swagger-ui-bundle`` 1.x ships 4.15, which cannot) and mounted under
:data:`ASSETS`. The online validator badge is switched off: it would call out to the internet.

Wiring in ``create_app``: ``FastAPI(docs_url=None, redoc_url=None)``, then
``app.include_router(docs.router)`` and ``docs.mount_assets(app)``.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

ASSETS = "/docs-assets"
"""Where Swagger UI's own files are served (swagger-ui-bundle.js, swagger-ui.css, favicons)."""

router = APIRouter(include_in_schema=False)


@router.get("/docs", include_in_schema=False)
async def swagger_ui(request: Request) -> HTMLResponse:
    """The interactive API description, every file it needs served from this server."""
    root = request.scope.get("root_path", "").rstrip("/")
    return get_swagger_ui_html(
        openapi_url=root + (request.app.openapi_url or "/openapi.json"),
        title=f"{request.app.title} – API",
        swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS}/favicon-32x32.png",
        swagger_ui_parameters={"validatorUrl": None},
    )


def mount_assets(app: FastAPI) -> None:
    """Serve Swagger UI's files (read-only, from the installed package) under :data:`ASSETS`."""
    app.mount(ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")
