"""Declarative conditions (`field/op/value`, all/any/not, expressions) compiled once into closures over a Ctx."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.rules.errors import ExprError
from engine.rules.expr import compile_expr
from engine.rules.fields import FIELDS, Ctx, suggest
from engine.rules.model import AllCond, AnyCond, ExprCond, FieldCond, NotCond, parse_amount

Loc = tuple[str | int, ...]


class CondError(Exception):
    """A condition that cannot compile; `loc` is relative to the condition, `offset` is inside an expression."""

    def __init__(self, loc: Loc, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message
        self.offset = offset


@dataclass(frozen=True, slots=True)
class CompiledCond:
    test: Callable[[Ctx], bool]
    reads: tuple[str, ...]
    text: str

    def read_values(self, ctx: Ctx) -> dict[str, Any]:
        return {name: FIELDS[name].getter(ctx) for name in self.reads}


ALWAYS = CompiledCond(lambda c: True, (), "always")

_SYMBOL = {"eq": "==", "ne": "!=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def _value_for(kind: str, op: str, value: Any, loc: Loc) -> Any:
    """Type-check and normalise a table value against the field's kind (numbers become Decimal)."""
    if op == "exists":
        return None
    if op in ("in", "not_in", "contains_any"):
        if not isinstance(value, list) or not value:
            raise CondError((*loc, "value"), f"`{op}` needs a non-empty list as value, e.g. [a, b]")
        if kind == "number" and op != "contains_any":
            return tuple(_number(v, (*loc, "value", i)) for i, v in enumerate(value))
        return tuple(value)
    if op in ("gt", "ge", "lt", "le"):
        if kind != "number":
            raise CondError((*loc, "op"), f"`{op}` compares numbers, but this field is {kind}")
        return _number(value, (*loc, "value"))
    if op in ("contains", "starts_with", "matches"):
        if not isinstance(value, str):
            raise CondError((*loc, "value"), f"`{op}` needs a text value, got {value!r}")
        if op == "matches":
            try:
                return re.compile(value)
            except re.error as e:
                raise CondError((*loc, "value"), f"not a valid regular expression: {e}") from None
        return value
    # eq / ne
    if kind == "number" and value is not None:
        return _number(value, (*loc, "value"))
    if kind == "text" and value is not None and not isinstance(value, str):
        raise CondError((*loc, "value"), f"this field is text; write the value in quotes, e.g. \"{value}\"")
    if kind == "bool" and value is not None and not isinstance(value, bool):
        raise CondError((*loc, "value"), f"this field is true/false, got {value!r}")
    return value


def _number(value: Any, loc: Loc) -> Decimal:
    try:
        return parse_amount(value)
    except ValueError:
        raise CondError(loc, f"this field is a number, got {value!r}") from None


def _field_test(op: str, get: Callable[[Ctx], Any], v: Any) -> Callable[[Ctx], bool]:
    if op == "eq":
        return lambda c: get(c) == v
    if op == "ne":
        return lambda c: get(c) != v
    if op == "gt":
        return lambda c: (x := get(c)) is not None and x > v
    if op == "ge":
        return lambda c: (x := get(c)) is not None and x >= v
    if op == "lt":
        return lambda c: (x := get(c)) is not None and x < v
    if op == "le":
        return lambda c: (x := get(c)) is not None and x <= v
    if op == "in":
        s = frozenset(v)
        return lambda c: (x := get(c)) is not None and x in s
    if op == "not_in":
        s = frozenset(v)
        return lambda c: (x := get(c)) is not None and x not in s
    if op == "contains":
        return lambda c: (x := get(c)) is not None and v in x
    if op == "contains_any":
        if v and all(isinstance(n, str) for n in v):
            # words in a text: one regex search instead of a substring test per word (lists still test membership)
            words = re.compile("|".join(re.escape(n) for n in v))

            def contains_any(c: Ctx) -> bool:
                x = get(c)
                if isinstance(x, str):
                    return words.search(x) is not None
                return x is not None and any(n in x for n in v)

            return contains_any
        return lambda c: (x := get(c)) is not None and any(n in x for n in v)
    if op == "starts_with":
        return lambda c: isinstance(x := get(c), str) and x.startswith(v)
    if op == "matches":
        return lambda c: (x := get(c)) is not None and v.search(str(x)) is not None
    if op == "exists":
        return lambda c: get(c) not in (None, "", [], {})
    raise AssertionError(op)  # pragma: no cover - the model's Literal forbids it


def _render_value(v: Any) -> str:
    if isinstance(v, re.Pattern):
        return repr(v.pattern)
    if isinstance(v, tuple):
        return "[" + ", ".join(_render_value(x) for x in v) + "]"
    if isinstance(v, str):
        return repr(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    return str(v)


def compile_condition(cond: Any, loc: Loc = ()) -> CompiledCond:
    """Compile a validated condition model (or expression string); raise CondError pointing inside it."""
    if cond is None:
        return ALWAYS
    if isinstance(cond, str):
        return _compile_expr(cond, loc)
    if isinstance(cond, ExprCond):
        return _compile_expr(cond.expr, (*loc, "expr"))
    if isinstance(cond, FieldCond):
        spec = FIELDS.get(cond.field)
        if spec is None:
            raise CondError((*loc, "field"), f"unknown field {cond.field!r}{suggest(cond.field)}")
        v = _value_for(spec.kind, cond.op, cond.value, loc)
        test = _field_test(cond.op, spec.getter, v)
        sym = _SYMBOL.get(cond.op, cond.op.replace("_", " "))
        text = f"{cond.field} {sym}" + ("" if cond.op == "exists" else f" {_render_value(v)}")
        return CompiledCond(test, (cond.field,), text)
    if isinstance(cond, (AllCond, AnyCond)):
        key = "all" if isinstance(cond, AllCond) else "any"
        parts = [compile_condition(c, (*loc, key, i)) for i, c in enumerate(getattr(cond, key))]
        tests = tuple(p.test for p in parts)
        reads = tuple(dict.fromkeys(r for p in parts for r in p.reads))
        joiner = " and " if key == "all" else " or "
        text = joiner.join(f"({p.text})" if len(parts) > 1 else p.text for p in parts)
        if key == "all":
            return CompiledCond(lambda c: all(t(c) for t in tests), reads, text)
        return CompiledCond(lambda c: any(t(c) for t in tests), reads, text)
    if isinstance(cond, NotCond):
        inner = compile_condition(cond.not_, (*loc, "not"))
        t = inner.test
        return CompiledCond(lambda c: not t(c), inner.reads, f"not ({inner.text})")
    raise CondError(loc, f"not a condition: {cond!r}")  # pragma: no cover


def _compile_expr(text: str, loc: Loc) -> CompiledCond:
    try:
        ce = compile_expr(text, boolean=True)
    except ExprError as e:
        raise CondError(loc, f"bad expression: {e.message}", e.offset) from None
    fn = ce.fn
    return CompiledCond(lambda c: bool(fn(c)), ce.reads, text.strip())
