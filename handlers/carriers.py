"""The one interface every carrier adapter implements (bot/adapters/carriers/<carrier>/), and its errors.

Handlers create waybills and query routes only through `CarrierClient`; they never see httpx or a carrier's
wire format. Errors say whether trying again may help (`retryable`), as the chat channels' send errors do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from engine.carriers import TrackEvent


class CarrierError(Exception):
    """A carrier call failed. `retryable`: a timeout, a 5xx, a rate limit — the same call may succeed later.
    Permanent: the carrier refused the request (bad digest, unknown account, invalid address)."""

    def __init__(self, carrier: str, message: str, *, retryable: bool) -> None:
        super().__init__(f"{carrier}: {message}")
        self.carrier, self.retryable = carrier, retryable


@dataclass(frozen=True, slots=True)
class Party:
    name: str
    phone: str
    city: str
    address: str = ""
    province: str = ""


@dataclass(frozen=True, slots=True)
class ShipmentRequest:
    """What a carrier needs to create a waybill. `reference` is OrderHub's id for the shipment (idempotent at
    the carrier: SF and Deppon refuse a second order with the same id, and we read back the first waybill)."""

    reference: str
    sender: Party
    receiver: Party
    goods: str
    pieces: int = 1
    weight_kg: float | None = None


class CarrierClient(Protocol):
    name: str

    async def create_waybill(self, request: ShipmentRequest) -> str:
        """The waybill number the carrier issued. Raises CarrierError."""
        ...

    async def query_routes(self, waybill: str, company: str | None = None) -> list[TrackEvent]:
        """Every scan the carrier knows for the waybill (`company`: Kuaidi100's carrier code). Raises CarrierError."""
        ...

    async def subscribe(self, waybill: str, company: str | None = None) -> None:
        """Ask the carrier to push this waybill's scans (Kuaidi100); a no-op where pushes need no subscription."""
        ...
