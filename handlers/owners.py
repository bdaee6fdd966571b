"""Reassigning an order's owner: THE use case behind `POST /api/orders/{id}/assign`, `orderhub orders assign`
and the chat command `/assign ORDER NAME`, so all three refuse the same things the same way. Also what happens to
a deactivated user's open orders (`orderhub users deactivate`): the rules pick their owners again.

Who may: admins, and managers of the order's region. Whom: an existing, active staff user allowed in the order's
region (engine.rules.owners.allowed_for_region). Anything else is an `AssignRefused` and nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from engine.order import Order, check_text
from engine.rules.owners import Candidate, OwnerNeed, allowed_for_region
from engine.stages import Stage
from handlers.ports import Refused

MAX_NAME = 64
MAX_REF = 100


@dataclass(frozen=True, slots=True)
class OrderOwnerFacts:
    id: int
    key: str  # channel:external_id
    region: str | None
    stage: str
    owner_user_id: int | None
    owner_name: str | None


@dataclass(frozen=True, slots=True)
class Assigner:
    """The person reassigning (API bearer, CLI `--as`, chat sender)."""

    id: int
    name: str
    role: str
    regions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Assigned:
    order_id: int
    order_key: str
    owner: str
    previous: str | None

    def as_json(self) -> dict[str, Any]:
        return {"order_id": self.order_id, "key": self.order_key, "owner": self.owner, "previous": self.previous}


class AssignRefused(Refused, ValueError):
    """`code`: bad_input | order_not_found | forbidden | user_not_found | user_inactive | user_not_allowed |
    changed; `status`: the HTTP status the API answers with."""

    STATUS = {"bad_input": 422, "order_not_found": 404, "forbidden": 403, "user_not_found": 404,
              "user_inactive": 409, "user_not_allowed": 409, "changed": 409}

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(code, detail)
        self.status = self.STATUS.get(code, 400)


class OwnerStore(Protocol):
    async def order(self, ref: str) -> OrderOwnerFacts | None: ...

    async def user(self, name: str) -> Candidate | None: ...

    async def set_owner(self, order_id: int, previous: int | None, user_id: int, actor: str, now: datetime,
                        detail: dict[str, Any]) -> bool: ...

    async def staff(self, limit: int) -> list[Candidate]:
        """Active staff (no customers) with their open orders as `load`, at most `limit` of them."""
        ...


def may_assign(actor: Assigner, region: str | None) -> bool:
    """Admins anywhere; a manager only for an order of one of their regions (an order of no region: admins)."""
    return actor.role == "admin" or (actor.role == "manager" and region is not None and region in actor.regions)


def _clean(value: str, what: str, limit: int) -> str:
    value = value.strip()
    if not value:
        raise AssignRefused("bad_input", f"the {what} is missing")
    if len(value) > limit:
        raise AssignRefused("bad_input", f"the {what} is longer than {limit} characters")
    try:
        check_text(value)  # what no database column takes (NUL, lone surrogates)
    except ValueError:
        raise AssignRefused("bad_input", f"the {what} contains a NUL or an invalid character") from None
    return value


async def assign(store: OwnerStore, actor: Assigner, ref: str, name: str, now: datetime) -> Assigned:
    """Make `name` the owner of order `ref`; raises AssignRefused (nothing changed) when anything is wrong."""
    ref, name = _clean(ref, "order", MAX_REF), _clean(name, "user name", MAX_NAME)
    order = await store.order(ref)
    if order is None:
        raise AssignRefused("order_not_found", f"no order {ref!r} (use the internal id or channel:external_id)")
    if not may_assign(actor, order.region):
        raise AssignRefused("forbidden", f"a {actor.role} of {', '.join(actor.regions) or 'no region'} may not "
                                         f"reassign an order of {order.region or 'no region'}")
    target = await store.user(name)
    if target is None or target.role == "customer":
        raise AssignRefused("user_not_found", f"no staff user named {name!r}")
    if not target.active:
        raise AssignRefused("user_inactive", f"{target.name} is not active")
    if not allowed_for_region(target.role, target.regions, order.region):
        raise AssignRefused("user_not_allowed", f"{target.name} ({target.role} of "
                                                f"{', '.join(target.regions) or 'no region'}) may not own an order "
                                                f"of {order.region or 'no region'}")
    detail = {"from": order.owner_name, "to": target.name, "stage": order.stage}
    if not await store.set_owner(order.id, order.owner_user_id, target.user_id, actor.name, now, detail):
        raise AssignRefused("changed", "the order's owner changed while you were assigning it; look again")
    return Assigned(order.id, order.key, target.name, order.owner_name)


MAX_CHOICES = 1000  # staff read for a chat menu (before the region filter): a merchant's people all fit


async def assign_choices(store: OwnerStore, actor: Assigner, order_id: int) -> tuple[OrderOwnerFacts, list[Candidate]]:
    """Who `actor` may make the owner of the order (a chat menu's buttons): the same checks as `assign`, so a menu
    never offers what pressing would refuse. Least loaded first; managers and admins after the people who do the
    work; the current owner is left out. Raises AssignRefused (order_not_found | forbidden)."""
    order = await store.order(str(order_id))
    if order is None:
        raise AssignRefused("order_not_found", f"no order {order_id}")
    if not may_assign(actor, order.region):
        raise AssignRefused("forbidden", f"a {actor.role} may not reassign an order of {order.region or 'no region'}")
    fitting = [c for c in await store.staff(MAX_CHOICES)
               if c.user_id != order.owner_user_id and allowed_for_region(c.role, c.regions, order.region)]
    return order, sorted(fitting, key=lambda c: (c.role in ("manager", "admin"), c.load, c.name))


# --- deactivating an owner ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OwnedOrder:
    """An open order of the user being deactivated, with what the rules' `owners:` rows read."""

    id: int
    key: str
    order: Order
    base: str | None


@dataclass(frozen=True, slots=True)
class Deactivated:
    user: str
    was_active: bool
    repicked: tuple[tuple[str, str], ...]  # (order key, the owner the rules picked)
    cleared: tuple[str, ...]  # order keys left without an owner (no row, or nobody else fits)


class OwnerNeeds(Protocol):
    def owner_need_for(self, order: Order, stage: Stage, base: str | None) -> OwnerNeed | None: ...


NeedsFor = Callable[[Sequence[OwnedOrder]], list[OwnerNeed | None]]


class DeactivateStore(Protocol):
    async def deactivate(self, name: str, needs: NeedsFor, actor: str, now: datetime) -> Deactivated | None:
        """In one transaction: the user inactive, then each open order they own re-picked by the same assignment
        code as a stage entry (storage.owners.assign_owners) or, when the rules give nobody, its owner cleared;
        audited. None: no such user."""
        ...


async def deactivate_owner(store: DeactivateStore, rules: OwnerNeeds, name: str, actor: str,
                           now: datetime) -> Deactivated:
    """Deactivate a user so that no alert goes to them any more: their open orders get the owner the rules' row
    for the order's current stage picks among the remaining active users (as if the order entered the stage
    now), or no owner (the ladder's other rungs still reach the supervisor and region head). Raises
    AssignRefused (bad_input, user_not_found)."""
    name = _clean(name, "user name", MAX_NAME)

    def needs(orders: Sequence[OwnedOrder]) -> list[OwnerNeed | None]:
        return [rules.owner_need_for(o.order, o.order.stage, o.base) for o in orders]

    done = await store.deactivate(name, needs, actor, now)
    if done is None:
        raise AssignRefused("user_not_found", f"no user named {name!r}")
    return done
