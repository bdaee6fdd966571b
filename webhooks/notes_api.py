"""`POST /api/notes/{id}/category` (README, "HTTP API"): a person corrects an exception note's category; the note
becomes an example the classifier learns from. The one correction use case (handlers.note_learning.relabel), as the
chat button and `orderhub notes relabel` use it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import AfterValidator, BaseModel, Field

from engine.order import check_text
from handlers.note_learning import NoteLearning, RelabelRefused, relabel
from webhooks.api import Api, Staff, viewer
from webhooks.errors import ApiError

router = APIRouter(prefix="/api", tags=["api"])
_STATUS = {"note_not_found": 404, "forbidden": 403, "unknown_category": 422}


def learning(request: Request) -> NoteLearning:
    deps = request.app.state.services.notes
    if deps is None:
        raise ApiError(404, "not_found", "note corrections are not offered by this server")
    return deps


class CategoryBody(BaseModel):
    category: Annotated[str, Field(min_length=1, max_length=64, description="a category id of the rules file"),
                        AfterValidator(check_text)]


@router.post("/notes/{note_id}/category")
async def correct_category(note_id: Annotated[int, Path(ge=1, le=2**63 - 1)], body: CategoryBody, user: Staff,
                           api: Api, deps: Annotated[NoteLearning, Depends(learning)]) -> dict[str, Any]:
    """Set the note's category as the bearer says (admins and supply chain on any note, others on the orders they
    may act on); audited; later similar notes are classified with it. 404 `note_not_found`, 403 `forbidden`, 422
    `unknown_category` (the detail lists the rules' categories)."""
    try:
        done = await relabel(deps, note_id, body.category, user.name, viewer(user), "api", api.clock.now())
    except RelabelRefused as exc:
        raise ApiError(_STATUS[exc.code], exc.code, str(exc)) from None
    return done.as_dict()
