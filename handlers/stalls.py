"""Stall alerts: the scan that turns overdue orders into outbox rows, and the alert card's buttons.

The scan is idempotent: an alert's dedup key `stall:<order>:<stage>:<level>` exists at most once, so a scan
repeated every minute, or run by two processes, never sends an alert twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from engine.notify_policy import AlertKey, needs_notify
from engine.stages import Stage, allowed_next, label
from engine.stall import DEFAULT_LADDER, Rung, Stall, find_stalls
from engine.text import fmt_time, t
from engine.tokens import Action, ActionToken
from handlers import metrics
from handlers.cards import stall_card
from handlers.chat import ButtonPressed, SendError
from handlers.chat_ports import ChatRepo, NewOutbox, OrderView, StageMove, UserInfo
from handlers.dispatch import ChatContext
from handlers.ports import Clock
from handlers.replies import toast

log = logging.getLogger(__name__)
ACTIONS = frozenset({Action.ACK, Action.SNOOZE, Action.ADVANCE})
SNOOZE_FOR = timedelta(hours=4)
KIND = "stall_alert"


async def scan_stalls(repo: ChatRepo, clock: Clock, ladder: Sequence[Rung] = DEFAULT_LADDER) -> list[int]:
    """Queue one alert per newly due (order, stage, level); return the new outbox ids."""
    now = clock.now()
    views = {v.order.id: v for v in await repo.overdue_orders(now)}
    stalls = find_stalls((v.order for v in views.values()), now, ladder)
    if not stalls:
        return []
    keys = {s.order_id: AlertKey(s.order_id, s.stage, s.level) for s in stalls}
    sent = await repo.existing_keys([k.dedup_key for k in keys.values()])
    acked = await repo.acked_stages(list(keys))
    rows: list[NewOutbox] = []
    for stall in stalls:
        key, view = keys[stall.order_id], views[stall.order_id]
        decision = needs_notify(key, already_sent=key.dedup_key in sent, now=now,
                                snoozed_until=view.snoozed_until, acked_stage=acked.get(stall.order_id))
        if decision.send:
            rows.append(await _alert_row(repo, stall, view, key, now))
    if not rows:
        return []
    ids = await repo.enqueue(rows, now)
    for row in rows:
        metrics.STALL_ALERTS.labels(level=str(row.payload.get("level", "?"))).inc()
    return ids


async def _alert_row(repo: ChatRepo, stall: Stall, view: OrderView, key: AlertKey, now) -> NewOutbox:
    payload = {"order_id": stall.order_id, "stage": stall.stage, "level": stall.level,
               "overdue_s": int(stall.overdue.total_seconds()), "role": stall.role}
    region = view.order.region
    user_id: int | None = None
    role: str | None = "manager"
    if stall.role == "owner" and view.owner_user_id:
        user_id, role, region = view.owner_user_id, None, None
    elif stall.role == "supervisor" and view.owner_user_id:
        owner = await repo.user(view.owner_user_id)
        if owner and owner.supervisor_id:
            user_id, role, region = owner.supervisor_id, None, None
    elif stall.role == "admin":
        role, region = "admin", None
    elif stall.role in ("manager", "finance", "supply_chain"):
        role = stall.role
    # owner/supervisor unknown and region_head: the region's manager(s)
    return NewOutbox(key.dedup_key, KIND, now, payload, recipient_user_id=user_id, recipient_role=role,
                     recipient_region=region)


def may_act(user: UserInfo, view: OrderView) -> bool:
    """Staff responsible for the order: admins and supply chain anywhere, others in the order's region, owners."""
    if not user.is_staff:
        return False
    if user.role in ("admin", "supply_chain") or user.id == view.owner_user_id:
        return True
    return view.order.region is None or view.order.region in user.regions


async def on_button(event: ButtonPressed, tok: ActionToken, ctx: ChatContext) -> None:
    channel = ctx.channel(event.sender.platform)
    lang, now = ctx.language, ctx.clock.now()
    user = await ctx.repo.user_by_identity(event.sender.platform, event.sender.user_id)
    item = await ctx.repo.outbox_item(tok.id)
    view = await ctx.repo.order(int(item.payload["order_id"])) if item and item.kind == KIND else None
    if user is None or view is None or not may_act(user, view):
        await toast(channel, event.callback_id, t("toast.no_permission", lang), alert=True)
        return
    stage = view.order.stage
    if tok.ref != stage.value:
        await toast(channel, event.callback_id, t("toast.stale", lang), alert=True)
        return
    keep_buttons = True
    if tok.action == Action.ACK:
        await ctx.repo.acknowledge(view.order.id, stage, user.name, now)
        status, note = t("stall.status_acked", lang, who=user.name, when=fmt_time(now, ctx.timezone)), "toast.acked"
    elif tok.action == Action.SNOOZE:
        until = now + SNOOZE_FOR
        await ctx.repo.snooze(view.order.id, until, user.name, now)
        status = t("stall.status_snoozed", lang, who=user.name, until=fmt_time(until, ctx.timezone))
        note = "toast.snoozed"
    else:
        nxt = allowed_next(stage)[0] if allowed_next(stage) else None
        if nxt is None or nxt == Stage.CANCELLED:
            await toast(channel, event.callback_id, t("toast.advance_failed", lang, stage=label(stage, lang)), alert=True)
            return
        deadline = ctx.deadlines.deadline_for(view.order, nxt, now)
        move = StageMove(view.order.id, stage, nxt, actor=user.name, reason="advanced from stall alert",
                         deadline=deadline)
        if not await ctx.repo.move_stage(move, now=now):
            await toast(channel, event.callback_id, t("toast.advance_failed", lang, stage=label(stage, lang)),
                        alert=True)
            return
        status = t("stall.status_advanced", lang, who=user.name, stage=label(nxt, lang),
                   when=fmt_time(now, ctx.timezone))
        note, keep_buttons = "toast.advanced", False
    metrics.STALL_ACTIONS.labels(action=tok.action.value).inc()
    await toast(channel, event.callback_id, t(note, lang, stage=label(allowed_next(stage)[0], lang)
                                             if allowed_next(stage) else ""))
    level = int(item.payload.get("level", 0))
    overdue = timedelta(seconds=int(item.payload.get("overdue_s", 0)))
    card = stall_card(view, item.id, level, overdue, ctx.token_key, lang, ctx.timezone, status=status,
                      with_buttons=keep_buttons, acked=tok.action == Action.ACK, role=item.payload.get("role"))
    for ref in await ctx.repo.refs_of_outbox(item.id):
        target = ctx.channels.get(ref.platform)
        if target is None:
            continue
        try:
            await target.update(ref, card)
        except SendError as exc:  # cosmetic: the state change is already stored
            log.warning("could not edit stall card %s: %s", ref, exc)
