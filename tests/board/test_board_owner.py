"""Issue 16 with 12.1: the owner badge on board cards, the owner filter, and a reassignment reaching open boards."""

from __future__ import annotations

import re

import httpx

from handlers.owners import Assigner, assign
from storage.owners import SqlOwners
from tests.board.conftest import BoardWorld
from tests.board.test_board_routes import HTML, card_numbers


def _badge(html: str, number: str) -> str:
    card = re.search(rf'<li class="card[^"]*"[^>]*data-number="{number}".*?</li>', html, re.S).group(0)
    return re.search(r'<span class="owner[^"]*"[^>]*>[^<]*</span>', card).group(0)


async def test_owner_badge_filter_and_live_reassignment(bw: BoardWorld, client: httpx.AsyncClient) -> None:
    admin = await bw.staff("li", "admin")
    await bw.staff("zhou", "supply_chain", ["华东"])
    await bw.staff("wu", "supply_chain", ["华东"])
    oid = await bw.order("HZ-1", stage="designing", city="杭州")
    await bw.order("HZ-2", stage="designing", city="杭州")
    await bw.sign_in(client, admin)
    resp = await client.post("/api/orders/tmall:HZ-1/assign", json={"user": "zhou"},
                             headers={"Authorization": f"Bearer {bw.tokens['li']}"})
    assert resp.status_code == 200, resp.text

    page = (await client.get("/board/columns", headers=HTML)).text
    assert _badge(page, "HZ-1") == '<span class="owner" title="负责人" aria-label="负责人: zhou">👤 zhou</span>'
    assert _badge(page, "HZ-2") == ('<span class="owner is-unowned" title="负责人" aria-label="负责人: 未分配">'
                                    '👤 未分配</span>')
    assert card_numbers((await client.get("/board/columns", params={"owner": "zhou"}, headers=HTML)).text) == {"HZ-1"}
    board = (await client.get("/board/", headers=HTML)).text
    assert '<option value="zhou">zhou</option>' in board  # the owner filter offers who owns open orders

    await assign(SqlOwners(bw.runtime.db, bw.events), Assigner(admin, "li", "admin", ()), "tmall:HZ-1", "wu",
                 bw.clock.now())
    assert bw.events.published[-1] == {"kind": "assigned", "order_id": oid, "region": "华东", "by": "li",
                                       "owner": "wu"}  # open boards refresh on it
    page = (await client.get("/board/columns", params={"owner": "wu"}, headers=HTML)).text
    assert card_numbers(page) == {"HZ-1"} and "👤 wu" in page
    assert card_numbers((await client.get("/board/columns", params={"owner": "zhou"}, headers=HTML)).text) == set()


async def test_the_owner_filter_offers_only_owners_in_the_managers_regions(bw: BoardWorld,
                                                                         client: httpx.AsyncClient) -> None:
    admin = await bw.staff("li", "admin")
    south = await bw.staff("chen", "manager", ["华南"])
    await bw.staff("zhou", "supply_chain", ["华东"])
    await bw.staff("wu", "supply_chain", ["华南"])
    await bw.order("HZ-1", stage="designing", city="杭州")
    await bw.order("GZ-1", stage="designing", city="广州")
    for number, owner in (("HZ-1", "zhou"), ("GZ-1", "wu")):
        resp = await client.post(f"/api/orders/tmall:{number}/assign", json={"user": owner},
                                 headers={"Authorization": f"Bearer {bw.tokens['li']}"})
        assert resp.status_code == 200, resp.text
    await bw.sign_in(client, admin)
    board = (await client.get("/board/", headers=HTML)).text
    assert '<option value="zhou">zhou</option>' in board and '<option value="wu">wu</option>' in board
    client.cookies.clear()
    await bw.sign_in(client, south)
    board = (await client.get("/board/", headers=HTML)).text
    assert '<option value="wu">wu</option>' in board
    assert "zhou" not in board  # who owns 华东 orders is not a 华南 manager's business
    # and filtering by that name anyway shows nothing of 华东
    assert card_numbers((await client.get("/board/columns", params={"owner": "zhou"}, headers=HTML)).text) == set()
