"""`evaluate(order, facts, rules, now)`: every rule section applied to one order, with a trace of each rule."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from engine.approvals import ESCALATION_ROLE
from engine.order import Order
from engine.rules.conditions import CompiledCond
from engine.rules.decisions import (
    ApprovalNeed,
    Decisions,
    EvalInputs,
    RefundOutcome,
    Route,
    RuleTrace,
    _iso,
)
from engine.rules.facts import Facts
from engine.rules.fields import Ctx
from engine.rules.model import RefundRow
from engine.rules.ruleset import CRow, RuleSet
from engine.stages import END_STATES, Stage

_RUNTIME_ERRORS = (TypeError, ValueError, ArithmeticError, KeyError, IndexError)
_NO_FACTS = Facts()
_HISTORY_FIELDS = ("complaints_30d", "previous_orders", "exception_notes_30d")


def history_of(facts: Facts) -> dict[str, int] | None:
    """The history counts of `facts` when nothing else is set (what intake looks up), else None."""
    counts = {name: getattr(facts, name) for name in _HISTORY_FIELDS}
    return counts if Facts(**counts, stock=facts.stock) == facts else None


def _region_note(ctx: Ctx, rules: RuleSet) -> str:
    if ctx.o_region is None:
        return "the city is in no region (no default_region: approvals go to the admins)"
    return "" if rules.region_of(ctx.c_city) else "the city is in no region: default_region"


def make_ctx(rules: RuleSet, order: Order, facts: Facts, now: datetime) -> Ctx:
    """The evaluation context (see `RuleSet.context`): made once by a caller that evaluates and then asks deadlines."""
    return rules.context(order, facts, now)


def _test(cond: CompiledCond, ctx: Ctx) -> tuple[bool, str | None]:
    try:
        return bool(cond.test(ctx)), None
    except _RUNTIME_ERRORS as e:
        return False, f"{type(e).__name__}: {e}"


def _first_row(section: str, rows: tuple[CRow, ...], ctx: Ctx, trace: list[RuleTrace], full: bool,
               outcome: Callable[[Any], str]) -> CRow | None:
    """The first of `rows` whose condition holds. Traced: each row tested (all of them in a full trace, else the
    match and the failures), and in a full trace the rows after the match as skipped."""
    winner: CRow | None = None
    for row in rows:
        if winner is not None:
            if not full:
                break
            trace.append(RuleTrace(section, row.id, False, row.cond.text, note=f"skipped: {winner.id} matched first"))
            continue
        ok, err = _test(row.cond, ctx)
        if ok:
            winner = row
        if full or ok or err is not None:
            trace.append(RuleTrace(section, row.id, ok, row.cond.text, None, outcome(row.payload) if ok else "",
                                   error=err, source=(row.cond, ctx)))
    return winner


def evaluate(
    order: Order, facts: Facts, rules: RuleSet, now: datetime, *, trace: bool = True, ctx: Ctx | None = None
) -> Decisions:
    """Apply the rules to one order. Pure: `now` is given, nothing is read or written outside the arguments.

    With `trace=False` only the rules that matched or failed are recorded in `trace`: all that the compact summary
    (`to_json(trace=False)`: `fired`, `errors`) reads, without a trace entry for every rule considered. Intake stores
    only that summary; such a result refuses `to_json(trace=True)` (`rules explain` evaluates with the full trace).
    `ctx`: `make_ctx(rules, order, facts, now)` made by the caller (to reuse it, see `RuleSet.deadline_for`).
    """
    if ctx is None:
        ctx = make_ctx(rules, order, facts, now)
    full = trace
    out: list[RuleTrace] = []
    default = facts == _NO_FACTS
    history = None if default else history_of(facts)
    inputs = EvalInputs(order.id, order.stage.value, order.stage_entered_at, now, default, history,
                        dict(facts.stock) if history is not None and facts.stock else None)
    d = Decisions(rules_version=rules.version, region=ctx.o_region, inputs=inputs, full_trace=full)
    if full or ctx.o_region is not None:
        out.append(
            RuleTrace(
                "regions",
                "regions",
                ctx.o_region is not None,
                "customer.city in regions",
                {"customer.city": ctx.c_city},
                outcome=ctx.o_region or "",
                note=_region_note(ctx, rules),
            )
        )
    _refund(ctx, facts, rules, d, out, full)  # first: a rejected refund needs no approval
    _approvals(ctx, facts, rules, d, out, full)
    _sla(ctx, order, rules, d, out, full)
    _priority(ctx, rules, d, out, full)
    _route(ctx, order, facts, rules, d, out, full)
    d.trace = out
    return d


def _approvals(ctx: Ctx, facts: Facts, rules: RuleSet, d: Decisions, trace: list[RuleTrace], full: bool) -> None:
    seen: set[tuple[str, int, str, str | None]] = set()
    refund_active = d.refund is not None and d.refund.action != "reject"
    for a in rules.approvals:
        if a.kind == "refund" and not refund_active:
            if not full:
                continue
            note = "no refund request" if d.refund is None else "the refund is rejected, nothing to approve"
            trace.append(RuleTrace("approvals", a.id, False, a.cond.text, note=f"skipped: {note}"))
            continue
        ok, err = _test(a.cond, ctx)
        produced = []
        if ok:
            requester = (facts.refund.requested_by if a.kind == "refund" and facts.refund else facts.requested_by)
            for n, lvl in enumerate(a.levels, start=1):
                region, role = (ctx.o_region if lvl.region == "order" else lvl.region), lvl.role
                if lvl.region == "order" and region is None:
                    role = ESCALATION_ROLE  # a city in no region and no default_region: the admins, not "anyone"
                key = (a.kind, n, role, region)
                if key in seen:
                    continue
                seen.add(key)
                need = ApprovalNeed(a.kind, n, role, region, a.id, lvl.escalate_after, requester)
                d.approvals.append(need)
                produced.append(f"L{n} {role}" + (f"@{region}" if region else ""))
        if full or ok or err is not None:
            trace.append(
                RuleTrace("approvals", a.id, ok, a.cond.text, None, ", ".join(produced), error=err, source=(a.cond, ctx))
            )
    if d.refund is not None:
        d.refund = RefundOutcome(
            d.refund.action,
            d.refund.rule_id,
            d.refund.message_zh,
            d.refund.message_en,
            needs_approval=any(a.kind == "refund" for a in d.approvals),
        )


def _sla(ctx: Ctx, order: Order, rules: RuleSet, d: Decisions, trace: list[RuleTrace], full: bool) -> None:
    stage = order.stage
    if stage in END_STATES:
        return
    if stage in rules.sla_pause_stages:
        trace.append(RuleTrace("sla", "sla.pause_stages", True, "order.stage in pause_stages", {"order.stage": stage.value}, "clock paused"))
        return
    if rules.sla_pause_when is not None:
        ok, err = _test(rules.sla_pause_when, ctx)
        if full or ok or err is not None:
            trace.append(
                RuleTrace("sla", "sla.pause_when", ok, rules.sla_pause_when.text, None,
                          source=(rules.sla_pause_when, ctx), outcome="clock paused" if ok else "", error=err)
            )
        if ok:
            return
    chosen, considered = rules.sla_limit_for(ctx, stage)
    for lim, matched in considered:
        if not matched and not full:
            continue
        if matched is None:
            trace.append(RuleTrace("sla", lim.id, False, lim.cond.text, note=f"skipped: {chosen.id if chosen else ''} matched first"))
            continue
        outcome = ""
        if matched:
            # one pass over the calendar: deadline, warning, then each rung of the ladder after the deadline
            deadline, warn_at, ladder = rules.sla_ladder(lim, order.stage_entered_at)
            d.stage_deadline = deadline
            d.stage_warn_at = warn_at
            d.sla_rule_id = lim.id
            d.escalations = list(ladder)
            outcome = f"deadline {_iso(deadline)}"  # the memoised isoformat(): a batch shares its deadlines
        trace.append(RuleTrace("sla", lim.id, matched, lim.cond.text, None, outcome, source=(lim.cond, ctx)))


def _priority(ctx: Ctx, rules: RuleSet, d: Decisions, trace: list[RuleTrace], full: bool) -> None:
    score = rules.priority_base
    append = trace.append
    for w in rules.weights:  # the hottest loop of an evaluation: the test is inlined rather than via _test()
        cond = w.cond
        try:
            ok = bool(cond.test(ctx))
        except _RUNTIME_ERRORS as e:
            append(RuleTrace("priority", w.id, False, cond.text, None, "", "", f"{type(e).__name__}: {e}", (cond, ctx)))
            continue
        if ok:
            score += w.payload
            append(RuleTrace("priority", w.id, True, cond.text, None, w.outcome, "", None, (cond, ctx)))
        elif full:
            append(RuleTrace("priority", w.id, False, cond.text, None, "", "", None, (cond, ctx)))
    d.priority = score


def _refund(ctx: Ctx, facts: Facts, rules: RuleSet, d: Decisions, trace: list[RuleTrace], full: bool) -> None:
    if facts.refund is None:
        return
    row = _first_row("refunds", rules.refund_rows, ctx, trace, full, lambda p: p.outcome)
    if row is None:
        d.refund = RefundOutcome("manual_review", "refunds.default", "没有匹配的退款规则，请人工审核", "No refund rule matched; review by hand")
        trace.append(RuleTrace("refunds", "refunds.default", True, "no row matched", outcome="manual_review"))
        return
    winner: RefundRow = row.payload
    msg = winner.message
    d.refund = RefundOutcome(winner.outcome, winner.id, msg.zh if msg else "", msg.en if msg else "")


def _route(ctx: Ctx, order: Order, facts: Facts, rules: RuleSet, d: Decisions, trace: list[RuleTrace], full: bool) -> None:
    if order.stage is Stage.CANCELLED or not rules.model.bases:
        return
    if (ov := _first_row("routing", rules.overrides, ctx, trace, full, str)) is not None:
        d.route = Route(ov.payload, ov.id, None, "override")
        return
    types = tuple(ctx.o_product_types)
    capable = rules.capable_bases(types)
    # what the trace shows as read; not built when no trace is kept (the summary never shows it)
    reads = {"customer.city": ctx.c_city, "order.product_types": list(types)} if full else None
    excluded: list[str] = []
    capable_set: tuple[str, ...] | set[str] = capable  # small: a tuple's `in` is as quick as a set's
    if rules.model.routing.use_stock and facts.stock:
        if reads is not None:
            reads["stock"] = {k: v for k, v in facts.stock.items() if k.split(":", 1)[0] in capable}
        ok_bases = []
        everywhere: set[str] | None = None  # SKUs known short at every capable base so far
        for b in capable:
            short = [i.sku for i in order.data.items if (q := facts.stock.get(f"{b}:{i.sku}")) is not None and q < i.qty]
            everywhere = set(short) if everywhere is None else everywhere & set(short)
            if short:
                excluded.append(f"{b} (short of {', '.join(short)})")
            else:
                ok_bases.append(b)
        capable_set = set(ok_bases)
        if everywhere:
            d.out_of_stock = tuple(sorted(everywhere))
    note = f"excluded: {'; '.join(excluded)}" if excluded else ""
    if not capable_set:
        if not full:
            return
        why = f"no base makes {', '.join(types) or 'these products'}" if not capable else "no base has the stock"
        trace.append(RuleTrace("routing", "routing.nearest", False, "nearest capable base", reads, note=why + (f"; {note}" if note else "")))
        return
    ranked = rules.bases_by_distance(ctx.c_city, types)
    if ranked is not None:
        for bid, km in ranked:
            if bid in capable_set:
                d.route = Route(bid, "routing.nearest", km, f"nearest capable base, {km:.0f} km")
                trace.append(RuleTrace("routing", "routing.nearest", True, "nearest capable base", reads, bid, note=note))
                return
    region = rules.model.regions.get(ctx.o_region or "")
    if region is not None and region.default_base in capable_set:
        d.route = Route(region.default_base, "routing.region_default", None, "the city has no coordinates; region default")
        trace.append(RuleTrace("routing", "routing.region_default", True, "region default base", reads, region.default_base, note=note))
        return
    first = next(b for b in capable if b in capable_set)
    d.route = Route(first, "routing.first_capable", None, "the city has no coordinates; first capable base")
    trace.append(RuleTrace("routing", "routing.first_capable", True, "first capable base", reads, first, note=note))
