"""`POST /webhooks/refunds/taobao`: the Taobao refund push, signed like the order webhooks (X-OrderHub-Signature
with the `taobao` channel's secret, else `tmall`'s), validated, and answered 202 only once durably in the refund
stream (the order intake's guarantees: bot/workers/refunds.py applies it idempotently by `refund_id`)."""

from __future__ import annotations

import time

import orjson
from fastapi import APIRouter, Request
from pydantic import ValidationError

from engine.refund_push import TaobaoRefund
from webhooks.errors import ApiError, JsonResponse, error_response, field_errors
from webhooks.intake import read_limited
from webhooks.services import AppServices
from webhooks.signing import SignatureError, verify

router = APIRouter(tags=["intake"])
CHANNEL = "taobao"


@router.post("/webhooks/refunds/taobao", status_code=202)
async def receive_refund(request: Request) -> JsonResponse:
    services: AppServices = request.app.state.services
    queue = services.refund_intake
    secrets = services.config.webhook_secrets
    secret = secrets.get("taobao") or secrets.get("tmall")
    if queue is None or secret is None:
        raise ApiError(404, "unknown_channel", "Taobao refund pushes are not configured (ORDERHUB_WEBHOOK_SECRETS "
                                               "taobao=… or tmall=…)")
    body = await read_limited(request, 64 * 1024)
    try:
        verify(secret, body, request.headers.get("x-orderhub-signature"), time.time(),
               services.config.signature_tolerance_s)
    except SignatureError as exc:
        raise ApiError(401, "bad_signature", str(exc)) from None
    try:
        TaobaoRefund.model_validate_json(body)
    except ValidationError as exc:
        errors = field_errors(exc)
        return error_response(422, "invalid_refund", f"{len(errors)} invalid field(s); nothing was queued",
                              errors=errors)
    try:
        await queue.enqueue(CHANNEL, [orjson.dumps(orjson.loads(body))])
    except Exception as exc:
        raise ApiError(503, "queue_unavailable", f"the refund queue is unavailable ({type(exc).__name__})") from None
    return JsonResponse({"accepted": 1}, status_code=202)
