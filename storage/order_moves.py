"""The one place the stage of a stored order is written (tests/test_architecture.py holds every other module to it).

`apply_move` is a compare-and-set on the current stage, inside the caller's transaction, so a decision and its move,
or an intake update and its auto-confirmation, commit together or not at all. Each applied move adds its change
event to the caller's `announced` list, which the caller publishes after its commit (handlers.orders.announce), so
every move reaches the open boards whatever its entry point, and none that rolled back does. Intake's INSERT of a new order sets
its first stage; that is creation, not a move.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.rules.routing import work_order_no
from engine.stages import Stage
from handlers.orders import Move, moved_event
from handlers.outbox_kinds import approval_outcome
from storage.models import ApprovalRow, AuditRow, OrderRow, OutboxRow, StageTransitionRow, WorkOrderCounterRow
from storage.outbox_rows import outbox_values
from storage.owners import assign_owner

ORDERS, TRANSITIONS, AUDIT = OrderRow.__table__, StageTransitionRow.__table__, AuditRow.__table__
APPROVALS, OUTBOX, COUNTERS = ApprovalRow.__table__, OutboxRow.__table__, WorkOrderCounterRow.__table__


def _insert_ignore(conn: AsyncConnection) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


async def _assign_work_order(conn: AsyncConnection, order_id: int, base: str, day: date, fmt: str) -> str:
    """Draw the base's next number for `day` with one atomic upsert…RETURNING (the counter row is locked until the
    caller commits, so concurrent confirmations queue on it and never share a number) and write it on the order."""
    stmt = _insert_ignore(conn)(COUNTERS).values(base=base, day=day, seq=1)
    stmt = stmt.on_conflict_do_update(index_elements=["base", "day"], set_={"seq": COUNTERS.c.seq + 1})
    seq = (await conn.execute(stmt.returning(COUNTERS.c.seq))).scalar_one()
    number = work_order_no(base, day, int(seq), fmt)
    await conn.execute(update(ORDERS).where(ORDERS.c.id == order_id).values(work_order_no=number))
    return number


async def apply_move(conn: AsyncConnection, move: Move, now: datetime, announced: list[dict[str, Any]]) -> bool:
    """Apply a planned move (handlers.orders.plan_move); False if the order is no longer in `move.from_stage`.

    Writes the stage, its entry time and deadline, clears the snooze, sets `completed_at` on completion and the
    manual-intervention flag; records the transition and an audit entry. A cancelled order's pending approvals are
    closed (superseded) and every copy of their cards is edited by the notifier's `approval_outcome` job.
    """
    values: dict[str, Any] = {"stage": move.to_stage.value, "stage_entered_at": now, "stage_deadline": move.deadline,
                              "updated_at": now, "snoozed_until": None}
    if move.to_stage is Stage.COMPLETED:
        values["completed_at"] = now
    if move.manual:
        values["manual_intervention"] = True
    row = (await conn.execute(update(ORDERS).where(
        ORDERS.c.id == move.order_id, ORDERS.c.stage == move.from_stage.value).values(**values)
        .returning(ORDERS.c.region, ORDERS.c.production_base, ORDERS.c.work_order_no))).first()
    if row is None:
        return False
    if move.work_order is not None and row.production_base and not row.work_order_no:
        await _assign_work_order(conn, move.order_id, row.production_base, *move.work_order)
    if move.owner is not None:  # the owner the rules ask for the stage entered, in this same transaction
        await assign_owner(conn, move.order_id, move.owner, now)
    announced.append(moved_event(move, row.region))
    await conn.execute(insert(TRANSITIONS).values(
        order_id=move.order_id, at=now, from_stage=move.from_stage.value, to_stage=move.to_stage.value,
        actor=move.actor, reason=move.reason))
    await conn.execute(insert(AUDIT).values(
        at=now, actor=move.actor, action="order.moved", subject=f"order:{move.order_id}",
        detail={"from": move.from_stage.value, "to": move.to_stage.value, "reason": move.reason}))
    if move.to_stage is Stage.CANCELLED:
        closed = (await conn.execute(
            update(APPROVALS).where(APPROVALS.c.order_id == move.order_id, APPROVALS.c.status == "pending")
            .values(status="superseded", decided_by="system", decided_at=now, reason="order cancelled")
            .returning(APPROVALS.c.id))).scalars().all()
        if closed:
            await conn.execute(_insert_ignore(conn)(OUTBOX).on_conflict_do_nothing(index_elements=["dedup_key"]), [
                outbox_values(approval_outcome(i, now), now) for i in closed])
    return True
