"""Wiring of the web board: its services over storage, the chat core's approval decision, the change events.

    board = build_board(runtime, chat_ctx)          # chat_ctx: the process's ChatContext (edits the chat cards)
    services.mounts.append(("/board", board))       # mounted by webhooks.app.create_app
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from board.app import create_board
from board.auth import BoardAuth, derive_key
from board.services import BoardServices
from engine.approvals import Verdict
from handlers import approvals as approval_cases
from handlers.board import BoardEvents
from handlers.chat_ports import UserInfo
from handlers.chat_context import ChatContext
from handlers.orders import OrderDetail
from storage.board_repo import RedisBoardEvents, RedisNonces, SqlBoard
from storage.orders_repo import SqlOrders

if TYPE_CHECKING:
    from bot.wiring.runtime import Runtime

DEFAULT_BASE_URL = "http://127.0.0.1:8000"


async def decide_approval(ctx: ChatContext, user: UserInfo, approval_id: int, verdict: str, reason: str) -> str:
    """A decision from the board: the one decide use case the chat button, the API and the CLI call (role, region,
    four-eyes, level order, first decision wins); the card edits go out through the chat core's delivery."""
    try:
        await approval_cases.decide(approval_cases.deciders(ctx), approval_id, user,
                                    Verdict.APPROVE if verdict == "approve" else Verdict.REJECT, reason,
                                    ctx.clock.now())
    except approval_cases.DecisionRefused as refused:
        return refused.reason.value
    return "approved" if verdict == "approve" else "rejected"


def board_auth(runtime: Runtime) -> BoardAuth:
    from bot.wiring.chat import chat_token_key

    base = runtime.settings.public_url or DEFAULT_BASE_URL
    return BoardAuth(derive_key(chat_token_key(runtime.settings)), RedisNonces(runtime.redis), base)


def build_board(runtime: Runtime, ctx: ChatContext, *, events: BoardEvents | None = None) -> FastAPI:
    """The board app over this runtime's database and Redis; decisions go through `ctx` (the chat core)."""
    from bot.wiring.api_backend import SqlApiBackend
    from bot.wiring.notes import note_learning
    from storage.notes_repo import SqlTrendNotes
    from storage.refunds_repo import SqlRefunds
    from storage.reports_repo import SqlReports

    s = runtime.settings
    events = events or RedisBoardEvents(runtime.redis)
    orders = SqlOrders(runtime.db, events)  # the board's moves; the chat core's repo announces its decisions
    notes = SqlApiBackend(orders, runtime.users, SqlReports(runtime.db), runtime.clock, runtime.current_rules,
                          SqlTrendNotes(runtime.db), ctx.repo, s.language)

    async def add_note(detail: OrderDetail, text: str, author: str) -> dict[str, Any]:
        return await notes.add_note(detail, text, author)

    async def decide(user: UserInfo, approval_id: int, verdict: str, reason: str) -> str:
        return await decide_approval(ctx, user, approval_id, verdict, reason)

    services = BoardServices(
        source=SqlBoard(runtime.db), orders=orders, directory=ctx.repo, decide=decide, add_note=add_note,  # type: ignore[arg-type]
        events=events, auth=board_auth(runtime), rules=runtime.current_rules, clock=runtime.clock,
        language=s.language, timezone=s.timezone, secure_cookies=(s.public_url or "").startswith("https://"),
        notes=note_learning(runtime.db, runtime.current_rules, events), refunds=SqlRefunds(runtime.db).of_order,
    )
    return create_board(services)
