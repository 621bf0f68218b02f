"""Start a real centre (SQLite file, uvicorn on a free port, optionally MQTT) inside the test's loop."""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from zoneinfo import ZoneInfo
from pathlib import Path
from typing import AsyncIterator, Callable

import httpx

from luot.config import CentreConfig, load_config
from server.app import CentreRuntime, RuntimeOptions
from server.engine import utc_now
from tests.helpers.mqtt import BrokerHandle


class ManualClock:
    """A clock the test moves by hand, so waits and service times are known exactly.

    By default it starts at 08:00 of the centre's current day (computed when the test runs), not
    at the real time: a test that moves it on by a few minutes must not cross local midnight when
    the suite happens to run at 23:50 in Hanoi (16:50 UTC).
    """

    def __init__(self, start: datetime | None = None, zone: str = "Asia/Ho_Chi_Minh") -> None:
        if start is None:
            local = utc_now().astimezone(ZoneInfo(zone))
            start = local.replace(hour=8, minute=0, second=0, microsecond=0).astimezone(timezone.utc)
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        from datetime import timedelta

        self.now += timedelta(**delta)


@asynccontextmanager
async def running_centre(
    tmp_path: Path,
    config: CentreConfig | None = None,
    mqtt: bool = False,
    broker: str = "auto",
    clock: Callable[[], datetime] = utc_now,
) -> AsyncIterator[CentreRuntime]:
    runtime = CentreRuntime(
        config or load_config(),
        RuntimeOptions(data_dir=tmp_path / "var", http_port=0, mqtt=mqtt, broker=broker, mqtt_port=0, clock=clock,
                       init=True),
    )
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


def device_auth(runtime_or_dir: CentreRuntime | Path, device: str) -> dict[str, str]:
    if isinstance(runtime_or_dir, Path):
        secrets = json.loads((runtime_or_dir / "secrets.json").read_text())
        return {"Authorization": f"Bearer {device}:{secrets[device]}"}
    assert runtime_or_dir.credentials is not None
    return {"Authorization": f"Bearer {device}:{runtime_or_dir.credentials.password(device)}"}


async def staff_auth(runtime: CentreRuntime, username: str = "canbo1", role: str = "officer") -> dict[str, str]:
    assert runtime.accounts is not None
    await runtime.accounts.add_user(username, username.title(), role, "matkhau-123")
    async with httpx.AsyncClient(base_url=runtime.base_url) as client:
        answer = await client.post("/api/v1/login", json={"username": username, "password": "matkhau-123"})
        answer.raise_for_status()
        return {"Authorization": f"Bearer {answer.json()['token']}"}


@asynccontextmanager
async def centre_with_broker(tmp_path: Path, broker: str = "auto") -> AsyncIterator[tuple[CentreRuntime, BrokerHandle]]:
    """A running centre with its broker, and a handle for device probes, which are closed afterwards
    (a probe left running would keep knocking at a port a later test may be given)."""
    async with running_centre(tmp_path, mqtt=True, broker=broker) as centre:
        mqtt = BrokerHandle(centre.broker.kind, centre.mqtt_host, centre.mqtt_port, centre.config, centre.credentials,
                            centre.options.data_dir, centre.broker)
        try:
            yield centre, mqtt
        finally:
            for probe in mqtt.probes:
                await asyncio.to_thread(probe.close)
