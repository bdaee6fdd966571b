"""The refund routes through the real app: request → matrix, finance through the approval decision route, proof
upload (type by content, size limit, nothing stored on refusal), list and read."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from bot.wiring.runtime import Runtime
from engine.refunds import ReturnStatus
from tests.factories import order_json
from tests.webhooks.test_api import add_user, seed

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 500


class FakeOcr:
    async def read(self, data: bytes) -> str:
        return "顺丰 SF1234567890123"


class FakeTracker:
    carriers = ("sf",)

    async def status(self, carrier: str, waybill: str) -> ReturnStatus | None:
        return ReturnStatus("picked_up", True) if waybill == "SF1234567890123" else None


@pytest.fixture
async def admin(runtime: Runtime) -> dict[str, str]:
    return {"Authorization": f"Bearer {await add_user(runtime, 'ops', 'admin')}"}


async def test_unshipped_refund_is_approved_and_cancels(client: httpx.AsyncClient, runtime: Runtime, admin):
    await seed(client, runtime, [order_json(1, amount=Decimal("1000.00"))])
    resp = await client.post("/api/orders/generic:G00000001/refunds", json={"reason": "不要了"}, headers=admin)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert (body["state"], body["rule_id"], body["amount"], body["automatic"]) == (
        "approved", "refund-not-shipped", "1000.00", True)
    assert [h["action"] for h in body["history"]] == ["refund.requested"]
    order = (await client.get("/api/orders/generic:G00000001", headers=admin)).json()
    assert order["stage"] == "cancelled"
    listed = (await client.get("/api/refunds?status=approved", headers=admin)).json()
    assert [r["id"] for r in listed["items"]] == [body["id"]]
    bad = await client.get("/api/refunds?status=nope", headers=admin)
    assert bad.status_code == 422
    assert (await client.get("/api/refunds/999", headers=admin)).status_code == 404


async def test_refund_request_errors(client: httpx.AsyncClient, runtime: Runtime, admin):
    await seed(client, runtime, [order_json(1, amount=Decimal("1000.00"))])
    url = "/api/orders/generic:G00000001/refunds"
    r = await client.post(url, json={"reason": "x", "amount": "1000.01"}, headers=admin)
    assert r.status_code == 422 and r.json()["error"] == "amount_exceeds_order"
    r = await client.post(url, json={"reason": "x", "amount": "-1"}, headers=admin)
    assert r.json()["error"] == "invalid_amount"
    r = await client.post(url, json={"reason": "x", "items": [{"sku": "NOPE"}]}, headers=admin)
    assert r.json()["error"] == "invalid_items"
    r = await client.post("/api/orders/generic:NOPE/refunds", json={"reason": "x"}, headers=admin)
    assert r.status_code == 404
    sc = await add_user(runtime, "sc", "supply_chain")
    r = await client.post(url, json={"reason": "x"}, headers={"Authorization": f"Bearer {sc}"})
    assert r.status_code == 403


async def test_over_threshold_needs_finance_through_the_decision_route(client: httpx.AsyncClient,
                                                                       runtime: Runtime, admin):
    await seed(client, runtime, [order_json(1, amount=Decimal("2600.00"))])
    body = (await client.post("/api/orders/generic:G00000001/refunds", json={"reason": "取消"}, headers=admin)).json()
    assert body["state"] == "waiting_finance" and body["approval_id"]
    approvals = (await client.get("/api/approvals", headers=admin)).json()["items"]
    assert [(a["kind"], a["required_role"]) for a in approvals] == [("refund", "finance")]
    fin = {"Authorization": f"Bearer {await add_user(runtime, 'fin', 'finance')}"}
    d = await client.post(f"/api/approvals/{body['approval_id']}/decision", json={"decision": "approve"}, headers=fin)
    assert d.status_code == 200, d.text
    after = (await client.get(f"/api/refunds/{body['id']}", headers=admin)).json()
    assert after["state"] == "approved" and after["decision"]["approved_by"] == "fin"
    paid = await client.post(f"/api/refunds/{body['id']}/refunded", headers=fin)
    assert paid.json()["state"] == "refunded"


async def _shipped(client: httpx.AsyncClient, admin) -> None:
    for to in ("ordered", "in_production", "shipped"):
        r = await client.post("/api/orders/generic:G00000001/transition", json={"to": to}, headers=admin)
        assert r.status_code == 200, r.text


async def test_proof_upload(client: httpx.AsyncClient, runtime: Runtime, admin):
    deps = runtime.refund_deps()
    deps.ocr, deps.tracker = FakeOcr(), FakeTracker()
    await seed(client, runtime, [order_json(1, amount=Decimal("1000.00"))])
    await _shipped(client, admin)
    body = (await client.post("/api/orders/generic:G00000001/refunds", json={"reason": "退货"}, headers=admin)).json()
    assert (body["state"], body["rule_id"]) == ("waiting_proof", "refund-in-transit")
    url = f"/api/refunds/{body['id']}/proof"
    proofs = runtime.settings.data_dir / "proofs"
    refused = [
        (b"not an image at all", "photo.jpg", 415, "unsupported_file"),
        (b"%PDF-1.7\n" + b"0" * 100, "waybill.jpg", 415, "unsupported_file"),
        (JPEG + b"\x00" * (50 * 2**20), "big.jpg", 413, "payload_too_large"),
    ]
    for data, name, status, code in refused:
        r = await client.post(url, files={"file": (name, data, "image/jpeg")}, headers=admin)
        assert (r.status_code, r.json()["error"]) == (status, code), r.text
        assert r.json()["detail"]
    assert not proofs.exists() or not any(proofs.rglob("*"))
    r = await client.post(url, data={"x": "y"}, headers=admin)
    assert r.status_code == 422 and r.json()["error"] == "invalid_upload"
    r = await client.post(url, files={"file": ("p.jpg", JPEG, "image/jpeg")}, headers=admin)
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["state"], out["verdict"], out["waybill"]) == ("approved", "confirmed", "SF1234567890123")
    assert "file" not in out["proof"] and out["proof"]["tracking_status"] == "picked_up"
    assert len(list(proofs.rglob("*.jpg"))) == 1
    again = await client.post(url, files={"file": ("p.jpg", JPEG, "image/jpeg")}, headers=admin)
    assert again.status_code == 409


async def test_kpis_count_refund_handling_and_accuracy(client: httpx.AsyncClient, runtime: Runtime, admin):
    await seed(client, runtime, [order_json(1, amount=Decimal("1000.00")), order_json(2, amount=Decimal("900.00"))])
    await client.post("/api/orders/generic:G00000001/refunds", json={"reason": "x"}, headers=admin)
    for to in ("ordered", "in_production", "shipped"):
        await client.post("/api/orders/generic:G00000002/transition", json={"to": to}, headers=admin)
    await client.post("/api/orders/generic:G00000002/refunds", json={"reason": "y", "amount": "100"}, headers=admin)
    k = (await client.get("/api/kpis", headers=admin)).json()
    # one decided (automatically, at once), one waiting for its proof
    assert (k["refunds_decided"], k["refund_handling_p50_minutes"], k["refund_automatic_share"]) == (1, 0.0, 1.0)
    for to in ("awaiting_install", "completed"):
        r = await client.post("/api/orders/generic:G00000002/transition", json={"to": to}, headers=admin)
        assert r.status_code == 200, r.text
    k = (await client.get("/api/kpis", headers=admin)).json()
    assert k["order_accuracy"] == 0.0  # its one completed order had a refund


async def test_an_order_update_does_not_void_a_refund_waiting_for_finance(client: httpx.AsyncClient,
                                                                          runtime: Runtime, admin):
    await seed(client, runtime, [order_json(1, amount=Decimal("6000.00"))])  # waits for its manager's approval
    body = (await client.post("/api/orders/generic:G00000001/refunds", json={"reason": "少做一幅", "amount": "2500"},
                              headers=admin)).json()
    assert body["state"] == "waiting_finance"
    changed = order_json(1, amount=Decimal("6000.00"))
    changed["notes"] = "客户改了安装时间"
    await seed(client, runtime, [changed])  # changed while waiting: the confirmation request is void, not the refund's
    pending = (await client.get("/api/approvals", headers=admin)).json()["items"]
    assert body["approval_id"] in [a["id"] for a in pending]
    assert sorted(a["kind"] for a in pending) == ["order", "refund"]  # a new confirmation request, the same refund's
