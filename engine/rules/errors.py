"""Rules-file problems, each pinned to a place in the file so an operations lead can fix it without a developer."""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.catalog import load_data


@dataclass(frozen=True, slots=True)
class RuleIssue:
    """One problem: where (file, 1-based line/column, field path) and what, in plain words."""

    path: str
    line: int | None
    column: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.path
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.message}"


class RulesError(ValueError):
    """A rules file that cannot be used; `issues` lists every problem found, not just the first."""

    def __init__(self, issues: list[RuleIssue]) -> None:
        self.issues = list(issues)
        super().__init__(self._render())

    def _render(self) -> str:
        return render_issues(self.issues, "en")

    def render(self, language: str = "en") -> str:
        """The whole report in Chinese ("zh") or English; file positions and field paths are never translated."""
        return render_issues(self.issues, language)

    def __str__(self) -> str:
        return self._render()


class ExprError(ValueError):
    """A rule expression that does not compile; `offset` is the 0-based column inside the expression text."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        self.message = message
        self.offset = offset
        super().__init__(message)


# English message → Chinese, by pattern. Messages are written in English first (they are also log lines); the
# operator-facing renderings (CLI, admin alert) pick the language. Unmatched messages stay English. The table is
# package data, engine/catalogs/rule_errors.toml (read once at import, see engine.catalog).
_DATA = load_data("rule_errors")
_ZH: list[tuple[re.Pattern[str], str]] = [(re.compile(m["en"]), m["zh"]) for m in _DATA["message"]]
_FRAGMENTS: list[tuple[str, str]] = [(f["en"], f["zh"]) for f in _DATA["fragment"]]  # replaced after a pattern
_HEAD: dict[str, str] = _DATA["head"]


def localize(message: str, language: str = "en") -> str:
    """The message in `language` ("zh" or "en"); English when no translation is known."""
    if language != "zh":
        return message
    if message.startswith("bad expression: "):
        return "表达式有误：" + localize(message[len("bad expression: "):], language)
    for pattern, repl in _ZH:
        if pattern.match(message):
            out = pattern.sub(repl, message, count=1)
            for en, zh in _FRAGMENTS:
                out = out.replace(en, zh)
            return out
    return message


def render_issues(issues: list[RuleIssue], language: str = "en") -> str:
    n = len(issues)
    head = _HEAD.get(language, _HEAD["en"]).format(n=n, s="s" if n != 1 else "")
    lines = []
    for i in issues:
        lines.append("  " + str(RuleIssue(i.path, i.line, i.column, i.field, localize(i.message, language))))
    return "\n".join([head, *lines])
