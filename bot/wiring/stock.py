"""The intake processor's stock parts: the stock table as routing facts, and the 库存不足 note after a commit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from engine.rules import RuleSet
from handlers.orders import OrderEvents
from handlers.stock import StockNoteDeps, note_out_of_stock
from storage.chat_repo import SqlChatRepo
from storage.notes_repo import SqlTrendNotes
from storage.orders_repo import SqlOrders
from storage.stock_repo import SqlStock


def stock_intake(db: AsyncEngine, events: OrderEvents | None, language: str) -> dict[str, Any]:
    """Keyword arguments for `IntakeProcessor`: `stock` and `on_out_of_stock`."""
    stock = SqlStock(db)
    deps = StockNoteDeps(stock, SqlOrders(db, events), SqlTrendNotes(db), SqlChatRepo(db, events), language)

    async def on_out_of_stock(short: list[tuple[tuple[str, str], tuple[str, ...]]], rules: RuleSet,
                              now: datetime) -> int:
        return await note_out_of_stock(deps, rules, short, now)

    return {"stock": stock, "on_out_of_stock": on_out_of_stock}
