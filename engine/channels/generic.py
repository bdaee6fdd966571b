"""The `generic` channel: the canonical order JSON as it is."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.order import OrderData


def generic_to_order(raw: dict[str, Any]) -> OrderData:
    return OrderData.model_validate(raw)


# Pydantic's own JSON parser: one pass from text to the model, no intermediate dict (cheaper than orjson + dict
# validation; bench/intake.py). The
# validator itself (what model_validate_json calls): this runs for every queued order.
generic_from_json: Callable[[bytes], OrderData] = OrderData.__pydantic_validator__.validate_json
