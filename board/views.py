"""Cards, filters and the "why" as the templates show them: formatting only, no I/O."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from engine.display import order_words
from engine.rules import RuleSet
from engine.rules.explain import explain_lines, reproduce
from engine.stages import BOARD, Stage, label
from engine.text import fmt_duration, fmt_money, mask_name, mask_phone
from handlers.board import MAX_TEXT, BoardCard, BoardFilter
from handlers.orders import OrderDetail

from board.text import bt

MAX_AMOUNT = Decimal("1000000000")
FILTER_KEYS = ("city", "region", "min_amount", "max_amount", "priority", "flagged", "stalled", "owner", "q")


@dataclass(frozen=True, slots=True)
class Badge:
    kind: str
    text: str


def next_stage(stage: Stage) -> Stage | None:
    """One stage on; from the last column that is `completed` (a button only: the card then leaves the board)."""
    i = BOARD.index(stage)
    return BOARD[i + 1] if i + 1 < len(BOARD) else None


@dataclass(frozen=True, slots=True)
class CardView:
    """A card as the template shows it: every string ready (attribute access keeps 300 cards cheap to render)."""

    id: int
    number: str
    customer: str
    city: str
    region: str
    amount: str
    priority: int
    priority_label: str
    owner: str
    badges: list[Badge]
    stage: str
    flagged: bool
    stalled: bool
    waiting: bool
    age: str
    next: str
    next_label: str
    move_label: str
    owned: bool = False  # the owner badge: a name, or 未分配 shown as unassigned


def card_view(card: BoardCard, now: datetime, lang: str, hooks: Sequence[Callable[[Any], Sequence[str]]] = ()
              ) -> CardView:
    badges: list[Badge] = []
    if card.flagged:
        badges.append(Badge("flagged", bt("badge.flagged", lang)))
    stalled = card.stalled_for(now)
    if stalled is not None:
        badges.append(Badge("stalled", bt("badge.stalled", lang, d=fmt_duration(stalled, lang))))
    if card.pending_approvals:
        badges.append(Badge("approval", bt("badge.approval", lang)))
    if card.refund_open:
        badges.append(Badge("refund", bt("badge.refund", lang)))
    if card.tracking_status:
        badges.append(Badge("tracking", bt("badge.tracking", lang, s=card.tracking_status)))
    for extra in card.extra_badges:
        badges.append(Badge("extra", extra))
    for hook in hooks:
        badges.extend(Badge("extra", text) for text in hook(card))
    nxt = next_stage(card.stage)
    customer = " ".join(p for p in (mask_name(card.customer_name), mask_phone(card.customer_phone)) if p)
    next_label = label(nxt, lang) if nxt else ""
    return CardView(
        id=card.id, number=card.external_id, customer=customer, city=card.city, region=card.region or "",
        amount=fmt_money(card.amount, card.currency), priority=card.priority,
        priority_label=bt("priority_short", lang, p=card.priority), owner=card.owner or bt("no_owner", lang),
        badges=badges, stage=card.stage.value, flagged=card.flagged, stalled=stalled is not None,
        waiting=bool(card.pending_approvals), age=bt("in_stage", lang) + " " + fmt_duration(now - card.stage_entered_at, lang),
        next=nxt.value if nxt else "", next_label=next_label,
        move_label=bt("move_to", lang, stage=next_label) if nxt else "",
        owned=bool(card.owner),
    )


def _text(params: Mapping[str, str], name: str) -> str | None:
    value = (params.get(name) or "").replace("\x00", "").strip()[:MAX_TEXT]  # no column holds a NUL
    return value or None


def _amount(params: Mapping[str, str], name: str) -> Decimal | None:
    raw = _text(params, name)
    if raw is None:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        return None
    return value if value.is_finite() and Decimal(0) <= value <= MAX_AMOUNT else None


def _int(params: Mapping[str, str], name: str) -> int | None:
    raw = _text(params, name)
    if raw is None or not raw.lstrip("-").isdigit() or len(raw) > 6:
        return None
    return int(raw)


def _flag(params: Mapping[str, str], name: str) -> bool:
    return (params.get(name) or "").lower() in ("1", "true", "on", "yes")


def parse_filter(params: Mapping[str, str], scope: tuple[str, ...] | None) -> tuple[BoardFilter, dict[str, str]]:
    """Query parameters → a bounded filter, and the cleaned values to keep in links (invalid ones are dropped)."""
    f = BoardFilter(city=_text(params, "city"), region=_text(params, "region"), min_amount=_amount(params, "min_amount"),
                    max_amount=_amount(params, "max_amount"), priority=_int(params, "priority"),
                    flagged=_flag(params, "flagged"), stalled=_flag(params, "stalled"), owner=_text(params, "owner"),
                    q=_text(params, "q"), regions=scope)
    kept: dict[str, str] = {}
    for key in FILTER_KEYS:
        value = getattr(f, key)
        if value is True:
            kept[key] = "1"
        elif value not in (None, False):
            kept[key] = str(value)
    return f, kept


def why_lines(detail: OrderDetail, rules: RuleSet, lang: str, timezone: str) -> list[str]:
    """The rules' explanation of this order's stored decisions (as `orderhub rules explain --stored` gives it)."""
    stored = detail.decisions
    if not stored:
        return []
    tz = ZoneInfo(timezone)
    name = order_words(detail.order.channel, detail.order.data.external_id, lang)
    try:
        if "trace" not in stored and stored.get("rules_version") == rules.version:
            again = reproduce(stored, detail.order, rules)
            if again is not None:
                return explain_lines(again.to_json(), name, lang, tz)
        return explain_lines(stored, name, lang, tz)
    except Exception:  # an old or odd stored decision must not break the drawer
        return [str(stored.get("rules_version", ""))[:12]]
