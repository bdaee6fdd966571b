"""Refunds in chat, for customers: "我要退款 TM123 原因", or the "申请退款" button under their order's status reply
(then a reason button), starts one — only for an order the customer proved is theirs; a photo sent while a refund
waits for its proof is that proof. All call handlers.refunds; the customer's answer for each step is the refund's own
message (sent through the outbox)."""

from __future__ import annotations

import re

from engine.refund_text import rt
from engine.refunds import MAX_PROOF_BYTES
from engine.text import t
from engine.tokens import Action, ActionToken, sign
from handlers.chat import (
    Button,
    ButtonPressed,
    Card,
    FileTooLarge,
    FileUnavailable,
    Outgoing,
    PhotoReceived,
    Sender,
    TextReceived,
)
from handlers.chat_context import ChatContext
from handlers.chat_ports import ChatOrderView
from handlers.queries import best_match, own_orders
from handlers.refunds import RefundError, attach_proof, request_refund
from handlers.replies import send, toast

ACTIONS = frozenset({Action.REFUND_START})
REASONS = ("changed_mind", "wrong_size", "quality", "too_slow")  # the reason buttons (token refs), in order

_REQUEST = re.compile(r"^\s*(?:我要退款|申请退款|退款申请|/?refund)\s*([A-Za-z0-9][A-Za-z0-9:_-]{1,63})?\s*(.*)$",
                      re.IGNORECASE | re.DOTALL)


async def _say(ctx: ChatContext, chat_platform: str, chat_id: str, text: str) -> None:
    await send(ctx.channel(chat_platform), Outgoing(chat_id=chat_id, text=text))


async def handle_text(event: TextReceived, ctx: ChatContext) -> bool:
    """A customer's refund request; False when the text is not one (other handlers take it)."""
    m = _REQUEST.match(event.text)
    if m is None or ctx.refunds is None:
        return False
    sender, lang = event.sender, ctx.language
    if await ctx.staff(sender) is not None:
        return False  # staff request refunds through the API or the CLI, where the amount is given
    number, reason = m.group(1), m.group(2).strip()
    views = await own_orders(ctx, sender)
    if not views:
        return False  # not verified yet: the status flow asks them to prove their phone first
    view = best_match(number, views) if number else (views[0] if len(views) == 1 else None)
    if view is None:
        await _say(ctx, sender.platform, sender.chat_id, rt("err.order", lang, order=number or "?"))
        return True
    ext = view.order.data.external_id
    if not reason:
        hint = f"我要退款 {ext} <原因>" if lang == "zh" else f"refund {ext} <reason>"
        await _say(ctx, sender.platform, sender.chat_id, rt("ask.reason", lang, order=ext) + "\n" + hint)
        return True
    await _request(ctx, sender, view, reason[:500])
    return True


async def _request(ctx: ChatContext, sender: Sender, view: ChatOrderView, reason: str) -> None:
    """The customer's refund of their order, through the one request use case; its answer is the refund's message."""
    try:
        await request_refund(ctx.refunds, str(view.order.id), amount=None, reason=reason,
                             requested_by=f"customer:{view.order.data.customer.id}", source="chat",
                             now=ctx.clock.now(), notify=(sender.platform, sender.chat_id),
                             actor=f"{sender.platform}:{sender.user_id}")
    except RefundError as exc:
        await _say(ctx, sender.platform, sender.chat_id, rt("err.generic", ctx.language, detail=str(exc)))


async def on_button(event: ButtonPressed, tok: ActionToken, ctx: ChatContext) -> None:
    """The status reply's "申请退款" (no ref): the reason buttons; a reason button (ref = its code): the request.
    Only the customer's own orders; staff request refunds with the amount, through the API or the CLI."""
    sender, lang = event.sender, ctx.language
    channel = ctx.channel(sender.platform)
    if ctx.refunds is None or await ctx.staff(sender) is not None:
        await toast(channel, event.callback_id, t("toast.stale", lang), alert=True)
        return
    mine = {v.order.id: v for v in await own_orders(ctx, sender) or []}
    view = mine.get(tok.id)
    if view is None:
        await toast(channel, event.callback_id, t("toast.not_found", lang), alert=True)
        return
    if tok.ref and tok.ref not in REASONS:
        await toast(channel, event.callback_id, t("toast.stale", lang), alert=True)
        return
    await toast(channel, event.callback_id, "")
    ext = view.order.data.external_id
    if not tok.ref:
        buttons = tuple(Button(rt(f"reason.{r}", lang), sign(ctx.token_key, Action.REFUND_START, view.order.id, r))
                        for r in REASONS)
        card = Card(rt("btn.pick_reason", lang, order=ext), status=rt("btn.other_reason", lang, order=ext),
                    buttons=buttons)
        await send(channel, Outgoing(chat_id=sender.chat_id, card=card))
        return
    await _request(ctx, sender, view, rt(f"reason.{tok.ref}", lang))


async def handle_photo(event: PhotoReceived, ctx: ChatContext) -> None:
    """The proof of the sender's refund waiting for one; files are checked by size and content before storing."""
    sender, lang = event.sender, ctx.language
    if ctx.refunds is None:
        return
    refund = await ctx.refunds.refunds.waiting_proof_for_chat(sender.platform, sender.chat_id)
    if refund is None:
        return  # a photo nobody asked for: nothing to do with it
    too_big = rt("proof.bad_file", lang, detail=rt("proof.too_big", lang))
    if event.size is not None and event.size > MAX_PROOF_BYTES:
        await _say(ctx, sender.platform, sender.chat_id, too_big)
        return
    channel = ctx.channel(sender.platform)
    download = getattr(channel, "download", None)
    if download is None:
        return
    try:
        data = await download(event.file_ref, MAX_PROOF_BYTES)
    except FileTooLarge:
        await _say(ctx, sender.platform, sender.chat_id, too_big)
        return
    except FileUnavailable:
        await _say(ctx, sender.platform, sender.chat_id, rt("proof.bad_file", lang, detail=rt("proof.gone", lang)))
        return
    try:
        await attach_proof(ctx.refunds, refund.id, data, f"{sender.platform}:{sender.user_id}", ctx.clock.now())
    except RefundError as exc:
        if exc.code == "file_too_large":
            text = too_big
        else:
            detail = rt("proof.not_image", lang) if exc.code == "unsupported_file" else str(exc)
            text = rt("proof.bad_file", lang, detail=detail)
        await _say(ctx, sender.platform, sender.chat_id, text)
