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


def _plain(node: Any, path: Path, pos: Positions) -> Any:
    if isinstance(node, CommentedMap):
        out: dict[Any, Any] = {}
        for k, v in node.items():
            key = str(k) if not isinstance(k, (str, int)) else k
            child = (*path, key)
            try:
                kl, kc, vl, vc = node.lc.data[k]
                pos.keys[child] = (kl, kc)
                pos.values[child] = (vl, vc)
            except (KeyError, TypeError, ValueError):
                pass
            out[key] = _plain(v, child, pos)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for i, v in enumerate(node):
            child = (*path, i)
            try:
                pos.values[child] = tuple(node.lc.data[i][:2])  # type: ignore[assignment]
            except (KeyError, IndexError, TypeError):
                pass
            items.append(_plain(v, child, pos))
        return items
    if isinstance(node, str):
        return str(node)
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return node


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
    pos = Positions()
    pos.values[()] = (0, 0)
    return _plain(doc, (), pos), pos


def _dup_key(message: str) -> str:
    for line in message.splitlines():
        if "found duplicate key" in line:
            return line.split("found duplicate key", 1)[1].strip().split(" with value")[0]
    return ""
