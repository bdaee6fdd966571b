"""The facts a rule may read, by name. One table serves the compiler (unknown names are load errors), the
evaluator (a getter per name) and the docs (`orderhub rules schema` and docs/rules.md list the same names).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from operator import attrgetter
from typing import Any, Literal
from zoneinfo import ZoneInfo

from engine.order import Order
from engine.rules.facts import Facts

Kind = Literal["number", "text", "bool", "list", "map"]
_DAY = Decimal(86400)
_HOUR = Decimal(3600)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    kind: Kind
    doc: str
    getter: Callable[[Ctx], Any]


# What Ctx copies from the order's data, its customer and the history facts, read in one call each
_ORDER_DATA = attrgetter("external_id", "amount", "currency", "notes", "custom_fields")
_CUSTOMER = attrgetter("id", "name", "city", "tier", "phone")
_FACTS = attrgetter("complaints_30d", "previous_orders", "exception_notes_30d", "waiting_for_customer", "extra")


class Ctx:
    """Everything rules read about one order, computed once per evaluation (rules never touch the Order itself)."""

    __slots__ = (
        "c_city",
        "c_id",
        "c_name",
        "c_phone",
        "c_tier",
        "f_complaints_30d",
        "f_exception_notes_30d",
        "f_extra",
        "f_previous_orders",
        "f_waiting",
        "facts",
        "now",
        "o_amount",
        "o_channel",
        "o_created_hour",
        "o_created_weekday",
        "o_currency",
        "o_custom_fields",
        "o_external_id",
        "o_id",
        "o_item_count",
        "o_key",
        "o_notes",
        "o_product_types",
        "o_region",
        "o_stage",
        "order",
        "r_amount",
        "r_by",
        "r_days_delivery",
        "r_days_shipped",
        "r_delivered",
        "r_requested",
        "r_shipped",
    )

    def __init__(
        self,
        order: Order,
        facts: Facts,
        now: datetime,
        tz: ZoneInfo,
        region: str | None,
        product_types: tuple[str, ...],
    ) -> None:
        data = order.data
        self.order, self.facts, self.now = order, facts, now
        self.o_id, self.o_key, self.o_channel, self.o_stage = order.id, order.key, order.channel, order.stage.value
        self.o_external_id, self.o_amount, self.o_currency, self.o_notes, self.o_custom_fields = _ORDER_DATA(data)
        self.o_item_count = len(data.items)
        self.o_product_types = list(product_types)
        local = data.created_at.astimezone(tz)
        self.o_created_hour, self.o_created_weekday = local.hour, local.isoweekday()
        self.o_region = region
        self.c_id, self.c_name, self.c_city, self.c_tier, self.c_phone = _CUSTOMER(data.customer)
        self.f_complaints_30d, self.f_previous_orders, self.f_exception_notes_30d, self.f_waiting, self.f_extra = (
            _FACTS(facts))
        r = facts.refund
        if r is None:
            self.r_requested = False
            self.r_amount = self.r_shipped = self.r_delivered = None
            self.r_days_delivery = self.r_days_shipped = self.r_by = None
        else:
            self.r_requested = True
            self.r_amount = r.amount
            self.r_shipped = r.shipped_at is not None and r.shipped_at <= r.requested_at
            self.r_delivered = r.delivered_at is not None and r.delivered_at <= r.requested_at
            self.r_days_delivery = _days(r.requested_at, r.delivered_at) if self.r_delivered else None
            self.r_days_shipped = _days(r.requested_at, r.shipped_at) if self.r_shipped else None
            self.r_by = r.requested_by


    # rarely read by rules: computed on access instead of for every order
    @property
    def o_qty_total(self) -> int:
        return sum(i.qty for i in self.order.data.items)

    @property
    def o_skus(self) -> list[str]:
        return [i.sku for i in self.order.data.items]

    @property
    def o_age_hours(self) -> Decimal:
        return Decimal(int((self.now - self.order.data.created_at).total_seconds())) / _HOUR

    @property
    def o_stage_hours(self) -> Decimal:
        return Decimal(int((self.now - self.order.stage_entered_at).total_seconds())) / _HOUR


def _days(later: datetime, earlier: datetime | None) -> Decimal | None:
    if earlier is None:
        return None
    return (Decimal(int((later - earlier).total_seconds())) / _DAY).quantize(Decimal("0.01"))


_TABLE: list[tuple[str, str, Kind, str]] = [
    ("order.id", "o_id", "number", "internal order id"),
    ("order.key", "o_key", "text", "`channel:external_id`"),
    ("order.channel", "o_channel", "text", "sales channel, e.g. tmall"),
    ("order.external_id", "o_external_id", "text", "the channel's order number"),
    ("order.amount", "o_amount", "number", "order total (Decimal, in `currency`)"),
    ("order.currency", "o_currency", "text", "ISO currency code"),
    ("order.stage", "o_stage", "text", "current stage id"),
    ("order.notes", "o_notes", "text", "the buyer's notes"),
    ("order.item_count", "o_item_count", "number", "number of order lines"),
    ("order.qty_total", "o_qty_total", "number", "sum of quantities"),
    ("order.skus", "o_skus", "list", "SKUs of the order lines"),
    ("order.product_types", "o_product_types", "list", "product type ids of the lines (see product_types)"),
    ("order.created_hour", "o_created_hour", "number", "hour (0-23) the order was placed, in the rules time zone"),
    ("order.created_weekday", "o_created_weekday", "number", "weekday placed, 1 = Monday … 7 = Sunday"),
    ("order.custom_fields", "o_custom_fields", "map", "channel custom fields, e.g. order.custom_fields['install_date']"),
    ("order.region", "o_region", "text", "region of the customer's city (see regions), or null"),
    ("order.age_hours", "o_age_hours", "number", "hours since the order was placed"),
    ("order.stage_hours", "o_stage_hours", "number", "wall-clock hours in the current stage"),
    ("customer.id", "c_id", "text", "customer id"),
    ("customer.name", "c_name", "text", "customer name"),
    ("customer.city", "c_city", "text", "customer city"),
    ("customer.tier", "c_tier", "text", "customer tier, e.g. vip / normal"),
    ("customer.phone", "c_phone", "text", "customer phone"),
    ("facts.complaints_30d", "f_complaints_30d", "number", "complaints by this customer in the last 30 days"),
    ("facts.previous_orders", "f_previous_orders", "number", "earlier orders by this customer"),
    ("facts.exception_notes_30d", "f_exception_notes_30d", "number", "exception notes on this order, 30 days"),
    ("facts.waiting_for_customer", "f_waiting", "bool", "the order is waiting on the customer"),
    ("facts.extra", "f_extra", "map", "merchant-specific facts, e.g. facts.extra['campaign']"),
    ("refund.requested", "r_requested", "bool", "a refund request is being evaluated"),
    ("refund.amount", "r_amount", "number", "refund amount requested"),
    ("refund.shipped", "r_shipped", "bool", "the order had shipped when the refund was requested"),
    ("refund.delivered", "r_delivered", "bool", "the order had been delivered when the refund was requested"),
    ("refund.days_since_delivery", "r_days_delivery", "number", "days from delivery to the request (null if not)"),
    ("refund.days_since_shipped", "r_days_shipped", "number", "days from shipping to the request (null if not)"),
    ("refund.requested_by", "r_by", "text", "who asked for the refund"),
]

FIELDS: dict[str, FieldSpec] = {
    name: FieldSpec(name, kind, doc, attrgetter(attr)) for name, attr, kind, doc in _TABLE
}
ROOTS = frozenset(n.split(".", 1)[0] for n in FIELDS)


def suggest(name: str) -> str:
    """A 'did you mean' hint for a mistyped field name."""
    close = difflib.get_close_matches(name, list(FIELDS), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""
