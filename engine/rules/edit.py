"""Machine edits of the rules file's text (a carrier switch): ruamel.yaml round-trip, so comments and key order
survive, and only the edited top-level section is re-emitted — every other line of the file stays byte for byte.

Pure text → text; the caller validates the result with `load_rules` (the one validator) before writing it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

MISSING = object()  # `set_in_text(..., MISSING)`: remove the key


class EditError(ValueError):
    """The text cannot be edited mechanically (not YAML, not a mapping where one is needed)."""


def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def _flow(value: Any) -> Any:
    """Plain data as ruamel nodes; a mapping of scalars is written in flow style (`{primary: sf, backup: deppon}`)."""
    if isinstance(value, dict):
        m = CommentedMap((k, _flow(v)) for k, v in value.items())
        if all(not isinstance(v, (dict, list)) for v in value.values()):
            m.fa.set_flow_style()
        return m
    return value


class _Text:
    """The smallest text sink ruamel dumps into (the engine imports no io)."""

    encoding = None  # ruamel writes str, not bytes, into a sink without an encoding

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, s: str | bytes) -> None:
        self.parts.append(s.decode("utf-8") if isinstance(s, bytes) else s)


def _dump(data: Any) -> str:
    out = _Text()
    _yaml().dump(data, out)
    return "".join(out.parts)


def set_in_text(text: str, path: Sequence[str], value: Any) -> str:
    """`text` with the mapping key at `path` set to `value` (plain data), or removed (`MISSING`, and the mappings it
    leaves empty with it); parents are created. Raises EditError when the text is not a YAML mapping or a parent on
    the path is not a mapping."""
    if not path:
        raise EditError("empty path")
    try:
        doc = _yaml().load(text) if text.strip() else CommentedMap()
    except YAMLError as e:
        raise EditError(f"the rules file is not valid YAML: {e}") from None
    if doc is None:
        doc = CommentedMap()
    if not isinstance(doc, CommentedMap):
        raise EditError("the rules file is not a mapping of sections")
    top = path[0]
    lines = text.splitlines(keepends=True)
    span = _span(doc, top, lines) if top in doc else None
    node: Any = doc
    for depth, key in enumerate(path[:-1]):
        child = node.get(key)
        if child is None:
            if value is MISSING:
                return text  # nothing to remove
            child = CommentedMap()
            node[key] = child
        if not isinstance(child, CommentedMap):
            raise EditError(f"{'.'.join(path[:depth + 1])} is not a mapping")
        node = child
    if value is MISSING:
        if path[-1] not in node:
            return text
        del node[path[-1]]
        _prune(doc, path[:-1])
    else:
        node[path[-1]] = _flow(value)
    dumped = _dump(CommentedMap([(top, doc[top])])).splitlines(keepends=True) if top in doc else []
    if span is not None:
        dumped = _drop_heading(dumped, lines[span[1]:_next_key_line(doc, top, lines)])
    while len(dumped) > 1 and _loose(dumped[-1]):
        dumped.pop()
    if span is None:
        return text + ("" if not text or text.endswith("\n") else "\n") + "\n" + "".join(dumped)
    start, end = span
    return "".join(lines[:start]) + "".join(dumped) + "".join(lines[end:])


def _span(doc: CommentedMap, top: str, lines: Sequence[str]) -> tuple[int, int]:
    """The lines [start, end) of top-level section `top`. Comment and blank lines just before the next section's key
    head that section: they stay outside the span, kept verbatim (ruamel attaches them to this section's last node,
    so they are dropped from its dump), never lost or doubled."""
    keys = list(doc.keys())
    start = doc.lc.key(top)[0]
    after = keys.index(top) + 1
    end = doc.lc.key(keys[after])[0] if after < len(keys) else len(lines)
    while end > start + 1 and _loose(lines[end - 1]):
        end -= 1
    return start, end


def _next_key_line(doc: CommentedMap, top: str, lines: Sequence[str]) -> int:
    keys = list(doc.lc.data)  # the keys as parsed (positions survive edits)
    after = keys.index(top) + 1
    return doc.lc.key(keys[after])[0] if after < len(keys) else len(lines)


def _drop_heading(dumped: list[str], heading: Sequence[str]) -> list[str]:
    """The dump without the next section's heading comments (they stay where they were in the text), wherever
    ruamel put them (after the section's last node, or before a key the edit appended)."""
    comments = {h.strip() for h in heading if h.strip()}
    if not comments:
        return dumped
    out: list[str] = []
    for line in dumped:
        if line.strip() in comments:
            while out and not out[-1].strip():
                out.pop()
            continue
        out.append(line)
    return out


def _prune(doc: CommentedMap, path: Sequence[str]) -> None:
    """Remove the mappings on `path` left empty by a removal, deepest first (an empty `regions:` is not kept)."""
    for depth in range(len(path), 0, -1):
        parent: Any = doc
        for key in path[:depth - 1]:
            parent = parent[key]
        if parent[path[depth - 1]]:
            return
        del parent[path[depth - 1]]


def _loose(line: str) -> bool:
    """A blank or whole-line comment line."""
    stripped = line.strip()
    return not stripped or stripped.startswith("#")
