"""Refund use cases, one per business act, for every entry point (chat, API, CLI, the Taobao push):

- `request_refund`: a new refund, decided at once by the rules' `refunds.matrix` with facts from the order's stage
  history and tracking; an unshipped full refund cancels the order through the one move use case;
- `attach_proof`: a photo of the return waybill; OCR reads it, the carrier's tracking confirms the return, or a
  person decides with the photo and what was read;
- `decide_refund`: that person's decision (finance or admin);
- `on_finance_decided`: what a decided `refund` approval (handlers.approvals.decide) does to its refund;
- `mark_refunded`: the money went back.

Every step is one compare-and-set on the refund's state with its audit entry, the customer's message (an outbox
row to the chat the request came from) and, where due, the order's move and the finance approval, in one
transaction (RefundStore.save).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any, Protocol

from engine import refunds as rf
from engine.approvals import Approval, Kind, Status
from engine.carriers import CARRIERS, TrackStatus
from engine.carriers.text import t as ct
from engine.refund_text import rt
from engine.refunds import ProofVerdict, RefundState, ReturnStatus, TrackingFacts, WaybillPattern
from engine.rules import Facts, RuleSet
from engine.rules.evaluate import evaluate
from engine.stages import END_STATES, Stage, label
from handlers import metrics
from handlers.chat_ports import AuditEntry, NewOutbox, OutboxDelivery
from handlers.orders import Move, MoveRefused, OrderDetail, OrderStore, TransitionError, plan_move
from handlers.ports import Refused

log = logging.getLogger(__name__)
MAX_ITEMS = 100
MAX_REASON = 500
UPDATE_KIND = "refund_update"  # plain text to the chat that asked for the refund


@dataclass(frozen=True, slots=True)
class Refund:
    id: int
    order_id: int
    source: str  # chat | api | cli | taobao
    source_ref: str | None
    amount: Decimal
    reason: str
    items: tuple[dict[str, Any], ...]
    state: RefundState
    rule_id: str | None
    decision: dict[str, Any]
    requested_by: str
    requested_at: datetime
    updated_at: datetime
    decided_at: datetime | None = None
    automatic: bool = False
    approval_id: int | None = None
    proof: dict[str, Any] | None = None
    notify_platform: str | None = None
    notify_chat_id: str | None = None


@dataclass(frozen=True, slots=True)
class FinanceLevel:
    """One level of the finance approval a refund needs (from the rules' `refund` approvals)."""

    level: int
    role: str
    region: str | None
    rule_id: str
    escalate_after: timedelta | None = None


class RefundStore(Protocol):
    async def refund(self, refund_id: int) -> Refund | None: ...

    async def by_source(self, source: str, source_ref: str) -> Refund | None: ...

    async def by_approval(self, approval_id: int) -> Refund | None: ...

    async def waiting_proof_for_chat(self, platform: str, chat_id: str) -> Refund | None:
        """The newest refund requested from this chat that waits for its proof."""
        ...

    async def of_order(self, order_id: int) -> list[Refund]: ...

    async def refunds(self, state: str | None, limit: int) -> list[Refund]: ...

    async def outbox_ids_for_keys(self, keys: Sequence[str]) -> list[int]: ...

    async def history(self, refund_id: int) -> list[dict[str, Any]]:
        """The refund's audit entries, oldest first."""
        ...

    async def save(self, refund: Refund, *, expected: RefundState | None, now: datetime, audit: AuditEntry,
                   move: Move | None = None, finance: Sequence[FinanceLevel] = (),
                   outbox: Callable[[Refund], Sequence[NewOutbox]] = lambda r: (),
                   card: Callable[[Refund], Sequence[tuple[str, str]]] = lambda r: ()) -> Refund | None:
        """Insert (`expected` None; None back when `(source, source_ref)` exists) or compare-and-set the state
        (None back when the refund is no longer in `expected`), with the audit entry, the order's move, the finance
        approval levels (order_version `refund:<id>`, the first level's card queued with the fields `card` makes) and the outbox rows made from
        the stored refund, in one transaction. A move that no longer applies fails the whole save."""
        ...


class ProofFiles(Protocol):
    def save(self, refund_id: int, data: bytes, kind: str) -> str:
        """Store the file under the data dir (never served publicly); its path relative to the proofs root."""
        ...


class OcrReader(Protocol):
    async def read(self, data: bytes) -> str: ...


class ReturnTracker(Protocol):
    """The carriers' view of a return waybill (bot/ wires the carrier adapters; tests use a fake)."""

    carriers: Sequence[str]  # the carriers it can track

    async def status(self, carrier: str, waybill: str) -> ReturnStatus | None: ...


@dataclass(slots=True)
class RefundDeps:
    orders: OrderStore
    refunds: RefundStore
    rules: Callable[[], RuleSet]
    proofs: ProofFiles | None = None
    ocr: OcrReader | None = None
    tracker: ReturnTracker | None = None
    delivery: OutboxDelivery | None = None
    language: str = "zh"
    after_sales: str = ""  # the contact a late refund is referred to
    patterns: Sequence[WaybillPattern] = field(default_factory=lambda: rf.DEFAULT_PATTERNS)


def waybill_patterns(deps: RefundDeps) -> tuple[WaybillPattern, ...]:
    """The built-in carrier number patterns, then the extra ones of the running rules (`carriers.waybill_patterns`)."""
    extra = tuple(WaybillPattern(p.carrier, p.regex) for p in deps.rules().model.carriers.waybill_patterns)
    return (*deps.patterns, *extra)


class RefundError(Refused):
    """A request or step refused; `code` for the API (`{"error": code}`), `status` its HTTP status."""

    def __init__(self, code: str, detail: str, status: int = 422) -> None:
        super().__init__(code, detail)
        self.status = status


# --- helpers ----------------------------------------------------------------------------------------------------------

def tracking_facts(detail: OrderDetail) -> TrackingFacts:
    """Shipped and delivered times from the order's recorded moves (the carrier's delivered event moves the order
    to awaiting_install) and the tracking mirror (`delivered_at`, `shipped_at` when a carrier reported them)."""
    shipped = delivered = None
    for t in detail.order.history:
        if t.to_stage is Stage.SHIPPED:
            shipped = t.at
        elif t.to_stage is Stage.AWAITING_INSTALL:
            delivered = t.at
    tr = detail.tracking or {}
    for key in ("shipped_at", "delivered_at"):
        raw = tr.get(key)
        if isinstance(raw, str):
            try:
                value = datetime.fromisoformat(raw)
            except ValueError:
                continue
            shipped, delivered = (value, delivered) if key == "shipped_at" else (shipped, value)
    return TrackingFacts(shipped, delivered)


def _money(value: Any) -> Decimal:
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        raise RefundError("invalid_amount", f"{value!r} is not an amount") from None
    if not amount.is_finite() or amount <= 0 or amount > Decimal("100000000"):
        raise RefundError("invalid_amount", "the amount must be positive (at most 100,000,000)")
    return amount


def _items(detail: OrderDetail, items: Sequence[Any] | None) -> tuple[dict[str, Any], ...]:
    if not items:
        return ()
    if len(items) > MAX_ITEMS:
        raise RefundError("invalid_items", f"at most {MAX_ITEMS} items")
    by_sku = {i.sku: i for i in detail.order.data.items}
    out = []
    for raw in items:
        sku = raw.get("sku") if isinstance(raw, dict) else raw
        if not isinstance(sku, str) or sku not in by_sku:
            raise RefundError("invalid_items", f"{sku!r} is not an item of this order "
                                               f"({', '.join(by_sku) or 'none'})")
        qty = raw.get("qty", by_sku[sku].qty) if isinstance(raw, dict) else by_sku[sku].qty
        if not isinstance(qty, int) or not 1 <= qty <= by_sku[sku].qty:
            raise RefundError("invalid_items", f"qty of {sku} must be 1..{by_sku[sku].qty}")
        out.append({"sku": sku, "qty": qty})
    return tuple(out)


def _finance_levels(rules: RuleSet, detail: OrderDetail, req: Any, now: datetime) -> tuple[Any, list[FinanceLevel]]:
    d = evaluate(detail.order, Facts(refund=req), rules, now)
    levels = [FinanceLevel(a.level, a.role, a.region, a.rule_id, a.escalate_after)
              for a in d.approvals if a.kind == "refund"]
    return d, levels


def _message(refund: Refund, order_ext: str, language: str, why: str) -> str:
    key = f"refund.{refund.state.value}"
    return rt(key, language, id=refund.id, order=order_ext, amount=f"{refund.amount:,.2f}", why=why).strip()


def customer_outbox(refund: Refund, order_ext: str, language: str, why: str, now: datetime) -> list[NewOutbox]:
    """The customer's one message for this step, to the chat the request came from (none for API/Taobao)."""
    if not (refund.notify_platform and refund.notify_chat_id):
        return []
    return [NewOutbox(f"refund:{refund.id}:{refund.state.value}", UPDATE_KIND, now,
                      {"platform": refund.notify_platform, "chat_id": refund.notify_chat_id, "refund_id": refund.id,
                       "text": _message(refund, order_ext, language, why)})]


def finance_fields(deps: RefundDeps, refund: Refund, earlier: Sequence[Refund]) -> list[tuple[str, str]]:
    """What finance needs on the card beside the order: amount, reason, items, earlier refunds, the rule, the
    proof (file received, what OCR read, the waybill) and the carrier's status."""
    lang = deps.language
    f = [(rt("f.refund", lang), f"#{refund.id} ¥{refund.amount:,.2f}" + (
            " · " + ", ".join(f"{i['sku']}×{i['qty']}" for i in refund.items) if refund.items else "")),
         (rt("f.reason", lang), refund.reason[:200]),
         (rt("f.rule", lang), f"{refund.rule_id} · {refund.decision.get('message', '')}"[:200])]
    before = [r for r in earlier if r.id != refund.id and r.state is not RefundState.REJECTED]
    if before:
        f.append((rt("f.refunded_before", lang), ", ".join(
            f"#{r.id} ¥{r.amount:,.2f} {rt(f'state.{r.state.value}', lang)}" for r in before[:5])))
    facts = refund.decision.get("facts", {})
    tz = getattr(deps.rules(), "tz", None)
    stage = facts.get("stage", "")
    shown_stage = label(stage, lang) if stage in _STAGES else stage or "—"
    f.append((rt("f.history", lang), rt("history", lang, stage=shown_stage,
                                        shipped=_local(facts.get("shipped_at"), tz),
                                        delivered=_local(facts.get("delivered_at"), tz))))
    p = refund.proof
    if p:
        verdict = p.get("verdict")
        f.append((rt("f.proof", lang), f"{str(p.get('type') or '').upper()} {p.get('bytes', 0) // 1024} KiB"
                                       + (f" · {rt(f'verdict.{verdict}', lang)}" if verdict in _VERDICTS else "")))
        f.append((rt("f.ocr", lang), f"{p.get('waybill') or '—'} ({_carrier(p.get('carrier'), lang)}) · "
                                     + (p.get("ocr_text") or "").replace("\n", " ")[:160]))
        status = p.get("tracking_status")
        towards = " · " + rt("towards_merchant", lang) if p.get("towards_merchant") else ""
        f.append((rt("f.tracking", lang), (ct(f"status.{status}", lang) if status in _TRACK_STATUSES else "—")
                  + towards))
    return f


_STAGES = {s.value for s in Stage}
_VERDICTS = {v.value for v in ProofVerdict}
_TRACK_STATUSES = {s.value for s in TrackStatus}


def _local(iso: Any, tz: Any) -> str:
    """A stored ISO instant as local `MM-DD HH:MM` for a card; "—" when there is none."""
    if not iso:
        return "—"
    try:
        at = datetime.fromisoformat(str(iso))
    except ValueError:
        return str(iso)
    return (at.astimezone(tz) if tz is not None else at).strftime("%m-%d %H:%M")


def _carrier(code: Any, lang: str) -> str:
    return ct(f"carrier.{code}", lang) if code in CARRIERS else str(code or "?")


async def _deliver(deps: RefundDeps, keys: Sequence[str]) -> None:
    if deps.delivery is None or not keys:
        return
    try:
        await deps.delivery.deliver_ids(await deps.refunds.outbox_ids_for_keys(list(keys)))
    except Exception:
        log.exception("immediate refund message delivery failed; left to the outbox sweep")


def _cancel_move(deps: RefundDeps, detail: OrderDetail, refund: Refund, actor: str, now: datetime) -> Move | None:
    """A full refund cancels the order (cancelled includes fully refunded), through the one move use case;
    a partial one leaves the order as it is (the refund records its items)."""
    o = detail.order
    if o.stage in END_STATES:
        return None
    if not rf.full_refund(refund.amount, o.data.amount, [i["sku"] for i in refund.items],
                          [i.sku for i in o.data.items]):
        return None
    try:
        return plan_move(o, Stage.CANCELLED.value, f"refund {refund.id}", actor, now, deps.rules(),
                         pending_confirmations=detail.pending_confirmations)
    except (TransitionError, MoveRefused):
        return None


async def _step(deps: RefundDeps, refund: Refund, new: Refund, detail: OrderDetail, *, actor: str, action: str,
                why: str, now: datetime, move: Move | None = None, finance: Sequence[FinanceLevel] = (),
                audit_detail: dict[str, Any] | None = None) -> Refund:
    ext = detail.order.data.external_id
    earlier = await deps.refunds.of_order(refund.order_id) if finance else []
    saved = await deps.refunds.save(
        new, expected=refund.state, now=now, move=move, finance=finance,
        card=lambda r: finance_fields(deps, r, earlier),
        audit=AuditEntry(actor, f"refund.{action}", f"refund:{refund.id}",
                         {"from": refund.state.value, "to": new.state.value, "order_id": refund.order_id,
                          **(audit_detail or {})}),
        outbox=lambda r: customer_outbox(r, ext, deps.language, why, now))
    if saved is None:
        raise RefundError("changed", "the refund changed meanwhile; look again", 409)
    _count_decision(refund.state, saved.state)
    await _deliver(deps, [f"refund:{saved.id}:{saved.state.value}"])
    return saved


def _count_decision(before: RefundState | None, after: RefundState) -> None:
    """The decided-refunds metric, once per refund: when it first reaches approved or rejected (committed)."""
    if after in rf.DECIDED and (before is None or before not in rf.DECIDED):
        metrics.REFUNDS_DECIDED.labels(outcome=after.value).inc()


def _why_rejected(deps: RefundDeps, message: str) -> str:
    contact = rt("refund.after_sales", deps.language, contact=deps.after_sales) if deps.after_sales else ""
    return " ".join(p for p in (message, contact) if p)


# --- use cases --------------------------------------------------------------------------------------------------------

async def request_refund(deps: RefundDeps, order_ref: str, *, amount: Any, reason: str, requested_by: str,
                         source: str, now: datetime, items: Sequence[Any] | None = None,
                         source_ref: str | None = None, notify: tuple[str, str] | None = None,
                         actor: str | None = None) -> Refund:
    """THE way a refund starts. `amount` None: the items' value, else the order's amount less earlier refunds.
    The same `(source, source_ref)` twice (a redelivered Taobao push) is one refund."""
    if source_ref is not None:
        existing = await deps.refunds.by_source(source, source_ref)
        if existing is not None:
            return existing
    detail = await deps.orders.get(order_ref)
    if detail is None:
        raise RefundError("order_not_found", f"no order {order_ref!r}", 404)
    reason = (reason or "").strip()
    if not reason:
        raise RefundError("reason_required", "a refund needs a reason")
    if len(reason) > MAX_REASON:
        raise RefundError("reason_too_long", f"the reason is limited to {MAX_REASON} characters")
    o = detail.order
    picked = _items(detail, items)
    if amount is None:
        by_sku = {i.sku: i for i in o.data.items}
        amount = (sum((by_sku[i["sku"]].unit_price * i["qty"] for i in picked), Decimal(0)) if picked
                  else o.data.amount)
    value = _money(amount)
    earlier = [r for r in await deps.refunds.of_order(o.id) if r.state is not RefundState.REJECTED]
    left = o.data.amount - sum((r.amount for r in earlier), Decimal(0))
    if value > left:
        raise RefundError("amount_exceeds_order", f"at most {left:.2f} is left to refund on this order "
                                                  f"({o.data.amount:.2f} less earlier refunds)")
    rules = deps.rules()
    req = rf.refund_request(value, now, requested_by, o.stage, tracking_facts(detail), o.stage_entered_at)
    d, finance = _finance_levels(rules, detail, req, now)
    outcome = d.refund
    step = rf.first_step(outcome.action, bool(finance))
    message = outcome.message(deps.language)
    decision = {"action": outcome.action, "rule_id": outcome.rule_id, "message": message,
                "finance": [f.rule_id for f in finance], "rules_version": rules.version,
                "facts": {"stage": o.stage.value, "shipped_at": req.shipped_at and req.shipped_at.isoformat(),
                          "delivered_at": req.delivered_at and req.delivered_at.isoformat()}}
    decided = step.state in rf.DECIDED
    refund = Refund(0, o.id, source, source_ref, value, reason, picked, step.state, outcome.rule_id, decision,
                    requested_by, now, now, decided_at=now if decided else None, automatic=step.automatic,
                    notify_platform=notify[0] if notify else None, notify_chat_id=notify[1] if notify else None)
    who = actor or requested_by
    move = _cancel_move(deps, detail, refund, who, now) if step.state is RefundState.APPROVED else None
    why = _why_rejected(deps, message) if step.state is RefundState.REJECTED else message
    ext = o.data.external_id
    saved = await deps.refunds.save(
        refund, expected=None, now=now, move=move,
        finance=finance if step.state is RefundState.WAITING_FINANCE else (),
        card=lambda r: finance_fields(deps, r, earlier),
        audit=AuditEntry(who, "refund.requested", f"order:{o.id}",
                         {"state": step.state.value, "rule_id": outcome.rule_id, "amount": str(value),
                          "source": source, "source_ref": source_ref}),
        outbox=lambda r: customer_outbox(r, ext, deps.language, why, now))
    if saved is None:  # the same push, stored by a concurrent delivery
        existing = await deps.refunds.by_source(source, source_ref or "")
        if existing is None:
            raise RefundError("changed", "the order changed while the refund was stored; try again", 409)
        return existing
    metrics.REFUNDS_REQUESTED.inc()
    _count_decision(None, saved.state)
    await _deliver(deps, [f"refund:{saved.id}:{saved.state.value}"])
    return saved


OPEN = frozenset({RefundState.REQUESTED, RefundState.WAITING_PROOF, RefundState.VERIFYING,
                  RefundState.WAITING_FINANCE})


async def refundable(deps: RefundDeps, order_id: int, now: datetime) -> bool:
    """Whether a customer's refund of what is left of the order would be taken up now (the status reply's button):
    not cancelled, no refund of it still open, money left, and the matrix would not refuse it (`request_refund`
    decides again when it is asked — this only spares the customer a button that can only say no)."""
    detail = await deps.orders.get(str(order_id))
    if detail is None or detail.order.stage is Stage.CANCELLED:
        return False
    refunds = await deps.refunds.of_order(order_id)
    if any(r.state in OPEN for r in refunds):
        return False
    o = detail.order
    left = o.data.amount - sum((r.amount for r in refunds if r.state is not RefundState.REJECTED), Decimal(0))
    if left <= 0:
        return False
    req = rf.refund_request(left, now, "customer", o.stage, tracking_facts(detail), o.stage_entered_at)
    outcome = evaluate(o, Facts(refund=req), deps.rules(), now).refund
    return outcome is not None and outcome.action != "reject"


@dataclass(frozen=True, slots=True)
class ProofResult:
    refund: Refund
    verdict: ProofVerdict
    text: str
    waybill: str | None


def check_proof_file(data: bytes) -> str:
    """`jpeg` or `png`, by content; RefundError otherwise (nothing is stored)."""
    if len(data) > rf.MAX_PROOF_BYTES:
        raise RefundError("file_too_large", f"the photo is {len(data) / 2**20:.1f} MiB; at most 10 MiB", 413)
    kind = rf.sniff_image(data[:16])
    if kind is None:
        raise RefundError("unsupported_file", "only a JPEG or PNG photo is accepted (checked by its content, not "
                                              "its name)", 415)
    return kind


async def attach_proof(deps: RefundDeps, refund_id: int, data: bytes, actor: str, now: datetime) -> ProofResult:
    """The return waybill photo: stored, read, checked with the carrier. Confirmed → approved (or finance);
    anything else → verifying, for a person to decide with the photo and what was read."""
    refund = await deps.refunds.refund(refund_id)
    if refund is None:
        raise RefundError("refund_not_found", f"no refund {refund_id}", 404)
    if refund.state is not RefundState.WAITING_PROOF:
        raise RefundError("not_waiting_for_proof", f"refund {refund_id} is {refund.state.value}; it needs no proof",
                          409)
    kind = check_proof_file(data)
    detail = await deps.orders.get(str(refund.order_id))
    if detail is None:
        raise RefundError("order_not_found", f"the order of refund {refund_id} is gone", 404)
    assert deps.proofs is not None, "refund proofs are wired without a file store"
    path = deps.proofs.save(refund.id, data, kind)
    text = ""
    if deps.ocr is not None:
        try:
            text = await deps.ocr.read(data)
        except Exception:  # a photo the decoder chokes on is an unreadable photo, not a failed request
            log.exception("OCR failed on the proof of refund %s", refund.id)
    match = rf.find_waybill(text, waybill_patterns(deps))
    status: ReturnStatus | None = None
    if match is not None and deps.tracker is not None and match.carrier in deps.tracker.carriers:
        try:
            status = await deps.tracker.status(match.carrier, match.waybill)
        except Exception:
            log.exception("return tracking of %s failed", match.waybill)
    verdict = rf.judge_proof(match, deps.tracker.carriers if deps.tracker else (), status)
    proof = {"file": path, "type": kind, "bytes": len(data), "received_at": now.isoformat(), "by": actor,
             "ocr_text": text[:2000], "waybill": match.waybill if match else None,
             "carrier": match.carrier if match else None, "tracking_status": status.status if status else None,
             "towards_merchant": status.towards_merchant if status else None, "verdict": verdict.value}
    verifying = replace(refund, state=RefundState.VERIFYING, proof=proof, updated_at=now)
    wb = match.waybill if match else ""
    if verdict is not ProofVerdict.CONFIRMED:
        why = rt(f"proof.{verdict.value}", deps.language, waybill=wb)
        saved = await _step(deps, refund, verifying, detail, actor=actor, action="proof", why=why, now=now,
                            audit_detail={"verdict": verdict.value, "waybill": wb})
        return ProofResult(saved, verdict, text, match.waybill if match else None)
    # the carrier confirmed the return: one step to verifying (audited), then on as the rules say
    saved = await _step(deps, refund, verifying, detail, actor=actor, action="proof", why=rt(
        "refund.proof_ok", deps.language, waybill=wb), now=now, audit_detail={"verdict": verdict.value,
                                                                                "waybill": wb})
    saved = await _proceed(deps, saved, detail, actor="system", now=now,
                           why=rt("refund.proof_ok", deps.language, waybill=wb), automatic=True)
    return ProofResult(saved, verdict, text, wb)


async def _proceed(deps: RefundDeps, refund: Refund, detail: OrderDetail, *, actor: str, now: datetime, why: str,
                   automatic: bool) -> Refund:
    """Verified: approved, or waiting for finance when the amount needs it."""
    o = detail.order
    req = rf.refund_request(refund.amount, refund.requested_at, refund.requested_by, o.stage,
                            tracking_facts(detail), o.stage_entered_at)
    _, finance = _finance_levels(deps.rules(), detail, req, now)
    if finance:
        new = replace(refund, state=RefundState.WAITING_FINANCE, updated_at=now)
        return await _step(deps, refund, new, detail, actor=actor, action="waiting_finance", why=why, now=now,
                           finance=finance)
    new = replace(refund, state=RefundState.APPROVED, decided_at=now, automatic=automatic, updated_at=now)
    return await _step(deps, refund, new, detail, actor=actor, action="approved", why=why, now=now,
                       move=_cancel_move(deps, detail, new, actor, now))


async def decide_refund(deps: RefundDeps, refund_id: int, approve: bool, actor: str, reason: str,
                        now: datetime) -> Refund:
    """A person's decision on a refund being verified (the photo and what was read are on the refund)."""
    refund = await deps.refunds.refund(refund_id)
    if refund is None:
        raise RefundError("refund_not_found", f"no refund {refund_id}", 404)
    if refund.state not in (RefundState.VERIFYING, RefundState.WAITING_PROOF):
        raise RefundError("not_verifying", f"refund {refund_id} is {refund.state.value}; finance decides one "
                                           "waiting for finance through its approval", 409)
    if not approve and not reason.strip():
        raise RefundError("reason_required", "a rejection needs a reason")
    detail = await deps.orders.get(str(refund.order_id))
    if detail is None:
        raise RefundError("order_not_found", "the refund's order is gone", 404)
    if approve:
        if refund.state is RefundState.WAITING_PROOF:
            refund = await _step(deps, refund, replace(refund, state=RefundState.VERIFYING, updated_at=now), detail,
                                 actor=actor, action="verifying", why=reason or "-", now=now)
        return await _proceed(deps, refund, detail, actor=actor, now=now, why=reason.strip(), automatic=False)
    new = replace(refund, state=RefundState.REJECTED, decided_at=now, automatic=False, updated_at=now,
                  decision={**refund.decision, "rejected_by": actor, "reason": reason.strip()})
    return await _step(deps, refund, new, detail, actor=actor, action="rejected",
                       why=_why_rejected(deps, reason.strip()), now=now)


def follow_ups(deps: RefundDeps) -> dict[str, Callable[[Approval, int, datetime], Awaitable[None]]]:
    """What the decide use case does after a `refund` approval's decision: its refund carries on
    (handlers.approvals.Deciders.follow_ups); every entry point that decides approvals passes it."""
    return {Kind.REFUND: partial(on_finance_decided, deps)}


async def on_finance_decided(deps: RefundDeps, approval: Approval, remaining_pending: int, now: datetime) -> None:
    """A `refund` approval was decided (handlers.approvals.decide): its refund follows once every level approved,
    or at the first rejection. A rejection touches this refund only (the order and other refunds stay)."""
    refund = await deps.refunds.by_approval(approval.id)
    if refund is None:
        refund = await _by_version(deps, approval)
    if refund is None or refund.state is not RefundState.WAITING_FINANCE:
        return
    detail = await deps.orders.get(str(refund.order_id))
    if detail is None:
        return
    who = approval.decided_by or "finance"
    if approval.status == Status.REJECTED:
        new = replace(refund, state=RefundState.REJECTED, decided_at=now, updated_at=now,
                      decision={**refund.decision, "rejected_by": who, "reason": approval.reason})
        why = rt("refund.finance_no", deps.language, reason=approval.reason)
        await _step(deps, refund, new, detail, actor=who, action="rejected", why=why, now=now,
                    audit_detail={"approval_id": approval.id})
    elif approval.status == Status.APPROVED and remaining_pending == 0:
        new = replace(refund, state=RefundState.APPROVED, decided_at=now, updated_at=now,
                      decision={**refund.decision, "approved_by": who})
        await _step(deps, refund, new, detail, actor=who, action="approved", why=rt("refund.finance_ok",
                    deps.language), now=now, move=_cancel_move(deps, detail, new, who, now),
                    audit_detail={"approval_id": approval.id})


async def _by_version(deps: RefundDeps, approval: Approval) -> Refund | None:
    version = approval.order_version
    if approval.kind != "refund" or not version.startswith("refund:") or not version[7:].isdigit():
        return None
    return await deps.refunds.refund(int(version[7:]))


async def mark_refunded(deps: RefundDeps, refund_id: int, actor: str, now: datetime) -> Refund:
    """The money went back (finance or the payment platform): approved → refunded, the customer told."""
    refund = await deps.refunds.refund(refund_id)
    if refund is None:
        raise RefundError("refund_not_found", f"no refund {refund_id}", 404)
    try:
        rf.check(refund.state, RefundState.REFUNDED)
    except rf.RefundTransitionError as exc:
        raise RefundError("invalid_state", str(exc), 409) from None
    detail = await deps.orders.get(str(refund.order_id))
    if detail is None:
        raise RefundError("order_not_found", "the refund's order is gone", 404)
    return await _step(deps, refund, replace(refund, state=RefundState.REFUNDED, updated_at=now), detail,
                       actor=actor, action="refunded", why="", now=now)


def refund_json(r: Refund, history: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": r.id, "order_id": r.order_id, "source": r.source, "source_ref": r.source_ref, "amount": str(r.amount),
        "reason": r.reason, "items": list(r.items), "state": r.state.value, "rule_id": r.rule_id,
        "decision": r.decision, "automatic": r.automatic, "requested_by": r.requested_by,
        "requested_at": r.requested_at, "decided_at": r.decided_at, "approval_id": r.approval_id,
        "proof": None if r.proof is None else {k: v for k, v in r.proof.items() if k != "file"},
        "updated_at": r.updated_at}
    if history is not None:
        out["history"] = list(history)
    return out
