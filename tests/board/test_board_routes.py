"""The board's routes in process (ASGI): sign-in links, sessions, CSRF, region scoping, filters, moves, decisions."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import httpx

from board.auth import COOKIE
from handlers.chat import CommandReceived, Sender
from tests.board.conftest import BoardWorld, seed_orders

HTML = {"accept": "text/html"}


def counts(html: str) -> dict[str, int]:
    return {m.group(1): int(m.group(2)) for m in re.finditer(
        r'<section class="column" data-stage="(\w+)".*?data-count="(\d+)"', html, re.S)}


def card_numbers(html: str) -> set[str]:
    return set(re.findall(r'data-number="([^"]+)"', html))


async def seed(bw: BoardWorld) -> dict[str, int]:
    return await seed_orders(bw, "HZ-WAIT", "HZ-DES", "SH-ORD", "GZ-DES", "SZ-SHIP", "BJ-DONE")


async def test_without_a_session_the_board_asks_to_sign_in(client: httpx.AsyncClient) -> None:
    page = await client.get("/board/", headers=HTML)
    assert page.status_code == 401 and "/board" in page.text and "登录" in page.text
    api = await client.post("/board/orders/1/move", json={"to": "designing"})
    assert api.status_code == 401 and api.json()["error"] == "login_needed"
    forged = await client.get("/board/", headers={**HTML, "cookie": f"{COOKIE}=eyJ1IjoxfQ.bad"})
    assert forged.status_code == 401


async def test_a_link_signs_in_once_with_a_safe_cookie(bw: BoardWorld, client: httpx.AsyncClient) -> None:
    uid = await bw.staff("li", "admin")
    link = await bw.link(uid)
    assert link.startswith("http://127.0.0.1:8000/board/login?t=")
    token = parse_qs(urlparse(link).query)["t"][0]
    confirm = await client.get("/board/login", params={"t": token}, headers=HTML)
    assert confirm.status_code == 200 and "li" in confirm.text  # looking at the link does not spend it
    res = await client.post("/board/login", data={"t": token})
    assert res.status_code == 303 and res.headers["location"] == "/board/"
    cookie = res.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/board" in cookie
    page = await client.get("/board/", headers=HTML)
    assert page.status_code == 200 and "订单看板" in page.text
    again = await client.post("/board/login", data={"t": token})
    assert again.status_code == 403 and "已使用" in again.text
    assert (await client.get("/board/login", params={"t": token}, headers=HTML)).status_code == 403


async def test_expired_and_tampered_links_are_refused(bw: BoardWorld, client: httpx.AsyncClient) -> None:
    uid = await bw.staff("li", "admin")
    token = parse_qs(urlparse(await bw.link(uid)).query)["t"][0]
    body, mac = token.split(".")
    tampered = await client.post("/board/login", data={"t": f"{body}.{mac[:-2]}xx"})
    assert tampered.status_code == 403 and "无效" in tampered.text
    bw.clock.advance(minutes=11)
    expired = await client.post("/board/login", data={"t": token})
    assert expired.status_code == 403 and "过期" in expired.text
    assert (await client.get("/board/", headers=HTML)).status_code == 401


async def test_customers_never_reach_the_board(bw: BoardWorld, client: httpx.AsyncClient) -> None:
    uid = await bw.staff("wang", "customer")
    token = parse_qs(urlparse(await bw.link(uid)).query)["t"][0]
    assert (await client.post("/board/login", data={"t": token})).status_code == 403
    # even holding a correctly signed session cookie, a customer is turned away
    cookie = bw.board.state.board.auth.session_cookie(uid, bw.clock.now())
    page = await client.get("/board/", headers={**HTML, "cookie": f"{COOKIE}={cookie}"})
    assert page.status_code == 403


async def test_six_columns_with_counts_sorted_by_priority_then_age(bw: BoardWorld,
                                                                   client: httpx.AsyncClient) -> None:
    await seed(bw)
    await bw.order("HZ-DES-OLD", city="杭州", stage="designing", priority=2, created_days_ago=5)
    await bw.staff("li", "admin")
    await bw.sign_in(client, 1)
    page = (await client.get("/board/", headers=HTML)).text
    assert counts(page) == {"pending_confirm": 1, "designing": 3, "ordered": 1, "in_production": 0,
                            "shipped": 1, "awaiting_install": 0}
    for name in ("待确认", "设计中", "已下单", "生产中", "已发货", "待安装"):
        assert name in page
    designing = page[page.index('data-stage="designing"'):page.index('data-stage="ordered"')]
    order = re.findall(r'data-number="([^"]+)"', designing)
    assert order == ["GZ-DES", "HZ-DES-OLD", "HZ-DES"]  # priority 9 first; then the older of the two P2 orders
    assert "BJ-DONE" not in page  # completed orders leave the board
    assert "王**" in page and "138****8000" in page and "13800138000" not in page
    assert "🔴" in page and "⏰" in page and "⏳" in page  # flagged, stalled, waiting for approval


async def test_filters_narrow_the_columns_and_stay_in_links(bw: BoardWorld, client: httpx.AsyncClient) -> None:
    await seed(bw)
    await bw.staff("li", "admin")
    await bw.sign_in(client, 1)

    async def numbers(**params: str) -> set[str]:
        res = await client.get("/board/columns", params=params, headers=HTML)
        assert res.status_code == 200
        return card_numbers(res.text)

    assert await numbers(city="杭州") == {"HZ-WAIT", "HZ-DES"}
    assert await numbers(region="华南") == {"GZ-DES", "SZ-SHIP"}
    assert await numbers(min_amount="4000", max_amount="9000") == {"HZ-WAIT", "GZ-DES"}
    assert await numbers(priority="5") == {"HZ-WAIT", "GZ-DES"}
    assert await numbers(flagged="1") == {"SH-ORD"}
    assert await numbers(stalled="1") == {"SZ-SHIP"}
    assert await numbers(q="sh-o") == {"SH-ORD"}
    assert await numbers(q="100%") == set()  # LIKE wildcards are escaped
    assert await numbers(min_amount="abc", priority="x" * 50) == {"HZ-WAIT", "HZ-DES", "SH-ORD", "GZ-DES", "SZ-SHIP"}
    page = (await client.get("/board/", params={"city": "杭州", "flagged": "1"}, headers=HTML)).text
    assert 'data-query="city=%E6%9D%AD%E5%B7%9E&amp;flagged=1"' in page  # the view's URL is shareable


async def test_owner_filter_and_paging_per_column(runtime, db, rules) -> None:  # type: ignore[no-untyped-def]
    from tests.board.conftest import build_board_world

    bw = await build_board_world(runtime, db, rules, page_size=2)
    await bw.staff("li", "admin")
    owner = await bw.staff("zhou", "supply_chain")
    for i in range(5):
        await bw.order(f"D-{i}", stage="designing", priority=i, owner=owner if i == 0 else None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=bw.app), base_url="http://test") as client:
        await bw.sign_in(client, 1)
        page = (await client.get("/board/", headers=HTML)).text
        assert counts(page)["designing"] == 5 and card_numbers(page) == {"D-4", "D-3"}
        assert 'data-more="designing" data-offset="2"' in page
        more = (await client.get("/board/column/designing", params={"offset": "2"}, headers=HTML)).text
        assert card_numbers(more) == {"D-2", "D-1"} and 'data-offset="4"' in more
        owned = (await client.get("/board/columns", params={"owner": "zhou"}, headers=HTML)).text
        assert card_numbers(owned) == {"D-0"} and "zhou" in owned


async def test_a_huanan_manager_sees_only_huanan(bw: BoardWorld, client: httpx.AsyncClient) -> None:
    ids = await seed(bw)
    uid = await bw.staff("chen", "manager", ["华南"])
    csrf = await bw.sign_in(client, uid)
    page = (await client.get("/board/", headers=HTML)).text
    assert card_numbers(page) == {"GZ-DES", "SZ-SHIP"}
    assert "杭州" not in page.split('<main id="board"')[1]
    assert (await client.get("/board/columns", params={"region": "华东"}, headers=HTML)).text.count("data-number") == 0
    assert (await client.get(f"/board/orders/{ids['HZ-DES']}", headers=HTML)).status_code == 404
    move = await client.post(f"/board/orders/{ids['HZ-DES']}/move", json={"to": "ordered"},
                             headers={"x-csrf-token": csrf})
    assert move.status_code == 404
    assert (await bw.runtime.app_services().api.orders.get(str(ids["HZ-DES"]))).order.stage.value == "designing"


async def test_every_change_needs_the_page_csrf_token(bw: BoardWorld, client: httpx.AsyncClient) -> None:
    ids = await seed(bw)
    await bw.staff("li", "admin")
    csrf = await bw.sign_in(client, 1)
    for headers in ({}, {"x-csrf-token": "nope"}):
        res = await client.post(f"/board/orders/{ids['HZ-DES']}/move", json={"to": "ordered"}, headers=headers)
        assert res.status_code == 403 and res.json()["error"] == "csrf_failed"
        note = await client.post(f"/board/orders/{ids['HZ-DES']}/notes", json={"text": "x"}, headers=headers)
        assert note.status_code == 403
    assert (await client.post("/board/logout")).status_code == 403
    # another session's token is not this session's
    other = httpx.AsyncClient(transport=httpx.ASGITransport(app=bw.app), base_url="http://test")
    async with other:
        other_csrf = await bw.sign_in(other, 1)
    assert other_csrf != csrf
    res = await client.post(f"/board/orders/{ids['HZ-DES']}/move", json={"to": "ordered"},
                            headers={"x-csrf-token": other_csrf})
    assert res.status_code == 403
    out = await client.post("/board/logout", data={"csrf": csrf})
    assert out.status_code == 303 and (await client.get("/board/", headers=HTML)).status_code == 401


async def test_moves_go_through_the_move_use_case(bw: BoardWorld, client: httpx.AsyncClient) -> None:
    ids = await seed(bw)
    await bw.staff("li", "admin")
    csrf = await bw.sign_in(client, 1)
    h = {"x-csrf-token": csrf}
    ok = await client.post(f"/board/orders/{ids['HZ-DES']}/move", json={"to": "ordered"}, headers=h)
    assert ok.status_code == 200 and ok.json()["stage"] == "ordered" and "已下单" in ok.json()["message"]
    api = await client.get(f"/api/orders/{ids['HZ-DES']}", headers={"authorization": f"Bearer {bw.tokens['li']}"})
    assert api.json()["stage"] == "ordered"
    assert api.json()["history"][-1]["by"] == "li"  # audited as the signed-in person
    assert bw.events.published[-1]["kind"] == "moved" and bw.events.published[-1]["order_id"] == ids["HZ-DES"]

    waiting = await client.post(f"/board/orders/{ids['HZ-WAIT']}/move", json={"to": "designing"}, headers=h)
    assert waiting.status_code == 409 and waiting.json()["error"] == "transition_refused"
    assert "等待审批" in waiting.json()["detail"]
    skip = await client.post(f"/board/orders/{ids['GZ-DES']}/move", json={"to": "shipped"}, headers=h)
    assert skip.status_code == 409 and skip.json()["error"] == "invalid_transition" and "已下单" in skip.json()["detail"]
    bad = await client.post(f"/board/orders/{ids['GZ-DES']}/move", json={"to": "x" * 100}, headers=h)
    assert bad.status_code == 422
    assert (await client.post("/board/orders/99999/move", json={"to": "ordered"}, headers=h)).status_code == 404


async def test_approving_in_the_drawer_edits_the_chat_cards(bw: BoardWorld, client: httpx.AsyncClient) -> None:
    ids = await seed(bw)
    mgr = await bw.staff("zhao", "manager", ["华东"], tg="501")
    outsider = await bw.staff("chen", "manager", ["华南"], tg="502")
    await bw.world.drain()  # the request card reaches zhao's chat
    assert bw.channel.texts_to("501")
    # chen (华南) is refused exactly as the chat button would refuse him
    other = httpx.AsyncClient(transport=httpx.ASGITransport(app=bw.app), base_url="http://test")
    async with other:
        ocsrf = await bw.sign_in(other, outsider)
        refused = await other.post("/board/approvals/1/decision", json={"decision": "approve"},
                                   headers={"x-csrf-token": ocsrf})
    assert refused.status_code == 403 and refused.json()["error"] == "not_allowed"
    csrf = await bw.sign_in(client, mgr)
    drawer = (await client.get(f"/board/orders/{ids['HZ-WAIT']}", headers=HTML)).text
    assert 'class="decide" data-approval="1"' in drawer and "同意" in drawer
    no_reason = await client.post("/board/approvals/1/decision", json={"decision": "reject"},
                                  headers={"x-csrf-token": csrf})
    assert no_reason.status_code == 422
    res = await client.post("/board/approvals/1/decision", json={"decision": "approve"}, headers={"x-csrf-token": csrf})
    assert res.status_code == 200 and res.json()["outcome"] == "approved"
    assert bw.channel.updates, "the request card in chat was edited"
    assert "zhao" in bw.channel.updates[-1][1].as_text()
    detail = await bw.runtime.app_services().api.orders.get(str(ids["HZ-WAIT"]))
    assert detail.order.stage.value == "designing" and detail.order.history[-1].actor == "zhao"
    again = await client.post("/board/approvals/1/decision", json={"decision": "approve"},
                              headers={"x-csrf-token": csrf})
    assert again.status_code == 409


async def test_drawer_shows_history_notes_tracking_and_why(bw: BoardWorld, client: httpx.AsyncClient) -> None:
    oid = await bw.order("SF-1", stage="shipped", tracking={"carrier": "sf", "waybill": "SF123", "status": "in_transit",
                                                            "events": [{"at": "2025-11-11", "text": "已揽收"}]})
    # the decisions intake stores (compact form, with its inputs): the drawer re-derives their explanation
    from sqlalchemy import update

    from engine.rules import Facts, evaluate
    from storage.models import OrderRow

    api = bw.app.state.services.api
    order = (await api.orders.get(str(oid), with_history=False)).order
    stored = evaluate(order, Facts(), bw.runtime.current_rules(), bw.clock.now()).to_json(trace=False)
    async with bw.runtime.db.begin() as conn:
        await conn.execute(update(OrderRow.__table__).where(OrderRow.__table__.c.id == oid).values(
            decisions=stored, rules_version=stored["rules_version"]))
    await bw.staff("li", "admin")
    csrf = await bw.sign_in(client, 1)
    note = await client.post(f"/board/orders/{oid}/notes", json={"text": "物流延迟，快递三天没有更新"},
                             headers={"x-csrf-token": csrf})
    assert note.status_code == 201 and note.json()["category"] == "logistics_delay"
    drawer = (await client.get(f"/board/orders/{oid}", headers=HTML)).text
    assert "物流延迟，快递三天没有更新" in drawer and "SF123" in drawer and "已揽收" in drawer
    assert "规则判定" in drawer and "流转记录" in drawer
    assert "订单 SF-1（天猫） 的规则判定" in drawer and "命中" in drawer  # engine.rules.explain's lines
    assert (await client.post(f"/board/orders/{oid}/notes", json={"text": ""},
                              headers={"x-csrf-token": csrf})).status_code == 422


async def test_board_command_in_chat_answers_with_a_working_link(bw: BoardWorld, client: httpx.AsyncClient) -> None:
    from board.auth import BoardAuth
    from handlers.dispatch import handle_event
    from storage.board_repo import RedisNonces

    await bw.staff("li", "admin", tg="601")
    await bw.staff("wang", "customer", tg="602")
    bw.world.ctx.login_links = BoardAuth(bw.board.state.board.auth.key, RedisNonces(bw.runtime.redis),
                                         "https://oh.example")  # as bot.wiring.chat builds it
    await handle_event(CommandReceived(Sender("telegram", "602", "602"), "board", ()), bw.world.ctx)
    assert "/board/login" not in bw.channel.texts_to("602")[-1]
    await handle_event(CommandReceived(Sender("telegram", "601", "601"), "board", ()), bw.world.ctx)
    text = bw.channel.texts_to("601")[-1]
    url = re.search(r"https://oh\.example/board/login\?t=\S+", text)
    assert url and "10" in text
    token = parse_qs(urlparse(url.group(0)).query)["t"][0]
    assert (await client.post("/board/login", data={"t": token})).status_code == 303


async def test_events_reach_subscribers_of_another_process(runtime, db, rules) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from storage.board_repo import RedisBoardEvents
    from tests.board.conftest import build_board_world

    bw = await build_board_world(runtime, db, rules, real_events=True)
    oid = await bw.order("EV-1", stage="designing")
    await bw.staff("li", "admin")
    other_process = RedisBoardEvents(runtime.redis)
    stream = other_process.subscribe()
    first = asyncio.ensure_future(stream.__anext__())
    await asyncio.sleep(0.2)  # subscribed
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=bw.app), base_url="http://test") as client:
        csrf = await bw.sign_in(client, 1)
        await client.post(f"/board/orders/{oid}/move", json={"to": "ordered"}, headers={"x-csrf-token": csrf})
    event = await asyncio.wait_for(first, 10)
    while event.get("kind") == "ping":
        event = await asyncio.wait_for(stream.__anext__(), 20)
    assert event["kind"] == "moved" and event["order_id"] == oid and event["region"] == "华东"
    await stream.aclose()


async def test_api_moves_are_published_to_the_board(bw: BoardWorld, client: httpx.AsyncClient) -> None:
    """A move made outside the board (the staff API) reaches the boards too (bot.wiring.board.PublishingOrders)."""
    published: list[dict] = []

    async def record(event: dict) -> None:
        published.append(event)

    oid = await bw.order("API-1", stage="designing")
    await bw.staff("li", "admin")
    api = bw.app.state.services.api
    api.orders.events.publish = record
    res = await client.post(f"/api/orders/{oid}/transition", json={"to": "ordered"},
                            headers={"authorization": f"Bearer {bw.tokens['li']}"})
    assert res.status_code == 200
    assert published == [{"kind": "moved", "order_id": oid, "stage": "ordered", "region": "华东", "by": "li"}]


async def test_the_last_column_completes_an_order(bw: BoardWorld, client: httpx.AsyncClient) -> None:
    oid = await bw.order("INST-1", stage="awaiting_install")
    await bw.staff("li", "admin")
    csrf = await bw.sign_in(client, 1)
    page = (await client.get("/board/", headers=HTML)).text
    assert 'data-move="completed"' in page
    res = await client.post(f"/board/orders/{oid}/move", json={"to": "completed"}, headers={"x-csrf-token": csrf})
    assert res.status_code == 200 and res.json()["stage"] == "completed"
    assert "INST-1" not in (await client.get("/board/", headers=HTML)).text


async def test_a_cross_site_login_post_and_an_outage_are_clear_refusals(bw: BoardWorld,
                                                                          client: httpx.AsyncClient) -> None:
    uid = await bw.staff("li", "admin")
    token = parse_qs(urlparse(await bw.link(uid)).query)["t"][0]
    cross = await client.post("/board/login", data={"t": token}, headers={"origin": "https://evil.example"})
    assert cross.status_code == 403
    assert (await client.post("/board/login", data={"t": token}, headers={"origin": "http://test"})).status_code == 303

    async def down(*_: object, **__: object) -> None:
        raise ConnectionError("database is away")

    bw.board.state.board.source.counts = down  # type: ignore[method-assign]
    page = await client.get("/board/", headers=HTML)
    assert page.status_code == 503 and "暂时不可用" in page.text
    frag = await client.get("/board/columns")
    assert frag.status_code == 503 and frag.json()["error"] == "unavailable"


async def test_a_refund_being_handled_shows_its_badge(bw: BoardWorld, client: httpx.AsyncClient) -> None:
    """↩ while a refund of the order is open; a rejected or paid refund leaves no badge."""
    from storage.models import RefundRow

    open_id = await bw.order("HZ-REFUND", city="杭州", stage="designing")
    done_id = await bw.order("HZ-REFUSED", city="杭州", stage="designing")
    now = bw.clock.now()
    async with bw.world.engine.begin() as conn:
        for oid, state in ((open_id, "waiting_proof"), (done_id, "rejected")):
            await conn.execute(RefundRow.__table__.insert().values(
                order_id=oid, source="api", source_ref=None, amount=100, reason="x", items=[], state=state,
                rule_id=None, decision={}, requested_by="user:1", requested_at=now, decided_at=None,
                automatic=False, approval_id=None, proof=None, updated_at=now))
    await bw.staff("li", "admin")
    await bw.sign_in(client, 1)
    page = (await client.get("/board/", headers=HTML)).text
    cards = dict(re.findall(r'data-number="([^"]+)"(.*?)</li>', page, re.S))
    assert "退款中" in cards["HZ-REFUND"] and "退款中" not in cards["HZ-REFUSED"]
    # the drawer lists the order's refunds with their state
    drawer = (await client.get(f"/board/orders/{open_id}", headers=HTML)).text
    section = re.search(r'<section class="refunds">.*?</section>', drawer, re.S).group(0)
    assert "退款" in section and "#1 · ¥100.00 · <strong>待退货凭证</strong> · user:1 · x" in section
    assert "已拒绝" in (await client.get(f"/board/orders/{done_id}", headers=HTML)).text
    plain = await bw.order("HZ-PLAIN", city="杭州", stage="designing")
    assert 'class="refunds"' not in (await client.get(f"/board/orders/{plain}", headers=HTML)).text
