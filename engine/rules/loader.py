"""Text → RuleSet: parse YAML with positions, validate with the models, compile; every problem located."""

from __future__ import annotations

import hashlib
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from engine.rules.calendar import OfficialHolidays
from engine.rules.errors import RuleIssue, RulesError
from engine.rules.model import COND_TAGS, RulesFile
from engine.rules.ruleset import Problem, RuleSet, compile_model
from engine.rules.yamlpos import Positions, load_yaml

Loc = tuple[str | int, ...]


def rules_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_rules(text: str, source: str = "<string>", *, official: OfficialHolidays | None = None) -> RuleSet:
    """Validate and compile a rules file's text. Raises RulesError listing every problem with file:line:column.

    `official`: the country's official holidays, loaded at the edge (`bot.adapters.holidays`), merged into each calendar
    with `official: china`; None: the file's own lists only (the engine reads no package data)."""
    data, pos = load_yaml(text, source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RulesError([RuleIssue(source, 1, 1, "", "the rules file must be a mapping of sections (regions:, approvals:, …)")])
    try:
        model = RulesFile.model_validate(data)
    except ValidationError as e:
        raise RulesError(_pydantic_issues(e, data, pos, source)) from None
    rules, problems = compile_model(model, version=rules_hash(text), source=source, text=text, official=official)
    if problems:
        lines = text.splitlines()
        raise RulesError([_problem_issue(p, data, pos, source, lines) for p in problems])
    assert rules is not None
    return rules


def field_path(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _clean_loc(loc: tuple[Any, ...]) -> Loc:
    """A pydantic location as a path in the file: union tags dropped, the `not_` field shown as `not`."""
    return tuple("not" if part == "not_" else part for part in loc if not (isinstance(part, str) and part in COND_TAGS))


_PLAIN = {
    "missing": "this field is required but missing",
    "int_parsing": "expected a whole number",
    "int_type": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_parsing": "expected a number",
    "float_type": "expected a number",
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "string_type": "expected text",
    "list_type": "expected a list (items starting with '- ', or [a, b])",
    "dict_type": "expected a mapping (key: value lines)",
    "model_type": "expected a mapping (key: value lines)",
    "date_from_datetime_parsing": "expected a date like 2026-10-01",
    "date_parsing": "expected a date like 2026-10-01",
    "date_type": "expected a date like 2026-10-01",
    "tuple_type": "expected [latitude, longitude]",
}


def _message(err: dict[str, Any], loc: Loc) -> str:
    typ = err["type"]
    inp = err.get("input")
    ctx = err.get("ctx") or {}
    if typ == "extra_forbidden":
        return f"unknown field {loc[-1]!r}"
    if typ in ("enum", "literal_error"):
        what = "stage" if loc and loc[-1] in ("stage",) or (len(loc) > 1 and loc[-2] == "pause_stages") else "value"
        return f"unknown {what} {inp!r}; expected one of: {ctx.get('expected', '')}".replace("'", "")
    if typ == "value_error":
        return str(ctx.get("error", err["msg"]))
    if typ == "too_short":
        return "this list must not be empty" if ctx.get("min_length") == 1 else err["msg"]
    if typ == "string_pattern_mismatch":
        return f"{inp!r} does not have the expected form ({ctx.get('pattern')})"
    if typ in ("greater_than", "less_than", "greater_than_equal", "less_than_equal"):
        return f"{inp!r} is out of range: {err['msg'].lower()}"
    if typ == "condition":
        return err["msg"]
    if typ in _PLAIN:
        got = "" if typ == "missing" else f", got {inp!r}"
        return _PLAIN[typ] + got
    return err["msg"]


def _pydantic_issues(e: ValidationError, data: Any, pos: Positions, source: str) -> list[RuleIssue]:
    issues = []
    seen = set()
    for err in e.errors(include_url=False):
        loc = _clean_loc(err["loc"])
        msg = _message(err, loc)
        if err["type"] == "extra_forbidden":
            msg += _allowed_fields(loc)
        key = (loc, msg)
        if key in seen:
            continue
        seen.add(key)
        p = pos.of(loc, key=err["type"] == "extra_forbidden")
        line, col = (p[0] + 1, p[1] + 1) if p else (None, None)
        issues.append(RuleIssue(source, line, col, field_path(loc), msg))
    return issues


def _allowed_fields(loc: Loc) -> str:
    """List the fields allowed where an unknown one was found, by walking the models along the location."""
    target: Any = RulesFile
    skip = 0
    for part in loc[:-1]:
        if skip:
            skip -= 1  # a list index or a mapping key (region name, base id, ...)
            continue
        if not (isinstance(target, type) and issubclass(target, BaseModel)):
            return ""
        f = target.model_fields.get(str(part)) or next(
            (fi for fi in target.model_fields.values() if fi.alias == part), None
        )
        if f is None:
            return ""
        target, skip = _unwrap(f.annotation)
    if isinstance(target, type) and issubclass(target, BaseModel):
        names = [fi.alias or n for n, fi in target.model_fields.items()]
        return f"; allowed here: {', '.join(names)}"
    return ""


def _unwrap(annotation: Any) -> tuple[Any, int]:
    """(model inside, number of list/dict layers around it); (None, 0) for conditions and scalars."""
    layers = 0
    a = annotation
    for _ in range(10):
        if isinstance(a, type) and issubclass(a, BaseModel):
            return a, layers
        origin = get_origin(a)
        args = [x for x in get_args(a) if x is not type(None)]
        if origin in (list, dict):
            layers += 1
            a = args[-1]
        elif origin is Union or str(origin) in ("typing.Annotated", "types.UnionType") or origin is not None:
            models = [x for x in args if isinstance(x, type) and issubclass(x, BaseModel)]
            if len(args) == 1 or len(models) == 1:
                a = models[0] if models else args[0]
            else:
                return None, 0
        else:
            return None, 0
    return None, 0


def _problem_issue(p: Problem, data: Any, pos: Positions, source: str, lines: list[str]) -> RuleIssue:
    position = pos.of(p.loc)
    line, col = (position[0] + 1, position[1] + 1) if position else (None, None)
    if p.offset is not None and position is not None and p.loc in pos.values:
        raw = _lookup(data, p.loc)
        if isinstance(raw, str):
            col = position[1] + 1 + p.offset + _quote_shift(lines, position)
    return RuleIssue(source, line, col, field_path(p.loc), p.message)


def _quote_shift(lines: list[str], position: tuple[int, int]) -> int:
    """Expression offsets count from the text; a quoted scalar starts one column earlier than its text."""
    line, col = position
    if line < len(lines) and col < len(lines[line]) and lines[line][col] in "\"'":
        return 1
    return 0


def _lookup(data: Any, loc: Loc) -> Any:
    node = data
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node
