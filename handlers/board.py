"""What the web board reads, as plain types: a filter, a card, and the storage port that answers them.

The board package (board/) renders these; storage (storage/board_repo.py) fills them; neither imports the other,
both import this module. Moves and decisions are not here: the board calls the one move use case
(`handlers.orders.transition`) and the approval decision the chat button uses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from engine.stages import BOARD, Stage

COLUMNS: tuple[Stage, ...] = BOARD[:-1]  # the six working stages; completed orders leave the board
MAX_TEXT = 64  # free-text filter bound


@dataclass(frozen=True, slots=True)
class BoardFilter:
    """The board's filters, plus the viewer's scope (`regions`: None = every region)."""

    city: str | None = None
    region: str | None = None
    min_amount: Decimal | None = None
    max_amount: Decimal | None = None
    priority: int | None = None  # at least this priority
    flagged: bool = False
    stalled: bool = False
    owner: str | None = None  # user name
    q: str | None = None  # order number, customer name, city or phone digits
    regions: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class BoardCard:
    id: int
    channel: str
    external_id: str
    customer_name: str
    customer_phone: str
    city: str
    region: str | None
    amount: Decimal
    currency: str
    priority: int
    flagged: bool
    stage: Stage
    created_at: datetime
    stage_entered_at: datetime
    stage_deadline: datetime | None
    owner: str | None = None
    pending_approvals: int = 0
    tracking_status: str | None = None
    refund_open: bool = False  # a refund of the order is still being handled
    extra_badges: tuple[str, ...] = field(default_factory=tuple)  # hook for badges that come later

    def stalled_for(self, now: datetime) -> timedelta | None:
        """How long past its stage deadline, None when not stalled."""
        if self.stage_deadline is None or self.stage_deadline >= now:
            return None
        return now - self.stage_deadline


class BoardSource(Protocol):
    async def counts(self, f: BoardFilter, now: datetime) -> dict[Stage, int]:
        """Cards per column under the filter."""
        ...

    async def cards(self, f: BoardFilter, now: datetime, stages: Sequence[Stage], offset: int,
                    limit: int) -> dict[Stage, list[BoardCard]]:
        """One page of each column, by priority (highest first) then age (oldest first)."""
        ...

    async def card(self, order_id: int) -> BoardCard | None: ...

    async def owners(self, regions: tuple[str, ...] | None = None) -> list[str]:
        """Names that own at least one open order in `regions` (None: any region): the owner filter's choices."""
        ...


class LoginLinks(Protocol):
    """Issues the board's one-time sign-in links (board.auth.BoardAuth); the chat's `/board` command uses it."""

    async def login_link(self, user_id: int, now: datetime) -> str: ...


class NonceStore(Protocol):
    """One-use sign-in nonces with a time to live (Redis SET NX EX / GETDEL)."""

    async def issue(self, nonce: str, ttl_s: int) -> None: ...

    async def alive(self, nonce: str) -> bool: ...

    async def consume(self, nonce: str) -> bool:
        """True exactly once per issued nonce, and only before it expires."""
        ...


class BoardEvents(Protocol):
    """Change events shared by every api process (Redis pub/sub)."""

    async def publish(self, event: dict[str, Any]) -> None: ...

    def subscribe(self) -> AsyncIterator[dict[str, Any]]: ...
