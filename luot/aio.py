"""Small asyncio and runtime helpers shared by the server's parts: stopping a background task, and
the process-level tuning measured in bench/bench_load.py."""

from __future__ import annotations

import asyncio
import contextlib
import gc


async def cancel_and_wait(task: "asyncio.Task[object] | None") -> None:
    """Stop a background task (a scheduler, a watcher) and wait until it has really ended, so its
    last step cannot run after the thing it looks after is closed."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def freeze_startup_objects() -> None:
    """Leave everything allocated so far (modules, the web app, today's replayed queue) out of
    future garbage collections.

    Why: a full collection walks every object the process holds; in a started server that took
    about 25 ms, long enough to show in the call-to-display latency several times a minute under
    load (p99 at 100 calls/s went from 30-250 ms to 11-14 ms with this). Objects made before
    this call are not freed by the collector any more, which is right for start-up objects that
    live as long as the process.
    """
    gc.collect()
    gc.freeze()
