"""Approval use cases: a press on Approve / Reject / Details, the reject reason, escalation of silent requests.

Requests themselves are outbox rows (`approval_request`, dedup `approval:<id>`, built by
`handlers.outbox_kinds.approval_request`) written by the intake worker; the notifier renders them. A decision is
stored by compare-and-set together with the order's move, the audit entry and an `approval_outcome` outbox row that
edits every copy of the card, in one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from engine import approvals as machine
from engine.approvals import Approval, Decided, Refusal, Refused, Status, Verdict
from engine.stages import Stage
from engine.text import t
from engine.tokens import Action, ActionToken, version_ref
from handlers import metrics
from handlers.cards import order_detail_pages
from handlers.chat import ButtonPressed, Outgoing, TextReceived
from handlers.chat_ports import AuditEntry, AwaitingReason, ChatRepo, NewOutbox, ChatOrderView, OutboxDelivery, UserInfo
from handlers.chat_context import ChatContext
from handlers.orders import Deadlines, MoveRefused, TransitionError, plan_move
from handlers.outbox_kinds import approval_outcome, approval_request
from handlers.ports import Clock
from handlers.replies import send, send_pages, toast

log = logging.getLogger(__name__)
ACTIONS = frozenset({Action.APPROVE, Action.REJECT, Action.APPROVAL_DETAILS})
REASON_WAIT = timedelta(hours=1)  # a Reject press waits this long for its reason


def request_outbox(approval: Approval, now: datetime, *, escalation_level: int = 0) -> NewOutbox:
    """The outbox row that sends a request card: to the required role, or on escalation to the escalation role."""
    if escalation_level:
        return approval_request(approval.id, approval.order_id, now, role=machine.ESCALATION_ROLE,
                                escalation_level=escalation_level)
    return approval_request(approval.id, approval.order_id, now, role=approval.required_role, region=approval.region)


outcome_outbox = approval_outcome  # the row that edits every copy of a decided request's card


_TOASTS = {
    Refusal.NOT_PERMITTED: "toast.not_permitted",
    Refusal.OWN_REQUEST: "toast.own_request",
    Refusal.ALREADY_DECIDED: "toast.already_decided",
    Refusal.SUPERSEDED: "toast.superseded",
    Refusal.REASON_REQUIRED: "toast.reason_required",
    Refusal.LEVEL_PENDING: "toast.level_pending",
    Refusal.NOT_FOUND: "toast.not_permitted",  # an unknown request reads like a forbidden one
}


# (the decided approval, levels of its request still pending, now)
FollowUp = Callable[[Approval, int, datetime], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Deciders:
    """What the decide use case needs, from any entry point (chat, API, CLI)."""

    repo: ChatRepo
    deadlines: Deadlines
    delivery: OutboxDelivery | None = None  # None: card edits are left to the notifier's outbox sweep
    # what a decided approval of a kind does next, by kind (a `refund` approval carries on to its refund:
    # handlers.refunds.follow_ups); a kind without an entry ends with the decision and its move
    follow_ups: Mapping[str, FollowUp] = field(default_factory=dict)


class DecisionRefused(Exception):
    """A decision that changes nothing; `reason` maps to a toast, an API error and a CLI line."""

    def __init__(self, reason: Refusal) -> None:
        self.reason = reason
        super().__init__(reason.value)


class FollowUpMissing(RuntimeError):
    """A wiring fault, not a person's: this entry point cannot decide approvals of this kind."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        super().__init__(f"approvals of kind {kind!r} need their follow-up in Deciders.follow_ups "
                         f"(handlers.refunds.follow_ups for refunds); nothing was decided")


def deciders(ctx: ChatContext) -> Deciders:
    return Deciders(ctx.repo, ctx.deadlines, ctx.delivery, ctx.follow_ups)


async def decide(deps: Deciders, approval_id: int, user: UserInfo, verdict: Verdict, reason: str, now: datetime,
                 *, dry_run: bool = False) -> Approval:
    """THE way to decide an approval: a chat button (and its reason reply), the API and the CLI all call this.

    Checks role, region, four-eyes, level order and the order's version (engine.approvals.decide), then stores the
    decision by compare-and-set together with what its kind does to the order (the one move use case), the next
    level's card, the audit entry and the card edits. Returns the decided approval or raises DecisionRefused.
    `dry_run` checks only (a Reject press is checked before its reason is asked for).
    """
    approval = await deps.repo.approval(approval_id)
    view = await deps.repo.order(approval.order_id) if approval else None
    if approval is None or view is None:
        raise DecisionRefused(Refusal.NOT_FOUND)
    if machine.outcome_of(approval.kind).carries_on and approval.kind not in deps.follow_ups:
        # a side door wired without the kind's next step would store a decision nothing acts on (a refund left
        # waiting for finance for good): refuse before anything is stored
        raise FollowUpMissing(approval.kind)
    siblings = await deps.repo.approvals_of_order(approval.order_id)
    outcome = machine.decide(approval, user.as_actor(), verdict, now, current_order_version=view.version,
                             reason="-" if dry_run and not reason.strip() else reason,
                             earlier_levels_pending=machine.earlier_levels_pending(approval, siblings))
    if isinstance(outcome, Refused):
        if outcome.reason == Refusal.SUPERSEDED:
            await supersede(deps, approval, now)
        raise DecisionRefused(outcome.reason)
    if dry_run:
        return approval
    if not await record_decision(deps, outcome, user, view, siblings, now):
        raise DecisionRefused(Refusal.ALREADY_DECIDED)
    return outcome.approval


async def on_button(event: ButtonPressed, tok: ActionToken, ctx: ChatContext) -> None:
    """Approve, Reject or Details on a request card. Anyone not entitled is told so and nothing changes."""
    channel = ctx.channel(event.sender.platform)
    lang = ctx.language
    user = await ctx.repo.user_by_identity(event.sender.platform, event.sender.user_id)
    approval = await ctx.repo.approval(tok.id)
    if user is None or approval is None:
        await toast(channel, event.callback_id, t("toast.not_permitted", lang), alert=True)
        return
    if not machine.may_decide(approval, user.as_actor()):
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
    verdict = Verdict.REJECT if tok.action == Action.REJECT else Verdict.APPROVE
    try:
        # A Reject is checked in full now, so an outsider is refused before being asked for a reason.
        await decide(deciders(ctx), approval.id, user, verdict, "", now, dry_run=verdict == Verdict.REJECT)
    except DecisionRefused as exc:
        await toast(channel, event.callback_id, t(_TOASTS[exc.reason], lang), alert=True)
        return
    if verdict == Verdict.APPROVE:
        await toast(channel, event.callback_id, t("toast.approved", lang))
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


async def record_decision(deps: Deciders, decided: Decided, user: UserInfo, view: ChatOrderView,
                          siblings: Sequence[Approval], now: datetime) -> bool:
    """Store the decision (first one wins) with what its kind does: the order's move (through the one move use
    case), the next level's card, the requests a rejection closes; then push the card edits out."""
    approval = decided.approval
    others = list(siblings)
    remaining = [a for a in others if a.id != approval.id and a.status == Status.PENDING
                 and machine.same_request(a, approval)]
    target = machine.order_stage_after(approval, len(remaining))
    move = None
    if target is not None and view.order.stage == Stage.PENDING_CONFIRM:
        reason = (approval.reason or "rejected") if target == Stage.CANCELLED else f"approval {approval.id}"
        try:
            move = plan_move(view.order, target.value, reason, user.name, now, deps.deadlines,
                             pending_confirmations=0, by_approval=approval.id, base=view.production_base)
        except (TransitionError, MoveRefused):
            move = None
    supersede_ids = [a.id for a in machine.closed_by_rejection(approval, others)]
    nxt = machine.next_levels(approval, others) if approval.status == Status.APPROVED else []
    outbox = ([outcome_outbox(approval.id, now)] + [outcome_outbox(i, now) for i in supersede_ids]
              + [request_outbox(a, now) for a in nxt])
    audit = AuditEntry(user.name, f"approval.{approval.status.value}", f"order:{approval.order_id}",
                       {"approval_id": approval.id, "reason": approval.reason, "level": approval.level,
                        "kind": approval.kind})
    reschedule = [(a.id, now + interval if (interval := machine.escalation_interval(a)) else None) for a in nxt]
    won = await deps.repo.apply_decision(decided, move=move, outbox=outbox, audit=audit, now=now,
                                         supersede_ids=supersede_ids, reschedule=reschedule)
    if won:
        metrics.APPROVALS_DECIDED.labels(outcome=approval.status.value).inc()
        metrics.APPROVAL_DECISION_SECONDS.observe(max((now - approval.requested_at).total_seconds(), 0.0))
        await _deliver(deps, [o.dedup_key for o in outbox])
        follow_up = deps.follow_ups.get(approval.kind)
        if follow_up is not None:
            try:
                await follow_up(approval, len(remaining), now)
            except Exception:  # the decision stands; the kind's own sweep catches up (handlers.refunds for refunds)
                log.exception("%s follow-up of approval %s failed", approval.kind, approval.id)
    return won


async def supersede(deps: Deciders, approval: Approval, now: datetime) -> None:
    """The order changed under this request: void it and edit its cards (the new request comes from intake).

    Intake may have voided the row already; its cards are then edited now (the dedup key keeps it to once).
    """
    decided = machine.supersede(approval, now)
    if decided is None:
        if approval.status == Status.SUPERSEDED:
            await deps.repo.enqueue([outcome_outbox(approval.id, now)], now)
            await _deliver(deps, [outcome_outbox(approval.id, now).dedup_key])
        return
    outbox = [outcome_outbox(approval.id, now)]
    audit = AuditEntry("system", "approval.superseded", f"order:{approval.order_id}", {"approval_id": approval.id})
    if await deps.repo.apply_decision(decided, move=None, outbox=outbox, audit=audit, now=now):
        await _deliver(deps, [o.dedup_key for o in outbox])


async def _deliver(deps: Deciders, dedup_keys: Sequence[str]) -> None:
    if deps.delivery is None:
        return
    ids = await deps.repo.outbox_ids_for_keys(dedup_keys)
    try:
        await deps.delivery.deliver_ids(ids)
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
    if user is None:
        await send(channel, Outgoing(chat_id=event.sender.chat_id, text=t("toast.not_permitted", ctx.language)))
        return True
    try:
        decided = await decide(deciders(ctx), pending.approval_id, user, Verdict.REJECT, reason, now)
    except DecisionRefused as exc:
        text = t(_TOASTS[exc.reason], ctx.language)
    else:
        view = await ctx.repo.order(decided.order_id)
        ext = view.order.data.external_id if view else str(decided.order_id)
        text = t("approval.reason_recorded", ctx.language, order=ext)
    await send(channel, Outgoing(chat_id=event.sender.chat_id, text=text))
    return True


async def escalate_due(repo: ChatRepo, clock: Clock) -> int:
    """Requests unanswered past `escalate_at` go one level up (to admins); each level is sent once."""
    now = clock.now()
    count = 0
    for approval in await repo.due_escalations(now):
        if approval.level > 1 and machine.earlier_levels_pending(approval, await repo.approvals_of_order(
                approval.order_id)):
            continue  # its card has not gone out yet: levels run in order
        nxt = machine.escalate(approval, now)
        if nxt is None:
            continue
        outbox = [request_outbox(nxt, now, escalation_level=nxt.escalation_level)]
        if await repo.apply_escalation(nxt, expected_level=approval.escalation_level, outbox=outbox, now=now):
            count += 1
            metrics.APPROVALS_ESCALATED.inc()
    return count
