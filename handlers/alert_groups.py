"""Grouped stall cards: the group steps (send, edit, repeat, close) the scan takes, and the bulk buttons.

The decisions are engine/alert_groups.py's; each step is stored in one compare-and-set transaction
(`AlertGroupStore.advance_group`), so a scheduler killed mid-step, or two of them, take it exactly once. A group of
one alert releases that alert to go out as its own card; a later joiner turns that card into the group card.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from engine.alert_groups import Act, GroupPolicy, GroupState, decide
from engine.text import fmt_time, t
from engine.tokens import Action, ActionToken
from handlers import metrics
from handlers.chat import ButtonPressed, Card, SendError
from handlers.chat_context import ChatContext
from handlers.chat_ports import AlertGroup, ChatRepo, NewOutbox, ChatOrderView, OutboxItem
from handlers.group_cards import Entry, group_card
from handlers.ports import Clock
from handlers.replies import toast
from handlers.stalls import may_act  # one permission rule for single and grouped cards

log = logging.getLogger(__name__)
ACTIONS = frozenset({Action.GROUP_ACK, Action.GROUP_SNOOZE, Action.GROUP_PAGE})
GROUP_KIND = "stall_group"
SHOWN = frozenset({"grouped", "pending", "sent"})  # a member on the card (held: not yet; cancelled: never)
SNOOZE_FOR = timedelta(hours=4)


async def _members(repo: ChatRepo, group: AlertGroup
                   ) -> tuple[list[OutboxItem], dict[int, ChatOrderView], dict[int, str]]:
    members = await repo.group_members(group.id)
    ids = sorted({int(m.payload["order_id"]) for m in members})
    views = {v.order.id: v for v in await repo.orders_by_ids(ids)}
    return members, views, await repo.acked_stages(ids)


def _open(m: OutboxItem, views: dict[int, ChatOrderView], acked: dict[int, str]) -> bool:
    view = views.get(int(m.payload["order_id"]))
    stage = m.payload.get("stage")
    return (m.status != "cancelled" and view is not None and view.order.stage.value == stage
            and acked.get(view.order.id) != stage)


def entries_of(members: Sequence[OutboxItem], views: dict[int, ChatOrderView], acked: dict[int, str],
               now: datetime | None = None, shown_only: bool = True) -> list[Entry]:
    """The open alerts of a group, one per order (its highest level), overdue as of `now` (when given; else as
    of the alert)."""
    best: dict[int, OutboxItem] = {}
    for m in members:
        if not _open(m, views, acked) or (shown_only and m.status not in SHOWN):
            continue
        oid = int(m.payload["order_id"])
        if oid not in best or int(m.payload.get("level", 0)) > int(best[oid].payload.get("level", 0)):
            best[oid] = m
    def overdue(view: ChatOrderView, m: OutboxItem) -> timedelta:
        deadline = view.order.stage_deadline
        if now is not None and deadline is not None:
            return now - deadline
        return timedelta(seconds=int(m.payload.get("overdue_s", 0)))

    return [Entry(views[oid], int(m.payload.get("level", 0)), overdue(views[oid], m)) for oid, m in best.items()]


async def group_entries(repo: ChatRepo, group: AlertGroup, now: datetime | None = None) -> list[Entry]:
    members, views, acked = await _members(repo, group)
    return entries_of(members, views, acked, now)


async def advance_groups(repo: ChatRepo, clock: Clock, policy: GroupPolicy) -> list[int]:
    """Take every group step due now; return the outbox ids of cards queued or alerts released."""
    now = clock.now()
    out: list[int] = []
    for group in await repo.open_groups():
        members, views, acked = await _members(repo, group)
        open_members = [m for m in members if _open(m, views, acked)]
        unseen = [m for m in open_members if m.status == "held"]
        orders_open = {int(m.payload["order_id"]) for m in open_members}
        act = decide(GroupState(group.first_at, group.last_sent_at, len(orders_open), len(unseen)), now, policy)
        if act == Act.WAIT:
            continue
        if act == Act.CLOSE:
            await repo.close_group(group.id, group.version, now)
            continue
        show = [m.id for m in unseen]
        if act == Act.SEND and len(orders_open) == 1 and len(open_members) == 1:
            released = await repo.advance_group(group.id, group.version, now, card=None, show_ids=show,
                                                single_id=open_members[0].id)
            out += [released] if released is not None else []
            continue
        level = max(int(m.payload.get("level", 0)) for m in open_members)
        mode = "edit" if act == Act.UPDATE else "send"
        card = NewOutbox(f"stallgroup:{group.id}:{group.version + 1}", GROUP_KIND, now,
                         {"group_id": group.id, "mode": mode, "level": level, "orders": len(orders_open)},
                         recipient_user_id=group.recipient_user_id, recipient_role=group.recipient_role,
                         recipient_region=group.recipient_region)
        card_id = await repo.advance_group(group.id, group.version, now, card=card, show_ids=show)
        if card_id is not None:
            metrics.STALL_ALERTS.labels(level=f"group-{mode}").inc()
            out.append(card_id)
    return out


def render_group(group: AlertGroup, entries: Sequence[Entry], key: bytes, language: str, page: int = 0,
                 status: str | None = None, with_buttons: bool = True) -> Card:
    return group_card(group.id, dict(group.labels), entries, key, language, page, status, with_buttons)


async def _edit_everywhere(ctx: ChatContext, outbox_id: int | None, card: Card) -> None:
    for ref in await ctx.repo.refs_of_outbox(outbox_id) if outbox_id else []:
        target = ctx.channels.get(ref.platform)
        if target is None:
            continue
        try:
            await target.update(ref, card)
        except SendError as exc:  # cosmetic: the decision is already stored
            log.warning("could not edit group card %s: %s", ref, exc)


async def on_button(event: ButtonPressed, tok: ActionToken, ctx: ChatContext) -> None:
    """Acknowledge / snooze every order of the card the presser may act on; or show another page."""
    channel, lang, now = ctx.channel(event.sender.platform), ctx.language, ctx.clock.now()
    user = await ctx.repo.user_by_identity(event.sender.platform, event.sender.user_id)
    group = await ctx.repo.alert_group(tok.id)
    if user is None or group is None or not user.is_staff:
        await toast(channel, event.callback_id, t("toast.no_permission", lang), alert=True)
        return
    entries = await group_entries(ctx.repo, group, now)
    mine = [e for e in entries if may_act(user, e.view)]
    if tok.action == Action.GROUP_PAGE:
        if not mine:
            await toast(channel, event.callback_id, t("toast.no_permission", lang), alert=True)
            return
        page = int(tok.ref) if tok.ref.isdigit() and len(tok.ref) <= 6 else 0
        await toast(channel, event.callback_id, "")
        if event.message is not None:
            try:
                await channel.update(event.message, render_group(group, entries, ctx.token_key, lang, page))
            except SendError as exc:
                log.warning("could not page group card %s: %s", event.message, exc)
        return
    if tok.ref != str(group.labels.get("stage") or "")[:16] and group.labels.get("stage"):
        await toast(channel, event.callback_id, t("toast.stale", lang), alert=True)
        return
    if not mine:
        await toast(channel, event.callback_id, t("toast.no_permission", lang), alert=True)
        return
    if tok.action == Action.GROUP_ACK:
        for e in mine:
            await ctx.repo.acknowledge(e.view.order.id, e.view.order.stage, user.name, now)
        status = t("group.status_acked", lang, who=user.name, n=len(mine), when=fmt_time(now, ctx.timezone))
        note = t("toast.group_acked", lang, n=len(mine))
    else:
        until = now + SNOOZE_FOR
        for e in mine:
            await ctx.repo.snooze(e.view.order.id, until, user.name, now)
        status = t("group.status_snoozed", lang, who=user.name, n=len(mine), until=fmt_time(until, ctx.timezone))
        note = t("toast.group_snoozed", lang, n=len(mine))
    metrics.STALL_ACTIONS.labels(action=tok.action.value).inc()
    await toast(channel, event.callback_id, note)
    left = [e for e in entries if e not in mine]  # others' orders stay open on the card
    card = render_group(group, left or entries, ctx.token_key, lang, status=status, with_buttons=bool(left))
    await _edit_everywhere(ctx, group.card_outbox_id, card)
