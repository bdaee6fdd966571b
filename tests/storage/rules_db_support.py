"""A throwaway SQLite database with the schema, and a way to store orders the way intake does (for rules tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from engine.order import Order
from storage.models import Base, ExceptionNoteRow, OrderRow


@asynccontextmanager
async def temp_db(path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    try:
        yield async_sessionmaker(engine, expire_on_commit=False)
    finally:
        await engine.dispose()


async def store_order(sessions: async_sessionmaker[AsyncSession], o: Order, *, now: datetime,
                      decisions: dict | None = None, rules_version: str | None = None) -> int:
    d = o.data
    async with sessions() as s:
        row = OrderRow(
            channel=o.channel, external_id=d.external_id, created_at=d.created_at, received_at=now, updated_at=now,
            customer_id=d.customer.id, customer_name=d.customer.name, customer_phone=d.customer.phone,
            customer_city=d.customer.city, customer_tier=d.customer.tier, region=o.region, amount=d.amount,
            currency=d.currency, items=[i.model_dump(mode="json") for i in d.items], custom_fields=d.custom_fields,
            notes=d.notes, payload_hash="x" * 32, stage=o.stage.value, stage_entered_at=o.stage_entered_at,
            stage_deadline=None, priority=0, decisions=decisions, rules_version=rules_version,
        )
        s.add(row)
        await s.commit()
        return row.id


async def add_note(sessions: async_sessionmaker[AsyncSession], order_id: int, at: datetime, kind: str = "complaint") -> None:
    async with sessions() as s:
        s.add(ExceptionNoteRow(order_id=order_id, at=at, author="客服", text="客户投诉", kind=kind))
        await s.commit()
