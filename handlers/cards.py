"""Cards and texts for orders, approvals and stalls, built from engine strings and sized to fit one message.

A card's text never exceeds `TEXT_BUDGET`: an item list that does not fit is summarised with a count and the
Details button sends the full list as paged messages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from engine.approvals import Approval, Status
from engine.carriers import CARRIERS, TrackStatus
from engine.carriers.text import t as carrier_t
from engine.digest import trend_phrase
from engine.display import FieldName, describe, order_words_from_key
from engine.rules.explain import person
from engine.rules.priority import rank_percent
from engine.stages import Stage, label
from engine.text import (
    TEXT_BUDGET,
    fmt_date,
    fmt_duration,
    fmt_money,
    fmt_time,
    mask_name,
    mask_phone,
    paginate,
    progress_line,
    role_name,
    shorten,
    t,
)
from engine.tokens import Action, sign, version_ref
from handlers.chat import Button, Card
from handlers.chat_ports import ChatOrderView
from handlers.note_cards import trend_notes_text
from engine.note_text import nt
from engine.owner_text import t as owner_t
from handlers.tracking import event_line_parts


def order_title(view: ChatOrderView) -> str:
    """The order number, with 🔴 when the order is among the flagged top of open orders."""
    return ("🔴 " if view.flagged else "") + view.order.data.external_id


def priority_words(view: ChatOrderView, language: str) -> str:
    """"65 · 前 10 %": the score and, when the reader looked it up, the rank percentile among open orders."""
    p = view.order.priority
    pct = rank_percent(*view.rank) if view.rank is not None else None
    return str(p) if pct is None else t("priority.rank", language, p=p, pct=pct)


# Display names of attributes and custom fields: installation-wide configuration (the rules file's `field_names`),
# like the language; installed by the rules runtime whenever a rules version becomes active.
_FIELD_NAMES: dict[str, FieldName] = {}


def set_field_names(names: Mapping[str, FieldName]) -> None:
    _FIELD_NAMES.clear()
    _FIELD_NAMES.update(names)


def item_lines(view: ChatOrderView, language: str = "zh") -> list[str]:
    lines = []
    for it in view.order.data.items:
        attrs = describe(it.attributes, _FIELD_NAMES, language, limit=6)
        name = shorten(it.name or it.sku, 60)
        line = f"• {name} ×{it.qty} @ {fmt_money(it.unit_price)} ({shorten(it.sku, 40)})"
        lines.append(line + (f" · {shorten(attrs, 120)}" if attrs else ""))
    return lines


def _custom(view: ChatOrderView, language: str = "zh") -> str:
    fields: dict[str, Any] = view.order.data.custom_fields
    return shorten(describe(fields, _FIELD_NAMES, language, limit=20), 400)


def eta(view: ChatOrderView) -> str:
    """The install date the customer asked for (custom field `install_date`), or "" when none was given.

    Only that date is an ETA a customer was promised; the caller shows the current stage's deadline instead, under
    its own label ("本阶段预计完成"), so a stage deadline is never passed off as the date of the whole order."""
    install = view.order.data.custom_fields.get("install_date")
    return str(install) if install else ""


def owner_field(view: ChatOrderView, language: str) -> list[tuple[str, str]]:
    """`负责人: 张三` when the order has an owner (assigned by the rules or a person); nothing otherwise."""
    return [(owner_t("f.owner", language), view.owner_name)] if view.owner_name else []


def staff_order_fields(view: ChatOrderView, language: str, timezone: str) -> list[tuple[str, str]]:
    o, d = view.order, view.order.data
    fields = [
        (t("f.customer", language), f"{mask_name(d.customer.name)} {mask_phone(d.customer.phone)}".strip()),
        (t("f.city", language), d.customer.city + (f" ({o.region})" if o.region else "")),
        (t("f.amount", language), fmt_money(d.amount, d.currency)),
        (t("f.stage", language), label(o.stage, language)),
        (t("f.priority", language), priority_words(view, language)),
        (t("f.created", language), fmt_time(d.created_at, timezone)),
        *owner_field(view, language),
    ]
    custom = _custom(view, language)
    if custom:
        fields.append((t("f.custom", language), custom))
    if d.notes:
        fields.append((t("f.notes", language), shorten(d.notes, 300)))
    return fields


def fit_items(base: Card, view: ChatOrderView, language: str, budget: int = TEXT_BUDGET) -> Card:
    """Add as many item lines as fit the budget; the rest are counted, never silently dropped."""
    lines = item_lines(view, language)
    for shown in range(len(lines), -1, -1):
        more = len(lines) - shown
        text = "\n" + "\n".join(lines[:shown]) + ("\n" + t("items.more", language, n=more) if more else "")
        card = Card(base.title, base.fields + ((t("f.items", language), text),), base.status, base.buttons,
                    base.image_url)
        if len(card.as_text()) <= budget:
            return card
    return base


def approval_buttons(approval: Approval, key: bytes, language: str) -> tuple[Button, ...]:
    ref = version_ref(approval.order_version)
    return (
        Button(t("btn.approve", language), sign(key, Action.APPROVE, approval.id, ref)),
        Button(t("btn.reject", language), sign(key, Action.REJECT, approval.id, ref)),
        Button(t("btn.details", language), sign(key, Action.APPROVAL_DETAILS, approval.id, ref)),
    )


def approval_status(approval: Approval, language: str, timezone: str) -> str:
    when = fmt_time(approval.decided_at, timezone)
    match approval.status:
        case Status.APPROVED:
            return t("approval.approved", language, who=approval.decided_by, when=when)
        case Status.REJECTED:
            return t("approval.rejected", language, who=approval.decided_by, when=when, reason=shorten(approval.reason, 300))
        case Status.SUPERSEDED:  # why, from the reason storage wrote (storage/order_moves.py, chat_repo.py)
            reason = approval.reason or ""
            if reason == "order cancelled":
                return t("approval.void_cancelled", language, when=when)
            if reason.startswith("order decided by"):
                return t("approval.void_decided", language, when=when)
            return t("approval.superseded", language)
    region = f" · {approval.region}" if approval.region else ""
    status = t("approval.pending", language, level=approval.level, role=role_name(approval.required_role, language),
               region=region)
    if approval.escalation_level:
        status += "\n" + t("approval.escalated", language)
    return status


def approval_card(approval: Approval, view: ChatOrderView, key: bytes, language: str = "zh",
                  timezone: str = "Asia/Shanghai", extra: Sequence[Sequence[str]] = ()) -> Card:
    """The request card; once decided, the same card shows the outcome and loses its decision buttons.
    `extra`: fields the request brings along (a refund's amount, reason, history, proof, OCR reading, tracking),
    shown first so everything needed to decide is on one screen."""
    pending = approval.status == Status.PENDING
    buttons = approval_buttons(approval, key, language) if pending else (
        Button(t("btn.details", language), sign(key, Action.ORDER_DETAILS, view.order.id)),
    )
    base = Card(
        title=t("approval.title", language, order=order_title(view)),
        fields=tuple((str(k), str(v)) for k, v in extra) + tuple(staff_order_fields(view, language, timezone)),
        status=approval_status(approval, language, timezone),
        buttons=buttons,
    )
    return fit_items(base, view, language)


def escalation_words(level: int, role: str | None, language: str) -> str:
    """An escalation level as people say it: 首次提醒（负责人）, 已升级到主管; the bare number for old alerts."""
    if not role:
        return str(level)
    who = person(role, language)
    return t("stall.first_alert" if level == 0 else "stall.escalated_to", language, who=who)


def _levels_words(level: int, role: str | None, levels: Sequence[int] | None, roles: Sequence[str] | None,
                  language: str) -> str:
    if levels and roles and len(levels) == len(roles):
        return "、".join(escalation_words(lv, r, language) for lv, r in zip(levels, roles, strict=True))
    if levels and len(levels) > 1:
        return ", ".join(str(lv) for lv in levels)
    return escalation_words(level, role, language)


def stall_card(view: ChatOrderView, alert_id: int, level: int, overdue: timedelta, key: bytes, language: str = "zh",
               timezone: str = "Asia/Shanghai", status: str | None = None, with_buttons: bool = True,
               levels: Sequence[int] | None = None, acked: bool = False, role: str | None = None,
               roles: Sequence[str] | None = None) -> Card:
    """The alert; `levels` (with their rung `roles`): every escalation level it announces (a late scan reaches
    several at once). Once acknowledged it no longer offers 确认 (snooze, advance and details stay). An escalated
    alert, or one about an order nobody owns, also offers 指派负责人 (handlers.owner_chat: who may own it)."""
    o = view.order
    stage = o.stage.value
    buttons: tuple[Button, ...] = ()
    if with_buttons:
        ack = () if acked else (Button(t("btn.ack", language), sign(key, Action.ACK, alert_id, stage)),)
        assign = (Button(owner_t("assign.btn", language), sign(key, Action.ASSIGN_MENU, o.id, "0")),) \
            if level >= 1 or view.owner_user_id is None else ()
        buttons = (
            *ack,
            Button(t("btn.snooze", language), sign(key, Action.SNOOZE, alert_id, stage)),
            Button(t("btn.advance", language), sign(key, Action.ADVANCE, alert_id, stage)),
            *assign,
            Button(t("btn.details", language), sign(key, Action.ORDER_DETAILS, o.id)),
        )
    warning = level < 0  # the warning before the breach: time left instead of overdue
    fields = [
        (t("f.stage", language), label(o.stage, language)),
        (t("stall.left", language), fmt_duration(-overdue, language)) if warning
        else (t("stall.overdue", language), fmt_duration(overdue, language)),
        (t("stall.deadline", language), fmt_time(o.stage_deadline, timezone)),
        (t("f.city", language), o.data.customer.city + (f" ({o.region})" if o.region else "")),
        (t("f.amount", language), fmt_money(o.data.amount, o.data.currency)),
        (t("stall.level", language), t("stall.warning", language, who=person(role or "owner", language))
         if warning else _levels_words(level, role, levels, roles, language)),
        *owner_field(view, language),
    ]
    return Card(t("stall.warn_title" if warning else "stall.title", language, order=order_title(view)), tuple(fields),
                status if status is not None else t("stall.status_open", language), buttons)


def order_detail_pages(view: ChatOrderView, language: str, timezone: str) -> list[str]:
    """Everything staff may see about an order, all items included, in as many messages as it takes."""
    o = view.order
    lines = [f"{k}: {v}" for k, v in staff_order_fields(view, language, timezone)]
    lines.append(f"{t('f.deadline', language)}: {fmt_time(o.stage_deadline, timezone)}")
    lines.append(f"{t('f.progress', language)}: {progress_line(o.stage, language)}")
    if view.tracking:
        lines.append(f"{t('f.tracking', language)}: {tracking_text(view.tracking, language)}")
    lines.append(f"{t('f.items', language)} ({len(o.data.items)}):")
    lines += item_lines(view, language)
    return paginate(lines, header=f"📦 {order_title(view)}", language=language)


def tracking_text(tracking: Any, language: str = "zh") -> str:
    """"顺丰速运 SF1234567890123 运输中": the carrier and the status in words (the summary stores their keys)."""
    if not tracking:
        return "—"
    if isinstance(tracking, dict):
        carrier = str(tracking.get("carrier") or "")
        waybill = tracking.get("waybill") or tracking.get("tracking_no") or ""
        status = str(tracking.get("status") or "")
        status = carrier_t(f"status.{status}", language) if status in _TRACK_STATUSES else (
            status or tracking.get("last_event") or "")
        carrier = carrier_t(f"carrier.{carrier}", language) if carrier in CARRIERS else carrier
        return shorten(" ".join(str(x) for x in (carrier, waybill, status) if x), 200)
    return shorten(str(tracking), 200)


_TRACK_STATUSES = {s.value for s in TrackStatus}


def scan_lines(tracking: Any, timezone: str) -> list[str]:
    """The last scans the carrier reported ('12-01 14:01 快件到达【上海浦江中转场】'), newest first."""
    events = tracking.get("last_events") if isinstance(tracking, dict) else None
    out = []
    for e in (events or [])[:3]:
        try:
            at = datetime.fromisoformat(str(e["at"]))
        except (KeyError, TypeError, ValueError):
            continue
        out.append("  " + shorten(event_line_parts(at, str(e.get("text", "")), str(e.get("place", "")), timezone),
                                  200))
    return out


def order_line(view: ChatOrderView, language: str, timezone: str, now: datetime | None = None) -> str:
    """One line per order in lists (/stalled, /find, /pending)."""
    o = view.order
    parts = [order_title(view), label(o.stage, language), o.data.customer.city, fmt_money(o.data.amount)]
    if now is not None and o.stage_deadline is not None and now > o.stage_deadline:
        parts.append(f"{t('stall.overdue', language)} {fmt_duration(now - o.stage_deadline, language)}")
    return " · ".join(p for p in parts if p)


def customer_status_text(view: ChatOrderView, language: str, timezone: str) -> str:
    """What a customer sees of their own order: progress, dates, ETA, tracking. No staff-only facts."""
    o, d = view.order, view.order.data
    lines = [
        f"📦 {d.external_id}",
        f"{t('f.progress', language)}: {progress_line(o.stage, language)}",
        f"{t('f.created', language)}: {fmt_date(d.created_at, timezone)}",
        f"{t('f.amount', language)}: {fmt_money(d.amount, d.currency)}",
    ]
    if o.stage not in (Stage.COMPLETED, Stage.CANCELLED):
        if eta(view):
            lines.append(f"{t('f.eta', language)}: {eta(view)}")
        elif o.stage_deadline is not None:
            lines.append(f"{t('f.stage_eta', language)}: {fmt_date(o.stage_deadline, timezone)}")
    if view.tracking:
        lines.append(f"{t('f.tracking', language)}: {tracking_text(view.tracking, language)}")
        lines += scan_lines(view.tracking, timezone)
    items = item_lines(view, language)
    if len(items) > 10:
        items = items[:10] + [t("items.more_plain", language, n=len(items) - 10)]
    text = "\n".join(lines + items)
    return shorten(text, TEXT_BUDGET)


def list_pages(head: str, lines: Sequence[str], language: str) -> list[str]:
    return paginate(list(lines), header=head, language=language)


TREND_ORDERS_SHOWN = 20


def trend_card(payload: Mapping[str, Any], language: str = "zh") -> Card:
    """A trend alert from its outbox payload: the category, how often (in a row / within the window, where), and
    the orders involved (the first 20, then a count)."""
    category = payload.get("category_en" if language == "en" else "category_zh") or payload.get("category", "")
    what = trend_phrase(int(payload.get("count", 0)), payload.get("window_s"), str(payload.get("per", "all")),
                        payload.get("group"), language)
    orders = [order_words_from_key(str(o), language) for o in payload.get("orders") or []]
    shown = ("、" if language != "en" else ", ").join(orders[:TREND_ORDERS_SHOWN])
    if len(orders) > TREND_ORDERS_SHOWN:
        shown += " " + t("items.more_plain", language, n=len(orders) - TREND_ORDERS_SHOWN)
    fields = [(t("trend.f.what", language), what), (t("trend.f.orders", language), shorten(shown, 1500))]
    notes = trend_notes_text(payload.get("notes") or (), language)
    if notes:
        fields.append((nt("trend.f.notes", language), shorten(notes, 1500)))
    return Card(t("trend.title", language, category=category), tuple(fields),
                t("trend.status", language, rule=payload.get("trend_id", "")))
