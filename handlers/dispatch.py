"""The single entry point of the chat core: a platform adapter turns its input into a neutral event and calls
`handle_event(event, ctx)`. Everything after that is written once, for every platform.

`ChatContext` is built once by the composition root (bot/) and shared by all events; its fields are stable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.text import t
from engine.tokens import TokenError, verify
from handlers.board import LoginLinks
from handlers.chat import (ButtonPressed, ChatChannel, CommandReceived, ContactShared, InboundEvent, PhotoReceived,
                           TextReceived)
from handlers.chat_ports import AttemptLimiter, ChatRepo, DeadlinePolicy, OutboxDelivery
from handlers.ports import Clock
from handlers.replies import toast


@dataclass(slots=True)
class ChatContext:
    """What every chat handler may use: fields, and one lookup (`channel`).

    channels:  one ChatChannel per platform name ("telegram", "wecom", "console"); replies go to the channel of
               the event's `sender.platform`, card edits after a decision go to every platform holding a copy.
    repo:      storage (storage.chat_repo.SqlChatRepo).
    clock:     `now()` in UTC; frozen in tests.
    token_key: server secret signing button tokens (engine.tokens).
    limiter:   failed customer verification tries (storage.rate_limit.RedisAttemptLimiter).
    deadlines: the SLA rules' stage deadlines (engine.rules.RuleSet), used when a button advances an order.
    delivery:  the Notifier, to push outbox rows (card edits) out right away; None leaves them to the sweep.
    language:  "zh" (default) or "en".
    timezone:  how times are shown to people.
    login_links: the web board's one-time sign-in links (`/board`); None: the board is not offered.
    """

    channels: Mapping[str, ChatChannel]
    repo: ChatRepo
    clock: Clock
    token_key: bytes
    limiter: AttemptLimiter
    deadlines: DeadlinePolicy
    delivery: OutboxDelivery | None = None
    language: str = "zh"
    timezone: str = "Asia/Shanghai"
    tracking: Any = None  # handlers.tracking_chat.TrackingChat: /ship and /track; None when not wired
    login_links: LoginLinks | None = None
    on_refund: Any = None  # handlers.refunds.on_finance_decided bound to its deps (see handlers.approvals.Deciders)
    refunds: Any = None  # handlers.refunds.RefundDeps: customers' refund requests and proof photos in chat

    def channel(self, platform: str) -> ChatChannel:
        return self.channels[platform]


async def handle_event(event: InboundEvent, ctx: ChatContext) -> None:
    """Route one inbound event to its use case. Bad input never raises: the person is told instead."""
    # local: the use cases import this module for ChatContext
    from handlers import approvals, queries, refund_chat, stalls, tracking_chat

    match event:
        case ButtonPressed():
            try:
                tok = verify(ctx.token_key, event.token)
            except TokenError as exc:
                channel = ctx.channel(event.sender.platform)
                await toast(channel, event.callback_id, t(f"toast.{exc.reason}", ctx.language), alert=True)
                return
            if tok.action in approvals.ACTIONS:
                await approvals.on_button(event, tok, ctx)
            elif tok.action in stalls.ACTIONS:
                await stalls.on_button(event, tok, ctx)
            else:
                await queries.on_button(event, tok, ctx)
        case CommandReceived() if event.command in tracking_chat.COMMANDS:
            await tracking_chat.handle_command(event, ctx)
        case CommandReceived():
            await queries.handle_command(event, ctx)
        case ContactShared():
            await queries.handle_contact(event, ctx)
        case TextReceived():
            if not await approvals.handle_reason_reply(event, ctx) and not await refund_chat.handle_text(event, ctx):
                await queries.handle_text(event, ctx)
        case PhotoReceived():
            await refund_chat.handle_photo(event, ctx)
