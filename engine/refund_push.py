"""The Taobao/Tmall refund push (淘宝退款消息), validated: bounded fields, money as Decimal. Pure."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

# Taobao's refund states: only a new request (or one the buyer changed) asks OrderHub for a decision
ACTIONABLE = frozenset({"WAIT_SELLER_AGREE"})


class TaobaoRefund(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    refund_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    tid: str = Field(min_length=1, max_length=64, description="the order (trade) number, our external_id")
    oid: str | None = Field(default=None, max_length=64, description="the sub-order: one item of the trade")
    refund_fee: Decimal = Field(gt=0, le=Decimal("100000000"), decimal_places=2)
    has_good_return: bool = False  # the buyer sends the goods back
    reason: str = Field(default="", max_length=500)
    status: str = Field(min_length=1, max_length=40)

    @property
    def actionable(self) -> bool:
        return self.status in ACTIONABLE
