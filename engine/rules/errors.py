"""Rules-file problems, each pinned to a place in the file so an operations lead can fix it without a developer."""

from __future__ import annotations

from dataclasses import dataclass


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
        n = len(self.issues)
        head = f"{n} problem{'s' if n != 1 else ''} in the rules file:"
        return "\n".join([head, *(f"  {i}" for i in self.issues)])

    def __str__(self) -> str:
        return self._render()


class ExprError(ValueError):
    """A rule expression that does not compile; `offset` is the 0-based column inside the expression text."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        self.message = message
        self.offset = offset
        super().__init__(message)
