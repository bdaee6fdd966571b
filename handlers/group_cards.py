"""The grouped stall card: one card for many stalled orders of one recipient, paged within every platform's limits.

A page lists `PAGE_SIZE` orders, each with its own Details button, plus Acknowledge-all, Snooze-all and Next page:
six buttons, WeCom's maximum for a template card (Telegram takes more; one layout for both keeps a card the same
everywhere). Field keys are short numbers and values stay under WeCom's 30 characters; the title under 36.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from engine.stages import Stage, label
from engine.text import fmt_duration, shorten, t
from engine.tokens import Action, sign
from handlers.cards import order_title
from handlers.chat import Button, Card
from handlers.chat_ports import ChatOrderView

PAGE_SIZE = 3  # 3 Details + ack all + snooze all + next page = 6 buttons (WeCom's limit)
ROW_MAX = 30  # WeCom's horizontal_content_list value limit


@dataclass(frozen=True, slots=True)
class Entry:
    """One open alert of a group: the order, its ladder level (-1 warning) and how overdue (negative: time left)."""

    view: ChatOrderView
    level: int
    overdue: timedelta


def coarse(td: timedelta, language: str) -> str:
    """The largest unit only ("3 天", "5 小时"): a title says how old the oldest is, not to the minute."""
    mins = max(int(td.total_seconds()) // 60, 0)
    n, unit = ((mins // 1440, "d") if mins >= 1440 else (mins // 60, "h") if mins >= 60 else (mins, "m"))
    words = {"zh": {"d": "天", "h": "小时", "m": "分"}, "en": {"d": "d", "h": "h", "m": "m"}}
    return f"{n} {words['zh'][unit]}" if language != "en" else f"{n}{words['en'][unit]}"


def pages_of(n: int) -> int:
    return max(1, -(-n // PAGE_SIZE))


def _where(labels: dict[str, str | None], language: str) -> str:
    if labels.get("base"):
        return t("group.base", language, base=labels["base"])
    if labels.get("region"):
        return t("group.region", language, region=labels["region"])
    return t("group.anywhere", language)


def group_card(group_id: int, labels: dict[str, str | None], entries: Sequence[Entry], key: bytes, language: str = "zh",
               page: int = 0, status: str | None = None, with_buttons: bool = True) -> Card:
    """Page `page` (0-based, wrapped) of the group's card; entries most overdue first."""
    ordered = sorted(entries, key=lambda e: e.overdue, reverse=True)
    pages = pages_of(len(ordered))
    page %= pages
    stage_value = labels.get("stage") or (ordered[0].view.order.stage.value if ordered else "")
    stage = label(Stage(stage_value), language) if stage_value else ""
    where = _where(labels, language)
    oldest = ordered[0].overdue if ordered else timedelta(0)
    if ordered and all(e.level < 0 for e in ordered):
        title = t("group.title_warn", language, stage=stage, n=len(ordered), where=where)
    else:
        title = t("group.title", language, stage=stage, n=len(ordered), where=where,
                  oldest=coarse(oldest, language))
    shown = ordered[page * PAGE_SIZE:(page + 1) * PAGE_SIZE]
    fields: list[tuple[str, str]] = []
    buttons: list[Button] = []
    for i, e in enumerate(shown, start=page * PAGE_SIZE + 1):
        d = fmt_duration(abs(e.overdue), language)
        row = t("group.row_left" if e.overdue < timedelta(0) else "group.row_overdue", language,
                order=order_title(e.view), d=d)
        fields.append((str(i), shorten(row, ROW_MAX)))
        buttons.append(Button(t("btn.details_n", language, n=i), sign(key, Action.ORDER_DETAILS, e.view.order.id)))
    fields.append(("页" if language == "zh" else "Page", t("group.page", language, page=page + 1, pages=pages,
                                                         n=len(ordered))))
    if with_buttons and ordered:
        buttons += [Button(t("btn.ack_all", language), sign(key, Action.GROUP_ACK, group_id, stage_value[:16])),
                    Button(t("btn.snooze_all", language), sign(key, Action.GROUP_SNOOZE, group_id, stage_value[:16]))]
        if pages > 1:
            buttons.append(Button(t("btn.more", language), sign(key, Action.GROUP_PAGE, group_id,
                                                                  str((page + 1) % pages))))
    # without buttons (after a bulk decision) each order's Details stays: still useful
    return Card(title, tuple(fields), status if status is not None else t("group.status_open", language),
                tuple(buttons))
