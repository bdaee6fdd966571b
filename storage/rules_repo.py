"""Rule versions, the `rules_invalid` admin alert, and the order reads the rules CLI needs (rows ⇄ engine types)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.order import Order
from engine.rules.facts import Facts
from handlers.chat_ports import NewOutbox
from handlers.outbox_kinds import admin_notice, rules_invalid
from handlers.outbox_kinds import rules_invalid_key as invalid_dedup_key
from storage.models import ExceptionNoteRow, OrderRow, OutboxRow, RuleVersionRow, StageTransitionRow, StockRow
from storage.orders_repo import order_from_row, transition_from_row
from storage.outbox_rows import outbox_values

__all__ = ["RulesRepo", "StoredVersion", "invalid_dedup_key"]


@dataclass(frozen=True, slots=True)
class StoredVersion:
    hash: str
    text: str
    source_path: str
    loaded_at: datetime
    loaded_by: str


class RulesRepo:
    """Async repository; one short transaction per call so a slow caller never holds a lock."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    # --- rule versions ----------------------------------------------------------------------------------------------

    async def record_version(self, *, version: str, text: str, source_path: str, loaded_by: str, now: datetime) -> bool:
        """Store a loaded version once (by hash), with every file it was loaded from. Returns True if it was new."""
        async with self._sessions() as s:
            known = await s.scalar(select(RuleVersionRow).where(RuleVersionRow.hash == version))
            if known is not None:
                # the same content loaded from another file (a copy of the bundled example as ./rules.yaml): the
                # version says every file it came from, so `rules versions` names the one in effect too
                if source_path not in known.source_path.split("; "):
                    known.source_path = f"{known.source_path}; {source_path}"
                    await s.commit()
                return False
            s.add(RuleVersionRow(hash=version, loaded_at=now, loaded_by=loaded_by[:64], source_path=source_path, text=text))
            try:
                await s.commit()
            except IntegrityError:  # another process stored the same version first
                await s.rollback()
                return False
            return True

    async def get_version(self, version: str) -> StoredVersion | None:
        async with self._sessions() as s:
            row = await s.scalar(select(RuleVersionRow).where(RuleVersionRow.hash == version))
            return None if row is None else _version(row)

    async def find_version(self, prefix: str) -> list[StoredVersion]:
        """Versions whose hash starts with `prefix` (people type the first 8-12 characters)."""
        if not prefix or any(c not in "0123456789abcdef" for c in prefix.lower()):
            return []
        async with self._sessions() as s:
            rows = await s.scalars(
                select(RuleVersionRow).where(RuleVersionRow.hash.startswith(prefix.lower())).order_by(RuleVersionRow.id).limit(5)
            )
            return [_version(r) for r in rows]

    async def latest_version(self) -> StoredVersion | None:
        async with self._sessions() as s:
            row = await s.scalar(select(RuleVersionRow).order_by(RuleVersionRow.loaded_at.desc(), RuleVersionRow.id.desc()).limit(1))
            return None if row is None else _version(row)

    async def list_versions(self) -> list[StoredVersion]:
        async with self._sessions() as s:
            rows = await s.scalars(select(RuleVersionRow).order_by(RuleVersionRow.loaded_at, RuleVersionRow.id))
            return [_version(r) for r in rows]

    # --- admin alert ------------------------------------------------------------------------------------------------

    async def record_notice(self, *, key: str, text: str, now: datetime) -> bool:
        """Queue one plain-text admin notice under dedup `key`, ever (across restarts and processes). True if new."""
        return await self._queue_once(admin_notice(key, text, now), now)

    async def record_invalid(self, *, sha256: str, error: str, path: str, now: datetime, error_zh: str | None = None) -> bool:
        """Queue one admin alert per broken file content (dedup key `rules_invalid:<sha256>`). True if new.

        payload: {"error": English report, "error_zh": Chinese report, "path": file}; the notifier picks the language.
        """
        return await self._queue_once(rules_invalid(sha256, error, error_zh or error, path, now), now)

    async def _queue_once(self, row: NewOutbox, now: datetime) -> bool:
        """The row, unless its dedup key was ever queued (by this or another process). True if new."""
        async with self._sessions() as s:
            if await s.scalar(select(OutboxRow.id).where(OutboxRow.dedup_key == row.dedup_key)) is not None:
                return False
            s.add(OutboxRow(**outbox_values(row, now)))
            try:
                await s.commit()
            except IntegrityError:  # another process queued it first
                await s.rollback()
                return False
            return True

    # --- orders for explain / diff -----------------------------------------------------------------------------------

    async def find_order(self, ref: str) -> Order | None:
        """`ref` is an internal id (digits) or `channel:external_id`."""
        async with self._sessions() as s:
            if ref.isdigit():
                row = await s.get(OrderRow, int(ref))
            elif ":" in ref:
                channel, external_id = ref.split(":", 1)
                row = await s.scalar(
                    select(OrderRow).where(OrderRow.channel == channel, OrderRow.external_id == external_id)
                )
            else:
                return None
            if row is None:
                return None
            history = await s.scalars(
                select(StageTransitionRow).where(StageTransitionRow.order_id == row.id).order_by(StageTransitionRow.at)
            )
            return order_from_row(row, [transition_from_row(h) for h in history])

    async def stored_decisions(self, order_id: int) -> tuple[str | None, dict | None]:
        async with self._sessions() as s:
            row = await s.get(OrderRow, order_id)
            return (None, None) if row is None else (row.rules_version, row.decisions)

    async def orders_created_since(self, since: datetime, limit: int = 200_000) -> list[Order]:
        async with self._sessions() as s:
            rows = await s.scalars(
                select(OrderRow).where(OrderRow.created_at >= since).order_by(OrderRow.created_at).limit(limit)
            )
            return [order_from_row(r) for r in rows]

    async def facts_for(self, orders: Sequence[Order], now: datetime, *, stock: bool = False) -> dict[int, Facts]:
        """History facts for many orders in three grouped queries (not three per order). With `stock`, also the
        stock levels of their SKUs (the stock table, as intake passes them when `routing.use_stock`)."""
        if not orders:
            return {}
        ids = [o.id for o in orders]
        customers = sorted({o.data.customer.id for o in orders})
        since = now - timedelta(days=30)
        async with self._sessions() as s:
            complaints = dict(
                (
                    await s.execute(
                        select(OrderRow.customer_id, func.count(ExceptionNoteRow.id))
                        .join(ExceptionNoteRow, ExceptionNoteRow.order_id == OrderRow.id)
                        .where(
                            OrderRow.customer_id.in_(customers),
                            ExceptionNoteRow.kind == "complaint",
                            ExceptionNoteRow.at >= since,
                        )
                        .group_by(OrderRow.customer_id)
                    )
                ).all()
            )
            notes = dict(
                (
                    await s.execute(
                        select(ExceptionNoteRow.order_id, func.count(ExceptionNoteRow.id))
                        .where(ExceptionNoteRow.order_id.in_(ids), ExceptionNoteRow.at >= since)
                        .group_by(ExceptionNoteRow.order_id)
                    )
                ).all()
            )
            created = (
                await s.execute(
                    select(OrderRow.customer_id, OrderRow.created_at).where(OrderRow.customer_id.in_(customers))
                )
            ).all()
        by_customer: dict[str, list[datetime]] = {}
        for cid, at in created:
            by_customer.setdefault(cid, []).append(at)
        by_sku: dict[str, list[tuple[str, int]]] = {}
        if stock:
            skus = sorted({i.sku for o in orders for i in o.data.items})
            async with self._sessions() as s:
                for i in range(0, len(skus), 500):
                    rows = await s.execute(select(StockRow.sku, StockRow.base, StockRow.quantity)
                                           .where(StockRow.sku.in_(skus[i:i + 500])))
                    for sku, base, q in rows:
                        by_sku.setdefault(sku, []).append((f"{base}:{sku}", int(q)))
        out = {}
        for o in orders:
            cid = o.data.customer.id
            prev = sum(1 for at in by_customer.get(cid, ()) if at < o.data.created_at)
            out[o.id] = Facts(
                complaints_30d=int(complaints.get(cid, 0)),
                previous_orders=prev,
                exception_notes_30d=int(notes.get(o.id, 0)),
                stock={k: q for i in o.data.items for k, q in by_sku.get(i.sku, ())},
            )
        return out


def _version(row: RuleVersionRow) -> StoredVersion:
    return StoredVersion(row.hash, row.text, row.source_path, row.loaded_at, row.loaded_by)


