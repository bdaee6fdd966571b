"""Stall alerts: the scan that turns overdue orders into outbox rows, and the alert card's buttons.

The scan is idempotent: an alert's dedup key `stall:<order>:<stage>:<level>` exists at most once, so a scan
repeated every minute, or run by two processes, never sends an alert twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from engine.notify_policy import AlertKey, levels_to_announce, needs_notify
from engine.stages import Stage, allowed_next, label
from engine.stall import DEFAULT_LADDER, Rung, find_stalls
from engine.text import fmt_time, t
from engine.tokens import Action, ActionToken
from handlers import metrics
from handlers.cards import stall_card
from handlers.chat import ButtonPressed, SendError
from handlers.chat_ports import ChatRepo, NewOutbox, OrderView, UserInfo
from handlers.chat_context import ChatContext
from handlers.orders import MoveRefused, TransitionError, transition
from handlers.ports import Clock
from handlers.replies import toast

log = logging.getLogger(__name__)
ACTIONS = frozenset({Action.ACK, Action.SNOOZE, Action.ADVANCE})
SNOOZE_FOR = timedelta(hours=4)
KIND = "stall_alert"


async def scan_stalls(repo: ChatRepo, clock: Clock, ladder: Sequence[Rung] = DEFAULT_LADDER) -> list[int]:
    """Queue the alerts newly due per (order, stage, level); return the new outbox ids.

    A late scan (an order first seen 9 h overdue) owes every rung reached, not just the highest: it sends one
    alert naming all those levels to each rung's recipients (the owner, the supervisor, the region's managers),
    one row per distinct recipient, keyed by the highest level that recipient gets — still at most once per order,
    stage and level, since a level at or below one already sent counts as sent."""
    now = clock.now()
    views = {v.order.id: v for v in await repo.overdue_orders(now)}
    stalls = find_stalls((v.order for v in views.values()), now, ladder)
    if not stalls:
        return []
    all_keys = {(s.order_id, level): AlertKey(s.order_id, s.stage, level) for s in stalls for level, _ in s.due}
    sent = await repo.existing_keys([k.dedup_key for k in all_keys.values()])
    acked = await repo.acked_stages([s.order_id for s in stalls])
    rows: list[NewOutbox] = []
    for stall in stalls:
        view = views[stall.order_id]
        sent_levels = {lv for lv, _ in stall.due if all_keys[(stall.order_id, lv)].dedup_key in sent}
        owed = levels_to_announce([lv for lv, _ in stall.due], sent_levels)
        if not owed:
            continue
        top = all_keys[(stall.order_id, owed[-1])]
        decision = needs_notify(top, already_sent=False, now=now, snoozed_until=view.snoozed_until,
                                acked_stage=acked.get(stall.order_id))
        if not decision.send:
            continue
        roles = dict(stall.due)
        by_recipient: dict[tuple[int | None, str | None, str | None], int] = {}
        for level in owed:
            by_recipient[await _recipient(repo, roles[level], view)] = level  # ascending: the highest level wins
        await _drop_covered(repo, by_recipient)
        for (user_id, role, region), level in by_recipient.items():
            key = all_keys[(stall.order_id, level)]
            payload = {"order_id": stall.order_id, "stage": stall.stage, "level": level, "levels": owed,
                       "role": roles[level], "roles": [roles[lv] for lv in owed],
                       "overdue_s": int(stall.overdue.total_seconds())}
            rows.append(NewOutbox(key.dedup_key, KIND, now, payload, recipient_user_id=user_id,
                                  recipient_role=role, recipient_region=region))
    if not rows:
        return []
    ids = await repo.enqueue(rows, now)
    for row in rows:
        metrics.STALL_ALERTS.labels(level=str(row.payload.get("level", "?"))).inc()
    return ids


async def _drop_covered(repo: ChatRepo, by_recipient: dict[tuple[int | None, str | None, str | None], int]) -> None:
    """A person named at a lower level who also holds a higher level's role (a supervisor who is the region's
    manager) gets the alert once, through the higher row; the higher key covers the lower level."""
    top = max(by_recipient.values())
    covered: set[int] = set()
    for (user_id, role, region), level in by_recipient.items():
        if user_id is None and role is not None:
            covered |= {u.id for u in await repo.users_with_role(role, region)} if level == top else set()
    for rcpt, level in list(by_recipient.items()):
        if rcpt[0] is not None and rcpt[0] in covered and level < top:
            del by_recipient[rcpt]


async def _recipient(repo: ChatRepo, rung_role: str, view: OrderView) -> tuple[int | None, str | None, str | None]:
    """Who a rung's alert is for: (user id, role, region) as an outbox row names it."""
    region = view.order.region
    user_id: int | None = None
    role: str | None = "manager"
    if rung_role == "owner" and view.owner_user_id:
        user_id, role, region = view.owner_user_id, None, None
    elif rung_role == "supervisor" and view.owner_user_id:
        owner = await repo.user(view.owner_user_id)
        if owner and owner.supervisor_id:
            user_id, role, region = owner.supervisor_id, None, None
    elif rung_role == "admin":
        role, region = "admin", None
    elif rung_role in ("manager", "finance", "supply_chain"):
        role = rung_role
    # owner/supervisor unknown and region_head: the region's manager(s)
    return user_id, role, region


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
        try:  # the one move use case: the approval guard, deadline, snooze reset and audit are its business
            await transition(ctx.repo, ctx.deadlines, str(view.order.id), nxt.value, "advanced from stall alert",
                             user.name, now)
        except MoveRefused as exc:
            text = (t(f"move.{exc.code}", lang) if exc.code in ("awaiting_approval", "reason_required")
                    else t("toast.advance_failed", lang, stage=label(stage, lang)))
            await toast(channel, event.callback_id, text, alert=True)
            return
        except TransitionError:
            await toast(channel, event.callback_id, t("toast.advance_failed", lang, stage=label(stage, lang)), alert=True)
            return
        status = t("stall.status_advanced", lang, who=user.name, stage=label(nxt, lang),
                   when=fmt_time(now, ctx.timezone))
        note, keep_buttons = "toast.advanced", False
    metrics.STALL_ACTIONS.labels(action=tok.action.name.lower()).inc()  # ack, snooze, advance
    await toast(channel, event.callback_id, t(note, lang, stage=label(allowed_next(stage)[0], lang)
                                             if allowed_next(stage) else ""))
    level = int(item.payload.get("level", 0))
    overdue = timedelta(seconds=int(item.payload.get("overdue_s", 0)))
    card = stall_card(view, item.id, level, overdue, ctx.token_key, lang, ctx.timezone, status=status,
                      with_buttons=keep_buttons, levels=item.payload.get("levels"), acked=tok.action == Action.ACK,
                      role=item.payload.get("role"), roles=item.payload.get("roles"))
    for ref in await ctx.repo.refs_of_outbox(item.id):
        target = ctx.channels.get(ref.platform)
        if target is None:
            continue
        try:
            await target.update(ref, card)
        except SendError as exc:  # cosmetic: the state change is already stored
            log.warning("could not edit stall card %s: %s", ref, exc)
