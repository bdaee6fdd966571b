"""Corrected note categories as stored examples, and which order a chat card was about (notes from chat).

A correction is one transaction: the note's category, its example (one per note, a later correction replaces it)
and the audit row, so a correction is never half made.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from handlers.orders import OrderEvents, announce
from storage.models import AuditRow, ExceptionNoteRow, MessageRefRow, NoteExampleRow, OrderRow, OutboxRow

NOTES, ORDERS, EXAMPLES, AUDIT = (ExceptionNoteRow.__table__, OrderRow.__table__, NoteExampleRow.__table__,
                                  AuditRow.__table__)
REFS, OUTBOX = MessageRefRow.__table__, OutboxRow.__table__
EXAMPLES_MAX = 5000  # newest examples the classifier reads; older ones are still exported
CARD_KINDS = ("stall_alert", "approval_request", "note_review")  # cards about one order, whose payload names it


@dataclass(frozen=True, slots=True)
class NoteInfo:
    id: int
    order_id: int
    order_ref: str
    text: str
    category: str | None
    score: float | None
    region: str | None
    owner_user_id: int | None


async def read_examples(conn: AsyncConnection, limit: int = EXAMPLES_MAX) -> list[tuple[str, str]]:
    rows = (await conn.execute(select(EXAMPLES.c.text, EXAMPLES.c.category)
                               .order_by(EXAMPLES.c.id.desc()).limit(limit))).all()
    return [(r.text, r.category) for r in rows]


class SqlNoteLearning:
    """Implements `handlers.note_learning.NoteLearningStore`; `events` (the board's live feed) hears each
    correction after its commit, from whichever entrance (API, chat button, board, CLI) made it."""

    def __init__(self, engine: AsyncEngine, events: OrderEvents | None = None) -> None:
        self.engine = engine
        self.events = events

    async def note(self, note_id: int) -> NoteInfo | None:
        stmt = (select(NOTES.c.id, NOTES.c.order_id, NOTES.c.text, NOTES.c.category, NOTES.c.score, ORDERS.c.channel,
                       ORDERS.c.external_id, ORDERS.c.region, ORDERS.c.owner_user_id)
                .join(ORDERS, ORDERS.c.id == NOTES.c.order_id)
                .where(NOTES.c.id == note_id, NOTES.c.kind == "exception"))
        async with self.engine.connect() as conn:
            r = (await conn.execute(stmt)).first()
        if r is None:
            return None
        return NoteInfo(r.id, r.order_id, f"{r.channel}:{r.external_id}", r.text, r.category, r.score, r.region,
                        r.owner_user_id)

    async def relabel(self, note: NoteInfo, category: str, actor: str, via: str, rules_version: str,
                      library_version: str, now: datetime) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(NOTES).where(NOTES.c.id == note.id).values(category=category, score=1.0))
            await conn.execute(delete(EXAMPLES).where(EXAMPLES.c.note_id == note.id))
            await conn.execute(insert(EXAMPLES).values(
                note_id=note.id, text=note.text, category=category, previous=note.category, corrected_by=actor[:64],
                at=now, rules_version=rules_version[:64], library_version=library_version[:16]))
            await conn.execute(insert(AUDIT).values(
                at=now, actor=actor[:64], action="note_relabel", subject=f"note:{note.id}",
                detail={"order_id": note.order_id, "from": note.category, "to": category, "via": via}))
        await announce(self.events, [{"kind": "relabelled", "order_id": note.order_id, "region": note.region,
                                      "by": actor, "note_id": note.id, "category": category}])

    async def examples(self, limit: int = EXAMPLES_MAX) -> list[tuple[str, str]]:
        async with self.engine.connect() as conn:
            return await read_examples(conn, limit)

    async def export(self) -> list[dict[str, Any]]:
        """Every example, oldest first, with who taught it and on which rules and library versions."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(EXAMPLES).order_by(EXAMPLES.c.id))).all()
        return [{"note_id": r.note_id, "text": r.text, "category": r.category, "previous": r.previous,
                 "corrected_by": r.corrected_by, "at": r.at.isoformat(), "rules_version": r.rules_version,
                 "library_version": r.library_version} for r in rows]

    async def card_order(self, platform: str, chat_id: str, message_id: str) -> int | None:
        """The order of the card our bot sent as message `message_id` in that chat (a reply to it is about it)."""
        stmt = (select(OUTBOX.c.kind, OUTBOX.c.payload).join(REFS, REFS.c.outbox_id == OUTBOX.c.id)
                .where(REFS.c.platform == platform, REFS.c.chat_id == chat_id, REFS.c.message_id == message_id))
        async with self.engine.connect() as conn:
            row = (await conn.execute(stmt)).first()
        return _order_of(row)

    async def recent_card_order(self, platform: str, chat_id: str, since: datetime) -> int | None:
        """The order of the newest one-order card sent to that chat since `since` (WeCom has no reply-to)."""
        stmt = (select(OUTBOX.c.kind, OUTBOX.c.payload).join(REFS, REFS.c.outbox_id == OUTBOX.c.id)
                .where(REFS.c.platform == platform, REFS.c.chat_id == chat_id, REFS.c.sent_at >= since,
                       OUTBOX.c.kind.in_(CARD_KINDS))
                .order_by(REFS.c.sent_at.desc(), REFS.c.id.desc()).limit(1))
        async with self.engine.connect() as conn:
            row = (await conn.execute(stmt)).first()
        return _order_of(row)


def _order_of(row: Any) -> int | None:
    if row is None or row.kind not in CARD_KINDS or not isinstance(row.payload, dict):
        return None
    value = row.payload.get("order_id")
    return int(value) if isinstance(value, int) or (isinstance(value, str) and value.isdigit()) else None
