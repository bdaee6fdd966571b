"""The staff API's shipping and tracking (implements webhooks.services.TrackingApi) over handlers.tracking."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from handlers.carriers import CarrierClient, Party
from handlers.ports import Clock
from handlers.tracking import TrackingDeps, ship, timeline
from webhooks.api import order_json


@dataclass
class TrackingService:
    deps: TrackingDeps
    carriers: Mapping[str, CarrierClient]
    clock: Clock
    sender: Party

    async def timeline(self, ref: str) -> dict[str, Any]:
        return await timeline(self.deps, ref)

    async def ship(self, ref: str, carrier: str | None, waybill: str | None, company: str | None,
                   actor: str) -> dict[str, Any]:
        result = await ship(self.deps, self.carriers, ref, carrier, waybill, actor, self.clock.now(), self.sender,
                            company=company)
        return {"order": order_json(result.order, self.deps.language), "carrier": result.shipment.carrier,
                "waybill": result.shipment.waybill, "created": result.created, "failed_carriers": list(result.tried)}
