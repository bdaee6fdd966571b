"""`POST /api/orders/{ref}/assign`: reassign an order's owner through the one use case (handlers.owners.assign),
as the CLI's `orderhub orders assign` and the chat command `/assign` do. The route parses; the use case decides."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from handlers.owners import Assigner, AssignRefused, assign
from webhooks.api import Api, Ref, Staff
from webhooks.errors import ApiError

router = APIRouter(prefix="/api", tags=["owners"])


class AssignBody(BaseModel):
    user: Annotated[str, Field(min_length=1, max_length=200, description="the new owner's user name")]


@router.post("/orders/{ref}/assign")
async def assign_owner(ref: Ref, body: AssignBody, user: Staff, api: Api) -> dict[str, Any]:
    """Make `user` the order's owner. Admins, or managers of the order's region; the new owner must be an active
    staff user allowed in the order's region. Audited (`order.assigned`)."""
    store = getattr(api, "owners", None)
    if store is None:
        raise ApiError(503, "owners_unavailable", "owner assignment is not wired in this process")
    actor = Assigner(user.id, user.name, user.role, tuple(user.regions))
    try:
        done = await assign(store, actor, ref, body.user, api.clock.now())
    except AssignRefused as exc:
        raise ApiError(exc.status, exc.code, str(exc)) from None
    return done.as_json()
