"""Attacker's input on the board's routes: ids past any integer column, NUL bytes, and a decision without the
page's CSRF token. Each is a clear 4xx with nothing changed, never a database error."""

from __future__ import annotations

import httpx

from tests.board.conftest import BoardWorld
from tests.board.test_board_routes import HTML, card_numbers, seed

HUGE = 2**70


async def test_ids_out_of_range_are_a_422(bw: BoardWorld, client: httpx.AsyncClient) -> None:
    await bw.staff("li", "admin")
    h = {"x-csrf-token": await bw.sign_in(client, 1)}
    for bad in (HUGE, 2**63, 0, -1):
        assert (await client.get(f"/board/orders/{bad}", headers=HTML)).status_code == 422
        for path, body in ((f"/board/orders/{bad}/move", {"to": "ordered"}),
                           (f"/board/orders/{bad}/notes", {"text": "a"}),
                           (f"/board/approvals/{bad}/decision", {"decision": "approve"}),
                           (f"/board/notes/{bad}/category", {"category": "logistics_delay"})):
            res = await client.post(path, json=body, headers=h)
            assert res.status_code == 422 and res.json()["error"] == "invalid_request", (path, res.text)
    assert (await client.get("/board/column/designing", params={"offset": str(HUGE)}, headers=HTML)).status_code == 200


async def test_nul_bytes_are_refused_or_dropped(bw: BoardWorld, client: httpx.AsyncClient) -> None:
    ids = await seed(bw)
    await bw.staff("li", "admin")
    h = {"x-csrf-token": await bw.sign_in(client, 1)}
    note = await client.post(f"/board/orders/{ids['HZ-DES']}/notes", json={"text": "仓库\x00停电"}, headers=h)
    assert note.status_code == 422
    move = await client.post(f"/board/orders/{ids['HZ-DES']}/move", json={"to": "ordered", "reason": "a\x00"},
                             headers=h)
    assert move.status_code == 422
    reject = await client.post("/board/approvals/1/decision", json={"decision": "reject", "reason": "\x00"}, headers=h)
    assert reject.status_code == 422
    detail = await bw.runtime.app_services().api.orders.get(str(ids["HZ-DES"]))
    assert detail.order.stage.value == "designing" and detail.notes == []
    # a NUL in a filter is dropped (no column holds one): the same cards as without it
    res = await client.get("/board/columns", params={"city": "杭\x00州", "q": "\x00"}, headers=HTML)
    assert res.status_code == 200 and card_numbers(res.text) == {"HZ-WAIT", "HZ-DES"}


async def test_a_decision_needs_the_page_csrf_token(bw: BoardWorld, client: httpx.AsyncClient) -> None:
    await seed(bw)
    mgr = await bw.staff("zhao", "manager", ["华东"])
    await bw.sign_in(client, mgr)
    for headers in ({}, {"x-csrf-token": "nope"}):
        res = await client.post("/board/approvals/1/decision", json={"decision": "approve"}, headers=headers)
        assert res.status_code == 403 and res.json()["error"] == "csrf_failed"
    approval = await bw.board.state.board.directory.approval(1)
    assert approval is not None and approval.status.value == "pending"
