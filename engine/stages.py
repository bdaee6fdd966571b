"""The six-stage board of the business plus two end states, and the rules for moving between them."""

from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    PENDING_CONFIRM = "pending_confirm"
    DESIGNING = "designing"
    ORDERED = "ordered"
    IN_PRODUCTION = "in_production"
    SHIPPED = "shipped"
    AWAITING_INSTALL = "awaiting_install"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


BOARD: tuple[Stage, ...] = (
    Stage.PENDING_CONFIRM,
    Stage.DESIGNING,
    Stage.ORDERED,
    Stage.IN_PRODUCTION,
    Stage.SHIPPED,
    Stage.AWAITING_INSTALL,
    Stage.COMPLETED,
)
END_STATES = frozenset({Stage.COMPLETED, Stage.CANCELLED})

LABELS: dict[str, dict[Stage, str]] = {
    "zh": {
        Stage.PENDING_CONFIRM: "待确认",
        Stage.DESIGNING: "设计中",
        Stage.ORDERED: "已下单",
        Stage.IN_PRODUCTION: "生产中",
        Stage.SHIPPED: "已发货",
        Stage.AWAITING_INSTALL: "待安装",
        Stage.COMPLETED: "已完成",
        Stage.CANCELLED: "已取消",
    },
    "en": {
        Stage.PENDING_CONFIRM: "Pending confirmation",
        Stage.DESIGNING: "Designing",
        Stage.ORDERED: "Ordered",
        Stage.IN_PRODUCTION: "In production",
        Stage.SHIPPED: "Shipped",
        Stage.AWAITING_INSTALL: "Awaiting installation",
        Stage.COMPLETED: "Completed",
        Stage.CANCELLED: "Cancelled",
    },
}


class TransitionError(ValueError):
    """A move the stage machine refuses; carries the allowed next stages for the error message."""

    def __init__(self, current: Stage, target: str, allowed: tuple[Stage, ...]) -> None:
        self.current = current
        self.target = target
        self.allowed = allowed
        names = ", ".join(s.value for s in allowed) or "none (end state)"
        super().__init__(f"cannot move from {current.value} to {target}; allowed next stages: {names}")


def label(stage: Stage | str, language: str = "zh") -> str:
    return LABELS.get(language, LABELS["zh"])[Stage(stage)]


def allowed_next(current: Stage) -> tuple[Stage, ...]:
    """Forward one stage at a time, or cancel; end states go nowhere."""
    if current in END_STATES:
        return ()
    nxt = BOARD[BOARD.index(current) + 1]
    return (nxt, Stage.CANCELLED)


def check_transition(current: Stage | str, target: str) -> Stage:
    """Return the target stage if the move is allowed, else raise TransitionError naming the allowed ones."""
    cur = Stage(current)
    allowed = allowed_next(cur)
    try:
        to = Stage(target)
    except ValueError:
        raise TransitionError(cur, target, allowed) from None
    if to not in allowed:
        raise TransitionError(cur, target, allowed)
    return to
