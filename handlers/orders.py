"""Use cases on one stored order and the store port they need (read, list, move, add a note), shared by the HTTP
API, the board, the chat and the CLI.

`plan_move` (+ `transition`, which reads the order and applies the plan) is where every move of a stored order that
a person or a follow-up asks for is checked: the API, the board, the stall card's Advance button, approval
decisions, a full refund's cancellation and a carrier's shipped/delivered (also when the CLI ships). Intake's own
moves — a new order confirmed at once, an update re-planned — are planned by handlers/intake.py with the rules of
intake instead. Either way `storage.order_moves.apply_move`, a compare-and-set on the current stage, is the one
storage function that writes the stage (tests/test_architecture.py enforces it), so two moves never undo each other.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

from engine.order import Order
from engine.rules.owners import OwnerNeed
from engine.rules.routing import DEFAULT_WORK_ORDER_FORMAT
from engine.stages import END_STATES, BOARD, Stage, TransitionError, check_transition

log = logging.getLogger(__name__)


@dataclass(slots=True)
class OrderDetail:
    """One order as the HTTP API and the board's drawer show it: the engine's Order plus its stored bookkeeping."""

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
    pending_confirmations: int = 0  # pending requests of a kind that gates confirmation (engine.approvals)
    owner_user_id: int | None = None
    owner_name: str | None = None  # the owner's user name
    notes: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class OrderQuery:
    stage: Stage | None = None
    city: str | None = None
    min_amount: Decimal | None = None
    priority: int | None = None  # at least this priority
    stalled_at: datetime | None = None  # only orders past their stage deadline at this time
    flagged: bool | None = None  # only flagged (True) / unflagged (False) orders; None: both
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Move:
    """One planned transition of a stored order, applied by compare-and-set on `from_stage`."""

    order_id: int
    from_stage: Stage
    to_stage: Stage
    actor: str
    reason: str
    deadline: datetime | None
    manual: bool = False  # counts toward the manual-intervention KPI
    # confirming (pending_confirm → designing): the local day and the rules' format of the production work-order
    # number storage gives the order if it has a production base and no number yet
    work_order: tuple[date, str] | None = None
    # what the rules' `owners:` rows ask for the stage entered (engine.rules.owners); storage picks and writes the
    # owner in the move's transaction. None: no row, the owner stays.
    owner: OwnerNeed | None = None


class OrderEvents(Protocol):
    """Where stored moves and decisions are announced (the board's live feed: storage.board_repo.RedisBoardEvents).

    Storage announces every move `storage.order_moves.apply_move` made, and every decision, after its commit,
    whoever made it (API, chat, CLI, carrier, intake, board): see `announce`."""

    async def publish(self, event: dict[str, Any]) -> None: ...


def moved_event(move: Move, region: str | None) -> dict[str, Any]:
    return {"kind": "moved", "order_id": move.order_id, "stage": move.to_stage.value, "region": region,
            "by": move.actor}


async def announce(events: OrderEvents | None, pending: list[dict[str, Any]]) -> None:
    """Publish what a committed transaction did. Never raises: the change is stored, and a board that missed the
    event reloads on reconnect."""
    if events is None:
        pending.clear()
        return
    while pending:
        event = pending.pop(0)
        try:
            await events.publish(event)
        except Exception as exc:
            log.warning("order event not published (%s): %s", event.get("kind"), exc)


class OrderNotFound(LookupError):
    pass


class MoveRefused(ValueError):
    """A move the business forbids right now (not a stage-machine error): e.g. an approval is still pending.

    `code` names the reason for chat text (`move.<code>` in engine.text) and API clients; `MoveRefused(detail)`
    alone is a refusal without a code of its own ("refused")."""

    def __init__(self, code: str, detail: str | None = None) -> None:
        if detail is None:
            code, detail = "refused", code
        self.code = code
        super().__init__(detail)


class Deadlines(Protocol):
    """The SLA rules' stage deadline (engine.rules.RuleSet has this method)."""

    def deadline_for(self, order: Order, stage: Stage, entered_at: datetime) -> datetime | None: ...


class OrderStore(Protocol):
    async def get(self, ref: str, *, with_history: bool = True) -> OrderDetail | None: ...

    async def list(self, query: OrderQuery) -> tuple[int, list[OrderDetail]]: ...

    async def move(self, move: Move, now: datetime) -> bool:
        """Compare-and-set on the current stage; records the transition and an audit entry, resets the snooze, sets
        `completed_at`, the manual-intervention flag, and closes a cancelled order's pending approvals (their cards
        are edited). False if the stage changed meanwhile."""
        ...

    async def add_note(self, order_id: int, text: str, author: str, category: str | None, score: float | None,
                       now: datetime) -> int: ...


def is_routine(current: Stage, target: Stage) -> bool:
    """A routine move is one step forward on the board; cancelling is a human intervention."""
    return target in BOARD and BOARD.index(target) == BOARD.index(current) + 1


def plan_move(order: Order, to: str, reason: str, actor: str, now: datetime, rules: Deadlines, *,
              pending_confirmations: int, by_approval: int | None = None, base: str | None = None) -> Move:
    """Every check a move of a stored order gets, wherever it comes from; the Move to apply, or an exception.

    - the stage machine (TransitionError names the allowed next stages);
    - the approval guard: an order waiting in pending_confirm for a confirmation request goes to designing only by
      that request's decision (`by_approval`, whose caller has made sure no level is left pending);
    - a cancellation needs a reason; the deadline of the new stage comes from the SLA rules;
    - anything but one routine step forward counts as a manual intervention;
    - the owner the rules' `owners:` rows ask for the new stage (`base`: the order's production base).
    """
    current = order.stage
    target = check_transition(current, to)
    if (current is Stage.PENDING_CONFIRM and target is Stage.DESIGNING and pending_confirmations
            and by_approval is None):
        raise MoveRefused("awaiting_approval",
                          "the order is waiting for approval; only the approval's decision confirms it "
                          "(in chat, POST /api/approvals/{id}/decision or `orderhub approvals approve`)")
    if target is Stage.CANCELLED and not reason.strip():
        raise MoveRefused("reason_required", "cancelling an order needs a reason")
    moved = replace(order, stage=target, stage_entered_at=now)
    deadline = None if target in END_STATES else rules.deadline_for(moved, target, now)
    manual = by_approval is None and not is_routine(current, target)
    work_order = None
    if current is Stage.PENDING_CONFIRM and target is Stage.DESIGNING:
        work_order = work_order_plan(rules, now)
    owner_for = getattr(rules, "owner_need_for", None)
    owner = owner_for(moved, target, base) if callable(owner_for) and target not in END_STATES else None
    return Move(order.id, current, target, actor, reason, deadline, manual=manual, work_order=work_order, owner=owner)


def work_order_plan(rules: object, now: datetime) -> tuple[date, str]:
    """(local day, number format) of a confirmation: the rules' time zone and `routing.work_order_format`."""
    tz = getattr(rules, "tz", None)
    model = getattr(rules, "model", None)
    fmt = getattr(getattr(model, "routing", None), "work_order_format", None) or DEFAULT_WORK_ORDER_FORMAT
    return (now.astimezone(tz).date() if tz is not None else now.date()), fmt


async def transition(store: OrderStore, rules: Deadlines, ref: str, to: str, reason: str, actor: str,
                     now: datetime) -> OrderDetail:
    """Move an order one stage on (or cancel it); raises TransitionError naming the allowed next stages, or
    MoveRefused (approval pending, no reason for a cancellation, the order changed meanwhile)."""
    detail = await store.get(ref, with_history=False)
    if detail is None:
        raise OrderNotFound(ref)
    move = plan_move(detail.order, to, reason, actor, now, rules,
                     pending_confirmations=detail.pending_confirmations, base=detail.production_base)
    if not await store.move(move, now):
        raise MoveRefused("changed", "the order changed while you were moving it; look again and retry")
    updated = await store.get(str(detail.order.id))
    assert updated is not None
    return updated


__all__ = ["OrderDetail", "OrderQuery", "Move", "OrderEvents", "moved_event", "announce", "OrderNotFound", "MoveRefused", "OrderStore", "Deadlines",
           "plan_move", "transition", "TransitionError"]
