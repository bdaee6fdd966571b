"""Channel adapters: each platform's order shape mapped into the canonical `OrderData`.

The webhook route calls `to_order` to refuse bad input before anything is queued; the intake worker calls it again on
the queued raw order, so a queued entry is always processed by the adapter code that is running now.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from engine.channels.generic import generic_from_json, generic_to_order
from engine.channels.tmall import tmall_to_order
from engine.order import OrderData

MAX_ORDERS_PER_REQUEST = 1000


@dataclass(frozen=True, slots=True)
class ChannelAdapter:
    name: str
    to_order: Callable[[dict[str, Any]], OrderData]
    # The same from the raw JSON text, where the adapter has a faster way than parsing it into a dict first.
    from_json: Callable[[bytes], OrderData] | None = None

    def parse(self, body: bytes) -> OrderData:
        """A queued raw order (JSON text) → the canonical order."""
        if self.from_json is not None:
            return self.from_json(body)
        return self.to_order(orjson.loads(body))


class BatchShapeError(ValueError):
    """The request body is neither one order object nor {"orders": [...]} within the size limit."""


def split_orders(payload: Any) -> list[dict[str, Any]]:
    """One order, or `{"orders": [...]}` with up to 1000."""
    if isinstance(payload, dict) and set(payload) == {"orders"}:
        orders = payload["orders"]
        if not isinstance(orders, list) or not orders:
            raise BatchShapeError("'orders' must be a non-empty list")
        if len(orders) > MAX_ORDERS_PER_REQUEST:
            raise BatchShapeError(f"at most {MAX_ORDERS_PER_REQUEST} orders per request, got {len(orders)}")
        if not all(isinstance(o, dict) for o in orders):
            raise BatchShapeError("every entry of 'orders' must be an object")
        return orders
    if isinstance(payload, dict):
        return [payload]
    raise BatchShapeError("body must be an order object or {\"orders\": [...]}")


def default_adapters() -> dict[str, ChannelAdapter]:
    adapters = [ChannelAdapter("generic", generic_to_order, generic_from_json), ChannelAdapter("tmall", tmall_to_order)]
    return {a.name: a for a in adapters}


class ChannelNotAllowed(ValueError):
    """An order names a channel its sender's secret is not for (a `generic` order claiming to be a Tmall one)."""


def stored_channel(order: OrderData, path_channel: str, own_routes: Collection[str] = ()) -> str:
    """The channel an order is keyed under: the one it names, else the channel it arrived on.

    A sender may only create or change orders of the channels its secret is for: an order may name its own route's
    channel, or — on a route such as `generic` — a channel that has no route (and secret) of its own, like
    `showroom`. Naming another route's channel (`"channel": "tmall"` signed with the generic secret) would let one
    sender overwrite another's orders: refused with ChannelNotAllowed. `own_routes`: the channels with a route."""
    named = order.channel
    if not named or named == path_channel:
        return path_channel
    if named in own_routes:
        raise ChannelNotAllowed(f"an order sent to the {path_channel!r} channel cannot name channel {named!r}: "
                                f"{named} orders come only through /webhooks/orders/{named}, signed with its secret")
    return named


__all__: Iterable[str] = [
    "ChannelAdapter",
    "BatchShapeError",
    "split_orders",
    "default_adapters",
    "stored_channel",
    "ChannelNotAllowed",
    "MAX_ORDERS_PER_REQUEST",
]
