"""`POST /api/orders/{id}/ship` and `GET /api/orders/{id}/tracking`: authenticate, parse, call the use
case (handlers.tracking through services.tracking), answer."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from engine.stages import TransitionError
from handlers.orders import MoveRefused, OrderNotFound
from handlers.tracking import ShipRefused
from webhooks.api import Staff
from webhooks.errors import ApiError
from webhooks.services import TrackingApi

router = APIRouter(prefix="/api", tags=["api"])


def tracking(request: Request) -> TrackingApi:
    return request.app.state.services.tracking


Tracking = Annotated[TrackingApi, Depends(tracking)]


class ShipBody(BaseModel):
    carrier: Literal["sf", "deppon", "kuaidi100"] | None = Field(
        default=None, description="omitted: the carrier the rules choose for the order's region")
    waybill: str | None = Field(default=None, min_length=6, max_length=40,
                                description="a waybill staff already have; omitted: OrderHub creates one")
    company: str | None = Field(default=None, max_length=32, pattern=r"^[a-z0-9]+$",
                                description="Kuaidi100's code of the carrier moving the parcel (kuaidi100 only)")


@router.post("/orders/{ref}/ship")
async def ship_order(ref: str, body: ShipBody, user: Staff, api: Tracking) -> dict[str, Any]:
    """Record a waybill, or create one with the carrier (backup carrier when the first fails); moves the order
    to `shipped` and tells the customer."""
    if body.waybill and body.carrier is None:
        raise ApiError(422, "carrier_required", "a waybill needs its carrier")
    try:
        return await api.ship(ref, body.carrier, body.waybill, body.company, user.name)
    except OrderNotFound:
        raise ApiError(404, "order_not_found", f"no order {ref!r}") from None
    except TransitionError as exc:
        raise ApiError(409, "invalid_transition", str(exc), allowed=[s.value for s in exc.allowed]) from None
    except (MoveRefused, ShipRefused) as exc:
        raise ApiError(409, "ship_refused", str(exc)) from None


@router.get("/orders/{ref}/tracking")
async def order_tracking(ref: str, user: Staff, api: Tracking) -> dict[str, Any]:
    """The tracking timeline, newest scan first."""
    try:
        return await api.timeline(ref)
    except OrderNotFound:
        raise ApiError(404, "order_not_found", f"no order {ref!r}") from None
