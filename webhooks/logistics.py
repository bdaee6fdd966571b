"""`POST /webhooks/logistics/{carrier}`: verify the push in its carrier's scheme, queue it durably, answer in the
carrier's expected form. Nothing else: applying it to orders is the tracking worker's job (handlers.tracking).

A bad signature is 401 and nothing is queued; a push whose content is malformed is 422 (nothing queued); a queue
outage is 503, so the carrier pushes again. The answer comes only after the XADD returned.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Request

from engine.carriers.parsing import PushFormatError, parse_push
from engine.carriers.push import ANSWERS
from webhooks import metrics
from webhooks.errors import ApiError, JsonResponse
from webhooks.intake import read_limited
from webhooks.services import AppServices

router = APIRouter()
MAX_FIELDS = 20


@router.post("/webhooks/logistics/{carrier}", tags=["logistics"])
async def receive_push(carrier: str, request: Request) -> JsonResponse:
    """A carrier's tracking push (SF route push, Deppon trace push, Kuaidi100 subscription push)."""
    services: AppServices = request.app.state.services
    logistics = services.logistics
    verify = logistics.verifiers.get(carrier) if logistics is not None else None
    if logistics is None or verify is None:
        raise ApiError(404, "unknown_carrier", f"no carrier named {carrier!r} is configured")
    body = await read_limited(request, services.config.max_body_bytes)
    try:
        fields = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                                max_num_fields=MAX_FIELDS))
    except (UnicodeDecodeError, ValueError):
        metrics.INTAKE_REJECTED.labels(reason="logistics_form").inc()
        raise ApiError(422, "invalid_push", "the push is not a UTF-8 form with at most 20 fields") from None
    if not verify(fields):
        metrics.INTAKE_REJECTED.labels(reason="logistics_signature").inc()
        raise ApiError(401, "bad_signature", f"the push does not carry a valid {carrier} signature")
    try:
        parse_push(carrier, fields)
    except PushFormatError as exc:
        metrics.INTAKE_REJECTED.labels(reason="logistics_schema").inc()
        raise ApiError(422, "invalid_push", str(exc)) from None
    try:
        await logistics.queue.enqueue(carrier, [orjson.dumps(fields)])
    except Exception as exc:  # the carrier pushes again: nothing was promised
        raise ApiError(503, "queue_unavailable", f"the tracking queue is unavailable ({type(exc).__name__})") from None
    return JsonResponse(ANSWERS[carrier])
