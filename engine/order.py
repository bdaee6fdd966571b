"""The canonical order (SPEC §1) and the stored order snapshot the rest of the engine reasons about."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from engine.stages import Stage

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
    attributes: dict[str, Any] = Field(default_factory=dict)


class OrderData(_Strict):
    """What a channel tells us about an order, mapped into one shape."""

    external_id: ShortText
    channel: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_\-]{1,32}$")] | None = None
    created_at: AwareDatetime
    customer: Customer
    items: Annotated[list[Item], Field(min_length=1, max_length=1000)]
    amount: Money
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "CNY"
    custom_fields: dict[str, Any] = Field(default_factory=dict)
    notes: Annotated[str, Field(max_length=2000)] = ""


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
