"""What the board needs from the outside, handed in by the composition root (bot/wiring/board.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from engine.approvals import Approval
from engine.rules import RuleSet
from handlers.board import BoardEvents, BoardSource
from handlers.chat_ports import UserInfo
from handlers.note_learning import NoteLearning
from handlers.orders import OrderDetail, OrderStore
from handlers.refunds import Refund
from handlers.ports import Clock

from board.auth import BoardAuth


class Directory(Protocol):
    """Users and approvals as the chat core reads them (storage.chat_repo.SqlChatRepo)."""

    async def user(self, user_id: int) -> UserInfo | None: ...

    async def approvals_of_order(self, order_id: int) -> list[Approval]: ...

    async def approval(self, approval_id: int) -> Approval | None: ...


# (user, approval id, "approve" | "reject", reason) -> an outcome code: "approved", "rejected", "not_permitted",
# "own_request", "already_decided", "superseded", "reason_required", "not_found"
Decide = Callable[[UserInfo, int, str, str], Awaitable[str]]
# (order, text, author) -> the stored note as the API answers it
AddNote = Callable[[OrderDetail, str, str], Awaitable[dict[str, Any]]]
# order id -> its refunds, oldest first (storage.refunds_repo.SqlRefunds.of_order)
RefundsOf = Callable[[int], Awaitable[list[Refund]]]


@dataclass
class BoardServices:
    source: BoardSource
    orders: OrderStore
    directory: Directory
    decide: Decide
    add_note: AddNote
    events: BoardEvents
    auth: BoardAuth
    rules: Callable[[], RuleSet]
    clock: Clock
    language: str = "zh"
    timezone: str = "Asia/Shanghai"
    secure_cookies: bool = False
    page_size: int = 30  # cards per column and page; "load more" fetches the next page
    badge_hooks: Sequence[Callable[[Any], Sequence[str]]] = ()  # later features add badges here (card -> labels)
    notes: NoteLearning | None = None  # the note correction use case; None: the drawer offers no correction
    refunds: RefundsOf | None = None  # None: the drawer has no refunds section
