"""`/api/*`: the staff API. Bearer token of a staff user; a customer never reaches it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import AfterValidator, BaseModel, Field

from engine.access import Viewer, may_act_on_order, sees_full_phone
from engine.approvals import Refusal, Verdict
from engine.order import EARLIEST, LATEST, check_text
from engine.stages import Stage, TransitionError, label
from engine.text import mask_phone
from handlers.approvals import DecisionRefused
from handlers.orders import MoveRefused, OrderDetail, OrderNotFound, OrderQuery, transition
from webhooks.errors import ApiError
from webhooks.services import ApiBackend, Principal

router = APIRouter(prefix="/api", tags=["api"])


def backend(request: Request) -> ApiBackend:
    return request.app.state.services.api


async def staff(request: Request, api: Annotated[ApiBackend, Depends(backend)]) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "unauthorized", "send Authorization: Bearer <token> (see `orderhub users add`)")
    user = await api.authenticate(token.strip())
    if user is None:
        raise ApiError(401, "unauthorized", "unknown or revoked token")
    if user.role == "customer":
        raise ApiError(403, "forbidden", "the staff API is not open to customers")
    return user


Staff = Annotated[Principal, Depends(staff)]
Api = Annotated[ApiBackend, Depends(backend)]

# Every parameter is bounded (issue 9): what the database's columns and the drivers take, so no input is a 500.
INT32 = 2**31 - 1
Ref = Annotated[str, Path(max_length=100, description="internal id or channel:external_id"),
                AfterValidator(check_text)]


def _window_time(value: datetime | None) -> datetime | None:
    """A KPI window bound, in UTC, between 1970 and 2200 (0001-01-01T00:00:00+14:00 has no UTC time)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        utc = value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError("time is out of range once converted to UTC") from None
    if not EARLIEST <= utc < LATEST:
        raise ValueError("time must be between 1970 and 2200")
    return utc


WindowTime = Annotated[datetime | None, AfterValidator(_window_time)]


def viewer(user: Principal) -> Viewer:
    return Viewer(user.id, user.role, tuple(user.regions))


def require_act(user: Principal, d: OrderDetail) -> None:
    """Who may write to an order: admins, the order's own-region managers, its owner."""
    if not may_act_on_order(viewer(user), d.order.region, d.owner_user_id):
        raise ApiError(403, "forbidden", f"a {user.role} of {', '.join(user.regions) or 'no region'} may not act on "
                                         f"an order of {d.order.region or 'no region'}")


def money(value: Decimal) -> str:
    """Money in one format everywhere: a string with two decimals ("2100.00"), never a float."""
    return f"{value:.2f}"


def order_json(d: OrderDetail, language: str = "zh", user: Principal | None = None) -> dict[str, Any]:
    """The order as the API shows it; the phone number in full only to those who act on the order. `remark` is
    what the customer or channel wrote on the order; `exception_notes` are the staff's exception notes
    (classified): two different things, named apart."""
    o = d.order
    data = o.data.model_dump(mode="json")
    data.pop("channel", None)
    if user is None or not sees_full_phone(viewer(user), o.region, d.owner_user_id):
        data["customer"]["phone"] = mask_phone(data["customer"].get("phone"))
    remark = data.pop("notes", "")
    data["amount"] = money(o.data.amount)
    for item, src in zip(data["items"], o.data.items, strict=True):
        item["unit_price"] = money(src.unit_price)
    return {
        "id": o.id, "key": o.key, "channel": o.channel, **data,
        "stage": o.stage.value, "stage_label": label(o.stage, language), "stage_entered_at": o.stage_entered_at,
        "stage_deadline": o.stage_deadline, "region": o.region, "priority": o.priority, "flagged": d.flagged,
        "owner": d.owner_name,
        "production_base": d.production_base, "work_order_no": d.work_order_no, "tracking": d.tracking,
        "pending_approvals": d.pending_approvals, "received_at": d.received_at, "updated_at": d.updated_at,
        "completed_at": d.completed_at, "rules_version": d.rules_version,
        "history": [{"at": t.at, "from": t.from_stage.value if t.from_stage else None, "to": t.to_stage.value,
                     "by": t.actor, "reason": t.reason} for t in o.history],
        "remark": remark,
        "exception_notes": d.notes,
    }


@router.get("/orders/{ref}")
async def get_order(ref: Ref, user: Staff, api: Api) -> dict[str, Any]:
    """One order with its history; `ref` is the internal id or `channel:external_id`."""
    detail = await api.orders.get(ref)
    if detail is None:
        raise ApiError(404, "order_not_found", f"no order {ref!r}")
    return order_json(detail, api.language, user)


@router.get("/orders")
async def list_orders(
    user: Staff,
    api: Api,
    stage: Stage | None = None,
    city: Annotated[str | None, Query(max_length=50), AfterValidator(lambda v: v and check_text(v))] = None,
    min_amount: Annotated[Decimal | None, Query(ge=0, le=Decimal("999999999999.99"), allow_inf_nan=False)] = None,
    priority: Annotated[int | None, Query(ge=-INT32 - 1, le=INT32)] = None,
    stalled: bool = False,
    flagged: Annotated[bool | None, Query(description="true: only the flagged top of open orders")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    """Orders, newest first, filtered and paged: `{"total": N, "items": [...]}`."""
    query = OrderQuery(stage=stage, city=city, min_amount=min_amount, priority=priority,
                       stalled_at=api.clock.now() if stalled else None, flagged=flagged, limit=limit,
                       offset=offset)
    total, items = await api.orders.list(query)
    return {"total": total, "limit": limit, "offset": offset, "items": [order_json(d, api.language, user) for d in items]}


class TransitionBody(BaseModel):
    to: Annotated[str, Field(max_length=32, description="target stage id, e.g. designing")]
    reason: Annotated[str, Field(max_length=500), AfterValidator(check_text)] = ""


@router.post("/orders/{ref}/transition")
async def move_order(ref: Ref, body: TransitionBody, user: Staff, api: Api) -> dict[str, Any]:
    """Forward one stage at a time, or to `cancelled`; anything else is refused naming the allowed stages.

    The one move use case (handlers.orders.transition), as the chat buttons and approval decisions use it."""
    current = await api.orders.get(ref, with_history=False)
    if current is None:
        raise ApiError(404, "order_not_found", f"no order {ref!r}")
    require_act(user, current)
    try:
        detail = await transition(api.orders, api.rules(), ref, body.to, body.reason, user.name, api.clock.now())
    except OrderNotFound:
        raise ApiError(404, "order_not_found", f"no order {ref!r}") from None
    except TransitionError as exc:
        raise ApiError(409, "invalid_transition", str(exc),
                       allowed=[s.value for s in exc.allowed]) from None
    except MoveRefused as exc:
        raise ApiError(409, "transition_refused", str(exc), reason=exc.code) from None
    return order_json(detail, api.language, user)


class NoteBody(BaseModel):
    text: Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(check_text)]


@router.post("/orders/{ref}/notes", status_code=201)
async def add_note(ref: Ref, body: NoteBody, user: Staff, api: Api) -> dict[str, Any]:
    """An exception note, classified into an anomaly category on arrival."""
    detail = await api.orders.get(ref, with_history=False)
    if detail is None:
        raise ApiError(404, "order_not_found", f"no order {ref!r}")
    require_act(user, detail)
    return await api.add_note(detail, body.text, user.name)


@router.get("/approvals")
async def list_approvals(user: Staff, api: Api,
                         status: Annotated[str, Query(max_length=32), AfterValidator(check_text)] = "pending",
                         limit: Annotated[int, Query(ge=1, le=500)] = 100) -> dict[str, Any]:
    items = await api.approvals(status, limit)
    return {"total": len(items), "items": items}


class DecisionBody(BaseModel):
    decision: Verdict
    reason: str = Field(default="", max_length=500)


_DECISION_ERRORS: dict[Refusal, tuple[int, str, str]] = {
    Refusal.NOT_PERMITTED: (403, "not_allowed", "your role or region may not decide this approval"),
    Refusal.OWN_REQUEST: (403, "not_allowed", "four eyes: you caused this request, someone else decides it"),
    Refusal.LEVEL_PENDING: (403, "not_allowed", "an earlier level of this approval is not approved yet"),
    Refusal.ALREADY_DECIDED: (409, "already_decided", "this approval was already decided"),
    Refusal.SUPERSEDED: (409, "already_decided", "the order changed after the request; this request is void"),
    Refusal.REASON_REQUIRED: (422, "reason_required", "a rejection needs a reason"),
    Refusal.NOT_FOUND: (404, "approval_not_found", "no such approval"),
}


@router.post("/approvals/{approval_id}/decision")
async def decide_approval(approval_id: Annotated[int, Path(ge=1, le=2**63 - 1)], body: DecisionBody, user: Staff,
                          api: Api) -> dict[str, Any]:
    """Approve or reject as the bearer's own user, with exactly the checks a button press gets (the same use
    case); every copy of the card is then edited."""
    try:
        return await api.decide(approval_id, user, body.decision, body.reason)
    except DecisionRefused as exc:
        status, code, detail = _DECISION_ERRORS[exc.reason]
        raise ApiError(status, code, detail) from None


@router.get("/kpis")
async def kpis(user: Staff, api: Api, since: WindowTime = None, until: WindowTime = None) -> dict[str, Any]:
    """The four KPIs over [since, until) (default: the last 30 days)."""
    end = until or api.clock.now()
    start = since or max(end - timedelta(days=30), EARLIEST)
    start, end = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in (start, end))
    if start >= end:
        raise ApiError(422, "invalid_window", "since must be before until")
    return {"since": start, "until": end, **(await api.kpis(start, end)).as_dict()}
