"""Status queries and staff commands.

Customers prove who they are by sharing their *own* contact (the platform says whose contact it is) or by an
order number plus the last four digits of its phone (5 failed tries an hour, then locked an hour). From then on
they see only their own orders: every lookup, fuzzy matching included, searches that set and nothing else.
A reply about one order carries a "申请退款" button when the order is refundable (handlers.refunds.refundable); the
press is handled by handlers.refund_chat.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from rapidfuzz import fuzz

from engine.approvals import earlier_levels_pending, may_decide
from engine.display import order_words
from engine.refund_text import rt
from engine.stages import Stage, label
from engine.text import fmt_money, role_name, t
from engine.tokens import Action, ActionToken, sign
from handlers.cards import customer_status_text, list_pages, order_detail_pages, order_line
from handlers.chat import Button, ButtonPressed, Card, CommandReceived, ContactShared, Outgoing, Sender, TextReceived
from handlers.chat_ports import ChatOrderView, UserInfo
from handlers.chat_context import ChatContext
from handlers.outbox_kinds import admin_notice
from handlers.refunds import refundable
from handlers.replies import send, send_pages, toast

log = logging.getLogger(__name__)

MAX_FAILED_TRIES = 5
# "Order number + last 4 digits" has 10,000 answers per order: besides each identity's 5 tries, every order and the
# whole installation are limited too (many identities would otherwise get 5 each), and an admin is told of a burst.
MAX_FAILED_PER_ORDER = 10
MAX_FAILED_GLOBAL = 100
GLOBAL_VERIFY_KEY = "verify-all"
FUZZY_THRESHOLD = 60
_VERIFY_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9_\-:]{2,63})\s*[,，\s]\s*(\d{4})\s*$")
_ORDER_NO_RE = re.compile(r"[A-Za-z]*\d[A-Za-z0-9_\-]*")


def normalise_phone(phone: str) -> str:
    """Digits only, without a +86 country code: what order rows are compared against."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return digits


def _limit_key(sender: Sender, scope: str) -> str:
    return f"{scope}:{sender.platform}:{sender.user_id}"


async def _status(ctx: ChatContext, sender: Sender, view: ChatOrderView) -> None:
    """A customer's one-order status reply, with the refund button under it when the order is refundable."""
    text = customer_status_text(view, ctx.language, ctx.timezone)
    await send(ctx.channel(sender.platform), Outgoing(chat_id=sender.chat_id, text=text,
                                                      card=await _refund_card(ctx, view)))


async def _refund_card(ctx: ChatContext, view: ChatOrderView) -> Card | None:
    if ctx.refunds is None:
        return None
    try:
        if not await refundable(ctx.refunds, view.order.id, ctx.clock.now()):
            return None
    except Exception:  # the status is what was asked for: a failed check drops only the button
        log.exception("refundable check of order %s failed", view.order.id)
        return None
    lang = ctx.language
    return Card(rt("btn.prompt", lang),
                buttons=(Button(rt("btn.refund", lang), sign(ctx.token_key, Action.REFUND_START, view.order.id)),))


async def _ask_for_phone(ctx: ChatContext, sender: Sender, text: str) -> None:
    """`text` with a share-my-number button where the platform has one; elsewhere the person is asked for
    "order number + last 4 digits" instead (the other way to prove an order is theirs)."""
    if ctx.channel(sender.platform).capabilities.contact_sharing:
        await ctx.reply(sender, text, request_contact=True)
    else:
        await ctx.reply(sender, t("cust.verify_by_order", ctx.language))


async def _pages(ctx: ChatContext, sender: Sender, pages: Sequence[str]) -> None:
    await send_pages(ctx.channel(sender.platform), sender.chat_id, pages)


async def own_orders(ctx: ChatContext, sender: Sender) -> list[ChatOrderView] | None:
    """The orders this chat identity has proved are theirs; None when it has proved nothing yet."""
    phone = await ctx.repo.verified_phone(sender.platform, sender.user_id)
    granted = await ctx.repo.granted_order_ids(sender.platform, sender.user_id)
    if not phone and not granted:
        return None
    views: dict[int, ChatOrderView] = {}
    if phone:
        views.update((v.order.id, v) for v in await ctx.repo.orders_by_phone(phone))
    if granted:
        views.update((v.order.id, v) for v in await ctx.repo.orders_by_ids(sorted(granted)))
    return sorted(views.values(), key=lambda v: v.order.data.created_at, reverse=True)


# --- commands -----------------------------------------------------------------------------------------------------


async def handle_command(event: CommandReceived, ctx: ChatContext) -> None:
    sender, lang, cmd = event.sender, ctx.language, event.command
    if cmd == "link":
        await _link(event, ctx)
        return
    staff = await ctx.staff(sender)
    if cmd in ("start", "help"):
        if staff:
            await ctx.reply(sender, t("staff.help", lang))
        else:
            await _ask_for_phone(ctx, sender, t("cust.welcome", lang))
        return
    if cmd not in ("order", "stalled", "pending", "find", "board", "top"):
        await ctx.reply(sender, t("unknown_command", lang))
        return
    if staff is None:
        await ctx.reply(sender, t("staff.only", lang))
        return
    arg = " ".join(event.args).strip()
    if cmd == "order":
        await _order(ctx, sender, arg)
    elif cmd == "stalled":
        await _stalled(ctx, sender, staff, arg)
    elif cmd == "pending":
        await _pending(ctx, sender, staff)
    elif cmd == "board":
        await _board(ctx, sender, staff)
    elif cmd == "top":
        await _top(ctx, sender, staff)
    else:
        await _find(ctx, sender, arg)


async def _link(event: CommandReceived, ctx: ChatContext) -> None:
    sender, lang = event.sender, ctx.language
    if not event.args:
        await ctx.reply(sender, t("link.usage", lang))
        return
    key = _limit_key(sender, "link")
    locked = await ctx.limiter.locked_for(key)
    if locked > 0:
        await ctx.reply(sender, t("cust.locked", lang, minutes=max(int(locked // 60), 1)))
        return
    user = await ctx.repo.redeem_link_code(event.args[0], sender.platform, sender.user_id, sender.chat_id,
                                           ctx.clock.now())
    if user is None:
        if await ctx.limiter.fail(key) >= MAX_FAILED_TRIES:
            locked = await ctx.limiter.locked_for(key)
            await ctx.reply(sender, t("cust.locked", lang, minutes=max(int(locked // 60), 1)))
        else:
            await ctx.reply(sender, t("link.bad", lang))
        return
    await ctx.reply(sender, t("link.ok", lang, name=user.name, role=role_name(user.role, lang)))


async def _order(ctx: ChatContext, sender: Sender, arg: str) -> None:
    if not arg:
        await ctx.reply(sender, t("staff.usage_order", ctx.language))
        return
    view = await ctx.repo.order_by_ref(arg)
    if view is None:
        await ctx.reply(sender, t("staff.order_not_found", ctx.language, q=arg))
        return
    await _pages(ctx, sender, order_detail_pages(view, ctx.language, ctx.timezone))


def _stage_of(text: str) -> Stage | None:
    for stage in Stage:
        if text.lower() in (stage.value, label(stage, "zh"), label(stage, "en").lower()):
            return stage
    return None


async def _stalled(ctx: ChatContext, sender: Sender, staff: UserInfo, arg: str) -> None:
    now, lang = ctx.clock.now(), ctx.language
    stage = _stage_of(arg) if arg else None
    city = arg if arg and stage is None else None
    views = await ctx.repo.stalled(now, city=city, stage=stage, limit=5000)
    if staff.role == "manager":  # a region's manager sees that region's board
        views = [v for v in views if v.order.region is None or v.order.region in staff.regions]
    if not views:
        await ctx.reply(sender, t("staff.no_stalled", lang))
        return
    lines = [order_line(v, lang, ctx.timezone, now) for v in views]
    await _pages(ctx, sender, list_pages(t("staff.stalled_head", lang, n=len(views)), lines, lang))


async def _top(ctx: ChatContext, sender: Sender, staff: UserInfo) -> None:
    """The flagged top of open orders, highest priority first; a region's manager sees that region's."""
    lang = ctx.language
    views = await ctx.repo.top_orders(limit=5000)
    if staff.role == "manager":
        views = [v for v in views if v.order.region is None or v.order.region in staff.regions]
    if not views:
        await ctx.reply(sender, t("staff.no_top", lang))
        return
    lines = [f"{order_line(v, lang, ctx.timezone)} · {t('priority.short', lang, p=v.order.priority)}" for v in views]
    await _pages(ctx, sender, list_pages(t("staff.top_head", lang, n=len(views)), lines, lang))


async def _pending(ctx: ChatContext, sender: Sender, staff: UserInfo) -> None:
    lang, actor = ctx.language, staff.as_actor()
    pending = await ctx.repo.pending_approvals(limit=5000)
    # a later level waits for the one below it (levels run in order): not the user's to decide yet
    mine = [a for a in pending if may_decide(a, actor) and not earlier_levels_pending(a, pending)]
    if not mine:
        await ctx.reply(sender, t("staff.no_pending", lang))
        return
    views = {v.order.id: v for v in await ctx.repo.orders_by_ids([a.order_id for a in mine])}
    lines = []
    for a in mine:
        v = views.get(a.order_id)
        ref = v.order.data.external_id if v else f"#{a.order_id}"
        city = v.order.data.customer.city if v else ""
        lines.append(f"{ref} · {city} · {fmt_money(a.amount)} · L{a.level}")
    await _pages(ctx, sender, list_pages(t("staff.pending_head", lang, n=len(mine)), lines, lang))


async def _board(ctx: ChatContext, sender: Sender, staff: UserInfo) -> None:
    """A one-time link that signs this staff member in to the web board (10 minutes, one use)."""
    if ctx.login_links is None:
        await ctx.reply(sender, t("board.unavailable", ctx.language))
        return
    link = await ctx.login_links.login_link(staff.id, ctx.clock.now())
    await ctx.reply(sender, t("board.link", ctx.language, url=link))


async def _find(ctx: ChatContext, sender: Sender, arg: str) -> None:
    lang = ctx.language
    if not arg:
        await ctx.reply(sender, t("staff.usage_find", lang))
        return
    views = await ctx.repo.search(arg, limit=200)
    if not views:
        await ctx.reply(sender, t("staff.find_none", lang, q=arg))
        return
    lines = [order_line(v, lang, ctx.timezone, ctx.clock.now()) for v in views]
    await _pages(ctx, sender, list_pages(t("staff.find_head", lang, q=arg, n=len(views)), lines, lang))


# --- customers ----------------------------------------------------------------------------------------------------


async def handle_contact(event: ContactShared, ctx: ChatContext) -> None:
    """Accept only the sender's own contact: a forwarded contact card proves nothing about the sender."""
    sender, lang = event.sender, ctx.language
    if event.contact_user_id is None or str(event.contact_user_id) != str(sender.user_id):
        await _ask_for_phone(ctx, sender, t("cust.contact_not_own", lang))
        return
    phone = normalise_phone(event.phone)
    if len(phone) < 7:
        await _ask_for_phone(ctx, sender, t("cust.contact_not_own", lang))
        return
    await ctx.repo.link_customer_phone(sender.platform, sender.user_id, sender.chat_id, phone, sender.display_name,
                                       ctx.clock.now())
    views = await own_orders(ctx, sender) or []
    if not views:
        await ctx.reply(sender, t("cust.no_orders", lang))
        return
    await ctx.reply(sender, t("cust.verified", lang, n=len(views)))
    await _pages(ctx, sender, [customer_status_text(v, lang, ctx.timezone) for v in views[:10]])


async def handle_text(event: TextReceived, ctx: ChatContext) -> None:
    sender, lang, text = event.sender, ctx.language, event.text.strip()
    staff = await ctx.staff(sender)
    if staff is not None:
        match = _ORDER_NO_RE.search(text)
        if match:
            await _order(ctx, sender, match.group(0))
        else:
            await ctx.reply(sender, t("staff.help", lang))
        return
    verify = _VERIFY_RE.match(text)
    if verify:
        await _verify_by_order(ctx, sender, verify.group(1), verify.group(2))
        return
    views = await own_orders(ctx, sender)
    if views is None:
        await _ask_for_phone(ctx, sender, t("cust.need_verify", lang))
        return
    if not views:
        await ctx.reply(sender, t("cust.no_orders", lang))
        return
    query = _ORDER_NO_RE.search(text)
    if query is None:
        if len(views) == 1:
            await _status(ctx, sender, views[0])
        else:
            await _pages(ctx, sender, [customer_status_text(v, lang, ctx.timezone) for v in views[:10]])
        return
    best = best_match(query.group(0), views)
    if best is None:
        listing = ", ".join(v.order.data.external_id for v in views[:20])
        await ctx.reply(sender, t("cust.not_found", lang, q=query.group(0), list=listing))
        return
    await _status(ctx, sender, best)


def best_match(query: str, views: Sequence[ChatOrderView]) -> ChatOrderView | None:
    """The customer's own order whose number is closest to `query` (typos, partial numbers); None below threshold.

    Only `views`, the customer's own orders, are ever compared: fuzzy matching cannot reach anyone else's.
    """
    q = query.upper()
    best, best_score = None, 0.0
    for view in views:
        ext = view.order.data.external_id.upper()
        score = max(fuzz.ratio(q, ext), fuzz.partial_ratio(q, ext))
        q_digits = "".join(ch for ch in q if ch.isdigit())
        if q_digits and len(q_digits) >= 3 and ext.endswith(q_digits):
            score = max(score, 90)
        if score > best_score:
            best, best_score = view, score
    return best if best_score >= FUZZY_THRESHOLD else None


async def _verify_by_order(ctx: ChatContext, sender: Sender, number: str, last4: str) -> None:
    """Order number + last 4 phone digits grants that one order; failures count towards the lock."""
    lang, key = ctx.language, _limit_key(sender, "verify")
    locked = max(await ctx.limiter.locked_for(key), await ctx.limiter.locked_for(GLOBAL_VERIFY_KEY))
    if locked > 0:
        await ctx.reply(sender, t("cust.locked", lang, minutes=max(int(locked // 60), 1)))
        return
    view = await ctx.repo.order_by_ref(number, external_only=True)
    order_key = f"verify-order:{view.order.id}" if view is not None else None
    if order_key is not None and (locked := await ctx.limiter.locked_for(order_key)) > 0:
        await ctx.reply(sender, t("cust.locked", lang, minutes=max(int(locked // 60), 1)))
        return
    phone = normalise_phone(view.order.data.customer.phone) if view else ""
    if view is None or len(phone) < 4 or phone[-4:] != last4:
        failures = await ctx.limiter.fail(key)
        everywhere = await ctx.limiter.fail(GLOBAL_VERIFY_KEY, limit=MAX_FAILED_GLOBAL)
        on_order = await ctx.limiter.fail(order_key, limit=MAX_FAILED_PER_ORDER) if order_key else 0
        if everywhere == MAX_FAILED_GLOBAL:
            await _tell_admin_of_burst(ctx, "all", everywhere)
        if on_order == MAX_FAILED_PER_ORDER and view is not None:
            await _tell_admin_of_burst(ctx, view.order.key, on_order,
                                      order_words(view.order.channel, view.order.data.external_id, lang))
        left = MAX_FAILED_TRIES - failures
        if left <= 0 or everywhere >= MAX_FAILED_GLOBAL or on_order >= MAX_FAILED_PER_ORDER:
            locked = max(await ctx.limiter.locked_for(key), await ctx.limiter.locked_for(GLOBAL_VERIFY_KEY),
                         await ctx.limiter.locked_for(order_key) if order_key else 0.0)
            await ctx.reply(sender, t("cust.locked", lang, minutes=max(int(locked // 60), 1)))
        else:
            await ctx.reply(sender, t("cust.verify_failed", lang, left=left))
        return
    await ctx.repo.grant_order_access(sender.platform, sender.user_id, sender.chat_id, view.order.id,
                                      ctx.clock.now())
    await _status(ctx, sender, view)


async def _tell_admin_of_burst(ctx: ChatContext, scope: str, failures: int, words: str | None = None) -> None:
    """One admin notice per burst (the dedup key holds the hour): the limit was reached on an order or overall;
    `words` names the order as people do (the scope is its internal key)."""
    now = ctx.clock.now()
    label_ = t("admin.verify_all", ctx.language) if scope == "all" else (words or scope)
    notice = admin_notice(f"notice:verify_burst:{scope}:{now:%Y%m%d%H}",
                          t("admin.verify_burst", ctx.language, scope=label_, n=failures), now)
    await ctx.repo.enqueue([notice], now)


async def on_button(event: ButtonPressed, tok: ActionToken, ctx: ChatContext) -> None:
    """Details buttons: staff get the full order, a customer only an order of their own."""
    channel, lang = ctx.channel(event.sender.platform), ctx.language
    if tok.action != Action.ORDER_DETAILS:
        await toast(channel, event.callback_id, t("toast.stale", lang), alert=True)
        return
    staff = await ctx.staff(event.sender)
    if staff is not None:
        view = await ctx.repo.order(tok.id)
        if view is None:
            await toast(channel, event.callback_id, t("toast.not_found", lang), alert=True)
            return
        await toast(channel, event.callback_id, "")
        await _pages(ctx, event.sender, order_detail_pages(view, lang, ctx.timezone))
        return
    mine = {v.order.id: v for v in (await own_orders(ctx, event.sender) or [])}
    if tok.id not in mine:
        await toast(channel, event.callback_id, t("toast.not_found", lang), alert=True)
        return
    await toast(channel, event.callback_id, "")
    await _status(ctx, event.sender, mine[tok.id])
