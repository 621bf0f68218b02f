"""Managers add devices (a one-time code and its QR) and revoke them; ``GET /api/v1/devices`` lists them.

Manager-only: a person with the manager role. A manager-role *device* (a dashboard screen) may
list, never add or revoke (the read-only rule of ``require``). The same operations as
``luot device add|list|revoke``, on the same registry (server/devices.py).
"""

# No "from __future__ import annotations": FastAPI must see the real types used in Depends().

from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field

from server.devices import DeviceRegistry, enrolment_text, format_code, qr_svg
from server.routes.enrol import apply_registry

router = APIRouter(tags=["devices"])


class AddDeviceBody(BaseModel):
    model_config = {"extra": "forbid"}

    id: str = Field(min_length=1, max_length=40, description="the device's id, e.g. 'kiosk-3'")
    role: Literal["kiosk", "display", "pad", "manager"]
    counter: int | None = Field(None, ge=1, le=999, description="a pad's counter (required), a counter display's")


async def manager(request: Request) -> Any:
    return await request.app.state.require("manager")(request)


def _registry(request: Request) -> DeviceRegistry:
    return request.app.state.registry


def _server_url(request: Request) -> str:
    """Where devices should enrol: the address the manager's browser used to reach this server."""
    return str(request.base_url).rstrip("/")


@router.post("/api/v1/devices")
async def add_device(body: AddDeviceBody, who: Annotated[Any, Depends(manager)], request: Request) -> dict[str, Any]:
    """Add a device; the answer carries its one-time code (valid 10 minutes, shown only here) and QR."""
    device, code = _registry(request).add(body.id, body.role, body.counter, datetime.now(timezone.utc))
    text = enrolment_text(_server_url(request), code)
    return {"device": device.public(), "code": format_code(code), "expires_at": device.code_expires_at,
            "url": _server_url(request), "qr_text": text, "qr_svg": qr_svg(text)}


@router.post("/api/v1/devices/{device_id}/revoke")
async def revoke_device(device_id: Annotated[str, Path(min_length=1, max_length=40)],
                        who: Annotated[Any, Depends(manager)], request: Request) -> dict[str, Any]:
    """Throw a device out: its HTTP token is refused at once, its MQTT connection within a second."""
    device = _registry(request).revoke(device_id, datetime.now(timezone.utc))
    await apply_registry(request)
    return {"device": device.public()}
