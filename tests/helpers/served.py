"""A web app (FastAPI/ASGI) served by uvicorn in a thread on a free port, for a test or a benchmark
that opens its pages in a browser."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Iterator

from luot.ports import free_port
from tests.helpers.region import wait_until


@contextmanager
def served(app: Any, what: str = "the web app") -> Iterator[str]:
    """Yield the app's base URL once it listens; stop it afterwards."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    runner = threading.Thread(target=server.run, daemon=True)
    runner.start()
    try:
        wait_until(lambda: server.started, 20, what)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        runner.join(10)
