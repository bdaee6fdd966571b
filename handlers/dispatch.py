"""The single entry point of the chat core: a platform adapter turns its input into a neutral event and calls
`handle_event(event, ctx)`. Everything after that is written once, for every platform.

`ChatContext` (handlers.chat_context) is built once by the composition root (bot/) and shared by all events.
"""

from __future__ import annotations

from engine.text import t
from engine.tokens import TokenError, verify
from handlers import alert_groups, approvals, carrier_switch, note_chat, owner_chat, queries, refund_chat, stalls
from handlers import tracking_chat
from handlers.chat import ButtonPressed, CommandReceived, ContactShared, InboundEvent, PhotoReceived, TextReceived
from handlers.chat_context import ChatContext
from handlers.replies import toast

# The chat flows that own buttons, each with its `ACTIONS` and `on_button`; any other action is a query's.
BUTTON_FLOWS = (approvals, stalls, note_chat, carrier_switch, refund_chat, alert_groups, owner_chat)


async def handle_event(event: InboundEvent, ctx: ChatContext) -> None:
    """Route one inbound event to its use case. Bad input never raises: the person is told instead."""
    match event:
        case ButtonPressed():
            try:
                tok = verify(ctx.token_key, event.token)
            except TokenError as exc:
                channel = ctx.channel(event.sender.platform)
                await toast(channel, event.callback_id, t(f"toast.{exc.reason}", ctx.language), alert=True)
                return
            owner = next((flow for flow in BUTTON_FLOWS if tok.action in flow.ACTIONS), queries)
            await owner.on_button(event, tok, ctx)
        case CommandReceived() if event.command in note_chat.COMMANDS:
            await note_chat.handle_command(event, ctx)
        case CommandReceived() if event.command in tracking_chat.COMMANDS:
            await tracking_chat.handle_command(event, ctx)
        case CommandReceived() if event.command in owner_chat.COMMANDS:
            await owner_chat.handle_command(event, ctx)
        case CommandReceived():
            await queries.handle_command(event, ctx)
        case ContactShared():
            await queries.handle_contact(event, ctx)
        case TextReceived():
            if not await approvals.handle_reason_reply(event, ctx) and not await refund_chat.handle_text(event, ctx) \
                    and not await note_chat.handle_text(event, ctx):
                await queries.handle_text(event, ctx)
        case PhotoReceived():
            await refund_chat.handle_photo(event, ctx)
