"""/docs and the web pages work in a centre with no internet.

A real centre (uvicorn, SQLite file) and a real headless Chromium in which every request to a host
other than 127.0.0.1 is aborted, as on a centre's LAN: the Swagger UI still draws the API's
operations, and it did not even try to reach outside. The pages' own files name no outside host.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.helpers.centre import running_centre

playwright_api = pytest.importorskip("playwright.async_api")
ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SVG_NAMESPACE = "http://www.w3.org/2000/svg"  # a name in the DOM, never fetched
OUTSIDE = re.compile(r"""https?://(?!127\.0\.0\.1|localhost)|(?:src|href)\s*=\s*["']//|url\(\s*["']?//""")


@pytest.mark.asyncio
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium")
async def test_api_docs_render_with_every_outside_request_blocked(tmp_path: Path) -> None:
    async with running_centre(tmp_path) as centre, playwright_api.async_playwright() as pw:
        async with httpx.AsyncClient(base_url=centre.base_url) as http:
            html = (await http.get("/docs")).text
            assert "swagger-ui-bundle.js" in html and not OUTSIDE.search(html)
            assert (await http.get("/redoc")).status_code == 404  # FastAPI's CDN page is not left behind
            assert (await http.get("/docs-assets/swagger-ui.css")).status_code == 200

        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1366, "height": 900})
            blocked: list[str] = []

            async def only_this_box(route) -> None:  # type: ignore[no-untyped-def]
                if urlsplit(route.request.url).hostname == "127.0.0.1":
                    await route.continue_()
                else:
                    blocked.append(route.request.url)
                    await route.abort("internetdisconnected")

            await page.route("**/*", only_this_box)
            await page.goto(centre.base_url + "/docs")
            tickets = page.locator(".opblock-summary-path", has_text=re.compile(r"^/api/v1/tickets$"))
            await tickets.first.wait_for(timeout=30_000)
            assert "Luot centre API" in await page.locator(".info .title").inner_text()
            assert await page.locator(".opblock").count() > 20  # the whole API, not one stray entry
            assert await page.locator(".opblock-summary-method", has_text="POST").count() > 5
            await page.screenshot(path=str(tmp_path / "docs-offline.png"), full_page=False)
            assert blocked == []  # nothing even tried to leave the box
        finally:
            await browser.close()


def test_web_pages_name_no_outside_host() -> None:
    files = [*sorted((ROOT / "server" / "web").iterdir()), *sorted((ROOT / "display").glob("*.kv")),
             *sorted((ROOT / "kiosk").glob("*.kv"))]
    assert any(f.suffix == ".html" for f in files)
    found = {f.relative_to(ROOT).as_posix(): match.group(0)
             for f in files if f.is_file()
             for match in [OUTSIDE.search(f.read_text("utf-8").replace(SVG_NAMESPACE, ""))] if match}
    assert found == {}
