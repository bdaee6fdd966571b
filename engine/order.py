"""The canonical order and the stored order snapshot the rest of the engine reasons about.

The shapes an order takes, from a channel's payload to a chat card (each holds the one before it, or parts of it):

| shape | module | what it is |
|---|---|---|
| `OrderData` | engine/order.py | what a channel says about an order, validated into one shape (the content) |
| `Order` | engine/order.py | a stored order as the engine sees it: id, channel, `OrderData`, stage, deadline, region |
| `StoredOrderStamp` | handlers/intake.py | what intake compares a queued order with: stored id, content hash, stage |
| `IntakePlan` | handlers/intake.py | everything intake writes for one order; the store turns it into rows |
| `ChatOrderView` | handlers/chat_ports.py | an `Order` plus what chat cards show (version, tracking, owner, snooze, rank) |
| `OrderDetail` | handlers/orders.py | an `Order` plus what the HTTP API and the board's drawer show (hash, approvals, notes) |
| `OrderRow` | storage/models.py | the `orders` table; never leaves storage/ |
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from engine.stages import Stage

# Bounds every stored order obeys, checked by the webhook route and by the worker with the same code (the adapter's
# parse), so what the route accepts the database takes: PostgreSQL refuses NUL characters and lone surrogates,
# orjson (the hash, the JSON columns) refuses integers beyond 64 bits and nesting deeper than 254 levels.
MAX_JSON_DEPTH = 8
MAX_JSON_STRING = 2000
MAX_JSON_KEY = 64
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")


def check_text(value: str) -> str:
    """Refuse what no database column takes: NUL and unpaired surrogates."""
    if _BAD_CHARS.search(value):
        raise ValueError("text must not contain NUL characters or unpaired surrogates")
    return value


def check_json(value: Any, depth: int = 0) -> Any:
    """A free-form JSON value (custom fields, item attributes) within the bounds above."""
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            raise ValueError("integer outside the 64-bit range; send it as a string")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("number is not finite")
    elif isinstance(value, str):
        if len(value) > MAX_JSON_STRING:
            raise ValueError(f"string longer than {MAX_JSON_STRING} characters")
        check_text(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str) or len(k) > MAX_JSON_KEY:
                raise ValueError(f"keys must be strings of at most {MAX_JSON_KEY} characters")
            check_text(k)
            check_json(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            check_json(v, depth + 1)
    else:
        raise ValueError(f"unsupported value of type {type(value).__name__}")
    return value


FreeJson = Annotated[dict[str, Any], AfterValidator(check_json)]

Money = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class _Strict(BaseModel):
    # Unknown keys are an error: a typo in a merchant's integration should surface, not vanish.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Customer(_Strict):
    id: ShortText
    name: Annotated[str, Field(max_length=100)] = ""
    phone: Annotated[str, Field(max_length=32)] = ""
    city: Annotated[str, Field(max_length=50)] = ""
    tier: Annotated[str, Field(max_length=20)] = "normal"


class Item(_Strict):
    sku: ShortText
    name: Annotated[str, Field(max_length=200)] = ""
    qty: Annotated[int, Field(ge=1, le=100_000)]
    unit_price: Money
    attributes: FreeJson = Field(default_factory=dict)


class OrderData(_Strict):
    """What a channel tells us about an order, mapped into one shape."""

    external_id: ShortText
    channel: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_\-]{1,32}$")] | None = None
    created_at: AwareDatetime
    customer: Customer
    items: Annotated[list[Item], Field(min_length=1, max_length=1000)]
    amount: Money
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "CNY"
    custom_fields: FreeJson = Field(default_factory=dict)
    notes: Annotated[str, Field(max_length=2000)] = ""

    @model_validator(mode="after")
    def _storable(self) -> OrderData:
        """Every text is storable and the creation time converts to UTC (9999-12-31T23:59:59-01:00 does not)."""
        c = self.customer
        for text in (self.external_id, self.notes, c.id, c.name, c.phone, c.city, c.tier):
            check_text(text)
        for item in self.items:
            check_text(item.sku)
            check_text(item.name)
        try:
            utc = self.created_at.astimezone(UTC)
        except (OverflowError, ValueError):
            raise ValueError("created_at is out of range once converted to UTC") from None
        if not EARLIEST <= utc < LATEST:
            raise ValueError("created_at must be between 1970 and 2200")
        return self


@dataclass(slots=True)
class Transition:
    """One recorded stage move: who, when, from, to, why."""

    at: datetime
    from_stage: Stage | None
    to_stage: Stage
    actor: str
    reason: str = ""


@dataclass(slots=True)
class Order:
    """A stored order as the engine sees it (never an ORM object)."""

    id: int
    channel: str
    data: OrderData
    stage: Stage
    stage_entered_at: datetime
    stage_deadline: datetime | None = None
    region: str | None = None
    priority: int = 0
    history: list[Transition] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.channel}:{self.data.external_id}"
