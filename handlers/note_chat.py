"""Exception notes from chat: `/note ORDER text`, a reply to an alert card (Telegram), or on WeCom (no reply-to)
the next message after an alert card. Each goes through the one note use case (handlers.notes.record_note, as the
API's notes route) and is answered with its category and a Correct button; the Correct menu and the low-confidence
card's buttons go through the one correction use case (handlers.note_learning.relabel).

Only staff who may act on the order (engine.access) add notes; customers never do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from engine.access import Viewer, may_act_on_order
from engine.note_learning import may_correct, resolve_ref
from engine.note_text import nt
from engine.order import check_text
from engine.text import t
from engine.tokens import Action, ActionToken
from handlers.chat import ButtonPressed, CommandReceived, Outgoing, SendError, Sender, TextReceived
from handlers.chat_ports import ChatOrderView, OutboxStore, UserInfo
from handlers.note_cards import note_menu_card, note_reply_card, relabelled_card
from handlers.note_learning import NoteLearning, RelabelRefused, relabel
from handlers.notes import REVIEW_KIND, NoteWriter, TrendNotes, category_names, record_note
from handlers.replies import send, toast
from handlers.chat_context import ChatContext

COMMANDS = ("note",)
ACTIONS = frozenset({Action.NOTE_MENU, Action.NOTE_SET})
NOTE_MAX = 2000  # as the API's notes route
FOLLOW_UP = timedelta(minutes=15)  # WeCom: a message this soon after an alert card is a note on its order
_BARE_REF = re.compile(r"^[A-Za-z0-9:_\-]{2,64}$")  # just an order number: the order lookup, not a note
FOLLOW_UP_MIN_CHARS = 4  # "好的", "收到", "ok": an acknowledgement, not a note


class CardLookup(Protocol):
    async def card_order(self, platform: str, chat_id: str, message_id: str) -> int | None: ...

    async def recent_card_order(self, platform: str, chat_id: str, since: Any) -> int | None: ...


@dataclass(slots=True)
class NoteChat:
    """What the note handlers need, built by the composition root (bot/wiring/notes.py)."""

    writer: NoteWriter
    trends: TrendNotes
    outbox: OutboxStore
    learning: NoteLearning
    cards: CardLookup


def _follow_up_text(text: str) -> bool:
    """Whether a WeCom message after a card reads like a note: not just an order number, not a short "收到"."""
    text = text.strip()
    return len("".join(text.split())) >= FOLLOW_UP_MIN_CHARS and not _BARE_REF.match(text)


def _viewer(user: UserInfo) -> Viewer:
    return Viewer(user.id, user.role, tuple(user.regions))


async def handle_command(event: CommandReceived, ctx: ChatContext) -> None:
    """`/note ORDER text…`"""
    sender, lang = event.sender, ctx.language
    if (user := await ctx.staff_only(sender)) is None:
        return
    if ctx.notes is None or len(event.args) < 2:
        await ctx.reply(sender, nt("note.usage", lang))
        return
    ref = event.args[0][:64]
    view = await ctx.repo.order_by_ref(ref)
    if view is None:
        await ctx.reply(sender, t("staff.order_not_found", lang, q=ref))
        return
    await _add(ctx, sender, user, view, " ".join(event.args[1:]))


async def handle_text(event: TextReceived, ctx: ChatContext) -> bool:
    """A reply to one of our one-order cards (or, where the platform has no replies, a message soon after one) from staff is a note on that
    order. False: not a note; the text goes on to the order lookup."""
    notes: NoteChat | None = ctx.notes
    sender = event.sender
    if notes is None:
        return False
    if event.reply_to is not None:
        r = event.reply_to
        order_id = await notes.cards.card_order(r.platform, r.chat_id, r.message_id)
    elif not ctx.channel(sender.platform).capabilities.replies and _follow_up_text(event.text):
        order_id = await notes.cards.recent_card_order(sender.platform, sender.chat_id, ctx.clock.now() - FOLLOW_UP)
    else:
        return False
    if order_id is None:
        return False
    user = await ctx.staff(sender)
    if user is None:
        return False  # a customer's message is never a note: it goes to their status query
    view = await ctx.repo.order(order_id)
    if view is None:
        return False
    await _add(ctx, sender, user, view, event.text)
    return True


async def _add(ctx: ChatContext, sender: Sender, user: UserInfo, view: ChatOrderView, text: str) -> None:
    lang, notes = ctx.language, ctx.notes
    assert notes is not None
    ref = f"{view.order.channel}:{view.order.data.external_id}"
    if not may_act_on_order(_viewer(user), view.order.region, view.owner_user_id):
        await ctx.reply(sender, nt("note.forbidden", lang, order=ref))
        return
    text = text.strip()[:NOTE_MAX]
    try:
        check_text(text)
    except ValueError:
        text = ""
    if not text:
        await ctx.reply(sender, nt("note.usage", lang))
        return
    rules = notes.learning.rules()
    result = await record_note(notes.writer, notes.trends, notes.outbox, rules, view.order.id, text, user.name,
                               ctx.clock.now(), order_ref=ref)
    c = result.classification
    card = note_reply_card(result.id, ref, text, c.category, c.score, category_names(rules), ctx.token_key, lang,
                           review=result.review, trends=[h.spec.id for h in result.trends])
    await send(ctx.channel(sender.platform), Outgoing(chat_id=sender.chat_id, card=card))


async def on_button(event: ButtonPressed, tok: ActionToken, ctx: ChatContext) -> None:
    """Correct (the category menu, paged) and a category button (the correction)."""
    lang, notes = ctx.language, ctx.notes
    channel = ctx.channel(event.sender.platform)
    user = await ctx.staff(event.sender)
    if user is None or notes is None:
        await toast(channel, event.callback_id, nt("note.refused.forbidden", lang), alert=True)
        return
    rules = notes.learning.rules()
    names = category_names(rules)
    if tok.action == Action.NOTE_MENU:
        note = await notes.learning.store.note(tok.id)
        if note is None or not may_correct(_viewer(user), note.region, note.owner_user_id):
            code = "note_not_found" if note is None else "forbidden"
            await toast(channel, event.callback_id, nt(f"note.refused.{code}", lang), alert=True)
            return
        page = int(tok.ref) if tok.ref.isdigit() else 0
        await toast(channel, event.callback_id, "")
        await send(channel, Outgoing(chat_id=event.sender.chat_id,
                                     card=note_menu_card(tok.id, list(names), names, page, ctx.token_key, lang)))
        return
    category = resolve_ref(tok.ref, names)
    try:
        if category is None:
            raise RelabelRefused("unknown_category", "")
        done = await relabel(notes.learning, tok.id, category, user.name, _viewer(user), "chat", ctx.clock.now())
    except RelabelRefused as exc:
        await toast(channel, event.callback_id, nt(f"note.refused.{exc.code}", lang), alert=True)
        return
    zh, en = names.get(done.category, (done.category, done.category))
    await toast(channel, event.callback_id, nt("note.relabelled_toast", lang, category=en if lang == "en" else zh))
    # The pressed card (menu or review) and every copy of the note's review card now say what was chosen, without
    # buttons: a second supply-chain lead is not asked about a note already decided.
    card = relabelled_card(done.note_id, done.category, user.name, names, lang)
    refs = [event.message] if event.message is not None else []
    for outbox_id in await ctx.repo.outbox_ids_for_keys([f"{REVIEW_KIND}:{done.note_id}"]):
        refs += [r for r in await ctx.repo.refs_of_outbox(outbox_id) if r not in refs]
    for ref in refs:
        target = ctx.channels.get(ref.platform)
        if target is None:
            continue  # that platform is not configured in this process
        try:
            await target.update(ref, card)
        except SendError:
            pass  # deleted, too old to edit: nothing to do
