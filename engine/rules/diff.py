"""Replay stored orders against a proposed rules file and say what would change, before anyone saves it live."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.order import Order
from engine.rules.evaluate import evaluate
from engine.rules.facts import Facts
from engine.rules.ruleset import RuleSet


@dataclass(frozen=True, slots=True)
class OrderChange:
    order: str
    what: str  # approval | route | region | priority | deadline
    old: Any
    new: Any


@dataclass(slots=True)
class DiffReport:
    days: int
    orders: int = 0
    approvals_old: int = 0
    approvals_new: int = 0
    changes: list[OrderChange] = field(default_factory=list)
    rule_changes: list[str] = field(default_factory=list)

    def count(self, what: str) -> int:
        return sum(1 for c in self.changes if c.what == what)

    @property
    def approvals_per_week_delta(self) -> float:
        weeks = max(self.days, 1) / 7
        return (self.approvals_new - self.approvals_old) / weeks

    def route_moves(self) -> Counter[tuple[str, str]]:
        return Counter((str(c.old), str(c.new)) for c in self.changes if c.what == "route")


def _approval_key(d: Any) -> tuple[tuple[str, int, str, str | None], ...]:
    return tuple(sorted((a.kind, a.level, a.role, a.region or "") for a in d.approvals))


def replay(cases: Iterable[tuple[Order, Facts]], old: RuleSet, new: RuleSet, now: datetime, days: int) -> DiffReport:
    """Evaluate each order under both rule sets (same facts, same `now`) and collect the differences."""
    rep = DiffReport(days=days, rule_changes=rule_changes(old, new))
    for order, facts in cases:
        a = evaluate(order, facts, old, now)
        b = evaluate(order, facts, new, now)
        rep.orders += 1
        rep.approvals_old += a.needs_approval
        rep.approvals_new += b.needs_approval
        key = order.key
        if _approval_key(a) != _approval_key(b):
            rep.changes.append(OrderChange(key, "approval", _approval_text(a), _approval_text(b)))
        ra, rb = (a.route.base if a.route else None), (b.route.base if b.route else None)
        if ra != rb:
            rep.changes.append(OrderChange(key, "route", ra, rb))
        if a.region != b.region:
            rep.changes.append(OrderChange(key, "region", a.region, b.region))
        if a.priority != b.priority:
            rep.changes.append(OrderChange(key, "priority", a.priority, b.priority))
        if a.stage_deadline != b.stage_deadline:
            rep.changes.append(OrderChange(key, "deadline", a.stage_deadline, b.stage_deadline))
    return rep


def _approval_text(d: Any) -> str:
    return ", ".join(f"{a.kind}:{a.role}" + (f"@{a.region}" if a.region else "") for a in d.approvals) or "-"


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    """Flatten a model dump; lists of mappings with an `id` are keyed by id, so reordering is not a change."""
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(value, list) and value and all(isinstance(x, dict) and "id" in x for x in value):
        for x in value:
            _flatten({k: v for k, v in x.items() if k != "id"}, f"{prefix}[{x['id']}]", out)
    else:
        out[prefix] = value


def rule_changes(old: RuleSet, new: RuleSet) -> list[str]:
    """`approvals[order-over-5000].when.value: 5000 → 8000` style lines."""
    a: dict[str, Any] = {}
    b: dict[str, Any] = {}
    _flatten(old.model.model_dump(mode="json", by_alias=True), "", a)
    _flatten(new.model.model_dump(mode="json", by_alias=True), "", b)
    lines = []
    for k in sorted(set(a) | set(b)):
        if k not in a:
            lines.append(f"+ {k}: {b[k]}")
        elif k not in b:
            lines.append(f"- {k}: {a[k]}")
        elif a[k] != b[k]:
            lines.append(f"~ {k}: {a[k]} → {b[k]}")
    return lines


_TEXT = {
    "zh": {
        "head": "回放最近 {days} 天的 {n} 个订单（旧规则 {old} → 新规则 {new}）",
        "rules": "规则改动：",
        "no_rules": "规则内容没有变化",
        "approvals": "需要审批的订单：{a} → {b}（每周 {delta:+.1f}）",
        "route": "{n} 个订单将改派到其他生产基地",
        "moves": "  {a} → {b}: {n} 个",
        "region": "{n} 个订单的区域改变",
        "priority": "{n} 个订单的优先级改变",
        "deadline": "{n} 个订单的阶段时限改变",
        "examples": "示例：",
    },
    "en": {
        "head": "Replayed {n} orders from the last {days} days (current {old} → proposed {new})",
        "rules": "Rule changes:",
        "no_rules": "The rules are unchanged",
        "approvals": "Orders needing approval: {a} → {b} ({delta:+.1f} per week)",
        "route": "{n} orders would be routed to another base",
        "moves": "  {a} → {b}: {n}",
        "region": "{n} orders change region",
        "priority": "{n} orders change priority",
        "deadline": "{n} orders change stage deadline",
        "examples": "Examples:",
    },
}


def render(rep: DiffReport, old: RuleSet, new: RuleSet, language: str = "zh", examples: int = 10) -> list[str]:
    t = _TEXT.get(language, _TEXT["zh"])
    out = [t["head"].format(days=rep.days, n=rep.orders, old=old.version[:12], new=new.version[:12])]
    if rep.rule_changes:
        out.append(t["rules"])
        out.extend(f"  {line}" for line in rep.rule_changes)
    else:
        out.append(t["no_rules"])
    out.append(t["approvals"].format(a=rep.approvals_old, b=rep.approvals_new, delta=rep.approvals_per_week_delta))
    out.append(t["route"].format(n=rep.count("route")))
    for (a, b), n in sorted(rep.route_moves().items()):
        out.append(t["moves"].format(a=a, b=b, n=n))
    for what in ("region", "priority", "deadline"):
        out.append(t[what].format(n=rep.count(what)))
    if rep.changes:
        out.append(t["examples"])
        for c in rep.changes[:examples]:
            out.append(f"  {c.order} {c.what}: {c.old} → {c.new}")
    return out
