"""Who may do what to an order, in one place for the API and chat.

admin: everything. manager: acts on the orders of their regions. The order's owner (assigned for its stage) acts
on it whatever their role. finance: refunds, never order moves. supply_chain and everyone else on staff: read.
Full phone numbers go only to those who act on the order; everyone else sees them masked.
"""

from __future__ import annotations

from dataclasses import dataclass

STAFF_ROLES = frozenset({"admin", "manager", "finance", "supply_chain"})


@dataclass(frozen=True, slots=True)
class Viewer:
    user_id: int
    role: str
    regions: tuple[str, ...] = ()


def may_read(viewer: Viewer) -> bool:
    return viewer.role in STAFF_ROLES


def may_act_on_order(viewer: Viewer, region: str | None, owner_user_id: int | None) -> bool:
    """Move, cancel, annotate an order. An order with no region is the admins' (and its owner's): never "anyone"."""
    if viewer.role == "admin":
        return True
    if owner_user_id is not None and viewer.user_id == owner_user_id:
        return True
    return viewer.role == "manager" and region is not None and region in viewer.regions


def sees_full_phone(viewer: Viewer, region: str | None, owner_user_id: int | None) -> bool:
    """The customer's full number: admins, the order's own-region manager and its owner."""
    return may_act_on_order(viewer, region, owner_user_id)


def may_handle_refunds(viewer: Viewer) -> bool:
    return viewer.role in ("admin", "finance")


def may_switch_carrier(viewer: Viewer, region: str) -> bool:
    """Switch a region's carrier (a rules edit): admins, and the managers of that region."""
    return viewer.role == "admin" or (viewer.role == "manager" and region in viewer.regions)
