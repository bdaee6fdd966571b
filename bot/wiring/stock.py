"""The intake processor's stock parts: the stock table as routing facts, and the 库存不足 note after a commit (and
the leader's sweep for a note a crash left unwritten)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from engine.rules import RuleSet
from handlers.orders import OrderEvents
from handlers.ports import Clock
from handlers.stock import StockNoteDeps, catch_up_notes, note_out_of_stock
from storage.chat_repo import SqlChatRepo
from storage.notes_repo import SqlTrendNotes
from storage.orders_repo import SqlOrders
from storage.stock_repo import SqlStock


def _note_deps(db: AsyncEngine, events: OrderEvents | None, language: str) -> StockNoteDeps:
    return StockNoteDeps(SqlStock(db), SqlOrders(db, events), SqlTrendNotes(db), SqlChatRepo(db, events), language)


def stock_intake(db: AsyncEngine, events: OrderEvents | None, language: str) -> dict[str, Any]:
    """Keyword arguments for `IntakeProcessor`: `stock` and `on_out_of_stock`."""
    deps = _note_deps(db, events, language)

    async def on_out_of_stock(short: list[tuple[tuple[str, str], tuple[str, ...]]], rules: RuleSet,
                              now: datetime) -> int:
        return await note_out_of_stock(deps, rules, short, now)

    return {"stock": SqlStock(db), "on_out_of_stock": on_out_of_stock}


def stock_note_sweep(db: AsyncEngine, events: OrderEvents | None, language: str, rules: Callable[[], RuleSet],
                     clock: Clock) -> Callable[[], Awaitable[int]]:
    """The leader-only job writing the notes intake left unwritten (handlers.stock.catch_up_notes)."""
    deps = _note_deps(db, events, language)

    async def sweep() -> int:
        return await catch_up_notes(deps, rules(), clock.now())

    return sweep
