"""The refund flow's view of a return parcel (handlers.refunds.ReturnTracker) over the carrier adapters: the last
scan's neutral status. A carrier's route says where a parcel is, not whom it is for, so the direction is only known
for the carrier's own return statuses (`returning`, `returned`); otherwise it is left open (None) and a moving parcel
counts as the customer's return on its way (engine.refunds.judge_proof)."""

from __future__ import annotations

from collections.abc import Mapping

from engine.carriers import TrackStatus
from engine.refunds import ReturnStatus
from handlers.carriers import CarrierClient

_RETURN = {TrackStatus.RETURNING, TrackStatus.RETURNED}


class CarrierReturnTracker:
    def __init__(self, clients: Mapping[str, CarrierClient]) -> None:
        self.clients = dict(clients)
        # Kuaidi100 tracks every other carrier: with it, a number of any carrier OrderHub recognises is trackable
        self.carriers = tuple(self.clients) + (("jd", "ems", "zto", "yto") if "kuaidi100" in self.clients else ())

    async def status(self, carrier: str, waybill: str) -> ReturnStatus | None:
        """Raises handlers.carriers.CarrierError on a failed call (the refund then goes to a person)."""
        client = self.clients.get(carrier) or self.clients.get("kuaidi100")
        if client is None:
            return None
        events = await client.query_routes(waybill, None if carrier in self.clients else carrier)
        if not events:
            return ReturnStatus(None)
        last = max(events, key=lambda e: e.at)
        return ReturnStatus(last.status.value, True if last.status in _RETURN else None)
