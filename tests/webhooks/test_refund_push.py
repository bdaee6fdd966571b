"""The Taobao refund push: signed, validated (422 with field paths, nothing queued), 202 once queued; the worker
stores it once however often it is delivered, waits for an order that has not arrived yet, ignores closed ones."""

from __future__ import annotations

from decimal import Decimal

import httpx
import orjson

from bot.wiring.runtime import Runtime
from tests.conftest import SECRETS
from tests.factories import order_json, signed
from tests.webhooks.test_api import seed

URL = "/webhooks/refunds/taobao"


def push(**kw: object) -> dict[str, object]:
    return {"refund_id": "R100", "tid": "G00000001", "oid": "O1", "refund_fee": "300.00", "has_good_return": False,
            "reason": "不想要了", "status": "WAIT_SELLER_AGREE", **kw}


async def _post(client: httpx.AsyncClient, body: dict[str, object], secret: str = SECRETS["tmall"]) -> httpx.Response:
    raw, headers = signed(secret, body)
    return await client.post(URL, content=raw, headers=headers)


async def test_signed_valid_push_is_stored_once(client: httpx.AsyncClient, runtime: Runtime):
    await seed(client, runtime, [order_json(1, amount=Decimal("1000.00"))])
    for _ in range(3):  # Taobao redelivers
        r = await _post(client, push())
        assert (r.status_code, r.json()) == (202, {"accepted": 1})
    totals = await runtime.refund_worker().run(burst=True)
    assert totals.stored == 3  # each delivery handled …
    [refund] = await runtime.refund_deps().refunds.refunds(None, 10)  # … into one refund
    assert (refund.source, refund.source_ref, refund.amount, refund.state.value) == (
        "taobao", "R100", Decimal("300.00"), "approved")
    assert "O1" in refund.reason


async def test_bad_signature_and_schema_are_refused_and_nothing_queued(client: httpx.AsyncClient, runtime: Runtime):
    assert (await _post(client, push(), secret="wrong")).status_code == 401
    r = await _post(client, push(refund_fee="-1", refund_id="bad id!"))
    assert r.status_code == 422 and {e["path"] for e in r.json()["errors"]} == {"refund_fee", "refund_id"}
    unsigned = await client.post(URL, content=orjson.dumps(push()))
    assert unsigned.status_code == 401
    assert (await runtime.refund_queue().status()).depth == 0


async def test_closed_pushes_are_ignored_and_an_early_refund_waits_for_its_order(client: httpx.AsyncClient,
                                                                                runtime: Runtime):
    assert (await _post(client, push(status="CLOSED", refund_id="R1"))).status_code == 202
    assert (await _post(client, push(refund_id="R2"))).status_code == 202  # the order is not there yet
    worker = runtime.refund_worker()
    worker.loop.retry_backoff_s = 0.01
    await worker.run(burst=True)
    assert worker.totals.ignored == 1 and worker.totals.dead == 1  # retried until max_attempts, then dead
    assert await runtime.refund_deps().refunds.refunds(None, 10) == []
