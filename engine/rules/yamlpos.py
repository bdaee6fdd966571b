"""YAML to plain data plus a map of where every value (and key) sits in the text, for precise error messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from engine.rules.errors import RuleIssue, RulesError

Path = tuple[str | int, ...]


@dataclass(slots=True)
class Positions:
    """0-based (line, column) of each value and each mapping key, by path."""

    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def of(self, path: Path, *, key: bool = False) -> tuple[int, int] | None:
        """The best position for `path`: its own, else the nearest ancestor's (a missing field points at its parent)."""
        p = tuple(path)
        while True:
            if key and p in self.keys:
                return self.keys[p]
            if p in self.values:
                return self.values[p]
            if p in self.keys:
                return self.keys[p]
            if not p:
                return None
            p = p[:-1]


MAX_NODES = 200_000  # far above any real rules file; stops alias "billion laughs" expansion


class _TooBig(Exception):
    pass


class _Cycle(Exception):
    def __init__(self, path: Path) -> None:
        self.path = path


class _Walker:
    """Converts ruamel's round-trip nodes to plain data, recording positions; refuses cycles and alias bombs."""

    def __init__(self, pos: Positions) -> None:
        self.pos = pos
        self.count = 0
        self.active: set[int] = set()

    def plain(self, node: Any, path: Path) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _TooBig
        if isinstance(node, (CommentedMap, CommentedSeq)):
            if id(node) in self.active:
                raise _Cycle(path)
            self.active.add(id(node))
            try:
                return self._map(node, path) if isinstance(node, CommentedMap) else self._seq(node, path)
            finally:
                self.active.discard(id(node))
        if isinstance(node, str):
            return str(node)
        if isinstance(node, bool):
            return bool(node)
        if isinstance(node, int):
            return int(node)
        if isinstance(node, float):
            return float(node)
        return node

    def _map(self, node: CommentedMap, path: Path) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for k, v in node.items():
            key = k if isinstance(k, (str, int)) and not isinstance(k, bool) else str(k)
            child = (*path, key)
            try:
                kl, kc, vl, vc = node.lc.data[k]
                self.pos.keys[child] = (kl, kc)
                self.pos.values[child] = (vl, vc)
            except (KeyError, TypeError, ValueError):
                pass
            out[key] = self.plain(v, child)
        return out

    def _seq(self, node: CommentedSeq, path: Path) -> list[Any]:
        items = []
        for i, v in enumerate(node):
            child = (*path, i)
            try:
                self.pos.values[child] = tuple(node.lc.data[i][:2])  # type: ignore[assignment]
            except (KeyError, IndexError, TypeError):
                pass
            items.append(self.plain(v, child))
        return items


def load_yaml(text: str, source: str) -> tuple[Any, Positions]:
    """Parse YAML (duplicate keys are an error) and return plain dicts/lists with positions."""
    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    try:
        doc = yaml.load(text)
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        if e.context_mark is not None and "<stream end>" in (e.problem or ""):
            mark = e.context_mark  # "unclosed [" is better shown where it opened than at the end of the file
        problem = (e.problem or "").strip() or "the YAML cannot be read"
        if "found duplicate key" in str(e):
            problem = "a key appears twice in the same mapping: " + _dup_key(str(e))
        msg = f"not valid YAML: {problem}"
        if e.context and "found duplicate key" not in str(e):
            msg += f" ({e.context.strip()})"
        line = mark.line + 1 if mark is not None else None
        col = mark.column + 1 if mark is not None else None
        raise RulesError([RuleIssue(source, line, col, "", msg)]) from None
    except YAMLError as e:
        raise RulesError([RuleIssue(source, None, None, "", f"not valid YAML: {e}")]) from None
    except RecursionError:
        raise RulesError([RuleIssue(source, None, None, "", "the file is nested too deeply")]) from None
    pos = Positions()
    pos.values[()] = (0, 0)
    try:
        return _Walker(pos).plain(doc, ()), pos
    except _Cycle as c:
        p = pos.of(c.path)
        line, col = (p[0] + 1, p[1] + 1) if p else (None, None)
        raise RulesError([RuleIssue(source, line, col, "", "a YAML alias (*name) refers to the node that contains it")]) from None
    except _TooBig:
        raise RulesError([RuleIssue(source, None, None, "", f"the file expands to more than {MAX_NODES} values (aliases?)")]) from None
    except RecursionError:
        raise RulesError([RuleIssue(source, None, None, "", "the file is nested too deeply")]) from None


def _dup_key(message: str) -> str:
    for line in message.splitlines():
        if "found duplicate key" in line:
            return line.split("found duplicate key", 1)[1].strip().split(" with value")[0]
    return ""
