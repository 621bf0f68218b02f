"""Keeps the broker and the server's MQTT link in step with the device registry.

A device is enrolled or revoked by the server itself (HTTP) or by ``luot device`` in another
process; either way :mod:`server.devices` writes ``devices.json``. This watcher checks that file
every :data:`INTERVAL` seconds (one ``stat``) and, when the devices that may use MQTT changed,
rewrites the broker's password file and ACL and reloads it (Mosquitto: SIGHUP, which disconnects
a revoked client at once), then tells the link, which publishes the revoked device's retained
availability ``revoked``. HTTP needs nothing from here: it asks the registry on every request.
Worst case from ``luot device revoke`` to a dropped connection: INTERVAL plus the reload.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from server.devices import DeviceRegistry, RegistryError

log = logging.getLogger(__name__)

INTERVAL = 0.5


class DeviceAccess:
    """Applies the registry to a running broker (may be None: an external one) and link."""

    def __init__(self, registry: DeviceRegistry, broker: Any = None, link: Any = None) -> None:
        self.registry = registry
        self.broker = broker
        self.link = link
        self._applied: Any = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def _fingerprint(self) -> Any:
        credentials = self.registry.mqtt_credentials()
        devices = tuple(sorted((d.id, d.role, d.counter or 0) for d in self.registry.active_devices()))
        process = getattr(self.broker, "process", None)  # a restarted Mosquitto must be told again
        return devices, tuple(sorted(credentials.secrets.items())), getattr(process, "pid", None)

    async def sync(self) -> bool:
        """Apply the registry now if it changed since the last time; True when something was applied."""
        async with self._lock:
            try:
                self.registry.refresh()
                fingerprint = self._fingerprint()
            except RegistryError as error:
                log.error("device registry: %s (access unchanged)", error.message_en)
                return False
            if fingerprint == self._applied:
                return False
            if self.broker is not None and self._applied is not None:
                await self.broker.apply(self.registry.mqtt_config(), self.registry.mqtt_credentials())
            if self.link is not None:
                self.link.set_devices({d.id for d in self.registry.active_devices()}, self.registry.revoked_ids())
            self._applied = fingerprint
            log.info("device access applied: %d devices may use MQTT", len(fingerprint[0]))
            return True

    async def start(self) -> None:
        """First sync (the broker was started from the same registry, so only the link learns), then watch."""
        await self.sync()
        self._task = asyncio.create_task(self._watch(), name="luot-device-access")

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(INTERVAL)
            try:
                await self.sync()
            except Exception:  # a failed reload must not stop the watching; say so and retry
                log.exception("applying the device registry failed; retrying")
                self._applied = object()  # differs from any fingerprint: the next sync applies again

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
