"""The rule expression language: a whitelisted subset of Python expression syntax compiled to closures.

Why this and not `eval` or a library: Python's own parser gives precise error columns for free and a syntax the
operations staff already half-know from spreadsheets (`order.amount > 5000 and customer.tier == 'vip'`). We never
execute Python: every AST node is checked against a short whitelist and turned into a closure over the per-order
context, so there is no attribute access (only the named facts in `fields.FIELDS`), no calls except a few pure
functions, no comprehensions, lambdas, imports or dunder names, and nothing that loops. Names are resolved at
load time, so a typo is a load error and evaluation does no parsing or lookup by string.

Semantics: numbers are Decimal (never float); comparing anything with null is false (like SQL); runtime type
errors make the condition "not matched, with an error" in the trace instead of crashing the evaluation.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, DivisionByZero, InvalidOperation
from typing import Any

from engine.rules.errors import ExprError
from engine.rules.fields import FIELDS, ROOTS, Ctx, Kind, suggest

Fn = Callable[[Ctx], Any]
MAX_NODES = 200
MAX_LENGTH = 1000


@dataclass(frozen=True, slots=True)
class CompiledExpr:
    fn: Fn
    reads: tuple[str, ...]
    kind: Kind | None


def _num(v: Any) -> Decimal:
    if isinstance(v, bool) or not isinstance(v, (int, Decimal)):
        raise TypeError(f"expected a number, got {v!r}")
    return Decimal(v)


def _ordering(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def cmp(a: Any, b: Any) -> bool:
        if a is None or b is None:
            return False
        return op(a, b)

    return cmp


def _in(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return False
    return a in b


def _not_in(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return False
    return a not in b


_CMP: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: _ordering(operator.lt),
    ast.LtE: _ordering(operator.le),
    ast.Gt: _ordering(operator.gt),
    ast.GtE: _ordering(operator.ge),
    ast.In: _in,
    ast.NotIn: _not_in,
}


def _add(a: Any, b: Any) -> Any:
    if isinstance(a, str) and isinstance(b, str):
        return a + b
    return _num(a) + _num(b)


def _div(a: Any, b: Any) -> Any:
    try:
        return _num(a) / _num(b)
    except (DivisionByZero, InvalidOperation, ZeroDivisionError):
        return None


def _mod(a: Any, b: Any) -> Any:
    try:
        return _num(a) % _num(b)
    except (DivisionByZero, InvalidOperation, ZeroDivisionError):
        return None


_BIN: dict[type, tuple[Callable[[Any, Any], Any], str]] = {
    ast.Add: (_add, "+"),
    ast.Sub: (lambda a, b: _num(a) - _num(b), "-"),
    ast.Mult: (lambda a, b: _num(a) * _num(b), "*"),
    ast.Div: (_div, "/"),
    ast.Mod: (_mod, "%"),
}


def _nullable(f: Callable[..., Any]) -> Callable[..., Any]:
    def g(*args: Any) -> Any:
        if any(a is None for a in args):
            return None
        return f(*args)

    return g


def _contains_any(haystack: Any, needles: Any) -> bool:
    if haystack is None or needles is None:
        return False
    if isinstance(haystack, str):
        return any(str(n) in haystack for n in needles)
    return any(n in haystack for n in needles)


# name -> (implementation, min args, max args, result kind)
FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int, Kind | None, str]] = {
    "len": (_nullable(len), 1, 1, "number", "length of a text or list"),
    "lower": (_nullable(lambda s: str(s).lower()), 1, 1, "text", "lower-case text"),
    "upper": (_nullable(lambda s: str(s).upper()), 1, 1, "text", "upper-case text"),
    "abs": (_nullable(lambda n: abs(_num(n))), 1, 1, "number", "absolute value"),
    "min": (_nullable(lambda *a: min(_num(x) for x in a)), 2, 8, "number", "smallest of the numbers"),
    "max": (_nullable(lambda *a: max(_num(x) for x in a)), 2, 8, "number", "largest of the numbers"),
    "contains_any": (_contains_any, 2, 2, "bool", "text contains any of the words / list shares an element"),
}


def _const_value(node: ast.Constant) -> Any:
    v = node.value
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, int):
        return Decimal(v)
    if isinstance(v, float):
        return Decimal(repr(v))
    raise ExprError(f"this kind of value is not allowed: {v!r}", node.col_offset)


def _kind_of(value: Any) -> Kind | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, Decimal)):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, (tuple, list)):
        return "list"
    return None


_TRUTH_OK = ("bool", None)  # None: known only at run time (a custom field, an index, a mixed if/else)
_THOUSANDS = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+)(?![\w.])")


def _thousands_hint(text: str) -> str:
    """`2,500` is a tuple in Python's syntax: suggest the number the author meant."""
    m = _THOUSANDS.search(text)
    return f" (did you mean {m.group(1).replace(',', '')}?)" if m else ""


def _comparable(a: Kind | None, b: Kind | None, op: ast.cmpop) -> str | None:
    """Why `a op b` can never be true as written (kinds known at load time), or None."""
    if a is None or b is None:
        return None
    if isinstance(op, (ast.Lt, ast.LtE, ast.Gt, ast.GtE)):
        if {a, b} == {"number", "text"}:
            return "cannot compare a number with text"
        if a != b or a not in ("number", "text"):
            return f"cannot order {a} against {b} with <, <=, > or >="
        return None
    if isinstance(op, (ast.Eq, ast.NotEq)):
        if a != b:
            return f"a {a} is never equal to a {b}"
        return None
    if b not in ("list", "text", "map"):  # in / not in
        return f"'in' needs a list, a text or a map on its right, not a {b}"
    if b == "text" and a != "text":
        return f"'in' a text needs a text on its left, not a {a}"
    return None


class _Compiler:
    def __init__(self, *, boolean: bool = False) -> None:
        self.reads: list[str] = []
        self.boolean = boolean  # a condition: and/or/not/if take true-or-false operands only

    def truth(self, node: ast.AST, kind: Kind | None, what: str) -> None:
        if self.boolean and kind not in _TRUTH_OK:
            raise ExprError(f"{what} must be true or false, but this is a {kind}; compare it, e.g. `… > 0` or "
                            f"`… == 'x'`", getattr(node, "col_offset", None))

    def field_name(self, node: ast.Attribute) -> str:
        if not isinstance(node.value, ast.Name):
            raise ExprError("only names like order.amount or customer.city can be read", node.col_offset)
        root, attr = node.value.id, node.attr
        if root.startswith("_") or attr.startswith("_"):
            raise ExprError("names starting with an underscore are not allowed", node.col_offset)
        name = f"{root}.{attr}"
        if name not in FIELDS:
            if root not in ROOTS:
                raise ExprError(f"unknown name {root!r}; rules can read {', '.join(sorted(ROOTS))}", node.col_offset)
            raise ExprError(f"unknown field {name!r}{suggest(name)}", node.col_offset)
        return name

    def compile(self, node: ast.AST) -> tuple[Fn, Kind | None, Any]:
        """Return (closure, static kind or None, constant value or _NOT_CONST)."""
        if isinstance(node, ast.Constant):
            v = _const_value(node)
            return (lambda c, v=v: v), _kind_of(v), v
        if isinstance(node, ast.Attribute):
            name = self.field_name(node)
            spec = FIELDS[name]
            self.reads.append(name)
            return spec.getter, spec.kind, _NOT_CONST
        if isinstance(node, ast.Name):
            if node.id in ROOTS:
                raise ExprError(f"{node.id!r} alone is not a value; name a field such as {node.id}.…", node.col_offset)
            if node.id in FUNCTIONS:
                raise ExprError(f"{node.id!r} is a function; call it like {node.id}(…)", node.col_offset)
            raise ExprError(f"unknown name {node.id!r}; rules can read {', '.join(sorted(ROOTS))}", node.col_offset)
        if isinstance(node, ast.Subscript):
            return self.subscript(node)
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            parts = [self.compile(e) for e in node.elts]
            if all(p[2] is not _NOT_CONST for p in parts):
                v = tuple(p[2] for p in parts)
                return (lambda c, v=v: v), "list", v
            fns = [p[0] for p in parts]
            return (lambda c: tuple(f(c) for f in fns)), "list", _NOT_CONST
        if isinstance(node, ast.BoolOp):
            fns = []
            for v in node.values:
                f, k, _ = self.compile(v)
                self.truth(v, k, f"each side of {'and' if isinstance(node.op, ast.And) else 'or'}")
                fns.append(f)
            if len(fns) == 2:  # the common case, without a generator: the same short-circuit and bool result
                f0, f1 = fns
                if isinstance(node.op, ast.And):
                    return (lambda c: bool(f1(c)) if f0(c) else False), "bool", _NOT_CONST
                return (lambda c: True if f0(c) else bool(f1(c))), "bool", _NOT_CONST
            if isinstance(node.op, ast.And):
                return (lambda c: all(f(c) for f in fns)), "bool", _NOT_CONST
            return (lambda c: any(f(c) for f in fns)), "bool", _NOT_CONST
        if isinstance(node, ast.UnaryOp):
            f, _kind, _ = self.compile(node.operand)
            if isinstance(node.op, ast.Not):
                self.truth(node.operand, _kind, "what follows not")
                return (lambda c: not f(c)), "bool", _NOT_CONST
            if isinstance(node.op, ast.USub):
                return (lambda c: None if (x := f(c)) is None else -_num(x)), "number", _NOT_CONST
            if isinstance(node.op, ast.UAdd):
                return (lambda c: None if (x := f(c)) is None else _num(x)), "number", _NOT_CONST
        if isinstance(node, ast.BinOp) and type(node.op) in _BIN:
            op, sym = _BIN[type(node.op)]
            lf, lk, _ = self.compile(node.left)
            rf, rk, _ = self.compile(node.right)
            if sym != "+" and "text" in (lk, rk):
                raise ExprError(f"{sym!r} works on numbers, not text", node.col_offset)

            def binop(c: Ctx) -> Any:
                a, b = lf(c), rf(c)
                if a is None or b is None:
                    return None
                return op(a, b)

            return binop, ("text" if lk == rk == "text" else "number"), _NOT_CONST
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.IfExp):
            t, _tk, _ = self.compile(node.test)
            self.truth(node.test, _tk, "the test of if … else")
            a, ak, _ = self.compile(node.body)
            b, bk, _ = self.compile(node.orelse)
            return (lambda c: a(c) if t(c) else b(c)), (ak if ak == bk else None), _NOT_CONST
        if isinstance(node, ast.Call):
            return self.call(node)
        raise ExprError(f"{_describe(node)} is not allowed in a rule expression", getattr(node, "col_offset", None))

    def subscript(self, node: ast.Subscript) -> tuple[Fn, Kind | None, Any]:
        f, kind, _ = self.compile(node.value)
        if kind not in ("map", "list"):
            raise ExprError("only maps such as order.custom_fields['x'] and lists can be indexed", node.col_offset)
        if not isinstance(node.slice, ast.Constant):
            raise ExprError("an index must be a plain text or number", node.col_offset)
        key = node.slice.value
        if kind == "map":
            if not isinstance(key, str):
                raise ExprError("a map key must be text, e.g. ['install_date']", node.col_offset)

            def get_key(c: Ctx) -> Any:
                m = f(c)
                v = m.get(key) if isinstance(m, dict) else None
                if isinstance(v, float):
                    return Decimal(repr(v))
                if isinstance(v, int) and not isinstance(v, bool):
                    return Decimal(v)
                return v

            return get_key, None, _NOT_CONST
        if not isinstance(key, int) or isinstance(key, bool):
            raise ExprError("a list index must be a whole number", node.col_offset)

        def get_item(c: Ctx) -> Any:
            seq = f(c)
            try:
                return seq[key]
            except (IndexError, TypeError, KeyError):
                return None

        return get_item, None, _NOT_CONST

    def compare(self, node: ast.Compare) -> tuple[Fn, Kind | None, Any]:
        left = self.compile(node.left)
        steps: list[tuple[Callable[[Any, Any], bool], Fn]] = []
        prev_kind = left[1]
        for op, comp in zip(node.ops, node.comparators):
            if type(op) not in _CMP:
                raise ExprError("use ==, !=, <, <=, >, >=, in or not in to compare", node.col_offset)
            rf, rk, _ = self.compile(comp)
            if isinstance(op, (ast.Lt, ast.LtE, ast.Gt, ast.GtE)) and {prev_kind, rk} == {"number", "text"}:
                raise ExprError("cannot compare a number with text", comp.col_offset)
            if self.boolean and (why := _comparable(prev_kind, rk, op)) is not None:
                raise ExprError(why, comp.col_offset)
            steps.append((_CMP[type(op)], rf))
            prev_kind = rk
        lf = left[0]
        if len(steps) == 1:
            cmp, rf = steps[0]
            if isinstance(node.comparators[0], ast.Constant):  # `field op constant`: the constant is not called for
                v = rf(None)
                return (lambda c: cmp(lf(c), v)), "bool", _NOT_CONST
            return (lambda c: cmp(lf(c), rf(c))), "bool", _NOT_CONST

        def chain(c: Ctx) -> bool:
            a = lf(c)
            for cmp, rf in steps:
                b = rf(c)
                if not cmp(a, b):
                    return False
                a = b
            return True

        return chain, "bool", _NOT_CONST

    def call(self, node: ast.Call) -> tuple[Fn, Kind | None, Any]:
        if not isinstance(node.func, ast.Name):
            raise ExprError("only the built-in rule functions can be called", node.col_offset)
        name = node.func.id
        if name == "matches":
            return self.matches(node)
        if name not in FUNCTIONS:
            allowed = ", ".join(sorted([*FUNCTIONS, "matches"]))
            raise ExprError(f"unknown function {name!r}; available: {allowed}", node.col_offset)
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise ExprError(f"{name}() takes plain arguments only", node.col_offset)
        impl, lo, hi, kind, _doc = FUNCTIONS[name]
        if not lo <= len(node.args) <= hi:
            want = str(lo) if lo == hi else f"{lo} to {hi}"
            raise ExprError(f"{name}() takes {want} argument(s), got {len(node.args)}", node.col_offset)
        fns = [self.compile(a)[0] for a in node.args]
        if len(fns) == 1:
            f0 = fns[0]
            return (lambda c: impl(f0(c))), kind, _NOT_CONST
        return (lambda c: impl(*(f(c) for f in fns))), kind, _NOT_CONST

    def matches(self, node: ast.Call) -> tuple[Fn, Kind | None, Any]:
        if len(node.args) != 2 or node.keywords or not isinstance(node.args[1], ast.Constant) or not isinstance(
            node.args[1].value, str
        ):
            raise ExprError("matches(text, 'pattern') needs a text and a quoted pattern", node.col_offset)
        try:
            rx = re.compile(node.args[1].value)
        except re.error as e:
            raise ExprError(f"the pattern is not a valid regular expression: {e}", node.args[1].col_offset) from None
        f = self.compile(node.args[0])[0]
        return (lambda c: (s := f(c)) is not None and rx.search(str(s)) is not None), "bool", _NOT_CONST


class _NotConst:
    pass


_NOT_CONST: Any = _NotConst()

_NODE_WORDS = {
    "Lambda": "a lambda",
    "ListComp": "a comprehension",
    "SetComp": "a comprehension",
    "DictComp": "a comprehension",
    "GeneratorExp": "a comprehension",
    "NamedExpr": "assignment (:=)",
    "Await": "await",
    "Yield": "yield",
    "YieldFrom": "yield",
    "Dict": "a dict literal",
    "JoinedStr": "an f-string",
    "Starred": "*unpacking",
    "Slice": "slicing",
}


def _describe(node: ast.AST) -> str:
    if isinstance(node, ast.BinOp):
        return f"the operator {type(node.op).__name__}"
    return _NODE_WORDS.get(type(node).__name__, type(node).__name__)


def compile_expr(text: str, *, boolean: bool = False) -> CompiledExpr:
    """Compile an expression or raise ExprError with a 0-based column inside `text`.

    `boolean`: the expression is a condition (`when:`), so it must be true or false as written — a number, a text,
    a list (`order.amount > 2,500` is the tuple `(order.amount > 2, 500)`, always truthy) or a comparison that can
    never hold (`order.amount == '5000'`) is a load error, not a rule that silently matches every order or none."""
    if len(text) > MAX_LENGTH:
        raise ExprError(f"the expression is longer than {MAX_LENGTH} characters", 0)
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        # offset 0 means "ran out of input": point at the end of the expression
        offset = (e.offset - 1) if e.offset else len(text.strip())
        raise ExprError(f"not a valid expression: {e.msg}", offset) from None
    lead = len(text) - len(text.lstrip())
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise ExprError(f"the expression is too complex (more than {MAX_NODES} parts)", 0)
    comp = _Compiler(boolean=boolean)
    try:
        fn, kind, _ = comp.compile(tree.body)
        if boolean and kind not in _TRUTH_OK:
            body = tree.body
            at = body.elts[0].end_col_offset if isinstance(body, ast.Tuple) and body.elts else body.col_offset
            shape = "a list of values (a comma separates them)" if isinstance(body, ast.Tuple) else f"a {kind}"
            raise ExprError(f"a condition must be true or false, but this is {shape}{_thousands_hint(text)}", at)
    except ExprError as e:
        if e.offset is not None:
            e.offset += lead
        raise
    return CompiledExpr(fn, tuple(dict.fromkeys(comp.reads)), kind)
