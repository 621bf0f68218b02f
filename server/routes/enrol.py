"""Enrolment: a device claims its one-time code and receives its identity (public, POST only).

``POST /api/v1/enrol`` with ``{"code": "ABCD-EFGH"}`` answers, once, the device's id, role and
counter, its MQTT user and password and where the broker is, and its HTTP token (a different
secret). Nothing else about the centre is needed to answer, so the route needs no login; wrong
codes are limited per caller and in total (server/devices.py, AttemptLimiter), and a used or expired
code is refused in plain words.
"""

# No "from __future__ import annotations": FastAPI must see the real types.

from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field

from server.devices import DeviceRegistry, RegistryError
from server.http_common import Body, apply_registry

router = APIRouter(tags=["devices"])


class EnrolBody(Body):
    code: str = Field(min_length=1, max_length=32, description="the one-time code, e.g. 'ABCD-EFGH' (case and dashes ignored)")


@router.post("/api/v1/enrol")
async def enrol(body: EnrolBody, request: Request) -> dict[str, Any]:
    """Claim a one-time enrolment code: the device's identity and its two secrets, once."""
    registry: DeviceRegistry = request.app.state.registry
    address = getattr(request.app.state, "mqtt_address", None)
    if address is None:
        raise RegistryError(503, "mqtt_unavailable", "Trung tâm chưa bật MQTT; chưa thể đăng ký thiết bị.",
                            "The centre runs without MQTT; devices cannot enrol now.")
    caller = request.client.host if request.client else "?"
    enrolment = registry.enrol(body.code, caller, datetime.now(timezone.utc))
    await apply_registry(request)  # tell the broker now rather than at the watcher's next look
    device = enrolment.device
    host, port = address
    # The broker runs beside this server unless the centre file names one: the device reaches it
    # at the host it used to reach us.
    mqtt_host = host or request.url.hostname or "127.0.0.1"
    config = registry.config
    return {
        "centre": config.centre.id, "device_id": device.id, "role": device.role, "counter": device.counter,
        "mqtt": {"host": mqtt_host, "port": port, "tls": config.mqtt.tls, "username": device.id,
                 "password": enrolment.mqtt_password},
        "http": {"token": enrolment.http_token,
                 "authorization": f"Bearer {device.id}:{enrolment.http_token}"},
    }
