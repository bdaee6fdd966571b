"""Staff use cases on one order, shared by the HTTP API and the chat commands: read, move, annotate."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from engine.order import Order
from engine.rules import RuleSet
from engine.stages import END_STATES, BOARD, Stage, TransitionError, check_transition


@dataclass(slots=True)
class OrderDetail:
    order: Order
    payload_hash: str
    received_at: datetime
    updated_at: datetime
    production_base: str | None = None
    work_order_no: str | None = None
    tracking: dict[str, Any] | None = None
    flagged: bool = False
    decisions: dict[str, Any] | None = None
    rules_version: str | None = None
    completed_at: datetime | None = None
    pending_approvals: int = 0
    notes: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class OrderQuery:
    stage: Stage | None = None
    city: str | None = None
    min_amount: Decimal | None = None
    priority: int | None = None  # at least this priority
    stalled_at: datetime | None = None  # only orders past their stage deadline at this time
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Move:
    order_id: int
    from_stage: Stage
    to_stage: Stage
    deadline: datetime | None
    actor: str
    reason: str
    manual: bool  # counts toward the manual-intervention KPI


class OrderNotFound(LookupError):
    pass


class MoveRefused(ValueError):
    """A move the business forbids right now (not a stage-machine error): e.g. an approval is still pending."""


class OrderStore(Protocol):
    async def get(self, ref: str, *, with_history: bool = True) -> OrderDetail | None: ...

    async def list(self, query: OrderQuery) -> tuple[int, list[OrderDetail]]: ...

    async def move(self, move: Move, now: datetime) -> bool:
        """Compare-and-set on the current stage; records the transition. False if the stage changed meanwhile."""
        ...

    async def add_note(self, order_id: int, text: str, author: str, category: str | None, score: float | None,
                       now: datetime) -> int: ...


def is_routine(current: Stage, target: Stage) -> bool:
    """A routine move is one step forward on the board; cancelling is a human intervention."""
    return target in BOARD and BOARD.index(target) == BOARD.index(current) + 1


async def transition(store: OrderStore, rules: RuleSet, ref: str, to: str, reason: str, actor: str,
                     now: datetime) -> OrderDetail:
    """Move an order one stage on (or cancel it); raises TransitionError naming the allowed next stages."""
    detail = await store.get(ref, with_history=False)
    if detail is None:
        raise OrderNotFound(ref)
    current = detail.order.stage
    target = check_transition(current, to)
    if current is Stage.PENDING_CONFIRM and target is Stage.DESIGNING and detail.pending_approvals:
        raise MoveRefused("the order is waiting for approval; approve it in chat or on /api/approvals")
    if target is Stage.CANCELLED and not reason.strip():
        raise MoveRefused("cancelling an order needs a reason")
    moved = replace(detail.order, stage=target, stage_entered_at=now)
    deadline = None if target in END_STATES else rules.deadline_for(moved, target, now)
    move = Move(moved.id, current, target, deadline, actor, reason, manual=not is_routine(current, target))
    if not await store.move(move, now):
        raise MoveRefused("the order changed while you were moving it; look again and retry")
    updated = await store.get(str(moved.id))
    assert updated is not None
    return updated


__all__ = ["OrderDetail", "OrderQuery", "Move", "OrderNotFound", "MoveRefused", "OrderStore", "transition",
           "TransitionError"]
