"""The chat's strings in Chinese (default) and English, plus the small formatting rules chats share.

The strings are package data, engine/catalogs/chat.toml (see engine.catalog); `t` looks one up.

Telegram caps a message at 4,096 characters; HTML markup and escaping added by an adapter must fit as well, so
content is budgeted to `TEXT_BUDGET` and long content is paged (`paginate`), never cut off silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from engine.catalog import Catalog
from engine.stages import BOARD, Stage, label

MAX_MESSAGE_CHARS = 4096
TEXT_BUDGET = 3500  # what a handler may put in one message; leaves room for markup and escaping

CHAT = Catalog.load("chat")  # the chat's texts: package data, engine/catalogs/chat.toml (see engine.catalog)
t = CHAT.t  # the string `key` in `language` (Chinese when unknown), formatted with `kw`

ROLE_NAMES = {
    "zh": {"admin": "管理员", "manager": "经理", "finance": "财务", "supply_chain": "供应链", "customer": "客户"},
    "en": {"admin": "admin", "manager": "manager", "finance": "finance", "supply_chain": "supply chain", "customer": "customer"},
}


# What each kind of chat message is, for an admin told that one could not be delivered.
MESSAGE_KINDS = {
    "zh": {"approval_request": "审批请求", "approval_outcome": "审批卡片更新", "stall_alert": "超时提醒",
           "trend_alert": "异常趋势提醒", "digest": "早报", "carrier_degraded": "承运商时效提醒",
           "tracking_update": "物流通知", "tracking_stall": "物流停滞提醒", "refund_update": "退款通知",
           "dead_letter": "入库失败提醒", "rules_invalid": "规则文件错误提醒", "admin_notice": "管理员通知"},
    "en": {"approval_request": "approval request", "approval_outcome": "approval card update",
           "stall_alert": "stall alert", "trend_alert": "anomaly trend alert", "digest": "morning digest",
           "carrier_degraded": "carrier slow-down alert", "tracking_update": "shipping notice",
           "tracking_stall": "tracking stall alert", "refund_update": "refund notice",
           "dead_letter": "could-not-store alert", "rules_invalid": "rules file alert", "admin_notice": "admin notice"},
}


def message_kind(kind: str, language: str = "zh") -> str:
    """An outbox row's kind as people say it (超时提醒, not `stall_alert`); any other kind is just a message."""
    names = MESSAGE_KINDS.get(language, MESSAGE_KINDS["zh"])
    return names.get(kind, "消息" if language != "en" else "message")


PLATFORM_NAMES = {"telegram": {"zh": "Telegram", "en": "Telegram"}, "wecom": {"zh": "企业微信", "en": "WeCom"},
                  "email": {"zh": "邮件", "en": "e-mail"}}


def platform_name(platform: str, language: str = "zh") -> str:
    names = PLATFORM_NAMES.get(platform)
    return names.get(language, names["zh"]) if names else platform


def role_name(role: str, language: str = "zh") -> str:
    return ROLE_NAMES.get(language, ROLE_NAMES["zh"]).get(role, role)


def mask_phone(phone: str | None) -> str:
    """`13800138000` → `138****8000`; short numbers keep only their last two digits."""
    digits = "".join(ch for ch in (phone or "") if ch.isdigit())
    if len(digits) >= 11:
        digits = digits[-11:]
        return f"{digits[:3]}****{digits[-4:]}"
    if len(digits) >= 4:
        return "*" * (len(digits) - 2) + digits[-2:]
    return "****" if digits else ""


def progress_line(stage: Stage | str, language: str = "zh") -> str:
    """The six-step board as one line: done ✅, current 🔵, to come ⚪; a cancelled order says so."""
    st = Stage(stage)
    if st == Stage.CANCELLED:
        return "❌ " + label(st, language)
    steps = BOARD[:-1]  # the six working stages; `completed` is shown as all done
    cur = BOARD.index(st)
    marks = []
    for i, s in enumerate(steps):
        mark = "✅" if i < cur else ("🔵" if i == cur else "⚪")
        marks.append(mark + label(s, language))
    return " → ".join(marks)


def fmt_money(amount: Decimal, currency: str = "CNY") -> str:
    sym = "¥" if currency == "CNY" else currency + " "
    return f"{sym}{amount:,.2f}"


def fmt_time(at: datetime | None, timezone: str = "Asia/Shanghai") -> str:
    if at is None:
        return "—"
    return at.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")


def fmt_date(at: datetime | None, timezone: str = "Asia/Shanghai") -> str:
    return "—" if at is None else at.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d")


def fmt_duration(td: timedelta, language: str = "zh") -> str:
    minutes = max(int(td.total_seconds()) // 60, 0)
    d, rest = divmod(minutes, 1440)
    h, m = divmod(rest, 60)
    if language == "en":
        parts = [f"{d}d" if d else "", f"{h}h" if h else "", f"{m}m" if m and not d else ""]
        return "".join(parts) or "0m"
    parts = [f"{d}天" if d else "", f"{h}小时" if h else "", f"{m}分" if m and not d else ""]
    return "".join(parts) or "0分"


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def paginate(lines: Sequence[str], *, budget: int = TEXT_BUDGET, header: str = "", language: str = "zh") -> list[str]:
    """Split lines into messages of at most `budget` characters each, every line kept (over-long lines wrapped).

    Each page after the first repeats nothing but a page marker, so the whole list arrives in order.
    """
    marker_room = 24
    room = budget - marker_room - (len(header) + 1 if header else 0)
    pieces: list[str] = []
    for line in lines:
        while len(line) > room:
            pieces.append(line[:room])
            line = line[room:]
        pieces.append(line)
    pages: list[list[str]] = [[]]
    size = 0
    for piece in pieces:
        if pages[-1] and size + len(piece) + 1 > room:
            pages.append([])
            size = 0
        pages[-1].append(piece)
        size += len(piece) + 1
    n = len(pages)
    out = []
    for i, page in enumerate(pages, 1):
        head = [header] if header else []
        if n > 1:
            head.append(t("page.header", language, i=i, n=n))
        out.append("\n".join(head + page))
    return out


def mask_name(name: str) -> str:
    """`王女士` → `王**`: staff cards identify a customer without spreading their name."""
    name = name.strip()
    if not name:
        return ""
    return name[0] + "*" * min(max(len(name) - 1, 1), 4)
