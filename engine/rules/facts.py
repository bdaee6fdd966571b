"""What the engine knows besides the order itself: history and requests gathered by storage, passed in as data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any


@dataclass(slots=True, frozen=True)
class RefundRequest:
    """A customer's refund request; shipped/delivered times come from the order's tracking."""

    amount: Decimal
    requested_at: datetime
    requested_by: str = "customer"
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None


@dataclass(slots=True)
class Facts:
    """History facts for one evaluation. Every field has a default so callers pass only what they know.

    `stock` maps `"<base>:<sku>"` to units on hand; a missing key means "unknown" and does not block routing.
    `extra` holds merchant-specific facts readable in rules as `facts.extra['name']`.
    """

    complaints_30d: int = 0
    previous_orders: int = 0
    exception_notes_30d: int = 0
    refund: RefundRequest | None = None
    stock: dict[str, int] = field(default_factory=dict)
    waiting_for_customer: bool = False
    requested_by: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
