"""Decisions as sentences for people: every rule considered, matched or not, and why (Chinese or English).

Works from `Decisions.to_json()` so the same text can be produced for a fresh evaluation and for a stored one. A
stored decision made at intake carries no trace (only the ids of the rules that fired); `reproduce` evaluates it
again from its recorded inputs with the rules version that made it, so its trace can be shown.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from engine.order import Order
from engine.rules.decisions import Decisions
from engine.rules.evaluate import evaluate
from engine.rules.facts import Facts
from engine.rules.ruleset import RuleSet
from engine.stages import Stage
from engine.text import role_name

_WORDS = {
    "zh": {
        "title": "订单 {order} 的规则判定（规则版本 {version}）",
        "matched": "命中",
        "not_matched": "未命中",
        "skipped": "跳过",
        "error": "出错",
        "read": "读取",
        "result": "结果",
        "summary": "结论",
        "region": "区域",
        "approvals": "需要审批",
        "none": "无",
        "deadline": "阶段时限",
        "warn": "预警时间",
        "priority": "优先级",
        "route": "生产基地",
        "refund": "退款",
        "escalation": "升级",
        "sections": {
            "regions": "区域",
            "refunds": "退款矩阵（首个命中的行生效）",
            "approvals": "审批规则（所有命中的规则都生效）",
            "sla": "阶段时限（首个命中的规则生效）",
            "priority": "优先级加减分",
            "routing": "生产基地分配",
        },
    },
    "en": {
        "title": "Rules decisions for order {order} (rules version {version})",
        "matched": "matched",
        "not_matched": "not matched",
        "skipped": "skipped",
        "error": "error",
        "read": "read",
        "result": "result",
        "summary": "Summary",
        "region": "Region",
        "approvals": "Approvals needed",
        "none": "none",
        "deadline": "Stage deadline",
        "warn": "Warning at",
        "priority": "Priority",
        "route": "Production base",
        "refund": "Refund",
        "escalation": "Escalation",
        "sections": {
            "regions": "Regions",
            "refunds": "Refund matrix (the first matching row wins)",
            "approvals": "Approval rules (every matching rule applies)",
            "sla": "Stage time limits (the first matching limit wins)",
            "priority": "Priority points",
            "routing": "Production-base routing",
        },
    },
}


def _fmt_time(iso: str | None, tz: ZoneInfo | None) -> str:
    if not iso:
        return "-"
    t = datetime.fromisoformat(iso)
    if tz is not None:
        t = t.astimezone(tz)
    return t.strftime("%Y-%m-%d %H:%M %Z")


def _fmt_value(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if v == "":
        return '""'
    return str(v)


def _fmt_reads(reads: dict[str, Any]) -> str:
    return ", ".join(f"{k} = {_fmt_value(v)}" for k, v in reads.items())


_NOTES_ZH = [
    (re.compile(r"^skipped: no refund request$"), "未评估：没有退款申请"),
    (re.compile(r"^skipped: the refund is rejected, nothing to approve$"), "未评估：退款已拒绝，无需审批"),
    (re.compile(r"^skipped: (.*) matched first$"), r"未评估：\1 已先命中"),
    (re.compile(r"^the city is in no region$"), "该城市不属于任何区域"),
    (re.compile(r"^no base makes (.*?)(; excluded: (.*))?$"), r"没有基地能生产 \1\2"),
    (re.compile(r"^no base has the stock(.*)$"), r"没有基地有足够库存\1"),
    (re.compile(r"^excluded: (.*)$"), r"排除：\1"),
]


def _note(note: str, language: str) -> str:
    if language != "zh":
        return note
    for pattern, repl in _NOTES_ZH:
        if pattern.match(note):
            return pattern.sub(repl, note, count=1).replace("; excluded: ", "；排除：")
    return note


_ESCALATION_ROLES = {
    "zh": {"owner": "负责人", "supervisor": "主管", "region_head": "区域负责人", "admin": "管理员", "manager": "区域经理"},
    "en": {"owner": "the owner", "supervisor": "the supervisor", "region_head": "the region head", "admin": "an admin",
           "manager": "the region's manager"},
}
_ROUTE_WORDS = {
    "zh": [(re.compile(r"^nearest capable base(?:, (\d+) km)?$"), lambda m: "距离最近且能生产的基地"
            + (f"，{m.group(1)} 公里" if m.group(1) else "")),
           (re.compile(r"^the city has no coordinates; region default$"), lambda m: "城市无坐标，使用区域默认基地"),
           (re.compile(r"^the city has no coordinates; first capable base$"), lambda m: "城市无坐标，使用第一个能生产的基地"),
           (re.compile(r"^region default base$"), lambda m: "区域默认基地"),
           (re.compile(r"^first capable base$"), lambda m: "第一个能生产的基地")],
    "en": [(re.compile(r"^nearest capable base(?:, (\d+) km)?$"), lambda m: "the nearest base that can make it"
            + (f", {m.group(1)} km" if m.group(1) else ""))],
}
_LEVEL = re.compile(r"^L(\d+) ([a-z_]+)(?:@(.+))?$")


def person(role: str, language: str) -> str:
    """An escalation or approval role in words (主管, not `supervisor`)."""
    return _ESCALATION_ROLES.get(language, _ESCALATION_ROLES["zh"]).get(role) or role_name(role, language)


def approval_words(kind: str, level: int | str, role: str, region: str | None, language: str) -> str:
    """`order L1 manager@华东` as people say it: 第 1 级 · 华东 经理 / level 1 · manager of 华东."""
    if language == "en":
        who = role_name(role, "en") + (f" of {region}" if region else "")
        return ("refund " if kind == "refund" else "") + f"level {level} · {who}"
    who = (region or "") + role_name(role, "zh")
    return ("退款" if kind == "refund" else "") + f"第 {level} 级 · {who}"


def _words(text: str, language: str) -> str:
    for pattern, repl in _ROUTE_WORDS.get(language, []):
        m = pattern.match(text)
        if m:
            return repl(m)
    m = _LEVEL.match(text)
    if m:
        return approval_words("order", m.group(1), m.group(2), m.group(3), language)
    return text


def _outcome(outcome: str, tz: ZoneInfo | None, language: str) -> str:
    outcome = _words(outcome, language)
    if outcome.startswith("deadline "):
        word = "时限" if language == "zh" else "deadline"
        return f"{word} {_fmt_time(outcome[len('deadline '):], tz)}"
    if outcome == "clock paused" and language == "zh":
        return "计时暂停"
    return outcome


def explain_lines(decisions: dict[str, Any], order_label: str, language: str = "zh", tz: ZoneInfo | None = None) -> list[str]:
    """Render a `Decisions.to_json()` dict. Plain text lines, so the CLI, chat and tests share one rendering."""
    w = _WORDS.get(language, _WORDS["zh"])
    out = [w["title"].format(order=order_label, version=str(decisions.get("rules_version", ""))[:12])]
    section = None
    for t in decisions.get("trace", []):
        if t["section"] != section:
            section = t["section"]
            out.append("")
            out.append(f"[{w['sections'].get(section, section)}]")
        if t.get("error"):
            mark, status = "!", w["error"]
        elif t["matched"]:
            mark, status = "✓", w["matched"]
        elif str(t.get("note", "")).startswith("skipped"):  # first-match sections: rows after the winner
            mark, status = "·", w["skipped"]
        else:
            mark, status = "✗", w["not_matched"]
        cond = _words(t["condition"], language)
        if cond == "always" and language == "zh":
            cond = "无条件"
        line = f"  {mark} {t['rule_id']} — {status}: {cond}"
        if t.get("reads"):
            line += f"  ({w['read']}: {_fmt_reads(t['reads'])})"
        if t.get("outcome"):
            line += f"  → {_outcome(t['outcome'], tz, language)}"
        if t.get("note"):
            line += f"  [{_note(t['note'], language)}]"
        if t.get("error"):
            line += f"  [{t['error']}]"
        out.append(line)
    out.append("")
    out.append(f"{w['summary']}:")
    out.append(f"  {w['region']}: {decisions.get('region') or w['none']}")
    apps = decisions.get("approvals") or []
    if apps:
        desc = "; ".join(
            approval_words(a["kind"], a["level"], a["role"], a.get("region"), language) + f" ({a['rule_id']})"
            for a in apps
        )
    else:
        desc = w["none"]
    out.append(f"  {w['approvals']}: {desc}")
    if decisions.get("stage_deadline"):
        out.append(
            f"  {w['deadline']}: {_fmt_time(decisions['stage_deadline'], tz)} ({decisions.get('sla_rule_id')}); "
            f"{w['warn']}: {_fmt_time(decisions.get('stage_warn_at'), tz)}"
        )
        for e in decisions.get("escalations") or []:
            at = _fmt_time(e["at"], tz)
            out.append(f"    {w['escalation']} {e['step']}: " + (f"{at} 通知{person(e['role'], language)}" if language == "zh"
                                                               else f"{person(e['role'], language)} at {at}"))
    else:
        out.append(f"  {w['deadline']}: {w['none']}")
    out.append(f"  {w['priority']}: {decisions.get('priority')}")
    r = decisions.get("route")
    out.append(f"  {w['route']}: " + (f"{r['base']} ({r['rule_id']}; {_words(r.get('reason', ''), language)})"
                                      if r else w["none"]))
    rf = decisions.get("refund")
    if rf:
        msg = rf.get("message_en" if language == "en" else "message_zh") or ""
        out.append(f"  {w['refund']}: {rf['action']} ({rf['rule_id']}) {msg}".rstrip())
    return out


def reproduce(stored: Mapping[str, Any], order: Order, rules: RuleSet) -> Decisions | None:
    """The evaluation behind a stored decision, done again: the order's stored data, the recorded inputs (order id,
    stage, stage entry, `now`) and `rules`, which must be the version that made it.

    None when it cannot be reproduced faithfully: no recorded inputs (stored before they were), facts other than
    the history counts intake records in `inputs.history`, another rules version, or the result differs from what was stored. Intake writes an
    order's data and its decisions in the same statement, so the stored data is what was evaluated; the comparison
    is the check that it still is. A None is a reason to show the stored summary only, never a guessed trace.
    """
    inputs = stored.get("inputs")
    if not isinstance(inputs, Mapping) or stored.get("rules_version") != rules.version:
        return None
    history = inputs.get("history")
    if not inputs.get("default_facts") and not isinstance(history, Mapping):
        return None
    try:
        stock = inputs.get("stock") or {}
        facts = Facts() if inputs.get("default_facts") else Facts(**{k: int(v) for k, v in history.items()},
                                                                  stock={str(k): int(v) for k, v in stock.items()})
        again = replace(order, id=int(inputs["order_id"]), stage=Stage(inputs["stage"]),
                        stage_entered_at=datetime.fromisoformat(inputs["stage_entered_at"]))
        decisions = evaluate(again, facts, rules, datetime.fromisoformat(inputs["now"]))
    except (KeyError, TypeError, ValueError):
        return None
    summary = decisions.to_json(trace=False)
    return decisions if summary == {k: v for k, v in stored.items() if k != "trace"} else None
