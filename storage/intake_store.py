"""The intake store: one unit of work per batch, on SQLite/any dialect (storage.intake_unit) or, on PostgreSQL with
asyncpg, the same unit with array-bound batch statements (storage.intake_store_pg).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from handlers.intake import StoredOrderStamp, HistoryAsk, OrderKey, IntakePlan, StoredHistory
from handlers.orders import OrderEvents, announce
from handlers.ports import StoreUnavailable
from storage.intake_store_pg import PgIntakeUnit
from storage.intake_unit import SqlIntakeUnit, is_unavailable


class SqlIntakeStore:
    def __init__(self, engine: AsyncEngine, clock: Any, events: OrderEvents | None = None) -> None:
        self.engine, self.clock, self.events = engine, clock, events
        self._unit: type[SqlIntakeUnit] = SqlIntakeUnit
        if engine.dialect.name == "postgresql" and engine.dialect.driver == "asyncpg":
            self._unit = PgIntakeUnit

    async def known(self, keys: list[OrderKey]) -> dict[OrderKey, StoredOrderStamp]:
        """The unit's lookup on a connection of its own, outside any transaction (AUTOCOMMIT: one read, no BEGIN and
        ROLLBACK round trips around it)."""
        try:
            async with self.engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                return await self._unit(conn, self.clock.now()).existing(keys)
        except Exception as exc:
            if is_unavailable(exc):
                raise StoreUnavailable(str(exc)) from exc
            raise

    async def history(self, asked: list[HistoryAsk], since: datetime) -> dict[int, StoredHistory]:
        """The batch's facts lookup (`HISTORY_SQL`), one statement on a connection of its own like `known`."""
        if not asked:
            return {}
        try:
            async with self.engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                return await self._unit(conn, self.clock.now()).history(asked, since)
        except Exception as exc:
            if is_unavailable(exc):
                raise StoreUnavailable(str(exc)) from exc
            raise

    def encode_new(self, plans: list[IntakePlan], now: datetime) -> object | None:
        return self._unit.encode(plans, now)

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[SqlIntakeUnit]:
        try:
            async with self.engine.begin() as conn:
                unit = self._unit(conn, self.clock.now())
                yield unit
        except Exception as exc:
            if is_unavailable(exc):
                raise StoreUnavailable(str(exc)) from exc
            raise
        await announce(self.events, unit.announced)  # committed: the auto-confirmations reach the boards
