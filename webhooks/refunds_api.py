"""`/api/refunds` and `/api/orders/{id}/refunds`: staff entry points of the refund use cases (handlers.refunds).

Routes authenticate, parse and call the use case; they decide nothing. Requests: admins, finance, and whoever
may act on the order (its region's manager, its owner). Decisions by a person: admin or finance.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from engine.access import may_act_on_order, may_handle_refunds
from engine.refunds import MAX_PROOF_BYTES, RefundState
from handlers.refunds import (
    RefundDeps,
    RefundError,
    attach_proof,
    decide_refund,
    mark_refunded,
    refund_json,
    request_refund,
)
from webhooks.api import Api, Staff, viewer
from webhooks.errors import ApiError
from webhooks.intake import read_limited

router = APIRouter(prefix="/api", tags=["refunds"])
RefundId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _deps(api: Any) -> RefundDeps:
    deps = getattr(api, "refunds", None)
    if deps is None:
        raise ApiError(503, "refunds_unavailable", "refunds are not wired in this process")
    return deps


def _error(exc: RefundError) -> ApiError:
    return ApiError(exc.status, exc.code, str(exc))


class ItemRef(BaseModel):
    sku: str = Field(min_length=1, max_length=64)
    qty: int | None = Field(default=None, ge=1, le=10000)


class RefundBody(BaseModel):
    amount: str | None = Field(default=None, max_length=20, description='"1200.00"; omitted: the items\' value '
                                                                       'or what is left of the order')
    reason: str = Field(min_length=1, max_length=500)
    items: list[ItemRef] | None = Field(default=None, max_length=100)


@router.post("/orders/{ref}/refunds", status_code=201)
async def create_refund(ref: str, body: RefundBody, user: Staff, api: Api) -> dict[str, Any]:
    """A refund request, decided at once by the rules' refund matrix."""
    deps = _deps(api)
    detail = await api.orders.get(ref, with_history=False)
    if detail is None:
        raise ApiError(404, "order_not_found", f"no order {ref!r}")
    v = viewer(user)
    if not (may_handle_refunds(v) or may_act_on_order(v, detail.order.region, detail.owner_user_id)):
        raise ApiError(403, "forbidden", f"a {user.role} may not request refunds for this order")
    items = [i.model_dump(exclude_none=True) for i in body.items] if body.items else None
    try:
        r = await request_refund(deps, str(detail.order.id), amount=body.amount, reason=body.reason, items=items,
                                 requested_by=f"user:{user.id}", actor=user.name, source="api",
                                 now=api.clock.now())
    except RefundError as exc:
        raise _error(exc) from None
    return refund_json(r, await deps.refunds.history(r.id))


@router.get("/refunds")
async def list_refunds(user: Staff, api: Api, status: RefundState | None = None,
                       limit: Annotated[int, Query(ge=1, le=500)] = 100) -> dict[str, Any]:
    items = await _deps(api).refunds.refunds(status.value if status else None, limit)
    return {"total": len(items), "items": [refund_json(r) for r in items]}


@router.get("/refunds/{refund_id}")
async def get_refund(refund_id: RefundId, user: Staff, api: Api) -> dict[str, Any]:
    """State, decision (the matrix row that decided, its facts), proof (what OCR read, the carrier's status; the
    photo itself is never served) and the audited history."""
    deps = _deps(api)
    r = await deps.refunds.refund(refund_id)
    if r is None:
        raise ApiError(404, "refund_not_found", f"no refund {refund_id}")
    return refund_json(r, await deps.refunds.history(r.id))


@router.post("/refunds/{refund_id}/proof")
async def upload_proof(refund_id: RefundId, request: Request, user: Staff, api: Api) -> dict[str, Any]:
    """Multipart `file`: a JPEG/PNG photo of the return waybill (≤ 10 MiB, type by content)."""
    deps = _deps(api)
    body = await read_limited(request, MAX_PROOF_BYTES + 64 * 1024)  # the photo plus the multipart envelope
    request._body = body  # Starlette's form parser reads a body already read from here
    try:
        form = await request.form(max_files=1, max_fields=4)
    except Exception:
        raise ApiError(422, "invalid_upload", "send multipart/form-data with one field `file`") from None
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise ApiError(422, "invalid_upload", "send multipart/form-data with one field `file`")
    data = await upload.read()
    await form.close()
    try:
        res = await attach_proof(deps, refund_id, data, user.name, api.clock.now())
    except RefundError as exc:
        raise _error(exc) from None
    return {**refund_json(res.refund), "verdict": res.verdict.value, "waybill": res.waybill}


class RefundDecisionBody(BaseModel):
    decision: str = Field(pattern="^(approve|reject)$")
    reason: str = Field(default="", max_length=500)


@router.post("/refunds/{refund_id}/decision")
async def decide(refund_id: RefundId, body: RefundDecisionBody, user: Staff, api: Api) -> dict[str, Any]:
    """A person's decision on a refund being verified (finance or admin). One waiting for finance is decided
    through its approval (`POST /api/approvals/{id}/decision`)."""
    if not may_handle_refunds(viewer(user)):
        raise ApiError(403, "forbidden", "only finance or an admin decides refunds")
    try:
        r = await decide_refund(_deps(api), refund_id, body.decision == "approve", user.name, body.reason,
                                api.clock.now())
    except RefundError as exc:
        raise _error(exc) from None
    return refund_json(r)


@router.post("/refunds/{refund_id}/refunded")
async def refunded(refund_id: RefundId, user: Staff, api: Api) -> dict[str, Any]:
    """The money went back: approved → refunded (finance or admin); the customer is told."""
    if not may_handle_refunds(viewer(user)):
        raise ApiError(403, "forbidden", "only finance or an admin marks refunds paid")
    try:
        return refund_json(await mark_refunded(_deps(api), refund_id, user.name, api.clock.now()))
    except RefundError as exc:
        raise _error(exc) from None
