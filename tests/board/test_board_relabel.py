"""Issue 16, drawer: correcting an exception note's category goes through the one correction use case
(handlers.note_learning.relabel, as the API, the chat button and the CLI): audited, learned, CSRF-checked, scoped,
and announced to every open board."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from handlers.notes import category_names
from storage.models import AuditRow
from storage.note_learning_repo import SqlNoteLearning
from tests.board.conftest import BoardWorld
from tests.board.test_board_routes import HTML


async def test_correcting_a_note_category_in_the_drawer(bw: BoardWorld, client: httpx.AsyncClient) -> None:
    oid = await bw.order("HZ-1", stage="designing", city="杭州")
    admin = await bw.staff("li", "admin")
    south = await bw.staff("chen", "manager", ["华南"])
    csrf = await bw.sign_in(client, admin)
    note = await client.post(f"/board/orders/{oid}/notes", json={"text": "物流延迟，快递三天没有更新"},
                             headers={"x-csrf-token": csrf})
    assert note.status_code == 201 and note.json()["category"] == "logistics_delay"
    nid = note.json()["id"]
    other = next(c for c in category_names(bw.runtime.current_rules()) if c != "logistics_delay")

    drawer = (await client.get(f"/board/orders/{oid}", headers=HTML)).text
    assert f'<form class="relabel" data-note="{nid}">' in drawer and "更正分类" in drawer
    assert '<option value="logistics_delay" selected>' in drawer and f'<option value="{other}">' in drawer

    assert (await client.post(f"/board/notes/{nid}/category", json={"category": other})).status_code == 403  # CSRF
    unknown = await client.post(f"/board/notes/{nid}/category", json={"category": "no_such"},
                                headers={"x-csrf-token": csrf})
    assert unknown.status_code == 422 and unknown.json()["error"] == "unknown_category"
    huge = await client.post(f"/board/notes/{2**70}/category", json={"category": other}, headers={"x-csrf-token": csrf})
    assert huge.status_code == 422
    missing = await client.post("/board/notes/999/category", json={"category": other}, headers={"x-csrf-token": csrf})
    assert missing.status_code == 404

    outsider = httpx.AsyncClient(transport=httpx.ASGITransport(app=bw.app), base_url="http://test")
    async with outsider:
        ocsrf = await bw.sign_in(outsider, south)
        refused = await outsider.post(f"/board/notes/{nid}/category", json={"category": other},
                                      headers={"x-csrf-token": ocsrf})
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"  # a 华南 manager, a 华东 note

    done = await client.post(f"/board/notes/{nid}/category", json={"category": other}, headers={"x-csrf-token": csrf})
    assert done.status_code == 200, done.text
    assert done.json()["previous"] == "logistics_delay" and done.json()["category"] == other
    assert "分类已更正" in done.json()["message"]
    assert bw.events.published[-1] == {"kind": "relabelled", "order_id": oid, "region": "华东", "by": "li",
                                       "note_id": nid, "category": other}  # every open board refreshes
    drawer = (await client.get(f"/board/orders/{oid}", headers=HTML)).text
    assert f'<option value="{other}" selected>' in drawer
    assert ("物流延迟，快递三天没有更新", other) in await SqlNoteLearning(bw.runtime.db).examples()  # learned
    async with bw.runtime.db.connect() as conn:
        audit = (await conn.execute(select(AuditRow.__table__).where(
            AuditRow.__table__.c.subject == f"note:{nid}"))).one()
    assert audit.actor == "li" and audit.action == "note_relabel" and audit.detail["via"] == "board"
