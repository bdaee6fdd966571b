"""What an evaluation decided, each part carrying the id of the rule that produced it, plus the full trace."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any, Literal

RefundActionT = Literal["approve", "need_return_proof", "reject", "manual_review"]


@dataclass(frozen=True, slots=True)
class ApprovalNeed:
    """One required approval. `region` None means anyone holding `role` may decide (finance is not regional)."""

    kind: Literal["order", "refund"]
    level: int
    role: str
    region: str | None
    rule_id: str
    escalate_after: timedelta | None = None
    requested_by: str | None = None


@dataclass(frozen=True, slots=True)
class Escalation:
    """A rung of the SLA escalation ladder: at `at`, tell `role` (owner → supervisor → region head)."""

    step: int
    role: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Route:
    base: str
    rule_id: str
    distance_km: float | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RefundOutcome:
    action: RefundActionT
    rule_id: str
    message_zh: str = ""
    message_en: str = ""
    needs_approval: bool = False

    def message(self, language: str = "zh") -> str:
        return (self.message_en or self.message_zh) if language == "en" else self.message_zh


@dataclass(slots=True, eq=False, repr=False)
class RuleTrace:
    """One rule considered: whether it matched, the condition, the facts it read, and what it produced.

    The facts read are collected lazily (from the compiled condition and the evaluation context) because most
    decisions are stored or acted on without anyone reading the trace, and evaluation speed matters: `_reads` is
    what the evaluator gave (None: compute it from `source`, a (CompiledCond, Ctx) pair, on demand).
    """

    section: str
    rule_id: str
    matched: bool
    condition: str
    _reads: dict[str, Any] | None = None
    outcome: str = ""
    note: str = ""
    error: str | None = None
    source: tuple[Any, Any] | None = None

    @property
    def reads(self) -> dict[str, Any]:
        if self._reads is None:
            self._reads = self.source[0].read_values(self.source[1]) if self.source is not None else {}
            self.source = None
        return self._reads

    def __repr__(self) -> str:
        return f"RuleTrace({self.section}/{self.rule_id} matched={self.matched} outcome={self.outcome!r})"


@dataclass(frozen=True, slots=True)
class EvalInputs:
    """What an evaluation saw besides the order's data and the rules: enough to evaluate it again, identically."""

    order_id: int
    stage: str
    stage_entered_at: datetime
    now: datetime
    default_facts: bool  # no history facts were given; otherwise they are replayable only with `history`
    # The history counts intake's lookup gave (complaints_30d, previous_orders, exception_notes_30d), when they
    # were the only facts: enough to evaluate the stored decision again. None: default facts, or facts beyond them.
    history: dict[str, int] | None = None
    # the stock levels intake passed (`"<base>:<sku>"` → units), recorded with `history` so routing replays too
    stock: dict[str, int] | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"order_id": self.order_id, "stage": self.stage, "stage_entered_at": _iso(self.stage_entered_at),
               "now": _iso(self.now), "default_facts": self.default_facts}
        if self.history is not None:
            out["history"] = dict(self.history)
        if self.stock:
            out["stock"] = dict(self.stock)
        return out


@dataclass(slots=True)
class Decisions:
    rules_version: str
    region: str | None = None
    approvals: list[ApprovalNeed] = field(default_factory=list)
    stage_deadline: datetime | None = None
    stage_warn_at: datetime | None = None
    sla_rule_id: str | None = None
    escalations: list[Escalation] = field(default_factory=list)
    priority: int = 0
    route: Route | None = None
    # SKUs known to be short at every base that could make the order (stock routing): the order gets a 库存不足 note
    out_of_stock: tuple[str, ...] = ()
    refund: RefundOutcome | None = None
    trace: list[RuleTrace] = field(default_factory=list)
    inputs: EvalInputs | None = None
    full_trace: bool = True  # False: `trace` holds only the rules that matched or failed (evaluate(trace=False))

    @property
    def needs_approval(self) -> bool:
        return any(a.kind == "order" for a in self.approvals)

    def to_json(self, *, trace: bool = True) -> dict[str, Any]:
        """A JSON-safe summary: what was decided, the ids of the rules that matched (`fired`), any rule errors, and
        the evaluation's inputs. With `trace`, also every rule considered and the facts it read.

        Intake stores the compact form (`trace=False`: serialising the trace was a seventh of a worker's CPU);
        `rules explain --stored` evaluates again from `inputs` with the stored rules version and shows that trace,
        after checking it reproduces this summary (see `engine.rules.explain.reproduce`).
        """
        out = self._summary()
        if trace:
            if not self.full_trace:
                raise ValueError("evaluated without a full trace (evaluate(..., trace=False)): evaluate again with it")
            out["trace"] = [
                {
                    "section": t.section,
                    "rule_id": t.rule_id,
                    "matched": t.matched,
                    "condition": t.condition,
                    "reads": {k: jsonable(v) for k, v in t.reads.items()},
                    "outcome": t.outcome,
                    "note": t.note,
                    "error": t.error,
                }
                for t in self.trace
            ]
        return out

    def _summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rules_version": self.rules_version,
            "region": self.region,
            "approvals": [
                {
                    "kind": a.kind,
                    "level": a.level,
                    "role": a.role,
                    "region": a.region,
                    "rule_id": a.rule_id,
                    "escalate_after_s": None if a.escalate_after is None else int(a.escalate_after.total_seconds()),
                    "requested_by": a.requested_by,
                }
                for a in self.approvals
            ],
            "stage_deadline": _iso(self.stage_deadline),
            "stage_warn_at": _iso(self.stage_warn_at),
            "sla_rule_id": self.sla_rule_id,
            "escalations": [{"step": e.step, "role": e.role, "at": _iso(e.at)} for e in self.escalations],
            "priority": self.priority,
            "route": None if self.route is None else _fields(self.route),
            "refund": None if self.refund is None else _fields(self.refund),
            "fired": [t.rule_id for t in self.trace if t.matched],
            "inputs": None if self.inputs is None else self.inputs.to_json(),
        }
        if self.out_of_stock:  # only when set: summaries stored before the key existed still compare equal
            out["out_of_stock"] = list(self.out_of_stock)
        errors = {t.rule_id: t.error for t in self.trace if t.error is not None}
        if errors:
            out["errors"] = errors
        return out


# A batch's orders share their instants (`now`, and the memoised SLA deadlines, warnings and escalation rungs), and
# isoformat() of an aware datetime costs far more than a dict hit: the summaries of a batch format each instant
# once. The key holds the zone and fold too: equal instants in other zones (or either side of a DST fold) print
# differently.
_ISO_MEMO: dict[tuple[datetime, tzinfo | None, int], str] = {}


def _iso(d: datetime | None) -> str | None:
    if d is None:
        return None
    key = (d, d.tzinfo, d.fold)
    text = _ISO_MEMO.get(key)
    if text is None:
        if len(_ISO_MEMO) >= 4096:
            _ISO_MEMO.clear()
        text = _ISO_MEMO[key] = d.isoformat()
    return text


def _fields(obj: Any) -> dict[str, Any]:
    """A flat dataclass's fields by name, in declaration order: its JSON form when every value is JSON already."""
    return {name: getattr(obj, name) for name in obj.__dataclass_fields__}


def jsonable(v: Any) -> Any:
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    if isinstance(v, timedelta):
        return v.total_seconds()
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    return v
