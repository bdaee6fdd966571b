"""`POST /webhooks/orders/{channel}`: verify, validate, enqueue, answer 202 once durable. Nothing else."""

from __future__ import annotations

import time

import orjson
from fastapi import APIRouter, Request
from pydantic import ValidationError
from pydantic_core import from_json

from engine.channels import BatchShapeError, ChannelNotAllowed, split_orders, stored_channel
from webhooks import metrics
from webhooks.errors import ApiError, JsonResponse, error_response, field_errors
from webhooks.services import AppServices
from webhooks.signing import SignatureError, verify

router = APIRouter()


async def read_limited(request: Request, limit: int) -> bytes:
    """The raw body, refusing more than `limit` bytes before reading them all (413)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "payload_too_large", f"body is larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "payload_too_large", f"body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/webhooks/orders/{channel}", status_code=202, tags=["intake"])
async def receive_orders(channel: str, request: Request) -> JsonResponse:
    """One order or `{"orders": [...]}` (≤ 1000), signed with the channel's secret. 202 once durably queued."""
    services: AppServices = request.app.state.services
    adapter = services.adapters.get(channel)
    secret = services.config.webhook_secrets.get(channel)
    if adapter is None or secret is None:
        metrics.INTAKE_REJECTED.labels(reason="unknown_channel").inc()
        raise ApiError(404, "unknown_channel", f"no channel named {channel!r} is configured")
    body = await read_limited(request, services.config.max_body_bytes)
    try:
        verify(secret, body, request.headers.get("x-orderhub-signature"), time.time(),
               services.config.signature_tolerance_s)
    except SignatureError as exc:
        metrics.INTAKE_REJECTED.labels(reason="signature").inc()
        raise ApiError(401, "bad_signature", str(exc)) from None
    try:
        # pydantic's parser, as the worker's: integers stay integers (orjson makes a float of one beyond 64 bits,
        # which the worker would then read differently), and nesting is limited.
        payload = from_json(body)
    except ValueError as exc:
        metrics.INTAKE_REJECTED.labels(reason="json").inc()
        raise ApiError(422, "invalid_json", f"body is not valid JSON: {exc}") from None
    try:
        raws = split_orders(payload)
    except BatchShapeError as exc:
        metrics.INTAKE_REJECTED.labels(reason="schema").inc()
        raise ApiError(422, "invalid_order", str(exc), errors=[{"path": "(body)", "message": str(exc)}]) from None

    batched = len(raws) > 1 or "orders" in payload
    # Each body exactly as it will be queued, checked by the worker's own parse: what is accepted here is stored.
    bodies: list[bytes] = []
    errors: list[dict[str, str]] = []
    for i, raw in enumerate(raws):
        where = f"orders[{i}]" if batched else ""
        try:
            if batched:  # validated as data, then queued as the JSON the worker will parse
                data = adapter.to_order(raw)
                queued = orjson.dumps(raw)
            else:
                queued = body
                data = adapter.parse(body)
            stored_channel(data, channel, services.adapters)  # never another sender's orders
        except ValidationError as exc:
            errors += field_errors(exc, where)
            continue
        except ChannelNotAllowed as exc:
            metrics.INTAKE_REJECTED.labels(reason="channel").inc()
            raise ApiError(403, "channel_not_allowed", str(exc)) from None
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:  # e.g. nesting beyond orjson's limit
            errors.append({"path": where or "(body)", "message": f"order cannot be read: {type(exc).__name__}"})
            continue
        bodies.append(queued)
    if errors:
        metrics.INTAKE_REJECTED.labels(reason="schema").inc()
        return error_response(422, "invalid_order", f"{len(errors)} invalid field(s); nothing was queued",
                              errors=errors)

    try:
        await services.intake.enqueue(channel, bodies)
    except Exception as exc:  # the sender must retry: nothing was promised
        metrics.INTAKE_REJECTED.labels(reason="queue_unavailable").inc()
        raise ApiError(503, "queue_unavailable", f"the intake queue is unavailable ({type(exc).__name__})") from None
    metrics.INTAKE_ACCEPTED.labels(channel=channel).inc(len(bodies))
    return JsonResponse({"accepted": len(bodies)}, status_code=202)
