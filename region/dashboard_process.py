"""The province dashboard in its own process, beside the aggregator's intake.

Why (issue 19): served from the intake's process, 50 open dashboards took 34-50 % of its events per
second at 1,000-3,321 centres (one interpreter lock for both). In its own process, at a lower CPU
priority (``NICE``), the viewers cannot starve the intake: the operating system gives the intake
the cores first. The two share nothing but PostgreSQL: the live stream learns of commits from
``centres.changed_xid`` (region.live.PolledSignal) instead of the intake's in-memory signal.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
from typing import Any

from region.settings import Region

NICE = 5
"""Added to the dashboard process's niceness: the intake comes first when both want a core."""


def serve(region: Region, dsn: str, host: str, port: int, log_level: str = "INFO") -> None:
    """The child's body: the dashboard app on host:port until SIGTERM."""
    import uvicorn

    from region.dashboard import create_app
    from region.live import PolledSignal

    try:
        os.nice(NICE)
    except OSError:  # not allowed here: same priority, still apart
        pass
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(region, dsn, PolledSignal(dsn))
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))

    def stop(*_: object) -> None:
        server.should_exit = True

    signal.signal(signal.SIGTERM, stop)
    server.run()


def start(region: Region, dsn: str, host: str, port: int, log_level: str = "INFO") -> Any:
    """The dashboard process, started (spawned: nothing of the intake's threads is inherited)."""
    process = mp.get_context("spawn").Process(target=serve, args=(region, dsn, host, port, log_level),
                                              name="luot-region-dashboard", daemon=True)
    process.start()
    return process


def stop(process: Any, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not ended within ``timeout`` seconds."""
    if process.is_alive():
        process.terminate()
        process.join(timeout)
    if process.is_alive():
        process.kill()
        process.join(timeout)
