"""Grouped stall cards in the database: held alerts, open groups, and each group step as one compare-and-set
transaction, so two schedulers (or a leader killed mid-step and its successor) take every step exactly once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from handlers.chat_ports import AlertGroup, HeldAlert, NewOutbox, OutboxItem
from storage.models import AlertGroupRow, OutboxRow
from storage.queries import fetch_all, fetch_one

GROUPS, OUTBOX = AlertGroupRow.__table__, OutboxRow.__table__


def insert_ignore(engine: AsyncEngine, table: Any, index: list[str]) -> Any:
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing(index_elements=index)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing(index_elements=index)


def _group(row: Any) -> AlertGroup:
    return AlertGroup(row.id, row.group_key, row.labels or {}, row.first_at, row.last_sent_at, row.shown, row.version,
                      row.card_outbox_id, row.recipient_user_id, row.recipient_role, row.recipient_region)


def outbox_item(row: Any) -> OutboxItem:
    return OutboxItem(
        id=row.id, dedup_key=row.dedup_key, kind=row.kind, due_at=row.due_at, payload=row.payload or {},
        status=row.status, attempts=row.attempts, recipient_user_id=row.recipient_user_id,
        recipient_role=row.recipient_role, recipient_region=row.recipient_region, last_error=row.last_error,
        group_id=row.group_id,
    )


class SqlAlertGroups:
    """Implements `handlers.chat_ports.AlertGroupStore`; mixed into `SqlChatRepo`."""

    engine: AsyncEngine

    async def _join_group(self, conn: AsyncConnection, held: HeldAlert, now: datetime) -> int:
        """The open group of the alert's key (opened if none), its version bumped: a group step decided before this
        alert joined (a close above all) then fails its compare-and-set instead of closing over the new alert."""
        a = held.alert
        for _ in range(5):
            await conn.execute(insert_ignore(self.engine, GROUPS, ["open_key"]).values(
                group_key=held.group_key, open_key=held.group_key, recipient_user_id=a.recipient_user_id,
                recipient_role=a.recipient_role, recipient_region=a.recipient_region, labels=dict(held.labels),
                first_at=now, last_sent_at=None, shown=0, version=0, card_outbox_id=None, closed_at=None))
            gid = (await conn.execute(select(GROUPS.c.id).where(GROUPS.c.open_key == held.group_key))).scalar()
            if gid is None:
                continue  # closed between the two statements: open a new one
            bumped = await conn.execute(update(GROUPS).where(GROUPS.c.id == gid, GROUPS.c.open_key.is_not(None))
                                        .values(version=GROUPS.c.version + 1))
            if bumped.rowcount == 1:
                return int(gid)
        raise RuntimeError(f"alert group {held.group_key!r} keeps closing under a new alert")

    async def hold_alerts(self, alerts: Sequence[HeldAlert], now: datetime) -> list[int]:
        ids: list[int] = []
        async with self.engine.begin() as conn:
            for held in alerts:
                a = held.alert
                exists = (await conn.execute(select(OUTBOX.c.id).where(OUTBOX.c.dedup_key == a.dedup_key))).first()
                if exists is not None:
                    continue  # sent or held before: never a second time
                gid = await self._join_group(conn, held, now)
                new_id = (await conn.execute(insert_ignore(self.engine, OUTBOX, ["dedup_key"]).values(
                    dedup_key=a.dedup_key, kind=a.kind, created_at=now, due_at=a.due_at,
                    recipient_user_id=a.recipient_user_id, recipient_role=a.recipient_role,
                    recipient_region=a.recipient_region, payload=dict(a.payload), status="held", attempts=0,
                    group_id=gid).returning(OUTBOX.c.id))).scalar()
                if new_id is not None:
                    ids.append(int(new_id))
        return ids

    async def open_groups(self, limit: int = 500) -> list[AlertGroup]:
        return await fetch_all(self.engine, select(GROUPS).where(GROUPS.c.open_key.is_not(None))
            .order_by(GROUPS.c.id).limit(limit), _group)

    async def alert_group(self, group_id: int) -> AlertGroup | None:
        return await fetch_one(self.engine, select(GROUPS).where(GROUPS.c.id == group_id), _group)

    async def group_members(self, group_id: int) -> list[OutboxItem]:
        return await fetch_all(self.engine, select(OUTBOX).where(OUTBOX.c.group_id == group_id)
            .order_by(OUTBOX.c.id), outbox_item)

    async def advance_group(self, group_id: int, expected_version: int, now: datetime, *, card: NewOutbox | None,
                            show_ids: Sequence[int], single_id: int | None = None) -> int | None:
        async with self.engine.begin() as conn:
            taken = await conn.execute(update(GROUPS).where(GROUPS.c.id == group_id,
                                                            GROUPS.c.version == expected_version)
                                       .values(version=expected_version + 1, last_sent_at=now,
                                               shown=GROUPS.c.shown + len(show_ids)))
            if taken.rowcount != 1:
                return None  # another scheduler took this step
            card_id = single_id
            if card is not None:
                card_id = (await conn.execute(insert_ignore(self.engine, OUTBOX, ["dedup_key"]).values(
                    dedup_key=card.dedup_key, kind=card.kind, created_at=now, due_at=card.due_at,
                    recipient_user_id=card.recipient_user_id, recipient_role=card.recipient_role,
                    recipient_region=card.recipient_region, payload=dict(card.payload), status="pending",
                    attempts=0).returning(OUTBOX.c.id))).scalar()
                if card_id is None:  # the key exists: the version check above makes this unreachable; be safe
                    raise RuntimeError(f"group card {card.dedup_key} already queued")
            if single_id is not None:
                await conn.execute(update(OUTBOX).where(OUTBOX.c.id == single_id, OUTBOX.c.status == "held")
                                   .values(status="pending", due_at=now))
            rest = [i for i in show_ids if i != single_id]
            if rest:
                await conn.execute(update(OUTBOX).where(OUTBOX.c.id.in_(rest), OUTBOX.c.status == "held")
                                   .values(status="grouped", sent_at=now))
            if card is None or card.payload.get("mode") != "edit":
                await conn.execute(update(GROUPS).where(GROUPS.c.id == group_id).values(card_outbox_id=card_id))
            return int(card_id) if card_id is not None else None

    async def close_group(self, group_id: int, expected_version: int, now: datetime) -> bool:
        async with self.engine.begin() as conn:
            done = await conn.execute(update(GROUPS).where(GROUPS.c.id == group_id,
                                                           GROUPS.c.version == expected_version,
                                                           GROUPS.c.open_key.is_not(None))
                                      .values(open_key=None, closed_at=now, version=expected_version + 1))
            if done.rowcount != 1:
                return False
            await conn.execute(update(OUTBOX).where(OUTBOX.c.group_id == group_id, OUTBOX.c.status == "held")
                               .values(status="cancelled"))
            return True

    async def defer_outbox(self, outbox_id: int, due_at: datetime, note: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(OUTBOX).where(OUTBOX.c.id == outbox_id).values(
                due_at=due_at, last_error=note, claimed_by=None, claimed_until=None))  # free when it falls due
