"""Stall alerts: the scan that turns overdue orders into outbox rows, and the alert card's buttons.

The scan is idempotent: an alert's dedup key `stall:<order>:<stage>:<level>` exists at most once, so a scan
repeated every minute, or run by two processes, never sends an alert twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from engine.alert_groups import GroupPolicy, group_key
from engine.ladder import Step, due_steps, mail_key, plan, shifted
from engine.notify_policy import levels_to_announce
from engine.order import Order
from engine.stages import END_STATES, Stage, allowed_next, label
from engine.stall import DEFAULT_LADDER, Rung
from engine.text import fmt_time, t
from engine.tokens import Action, ActionToken
from handlers import metrics
from handlers.cards import stall_card
from handlers.chat import ButtonPressed, SendError
from handlers.chat_ports import ChatRepo, HeldAlert, NewOutbox, ChatOrderView, UserInfo
from handlers.chat_context import ChatContext
from handlers.orders import MoveRefused, TransitionError, transition
from handlers.ports import Clock
from handlers.replies import toast

log = logging.getLogger(__name__)
ACTIONS = frozenset({Action.ACK, Action.SNOOZE, Action.ADVANCE})
SNOOZE_FOR = timedelta(hours=4)
KIND = "stall_alert"
MAIL_KIND = "stall_mail"  # the breach's one e-mail copy to the supervisor (chat quiet hours and grouping aside)


PlanFor = Callable[[Order], "tuple[Step, ...] | None"]
LOOKAHEAD = timedelta(days=14)  # orders whose deadline is this close are read for their warning
STALL_PAGE = 1000  # overdue orders read (and their alerts queued) per query of a scan


def order_steps(view: ChatOrderView, ladder: Sequence[Rung], plan_for: PlanFor | None) -> tuple[Step, ...]:
    """The ladder of the order's stage: the rules' own (warning and rungs in business time), moved to the stored
    deadline when that differs (a paused clock); without rules, `ladder`'s rungs in wall-clock time after it."""
    o = view.order
    if o.stage in END_STATES or o.stage_deadline is None:
        return ()
    planned = None
    if plan_for is not None:
        try:
            planned = plan_for(o)
        except Exception:  # a rules problem must not stop the alerts: fall back to the plain ladder
            log.exception("stall ladder of order %s could not be computed from the rules", o.id)
    if planned:
        breach = next((s for s in planned if s.level == 0), None)
        return shifted(planned, o.stage_deadline - breach.at) if breach else planned
    rungs = sorted(ladder, key=lambda r: r.after) or list(DEFAULT_LADDER)
    return plan(o.stage_deadline, None, [(r.role, o.stage_deadline + r.after) for r in rungs])


async def scan_stalls(repo: ChatRepo, clock: Clock, ladder: Sequence[Rung] = DEFAULT_LADDER, *,
                      plan_for: PlanFor | None = None, policy: GroupPolicy | None = None,
                      lookahead: timedelta = LOOKAHEAD, page: int = STALL_PAGE) -> list[int]:
    """Queue the alerts newly due per (order, stage, level); return the new chat alerts' outbox ids (the e-mail
    copies are queued alongside, not returned).

    With `plan_for` (the rules' `stage_ladder`) the owner is warned at `warn_at` before the breach; at the breach
    the owner's supervisor also gets one e-mail copy (`stall_mail`, key `stallmail:<order>:<stage>`). With `policy`
    the chat alerts are held for their group's card instead of going out one by one; `advance_groups`
    (handlers/alert_groups.py, run right after by the scheduler) then sends, edits or releases the cards.

    A late scan (an order first seen 9 h overdue) owes every rung reached, not just the highest: it sends one
    alert naming all those levels to each rung's recipients (the owner, the supervisor, the region's managers),
    one row per distinct recipient, keyed by the highest level that recipient gets — still at most once per order,
    stage and level, since a level at or below one already sent counts as sent.

    The overdue orders are read `page` at a time, oldest deadline first, until none is left: on a bad day more
    than a page stays overdue (acknowledged ones too), and the newest breaches must not wait behind them."""
    now = clock.now()
    until = now + lookahead if plan_for is not None else now
    ids: list[int] = []
    after: tuple[datetime, int] | None = None
    while True:
        views = await repo.overdue_orders(until, after=after, limit=page)
        if views:
            ids += await _scan_page(repo, {v.order.id: v for v in views}, now, ladder, plan_for, policy)
        if len(views) < page:
            return ids
        last = views[-1].order
        assert last.stage_deadline is not None  # only orders with a deadline are overdue
        after = (last.stage_deadline, last.id)


async def _scan_page(repo: ChatRepo, views: dict[int, ChatOrderView], now: datetime, ladder: Sequence[Rung],
                     plan_for: PlanFor | None, policy: GroupPolicy | None) -> list[int]:
    """One page of `scan_stalls`: the alerts newly due for these orders."""
    acked = await repo.acked_stages(list(views))
    due: dict[int, list[Step]] = {}
    for oid, view in views.items():
        steps = due_steps(order_steps(view, ladder, plan_for), now, acked=acked.get(oid) == view.order.stage.value,
                          snoozed_until=view.snoozed_until)
        if steps:
            due[oid] = steps
    keys = [s.dedup_key(oid, views[oid].order.stage.value) for oid, steps in due.items() for s in steps]
    keys += [mail_key(oid, views[oid].order.stage.value) for oid in due]
    sent = await repo.existing_keys(keys)
    rows: list[tuple[NewOutbox, ChatOrderView]] = []
    mails: list[NewOutbox] = []
    for oid, steps in due.items():
        view = views[oid]
        stage = view.order.stage.value
        overdue_s = int((now - view.order.stage_deadline).total_seconds()) if view.order.stage_deadline else 0
        rungs = [s for s in steps if s.level >= 0]
        if not rungs:  # only the warning is due
            warn = steps[0]
            if warn.dedup_key(oid, stage) not in sent:
                user_id, role, region = await _recipient(repo, warn.role, view)
                payload = {"order_id": oid, "stage": stage, "level": warn.level, "levels": [warn.level],
                           "role": warn.role, "roles": [warn.role], "overdue_s": overdue_s, "step": warn.kind}
                rows.append((NewOutbox(warn.dedup_key(oid, stage), KIND, now, payload, recipient_user_id=user_id,
                                       recipient_role=role, recipient_region=region), view))
            continue
        sent_levels = {s.level for s in rungs if s.dedup_key(oid, stage) in sent}
        owed = levels_to_announce([s.level for s in rungs], sent_levels)
        if not owed:
            continue
        roles = {s.level: s.role for s in rungs}
        by_recipient: dict[tuple[int | None, str | None, str | None], int] = {}
        for level in owed:
            by_recipient[await _recipient(repo, roles[level], view)] = level  # ascending: the highest level wins
        await _drop_covered(repo, by_recipient)
        for (user_id, role, region), level in by_recipient.items():
            step = next(s for s in rungs if s.level == level)
            payload = {"order_id": oid, "stage": stage, "level": level, "levels": owed,
                       "role": roles[level], "roles": [roles[lv] for lv in owed], "overdue_s": overdue_s,
                       "step": step.kind}
            rows.append((NewOutbox(step.dedup_key(oid, stage), KIND, now, payload, recipient_user_id=user_id,
                                   recipient_role=role, recipient_region=region), view))
        if 0 in owed and mail_key(oid, stage) not in sent:
            mails.append(await _mail_copy(repo, view, now, overdue_s))
    if mails:
        await repo.enqueue(mails, now)
    ids: list[int] = []
    if rows and policy is not None:
        held = [HeldAlert(row, group_key(_rcpt_label(row), _labels(view), policy), _labels(view))
                for row, view in rows]
        ids += await repo.hold_alerts(held, now)
    elif rows:
        ids += await repo.enqueue([row for row, _ in rows], now)
    for row, _ in rows:
        metrics.STALL_ALERTS.labels(level=str(row.payload.get("level", "?"))).inc()
    return ids


def _labels(view: ChatOrderView) -> dict[str, str | None]:
    return {"stage": view.order.stage.value, "base": view.production_base, "region": view.order.region}


def _rcpt_label(row: NewOutbox) -> str:
    """Who, and whether a warning: warnings ("due soon") and overdue alerts never share a card."""
    who = (f"u{row.recipient_user_id}" if row.recipient_user_id is not None
           else f"r{row.recipient_role}@{row.recipient_region or ''}")
    return f"{who}/{'warn' if int(row.payload.get('level', 0)) < 0 else 'due'}"


async def _mail_copy(repo: ChatRepo, view: ChatOrderView, now: datetime, overdue_s: int) -> NewOutbox:
    """The breach's e-mail copy: to the owner's supervisor; for an order without one, the region's managers (the
    admins for an order in no region, never every manager)."""
    payload = {"order_id": view.order.id, "stage": view.order.stage.value, "overdue_s": overdue_s}
    key = mail_key(view.order.id, view.order.stage.value)
    owner = await repo.user(view.owner_user_id) if view.owner_user_id else None
    if owner is not None and owner.supervisor_id:
        return NewOutbox(key, MAIL_KIND, now, payload, recipient_user_id=owner.supervisor_id)
    if view.order.region:
        return NewOutbox(key, MAIL_KIND, now, payload, recipient_role="manager", recipient_region=view.order.region)
    return NewOutbox(key, MAIL_KIND, now, payload, recipient_role="admin")


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


async def _recipient(repo: ChatRepo, rung_role: str, view: ChatOrderView) -> tuple[int | None, str | None, str | None]:
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


def may_act(user: UserInfo, view: ChatOrderView) -> bool:
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
            await toast(channel, event.callback_id, t(f"move.{exc.code}", lang), alert=True)
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
