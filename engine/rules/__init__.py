"""The rules engine: a YAML file operations staff edit, validated with located errors, compiled once, evaluated
purely (`now` is a parameter), and explained rule by rule. See docs/rules.md.
"""

from engine.rules.decisions import ApprovalNeed, Decisions, Escalation, EvalInputs, RefundOutcome, Route, RuleTrace
from engine.rules.errors import RuleIssue, RulesError
from engine.rules.evaluate import evaluate
from engine.rules.facts import Facts, RefundRequest
from engine.rules.loader import load_rules, rules_hash
from engine.rules.model import json_schema
from engine.rules.priority import flag_top
from engine.rules.routing import work_order_no
from engine.rules.ruleset import RuleSet

__all__ = [
    "ApprovalNeed",
    "Decisions",
    "Escalation",
    "EvalInputs",
    "Facts",
    "RefundOutcome",
    "RefundRequest",
    "Route",
    "RuleIssue",
    "RuleSet",
    "RuleTrace",
    "RulesError",
    "evaluate",
    "flag_top",
    "json_schema",
    "load_rules",
    "rules_hash",
    "work_order_no",
]
