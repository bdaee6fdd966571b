"""Rules-file problems, each pinned to a place in the file so an operations lead can fix it without a developer."""

from __future__ import annotations

import re
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
# operator-facing renderings (CLI, admin alert) pick the language. Unmatched messages stay English.
_ZH: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p), r)
    for p, r in [
        (r"^not valid YAML: a key appears twice in the same mapping: (.*)$", r"不是有效的 YAML：同一层级中键 \1 出现了两次"),
        (r"^not valid YAML: (.*)$", r"不是有效的 YAML：\1"),
        (r"^unknown field '(.*?)'; allowed here: (.*)$", r"未知字段 '\1'；此处允许：\2"),
        (r"^unknown field '(.*?)'(; did you mean (.*)\?)?$", r"未知字段 '\1'\2"),
        (r"^this field is required but missing$", "缺少必填字段"),
        (r"^expected a whole number(.*)$", r"应为整数\1"),
        (r"^expected a number(.*)$", r"应为数字\1"),
        (r"^expected true or false(.*)$", r"应为 true 或 false\1"),
        (r"^expected text(.*)$", r"应为文本\1"),
        (r"^expected a list \(items starting with '- ', or \[a, b\]\)(.*)$", r"应为列表（以 '- ' 开头的条目，或 [a, b]）\1"),
        (r"^expected a mapping \(key: value lines\)(.*)$", r"应为映射（键: 值）\1"),
        (r"^expected a date like 2026-10-01(.*)$", r"应为日期，例如 2026-10-01\1"),
        (r"^expected \[latitude, longitude\](.*)$", r"应为 [纬度, 经度]\1"),
        (r"^unknown stage (.*?); expected one of: (.*)$", r"未知阶段 \1；可选：\2"),
        (r"^unknown value (.*?); expected one of: (.*)$", r"未知取值 \1；可选：\2"),
        (r"^expected a duration such as 48h, 2d, 30m or 1h30m, got (.*)$", r"应为时长，例如 48h、2d、30m 或 1h30m，实际为 \1"),
        (r"^expected an amount of money such as 5000 or \"5000.00\", got (.*)$", r"应为金额，例如 5000 或 \"5000.00\"，实际为 \1"),
        (r"^names starting with an underscore are not allowed$", "不允许以下划线开头的名称"),
        (r"^not a valid expression: (.*)$", r"不是有效的表达式：\1"),
        (r"^unknown function '(.*?)'; available: (.*)$", r"未知函数 '\1'；可用：\2"),
        (r"^unknown name '(.*?)'; rules can read (.*)$", r"未知名称 '\1'；规则可读取：\2"),
        (r"^(.*) is not allowed in a rule expression$", r"规则表达式中不允许使用 \1"),
        (r"^cannot compare a number with text$", "不能将数字与文本比较"),
        (r"^only names like order.amount or customer.city can be read$", "只能读取 order.amount、customer.city 这样的名称"),
        (r"^only the built-in rule functions can be called$", "只能调用内置的规则函数"),
        (r"^unknown production base (.*?); (one of: |none are defined)(.*)$", r"未知生产基地 \1；\2\3"),
        (r"^unknown product type (.*?); (one of: |none are defined)(.*)$", r"未知产品类型 \1；\2\3"),
        (r"^unknown region (.*?);(.*)$", r"未知区域 \1；\2"),
        (r"^unknown calendar (.*?);(.*)$", r"未知日历 \1；\2"),
        (r"^unknown anomaly category (.*?);(.*)$", r"未知异常类别 \1；\2"),
        (r"^the rule id '(.*?)' is used twice \(first at (.*)\)$", r"规则编号 '\1' 重复（首次出现在 \2）"),
        (r"^(.*) is already in region (.*)$", r"\1 已属于区域 \2"),
        (r"^unknown time zone (.*?); .*$", r"未知时区 \1，请使用如 Asia/Shanghai 的名称"),
        (r"^this field is a number, got (.*)$", r"该字段是数字，实际为 \1"),
        (r"^this field is text; .*$", "该字段是文本，请给取值加引号"),
        (r"^this list must not be empty$", "列表不能为空"),
        (r"^a condition needs one of the keys .*$", "条件需要以下键之一：field、all、any、not 或 expr（或一个表达式字符串）"),
        (r"^cannot read the rules file: (.*)$", r"无法读取规则文件：\1"),
        (r"^the file is not UTF-8 text(.*)$", r"文件不是 UTF-8 文本\1"),
        (r"^the file is nested too deeply$", "文件嵌套过深"),
        (r"^(.*) is an end state; it has no time limit$", r"\1 是结束状态，不能设置时限"),
        (r"^the limit must be longer than zero$", "时限必须大于零"),
        (r"^a trend needs .*$", "趋势规则需要 `consecutive: N`，或 `count: N` 加 `window`"),
    ]
]

_HEAD = {"zh": "规则文件有 {n} 处问题：", "en": "{n} problem{s} in the rules file:"}


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


_FRAGMENTS = [(", got ", "，实际为 "), ("; did you mean ", "；是否想写 "), ("one of: ", "可选："), ("none are defined", "尚未定义")]


def render_issues(issues: list[RuleIssue], language: str = "en") -> str:
    n = len(issues)
    head = _HEAD.get(language, _HEAD["en"]).format(n=n, s="s" if n != 1 else "")
    lines = []
    for i in issues:
        lines.append("  " + str(RuleIssue(i.path, i.line, i.column, i.field, localize(i.message, language))))
    return "\n".join([head, *lines])
