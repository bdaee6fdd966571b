"""Stock at the edges of routing: the levels intake passes to the engine as facts, and the automatic 库存不足 note.

The engine decides (`Decisions.out_of_stock`: SKUs known short at every base that could make the order); this use
case turns that into an exception note through `handlers.notes.record_note`, the same path as a person's note, so
the classifier files it under stock_shortage and trend counting sees it. One note per order, ever: the note is
written only if the order has no automatic stock note yet, so a redelivered or re-planned order never doubles it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from engine.rules import RuleSet
from handlers.chat_ports import OutboxStore
from handlers.notes import NoteWriter, TrendNotes, record_note

log = logging.getLogger("orderhub.stock")
AUTHOR = "system:stock"  # the author of automatic stock notes; also how "already noted" is recognised
CATCH_UP = timedelta(days=1)  # how far back the leader's sweep looks for an order whose note was never written
MAX_QUANTITY = 1_000_000_000  # units of one SKU at one base; anything above is a typo or an attack

OrderKey = tuple[str, str]  # (channel, external_id)


class StockLevels(Protocol):
    async def levels(self, skus: Sequence[str]) -> dict[str, int]:
        """Units on hand as the engine reads them: `"<base>:<sku>"` → quantity, for the known pairs of these SKUs."""
        ...


class StockNoteStore(Protocol):
    async def order_ids(self, keys: Sequence[OrderKey]) -> dict[OrderKey, int]: ...

    async def has_note_by(self, order_id: int, author: str) -> bool: ...

    async def short_without_note(self, since: datetime, author: str) -> list[tuple[OrderKey, tuple[str, ...]]]:
        """Recently changed open orders whose stored decision is "short everywhere", without a note by `author`."""
        ...


@dataclass(frozen=True, slots=True)
class StockNoteDeps:
    store: StockNoteStore
    writer: NoteWriter
    trends: TrendNotes
    outbox: OutboxStore
    language: str = "zh"


def note_text(skus: Iterable[str], language: str = "zh") -> str:
    """The note's text. The English one keeps the Chinese words too: the classifier's library is Chinese, and the
    note must be filed under 库存不足 whatever the language."""
    listed = "、".join(skus) if language == "zh" else ", ".join(skus)
    if language == "zh":
        return f"库存不足：{listed} 在所有可生产的基地都缺货，无法分配生产基地"
    return f"Out of stock (库存不足, 缺货): {listed} is short at every base that makes it; no production base assigned"


async def note_out_of_stock(deps: StockNoteDeps, rules: RuleSet, short: Sequence[tuple[OrderKey, tuple[str, ...]]],
                            now: datetime) -> int:
    """Record the 库存不足 note on each stored order of `short` that has none yet; returns how many were written."""
    if not short:
        return 0
    ids = await deps.store.order_ids([k for k, _ in short])
    written = 0
    for key, skus in short:
        order_id = ids.get(key)
        if order_id is None or await deps.store.has_note_by(order_id, AUTHOR):
            continue
        await record_note(deps.writer, deps.trends, deps.outbox, rules, order_id, note_text(skus, deps.language),
                          AUTHOR, now)
        written += 1
    return written


async def catch_up_notes(deps: StockNoteDeps, rules: RuleSet, now: datetime, window: timedelta = CATCH_UP) -> int:
    """Write the notes intake owed but never wrote: the note follows the intake commit, so a process that dies in
    between (or a database hiccup then) leaves the order stored and acknowledged without it, and a redelivery is a
    duplicate that plans nothing. The leader runs this every few minutes; `note_out_of_stock` keeps it to one."""
    short = await deps.store.short_without_note(now - window, AUTHOR)
    written = await note_out_of_stock(deps, rules, short, now)
    if written:
        log.info("wrote %d 库存不足 note(s) intake had left unwritten", written)
    return written
