"""Shipments and tracking events (implements handlers.tracking.TrackingStore).

Events are inserted with ON CONFLICT DO NOTHING on (shipment, event_key): the same scan pushed twice, or pushed
and then polled, is one row. The shipment's state (status, pickup, delivery, last scan) is recomputed from its
stored events in the same transaction, so it never disagrees with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from engine.carriers import TrackEvent, TrackStatus, event_key
from handlers.tracking import Shipment, StoredBatch, StoredEvent
from storage.models import OrderRow, ShipmentRow, TrackingEventRow, UserRow
from storage.queries import fetch_all

SHIPMENTS, EVENTS, ORDERS, USERS = (ShipmentRow.__table__, TrackingEventRow.__table__, OrderRow.__table__,
                                    UserRow.__table__)
_DONE = (TrackStatus.DELIVERED.value, TrackStatus.RETURNED.value)


def _shipment(r: Any) -> Shipment:
    return Shipment(r.id, r.order_id, r.carrier, r.waybill, r.company, r.status, r.picked_up_at, r.delivered_at,
                    r.last_event_at, r.last_polled_at, r.created_at)


def _summary(row: Any, last: list[dict[str, Any]]) -> dict[str, Any]:
    return {"carrier": row.carrier, "waybill": row.waybill, "status": row.status,
            "last_event_at": row.last_event_at.isoformat() if row.last_event_at else None, "last_events": last}


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
        await conn.execute(update(ORDERS).where(ORDERS.c.id == order_id).values(tracking=_summary(
            row, [{"at": r.at.isoformat(), "text": r.text, "place": r.place} for r in last])))

    async def store_events(self, carrier: str, events: Sequence[TrackEvent], now: datetime) -> StoredBatch:
        """A whole batch in one transaction with a constant number of round trips (not one per waybill): look up
        the shipments, insert the new events (ON CONFLICT DO NOTHING RETURNING counts them), recompute the state of
        the shipments that got new events in one UPDATE, mirror them into `orders.tracking`, read what is unapplied.
        """
        s, e = SHIPMENTS.c, EVENTS.c
        waybills = sorted({ev.waybill for ev in events})
        batch = StoredBatch()
        if not waybills:
            return batch
        async with self.engine.begin() as conn:
            found = (await conn.execute(select(s.id, s.waybill).where(s.carrier == carrier,
                                                                      s.waybill.in_(waybills)))).all()
            ids = {r.waybill: r.id for r in found}
            batch.unknown = [w for w in waybills if w not in ids]
            if not ids:
                return batch
            rows: dict[tuple[int, str], dict[str, Any]] = {}
            for ev in events:
                if (sid := ids.get(ev.waybill)) is not None:
                    rows[(sid, event_key(ev))] = {
                        "shipment_id": sid, "event_key": event_key(ev), "at": ev.at, "status": ev.status.value,
                        "code": ev.code[:16], "text": ev.text, "place": ev.place[:200], "applied": False,
                        "received_at": now}
            inserted = (await conn.execute(self._insert(EVENTS).on_conflict_do_nothing(
                index_elements=["shipment_id", "event_key"]).returning(e.shipment_id), list(rows.values()))).all()
            batch.new = len(inserted)
            changed = sorted({r.shipment_id for r in inserted})
            if changed:
                await self._refresh_many(conn, changed)
            shown = (await conn.execute(select(SHIPMENTS, ORDERS.c.stage.label("order_stage"))
                                        .join(ORDERS, ORDERS.c.id == s.order_id)
                                        .where(s.id.in_(list(ids.values()))))).all()
            batch.shipments = {r.id: _shipment(r) for r in shown}
            batch.order_stages = {r.id: r.order_stage for r in shown}
            by_id = batch.shipments
            pending = (await conn.execute(select(EVENTS).where(e.shipment_id.in_(list(by_id)), e.applied.is_(False))
                                          .order_by(e.at, e.id))).all()
            batch.pending = [(by_id[r.shipment_id], StoredEvent(r.id, _event(carrier, by_id[r.shipment_id].waybill,
                                                                              r))) for r in pending]
        return batch

    async def _refresh_many(self, conn: AsyncConnection, shipment_ids: list[int]) -> None:
        """Recompute status, pickup, delivery and last scan of these shipments from their events (one UPDATE with
        correlated subqueries), then rewrite their orders' `tracking` summary (one read, one executemany)."""
        e = EVENTS.c
        mine = e.shipment_id == SHIPMENTS.c.id
        await conn.execute(update(SHIPMENTS).where(SHIPMENTS.c.id.in_(shipment_ids)).values(
            status=select(e.status).where(mine).order_by(e.at.desc(), e.id.desc()).limit(1).scalar_subquery(),
            last_event_at=select(func.max(e.at)).where(mine).scalar_subquery(),
            picked_up_at=select(func.min(e.at)).where(mine).scalar_subquery(),
            delivered_at=select(func.min(e.at)).where(mine, e.status == TrackStatus.DELIVERED.value)
            .scalar_subquery()))
        rank = func.row_number().over(partition_by=e.shipment_id, order_by=(e.at.desc(), e.id.desc())).label("rank")
        recent = select(e.shipment_id, e.at, e.text, e.place, rank).where(e.shipment_id.in_(shipment_ids)).subquery()
        last = (await conn.execute(select(recent).where(recent.c.rank <= 3)
                                   .order_by(recent.c.shipment_id, recent.c.rank))).all()
        lines: dict[int, list[dict[str, Any]]] = {}
        for r in last:
            lines.setdefault(r.shipment_id, []).append({"at": r.at.isoformat(), "text": r.text, "place": r.place})
        ships = (await conn.execute(select(SHIPMENTS).where(SHIPMENTS.c.id.in_(shipment_ids)))).all()
        await conn.execute(update(ORDERS).where(ORDERS.c.id == bindparam("oid")).values(tracking=bindparam("t")),
                           [{"oid": r.order_id, "t": _summary(r, lines.get(r.id, []))} for r in ships])

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
        return await fetch_all(self.engine, select(SHIPMENTS).where(
            s.delivered_at.is_(None), or_(s.status.is_(None), s.status.not_in(_DONE)),
            or_(s.last_event_at.is_(None), s.last_event_at < quiet_since),
            or_(s.last_polled_at.is_(None), s.last_polled_at < polled_before))
            .order_by(s.last_polled_at.is_not(None), s.last_polled_at, s.id).limit(limit), _shipment)

    async def mark_polled(self, shipment_id: int, now: datetime) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(SHIPMENTS).where(SHIPMENTS.c.id == shipment_id).values(last_polled_at=now))

    async def stalled_after_pickup(self, quiet_since: datetime, limit: int) -> list[Shipment]:
        s = SHIPMENTS.c
        return await fetch_all(self.engine, select(SHIPMENTS).where(
            and_(s.picked_up_at.is_not(None), s.delivered_at.is_(None), s.status.not_in(_DONE),
                 s.last_event_at < quiet_since)).order_by(s.last_event_at).limit(limit), _shipment)

    async def transit_facts(self, since: datetime) -> list[tuple[str, str | None, datetime, datetime]]:
        """(carrier, region, picked up, delivered) of shipments delivered since `since`: carrier performance."""
        s = SHIPMENTS.c
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(s.carrier, ORDERS.c.region, s.picked_up_at, s.delivered_at)
                                       .join(ORDERS, ORDERS.c.id == s.order_id)
                                       .where(s.delivered_at >= since, s.picked_up_at.is_not(None)))).all()
        return [(r.carrier, r.region, r.picked_up_at, r.delivered_at) for r in rows]
