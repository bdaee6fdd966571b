"""`POST /webhooks/orders/{channel}`: verify, validate, enqueue, answer 202 once durable. Nothing else."""

from __future__ import annotations

import time

import orjson
from fastapi import APIRouter, Request
from pydantic import ValidationError

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
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        metrics.INTAKE_REJECTED.labels(reason="json").inc()
        raise ApiError(422, "invalid_json", f"body is not valid JSON: {exc}") from None
    try:
        raws = split_orders(payload)
    except BatchShapeError as exc:
        metrics.INTAKE_REJECTED.labels(reason="schema").inc()
        raise ApiError(422, "invalid_order", str(exc), errors=[{"path": "(body)", "message": str(exc)}]) from None

    batched = len(raws) > 1 or "orders" in payload
    errors: list[dict[str, str]] = []
    for i, raw in enumerate(raws):
        try:
            stored_channel(adapter.to_order(raw), channel, services.adapters)
        except ValidationError as exc:
            errors += field_errors(exc, f"orders[{i}]" if batched else "")
        except ChannelNotAllowed as exc:
            metrics.INTAKE_REJECTED.labels(reason="channel").inc()
            raise ApiError(403, "channel_not_allowed", str(exc)) from None
    if errors:
        metrics.INTAKE_REJECTED.labels(reason="schema").inc()
        return error_response(422, "invalid_order", f"{len(errors)} invalid field(s); nothing was queued",
                              errors=errors)

    bodies = [body] if not batched else [orjson.dumps(raw) for raw in raws]
    try:
        await services.intake.enqueue(channel, bodies)
    except Exception as exc:  # the sender must retry: nothing was promised
        metrics.INTAKE_REJECTED.labels(reason="queue_unavailable").inc()
        raise ApiError(503, "queue_unavailable", f"the intake queue is unavailable ({type(exc).__name__})") from None
    metrics.INTAKE_ACCEPTED.labels(channel=channel).inc(len(bodies))
    return JsonResponse({"accepted": len(bodies)}, status_code=202)
