"""Shared fixtures: real MQTT brokers (Mosquitto and the embedded amqtt) on free ports.

Each broker runs with the centre's generated users and ACLs (the shipped sample centre) from a
temporary directory, in its own thread and event loop (tests/helpers/mqtt.py). ``pg``: a scratch
PostgreSQL database for the region tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from luot.config import load_config
from luot.credentials import load_or_create
from server.broker import find_mosquitto, start_broker
from tests.helpers.mqtt import BrokerHandle, LoopThread, free_port


def _broker(tmp_path: Path, kind: str) -> Iterator[BrokerHandle]:
    config = load_config()
    credentials = load_or_create(config, tmp_path / "secrets.json")
    loop = LoopThread()
    port = free_port()
    running = loop.run(start_broker(config, credentials, tmp_path / "broker", port, kind=kind))  # type: ignore[arg-type]
    handle = BrokerHandle(kind, running.host, port, config, credentials, running.directory, running)
    try:
        yield handle
    finally:
        for probe in handle.probes:
            probe.close()
        loop.run(running.stop())
        loop.close()


@pytest.fixture
def mosquitto_broker(tmp_path: Path) -> Iterator[BrokerHandle]:
    """Real Mosquitto started from the generated broker_config on a free port."""
    if find_mosquitto() is None:
        pytest.fail("mosquitto is not installed (apt install mosquitto): the MQTT tests need the real broker")
    yield from _broker(tmp_path, "mosquitto")


@pytest.fixture
def amqtt_broker(tmp_path: Path) -> Iterator[BrokerHandle]:
    """The embedded amqtt broker with the same users and ACL rules, on a free port."""
    yield from _broker(tmp_path, "amqtt")


@pytest.fixture(params=["mosquitto", "amqtt"])
def broker(request: pytest.FixtureRequest) -> BrokerHandle:
    """Each test using it runs once on Mosquitto and once on amqtt."""
    return request.getfixturevalue(f"{request.param}_broker")


@pytest.fixture
def pg() -> Iterator[str]:
    """A scratch PostgreSQL database on the machine's server (tests/helpers/region.py), dropped after."""
    from tests.helpers.region import scratch_database

    yield from scratch_database()
