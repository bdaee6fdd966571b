"""`POST /api/notes/{id}/category`: a correction through the API changes how the next similar note is classified,
is audited and stored as an example with the rules version; refused for strangers, unknown notes and categories.
A note the classifier is unsure of is sent to supply chain with three candidates."""

from __future__ import annotations

from decimal import Decimal

import httpx
from sqlalchemy import select

from bot.wiring.runtime import Runtime
from storage.models import AuditRow, NoteExampleRow, OutboxRow
from tests.factories import order_json
from tests.webhooks.test_api import add_user, seed

ORDER = "generic:G00000001"  # 杭州: region 华东


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def note(client: httpx.AsyncClient, headers: dict[str, str], text: str, order: str = ORDER) -> dict:
    resp = await client.post(f"/api/orders/{order}/notes", json={"text": text}, headers=headers)
    assert resp.status_code == 201, resp.text
    return resp.json()


async def test_a_correction_through_the_api_changes_the_next_similar_note(client: httpx.AsyncClient,
                                                                          runtime: Runtime) -> None:
    admin = bearer(await add_user(runtime, "ops", "admin"))
    await seed(client, runtime, [order_json(1, amount=Decimal("1000.00"), city="杭州")])
    first = await note(client, admin, "安装后发现窗帘短了一截")
    assert first["category"] == "install_issue"  # the library's 安装 decides: wrong, it was measured short
    before = await note(client, admin, "安装后窗帘短了一截")
    assert before["category"] == "install_issue"

    resp = await client.post(f"/api/notes/{first['id']}/category", json={"category": "measurement_error"},
                             headers=admin)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"id": first["id"], "order_id": first["order_id"], "order": ORDER,
                           "previous": "install_issue", "category": "measurement_error"}

    after = await note(client, admin, "安装后窗帘短了一截")
    assert after["category"] == "measurement_error" and after["matched"] == "learned"
    unrelated = await note(client, admin, "安装师傅没有按时上门")
    assert unrelated["category"] == "install_issue"  # a correction teaches its case, not the whole category

    detail = (await client.get(f"/api/orders/{ORDER}", headers=admin)).json()
    cats = {n["text"]: n["category"] for n in detail["exception_notes"]}
    assert [n["id"] for n in detail["exception_notes"]][0] == first["id"]  # what a correction names
    assert cats["安装后发现窗帘短了一截"] == "measurement_error"
    async with runtime.db.connect() as conn:
        ex = (await conn.execute(select(NoteExampleRow.__table__))).one()
        audit = (await conn.execute(select(AuditRow.__table__).where(AuditRow.__table__.c.action == "note_relabel"))
                 ).one()
    assert (ex.note_id, ex.text, ex.category, ex.previous, ex.corrected_by) == (
        first["id"], "安装后发现窗帘短了一截", "measurement_error", "install_issue", "ops")
    assert ex.rules_version == runtime.current_rules().version and ex.library_version
    assert audit.actor == "ops" and audit.subject == f"note:{first['id']}"
    assert audit.detail == {"order_id": first["order_id"], "from": "install_issue", "to": "measurement_error",
                            "via": "api"}


async def test_corrections_refused(client: httpx.AsyncClient, runtime: Runtime) -> None:
    admin = bearer(await add_user(runtime, "ops", "admin"))
    south = bearer(await add_user(runtime, "南区经理", "manager", ["华南"]))
    east = bearer(await add_user(runtime, "东区经理", "manager", ["华东"]))
    lead = bearer(await add_user(runtime, "供应链", "supply_chain"))
    customer = bearer(await add_user(runtime, "顾客", "customer"))
    await seed(client, runtime, [order_json(1, amount=Decimal("1000.00"), city="杭州")])
    n = await note(client, admin, "快递三天没有更新")
    url = f"/api/notes/{n['id']}/category"

    resp = await client.post(url, json={"category": "stock_shortage"}, headers=south)
    assert resp.status_code == 403 and resp.json()["error"] == "forbidden"
    assert (await client.post(url, json={"category": "stock_shortage"}, headers=customer)).status_code == 403
    resp = await client.post(url, json={"category": "flying_saucers"}, headers=admin)
    assert resp.status_code == 422 and resp.json()["error"] == "unknown_category"
    assert "logistics_delay" in resp.json()["detail"]  # names what the rules have
    resp = await client.post("/api/notes/999999/category", json={"category": "stock_shortage"}, headers=admin)
    assert resp.status_code == 404 and resp.json()["error"] == "note_not_found"
    assert (await client.post(url, json={"category": "a\x00b"}, headers=admin)).status_code == 422
    assert (await client.post("/api/notes/99999999999999999999/category", json={"category": "stock_shortage"},
                              headers=admin)).status_code == 422
    async with runtime.db.connect() as conn:
        assert (await conn.execute(select(NoteExampleRow.__table__))).all() == []  # nothing learned from refusals

    assert (await client.post(url, json={"category": "stock_shortage"}, headers=east)).status_code == 200
    resp = await client.post(url, json={"category": "logistics_delay"}, headers=lead)  # the lead, any region
    assert resp.status_code == 200 and resp.json()["previous"] == "stock_shortage"
    async with runtime.db.connect() as conn:
        rows = (await conn.execute(select(NoteExampleRow.__table__))).all()
    assert [(r.category, r.corrected_by) for r in rows] == [("logistics_delay", "供应链")]  # one per note


async def test_an_unsure_note_goes_to_supply_chain_with_three_candidates(client: httpx.AsyncClient,
                                                                        runtime: Runtime) -> None:
    admin = bearer(await add_user(runtime, "ops", "admin"))
    await seed(client, runtime, [order_json(1, amount=Decimal("1000.00"), city="杭州")])
    sure = await note(client, admin, "顺丰中转站滞留三天，派送延误")
    unsure = await note(client, admin, "今天这单情况有点复杂，回头再说")
    assert sure["review"] is False and unsure["review"] is True and unsure["category"] is None
    async with runtime.db.connect() as conn:
        rows = (await conn.execute(select(OutboxRow.__table__).where(OutboxRow.__table__.c.kind == "note_review"))
                ).all()
    assert len(rows) == 1 and rows[0].recipient_role == "supply_chain"
    payload = rows[0].payload
    assert payload["note_id"] == unsure["id"] and payload["order_ref"] == ORDER
    assert len(payload["candidates"]) == 3 and payload["candidates"] == unsure["candidates"]
    assert set(payload["names"]) == set(payload["candidates"])
