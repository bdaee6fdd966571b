"""Approval use cases: a press on Approve / Reject / Details, the reject reason, escalation of silent requests.

Requests themselves are outbox rows (`approval_request`, dedup `approval:<id>`) written by the intake worker;
the notifier renders them. A decision is stored by compare-and-set together with the order's move, the audit
entry and an `approval_outcome` outbox row that edits every copy of the card, in one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from engine import approvals as machine
from engine.approvals import Approval, Decided, Refusal, Refused, Status, Verdict
from engine.stages import Stage
from engine.text import t
from engine.tokens import Action, ActionToken, version_ref
from handlers import metrics
from handlers.cards import order_detail_pages
from handlers.chat import ButtonPressed, Outgoing, TextReceived
from handlers.chat_ports import AuditEntry, AwaitingReason, ChatRepo, NewOutbox, StageMove, UserInfo
from handlers.dispatch import ChatContext
from handlers.ports import Clock
from handlers.replies import send, send_pages, toast

log = logging.getLogger(__name__)
ACTIONS = frozenset({Action.APPROVE, Action.REJECT, Action.APPROVAL_DETAILS})
REASON_WAIT = timedelta(hours=1)  # a Reject press waits this long for its reason


def request_outbox(approval: Approval, now: datetime, *, escalation_level: int = 0) -> NewOutbox:
    """The outbox row that sends a request card (the intake worker writes the level-0 one the same way)."""
    if escalation_level:
        return NewOutbox(
            dedup_key=f"approval:{approval.id}:esc:{escalation_level}",
            kind="approval_request",
            due_at=now,
            payload={"approval_id": approval.id, "order_id": approval.order_id, "escalation_level": escalation_level},
            recipient_role=machine.ESCALATION_ROLE,
        )
    return NewOutbox(
        dedup_key=f"approval:{approval.id}",
        kind="approval_request",
        due_at=now,
        payload={"approval_id": approval.id, "order_id": approval.order_id},
        recipient_role=approval.required_role,
        recipient_region=approval.region,
    )


def outcome_outbox(approval_id: int, now: datetime) -> NewOutbox:
    """Edits every stored copy of the request card to show the outcome (no recipients: refs say where)."""
    return NewOutbox(f"approval_outcome:{approval_id}", "approval_outcome", now, {"approval_id": approval_id})


_TOASTS = {
    Refusal.NOT_PERMITTED: "toast.not_permitted",
    Refusal.OWN_REQUEST: "toast.own_request",
    Refusal.ALREADY_DECIDED: "toast.already_decided",
    Refusal.SUPERSEDED: "toast.superseded",
    Refusal.REASON_REQUIRED: "toast.reason_required",
}


async def on_button(event: ButtonPressed, tok: ActionToken, ctx: ChatContext) -> None:
    """Approve, Reject or Details on a request card. Anyone not entitled is told so and nothing changes."""
    channel = ctx.channel(event.sender.platform)
    lang = ctx.language
    user = await ctx.repo.user_by_identity(event.sender.platform, event.sender.user_id)
    approval = await ctx.repo.approval(tok.id)
    if user is None or approval is None:
        await toast(channel, event.callback_id, t("toast.not_permitted", lang), alert=True)
        return
    actor = user.as_actor()
    if not machine.may_decide(approval, actor):
        await toast(channel, event.callback_id, t("toast.not_permitted", lang), alert=True)
        return
    if tok.ref != version_ref(approval.order_version):
        await toast(channel, event.callback_id, t("toast.stale", lang), alert=True)
        return
    view = await ctx.repo.order(approval.order_id)
    if view is None:
        await toast(channel, event.callback_id, t("toast.not_found", lang), alert=True)
        return
    if tok.action == Action.APPROVAL_DETAILS:
        await toast(channel, event.callback_id, "")
        await send_pages(channel, event.sender.chat_id, order_detail_pages(view, lang, ctx.timezone))
        return
    now = ctx.clock.now()
    if tok.action == Action.REJECT:
        # Validate everything but the reason now, so an outsider is refused before being asked for one.
        probe = machine.decide(approval, actor, Verdict.REJECT, now, current_order_version=view.version, reason="-")
        if isinstance(probe, Refused):
            await _refused(probe, approval, ctx, event)
            return
        prompt = await send(channel, Outgoing(
            chat_id=event.sender.chat_id,
            text=t("approval.ask_reason", lang, order=view.order.data.external_id),
            force_reply=True,
        ))
        await ctx.repo.await_reason(AwaitingReason(
            approval.id, event.sender.platform, event.sender.user_id, event.sender.chat_id,
            prompt.message_id if prompt else None, now,
        ))
        await toast(channel, event.callback_id, t("toast.ask_reason", lang))
        return
    outcome = machine.decide(approval, actor, Verdict.APPROVE, now, current_order_version=view.version)
    if isinstance(outcome, Refused):
        await _refused(outcome, approval, ctx, event)
        return
    won = await record_decision(ctx, outcome, user, view.order.stage, now)
    await toast(channel, event.callback_id, t("toast.approved" if won else "toast.already_decided", lang),
                alert=not won)


async def _refused(refused: Refused, approval: Approval, ctx: ChatContext, event: ButtonPressed) -> None:
    if refused.reason == Refusal.SUPERSEDED:
        await supersede(ctx, approval)
    await toast(ctx.channel(event.sender.platform), event.callback_id, t(_TOASTS[refused.reason], ctx.language),
                alert=True)


async def record_decision(ctx: ChatContext, decided: Decided, user: UserInfo, stage: Stage, now: datetime) -> bool:
    """Store the decision (first one wins), move the order, and push the card edits out."""
    approval = decided.approval
    others = [a for a in await ctx.repo.approvals_of_order(approval.order_id)
              if a.id != approval.id and a.status == Status.PENDING]
    same_version = [a for a in others if a.order_version == approval.order_version]
    target = machine.order_stage_after(approval, len(same_version))
    move = None
    if target is not None and stage == Stage.PENDING_CONFIRM:
        view = await ctx.repo.order(approval.order_id)
        deadline = ctx.deadlines.deadline_for(view.order, target, now) if view else None
        reason = approval.reason if target == Stage.CANCELLED else f"approval {approval.id}"
        move = StageMove(approval.order_id, stage, target, actor=user.name, reason=reason, deadline=deadline)
    # A rejection ends the order: any other pending level of it dies with it.
    supersede_ids = [a.id for a in others] if approval.status == Status.REJECTED else []
    outbox = [outcome_outbox(approval.id, now)] + [outcome_outbox(i, now) for i in supersede_ids]
    audit = AuditEntry(user.name, f"approval.{approval.status.value}", f"order:{approval.order_id}",
                       {"approval_id": approval.id, "reason": approval.reason, "level": approval.level})
    won = await ctx.repo.apply_decision(decided, move=move, outbox=outbox, audit=audit, now=now,
                                        supersede_ids=supersede_ids)
    if won:
        metrics.APPROVALS_DECIDED.labels(outcome=approval.status.value).inc()
        metrics.APPROVAL_DECISION_SECONDS.observe(max((now - approval.requested_at).total_seconds(), 0.0))
        await _deliver(ctx, [o.dedup_key for o in outbox])
    return won


async def supersede(ctx: ChatContext, approval: Approval) -> None:
    """The order changed under this request: void it and edit its cards (the new request comes from intake).

    Intake may have voided the row already; its cards are then edited now (the dedup key keeps it to once).
    """
    now = ctx.clock.now()
    decided = machine.supersede(approval, now)
    if decided is None:
        if approval.status == Status.SUPERSEDED:
            await ctx.repo.enqueue([outcome_outbox(approval.id, now)], now)
            await _deliver(ctx, [outcome_outbox(approval.id, now).dedup_key])
        return
    outbox = [outcome_outbox(approval.id, now)]
    audit = AuditEntry("system", "approval.superseded", f"order:{approval.order_id}", {"approval_id": approval.id})
    if await ctx.repo.apply_decision(decided, move=None, outbox=outbox, audit=audit, now=now):
        await _deliver(ctx, [o.dedup_key for o in outbox])


async def _deliver(ctx: ChatContext, dedup_keys: Sequence[str]) -> None:
    if ctx.delivery is None:
        return
    ids = await ctx.repo.outbox_ids_for_keys(dedup_keys)
    try:
        await ctx.delivery.deliver_ids(ids)
    except Exception:
        log.exception("immediate delivery failed; left to the outbox sweep")


async def handle_reason_reply(event: TextReceived, ctx: ChatContext) -> bool:
    """The text after a Reject press is its reason. Returns False when no reason was awaited from this person."""
    pending = await ctx.repo.take_awaiting_reason(event.sender.platform, event.sender.user_id, event.sender.chat_id)
    if pending is None:
        return False
    now = ctx.clock.now()
    if now - pending.created_at > REASON_WAIT:
        return False
    channel = ctx.channel(event.sender.platform)
    reason = event.text.strip()
    if not reason:
        await ctx.repo.await_reason(replace(pending, created_at=now))
        await send(channel, Outgoing(chat_id=event.sender.chat_id, text=t("toast.reason_required", ctx.language),
                                     force_reply=True))
        return True
    user = await ctx.repo.user_by_identity(event.sender.platform, event.sender.user_id)
    approval = await ctx.repo.approval(pending.approval_id)
    view = await ctx.repo.order(approval.order_id) if approval else None
    if user is None or approval is None or view is None:
        await send(channel, Outgoing(chat_id=event.sender.chat_id, text=t("toast.not_permitted", ctx.language)))
        return True
    outcome = machine.decide(approval, user.as_actor(), Verdict.REJECT, now, current_order_version=view.version,
                             reason=reason)
    if isinstance(outcome, Refused):
        if outcome.reason == Refusal.SUPERSEDED:
            await supersede(ctx, approval)
        text = t(_TOASTS[outcome.reason], ctx.language)
    elif await record_decision(ctx, outcome, user, view.order.stage, now):
        text = t("approval.reason_recorded", ctx.language, order=view.order.data.external_id)
    else:
        text = t("toast.already_decided", ctx.language)
    await send(channel, Outgoing(chat_id=event.sender.chat_id, text=text))
    return True


async def escalate_due(repo: ChatRepo, clock: Clock) -> int:
    """Requests unanswered past `escalate_at` go one level up (to admins); each level is sent once."""
    now = clock.now()
    count = 0
    for approval in await repo.due_escalations(now):
        nxt = machine.escalate(approval, now)
        if nxt is None:
            continue
        outbox = [request_outbox(nxt, now, escalation_level=nxt.escalation_level)]
        if await repo.apply_escalation(nxt, expected_level=approval.escalation_level, outbox=outbox, now=now):
            count += 1
            metrics.APPROVALS_ESCALATED.inc()
    return count
