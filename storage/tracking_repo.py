"""Shipments and tracking events (implements handlers.tracking.TrackingStore).

Events are inserted with ON CONFLICT DO NOTHING on (shipment, event_key): the same scan pushed twice, or pushed
and then polled, is one row. The shipment's state (status, pickup, delivery, last scan) is recomputed from its
stored events in the same transaction, so it never disagrees with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from engine.carriers import TrackEvent, TrackStatus, event_key
from handlers.tracking import Shipment, StoredEvent
from storage.models import OrderRow, ShipmentRow, TrackingEventRow, UserRow

SHIPMENTS, EVENTS, ORDERS, USERS = (ShipmentRow.__table__, TrackingEventRow.__table__, OrderRow.__table__,
                                    UserRow.__table__)
_DONE = (TrackStatus.DELIVERED.value, TrackStatus.RETURNED.value)


def _shipment(r: Any) -> Shipment:
    return Shipment(r.id, r.order_id, r.carrier, r.waybill, r.company, r.status, r.picked_up_at, r.delivered_at,
                    r.last_event_at, r.last_polled_at, r.created_at)


def _event(carrier: str, waybill: str, r: Any) -> TrackEvent:
    return TrackEvent(carrier, waybill, r.at, TrackStatus(r.status), r.text, r.place, r.code)


class SqlTracking:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    async def shipment(self, carrier: str, waybill: str) -> Shipment | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(SHIPMENTS).where(SHIPMENTS.c.carrier == carrier,
                                                              SHIPMENTS.c.waybill == waybill))).first()
        return _shipment(row) if row else None

    async def shipment_of_order(self, order_id: int) -> Shipment | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(SHIPMENTS).where(SHIPMENTS.c.order_id == order_id)
                                      .order_by(SHIPMENTS.c.id.desc()).limit(1))).first()
        return _shipment(row) if row else None

    async def add_shipment(self, order_id: int, carrier: str, waybill: str, company: str | None,
                           now: datetime) -> Shipment:
        async with self.engine.begin() as conn:
            await conn.execute(self._insert(SHIPMENTS).on_conflict_do_nothing(
                index_elements=["carrier", "waybill"]).values(order_id=order_id, carrier=carrier, waybill=waybill,
                                                              company=company, created_at=now))
            row = (await conn.execute(select(SHIPMENTS).where(SHIPMENTS.c.carrier == carrier,
                                                              SHIPMENTS.c.waybill == waybill))).one()
            await self._mirror(conn, row.order_id, row)
        return _shipment(row)

    async def _mirror(self, conn: AsyncConnection, order_id: int, row: Any) -> None:
        """`orders.tracking` carries the summary the order JSON and the customer's status reply show: carrier,
        waybill, status and the last three scans (so a status reply needs no second lookup)."""
        e = EVENTS.c
        last = (await conn.execute(select(e.at, e.text, e.place).where(e.shipment_id == row.id)
                                   .order_by(e.at.desc(), e.id.desc()).limit(3))).all()
        await conn.execute(update(ORDERS).where(ORDERS.c.id == order_id).values(tracking={
            "carrier": row.carrier, "waybill": row.waybill, "status": row.status,
            "last_event_at": row.last_event_at.isoformat() if row.last_event_at else None,
            "last_events": [{"at": r.at.isoformat(), "text": r.text, "place": r.place} for r in last]}))

    async def add_events(self, shipment: Shipment, events: Sequence[TrackEvent],
                         now: datetime) -> tuple[int, list[StoredEvent]]:
        rows = {}
        for ev in events:
            rows[event_key(ev)] = {"shipment_id": shipment.id, "event_key": event_key(ev), "at": ev.at,
                                   "status": ev.status.value, "code": ev.code[:16], "text": ev.text,
                                   "place": ev.place[:200], "applied": False, "received_at": now}
        async with self.engine.begin() as conn:
            new = 0
            if rows:  # counted, not rowcount: drivers disagree on rowcount for a many-row ON CONFLICT insert
                count = select(func.count()).select_from(EVENTS).where(EVENTS.c.shipment_id == shipment.id)
                before = (await conn.execute(count)).scalar_one()
                await conn.execute(self._insert(EVENTS).on_conflict_do_nothing(
                    index_elements=["shipment_id", "event_key"]), list(rows.values()))
                new = (await conn.execute(count)).scalar_one() - before
            await self._refresh(conn, shipment.id)
            pending = (await conn.execute(select(EVENTS).where(EVENTS.c.shipment_id == shipment.id,
                                                               EVENTS.c.applied.is_(False))
                                          .order_by(EVENTS.c.at, EVENTS.c.id))).all()
        return new, [StoredEvent(r.id, _event(shipment.carrier, shipment.waybill, r)) for r in pending]

    async def _refresh(self, conn: AsyncConnection, shipment_id: int) -> None:
        e = EVENTS.c
        last = (await conn.execute(select(e.at, e.status).where(e.shipment_id == shipment_id)
                                   .order_by(e.at.desc(), e.id.desc()).limit(1))).first()
        if last is None:
            return
        picked = (await conn.execute(select(func.min(e.at)).where(e.shipment_id == shipment_id))).scalar()
        delivered = (await conn.execute(select(func.min(e.at)).where(
            e.shipment_id == shipment_id, e.status == TrackStatus.DELIVERED.value))).scalar()
        await conn.execute(update(SHIPMENTS).where(SHIPMENTS.c.id == shipment_id).values(
            status=last.status, last_event_at=last.at, picked_up_at=picked, delivered_at=delivered))
        row = (await conn.execute(select(SHIPMENTS).where(SHIPMENTS.c.id == shipment_id))).one()
        await self._mirror(conn, row.order_id, row)

    async def mark_applied(self, event_ids: Sequence[int]) -> None:
        if not event_ids:
            return
        async with self.engine.begin() as conn:
            await conn.execute(update(EVENTS).where(EVENTS.c.id.in_(list(event_ids))).values(applied=True))

    async def events(self, shipment_id: int, limit: int = 200) -> list[TrackEvent]:
        async with self.engine.connect() as conn:
            s = (await conn.execute(select(SHIPMENTS).where(SHIPMENTS.c.id == shipment_id))).first()
            if s is None:
                return []
            rows = (await conn.execute(select(EVENTS).where(EVENTS.c.shipment_id == shipment_id)
                                       .order_by(EVENTS.c.at.desc(), EVENTS.c.id.desc()).limit(limit))).all()
        return [_event(s.carrier, s.waybill, r) for r in rows]

    async def contacts(self, order_id: int) -> tuple[int | None, int | None]:
        async with self.engine.connect() as conn:
            o = (await conn.execute(select(ORDERS.c.customer_phone, ORDERS.c.owner_user_id)
                                    .where(ORDERS.c.id == order_id))).first()
            if o is None:
                return None, None
            customer = None
            if o.customer_phone:
                customer = (await conn.execute(select(USERS.c.id).where(
                    USERS.c.role == "customer", USERS.c.active.is_(True), USERS.c.phone == o.customer_phone)
                    .order_by(USERS.c.id).limit(1))).scalar()
        return customer, o.owner_user_id

    async def to_poll(self, polled_before: datetime, quiet_since: datetime, limit: int) -> list[Shipment]:
        s = SHIPMENTS.c
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(SHIPMENTS).where(
                s.delivered_at.is_(None), or_(s.status.is_(None), s.status.not_in(_DONE)),
                or_(s.last_event_at.is_(None), s.last_event_at < quiet_since),
                or_(s.last_polled_at.is_(None), s.last_polled_at < polled_before))
                .order_by(s.last_polled_at.is_not(None), s.last_polled_at, s.id).limit(limit))).all()
        return [_shipment(r) for r in rows]

    async def mark_polled(self, shipment_id: int, now: datetime) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(SHIPMENTS).where(SHIPMENTS.c.id == shipment_id).values(last_polled_at=now))

    async def stalled_after_pickup(self, quiet_since: datetime, limit: int) -> list[Shipment]:
        s = SHIPMENTS.c
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(SHIPMENTS).where(
                and_(s.picked_up_at.is_not(None), s.delivered_at.is_(None), s.status.not_in(_DONE),
                     s.last_event_at < quiet_since)).order_by(s.last_event_at).limit(limit))).all()
        return [_shipment(r) for r in rows]

    async def transit_facts(self, since: datetime) -> list[tuple[str, str | None, datetime, datetime]]:
        """(carrier, region, picked up, delivered) of shipments delivered since `since`: carrier performance."""
        s = SHIPMENTS.c
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(s.carrier, ORDERS.c.region, s.picked_up_at, s.delivered_at)
                                       .join(ORDERS, ORDERS.c.id == s.order_id)
                                       .where(s.delivered_at >= since, s.picked_up_at.is_not(None)))).all()
        return [(r.carrier, r.region, r.picked_up_at, r.delivered_at) for r in rows]
