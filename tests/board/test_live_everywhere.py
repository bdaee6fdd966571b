"""Issue 16: every stored move and decision reaches open boards, whatever its entry point. Each test opens a board
(the real app's `/board/events`, tests/board/sse.py) and acts through another door: a Telegram button press on the
stand-in, a stall card's Advance, `orderhub approvals approve`, a carrier's delivery push."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.processes.asgi import create_asgi_app
from bot.settings import Settings
from bot.wiring.runtime import Runtime
from handlers.stalls import scan_stalls
from storage.models import ApprovalRow, OrderRow
from tests.board.sse import board_feed
from tests.bot.carriers.test_tracking_flow import (  # noqa: F401 - fixtures
    api, in_production, push, rt, settings, standin)
from tests.bot.conftest import telegram_api  # noqa: F401 - the fixture
from tests.bot.telegram.test_telegram_full_stack import Stack, _button, telegram_stack
from tests.bot.test_cli_approvals import _setup
from tests.bot.test_cli_users import cli, env  # noqa: F401 - the fixture
from tests.standins import carriers as c
from tests.standins.telegram_api import TelegramStandIn

ORDERS, APPROVALS = OrderRow.__table__, ApprovalRow.__table__


async def _admin(runtime: Runtime, name: str = "看板") -> int:
    user, _token = await runtime.users.add(name, "admin", [], None, None, datetime.now(UTC))
    return user.id


async def _order_id(db: AsyncEngine, external_id: str) -> int:
    async with db.connect() as conn:
        return (await conn.execute(select(ORDERS.c.id).where(ORDERS.c.external_id == external_id))).scalar_one()


@pytest.fixture
async def stack(settings: Settings, db: AsyncEngine,
                telegram_api: TelegramStandIn) -> AsyncIterator[Stack]:  # noqa: F811
    """The chat path as `orderhub serve` wires it (tests/bot/telegram/test_telegram_full_stack.py), board mounted."""
    async with telegram_stack(settings, telegram_api, (("东区经理", "华东", "101"), ("南区经理", "华南", "202")),
                              board=True) as st:
        yield st


async def test_a_telegram_approve_press_reaches_the_board(stack: Stack, db: AsyncEngine) -> None:
    board = await _admin(stack.runtime)
    await stack.post_order(1, "8600.00", "广州")
    [card] = stack.cards()
    oid = await _order_id(db, "G00000001")
    async with board_feed(stack.client._transport.app, stack.runtime, board) as feed:  # type: ignore[attr-defined]
        await stack.press(202, card)
        assert await stack.consumer().drain() == 1
        decided = await feed.until("decided", oid)
        moved = await feed.until("moved", oid)
    assert (decided["status"], decided["by"], decided["region"]) == ("approved", "南区经理", "华南")
    assert (moved["stage"], moved["by"]) == ("designing", "南区经理")


async def test_a_stall_cards_advance_reaches_the_board(stack: Stack, db: AsyncEngine) -> None:
    board = await _admin(stack.runtime)
    await stack.post_order(2, "8600.00", "广州")
    [approval_card] = stack.cards()
    oid = await _order_id(db, "G00000002")
    await stack.press(202, approval_card)  # approved: designing
    assert await stack.consumer().drain() == 1
    async with db.begin() as conn:  # its design deadline passed an hour ago
        await conn.execute(update(ORDERS).where(ORDERS.c.id == oid).values(
            stage_deadline=stack.runtime.clock.now() - timedelta(hours=1)))
    assert await scan_stalls(stack.chat.core.repo, stack.runtime.clock)
    await stack.chat.core.notifier.run_once()
    stall = next(c for c in stack.cards() if c["message_id"] != approval_card["message_id"]
                 and any(b["text"] == "推进阶段" for row in c["reply_markup"]["inline_keyboard"] for b in row))
    async with board_feed(stack.client._transport.app, stack.runtime, board) as feed:  # type: ignore[attr-defined]
        await stack.press(int(stall["chat_id"]), stall, data=_button(stall, "推进阶段"))
        assert await stack.consumer().drain() == 1
        moved = await feed.until("moved", oid)
    assert moved["stage"] == "ordered" and moved["region"] == "华南"


async def test_the_cli_approve_reaches_the_board(env: dict[str, str], client: httpx.AsyncClient,  # noqa: F811
                                                 runtime: Runtime) -> None:
    aid = await _setup(client, runtime, 7)
    async with runtime.db.connect() as conn:
        oid = (await conn.execute(select(APPROVALS.c.order_id).where(APPROVALS.c.id == aid))).scalar_one()
    board = await _admin(runtime)
    async with board_feed(create_asgi_app(runtime), runtime, board) as feed:
        ok = await cli(env, "approvals", "approve", str(aid), "--as", "east2")
        assert ok.exit_code == 0, ok.output
        decided = await feed.until("decided", oid)
        moved = await feed.until("moved", oid)
    assert decided["approval_id"] == aid and decided["by"] == "east2"
    assert moved["stage"] == "designing"


async def test_a_carrier_delivery_push_reaches_the_board(rt: Runtime, api: httpx.AsyncClient) -> None:  # noqa: F811
    order_id = await in_production(rt, api, 3)
    r = await api.post(f"/api/orders/{order_id}/ship", json={"carrier": "sf"})
    assert r.status_code == 200, r.text
    waybill = r.json()["waybill"]
    board = await _admin(rt)
    async with board_feed(create_asgi_app(rt), rt, board) as feed:
        delivered = [c.sf_route(waybill, "2026-12-02 10:00:00", "80", "已签收", "广州天河")]
        assert (await push(api, "sf", c.push_form_sf(delivered))).status_code == 200
        await rt.tracking_worker().run(burst=True)
        moved = await feed.until("moved", order_id)
    assert (moved["stage"], moved["by"]) == ("awaiting_install", "carrier:sf")


async def test_a_publish_failure_never_fails_the_move(runtime: Runtime, client: httpx.AsyncClient) -> None:
    """Redis pub/sub away: the move is stored and answered; the board reloads on reconnect."""
    from tests.webhooks.test_api import add_user, seed
    from tests.factories import order_json

    token = await add_user(runtime, "ops", "admin", [])
    await seed(client, runtime, [order_json(8, amount=Decimal("100.00"), city="杭州")])
    oid = await _order_id(runtime.db, "G00000008")

    class Broken:
        async def publish(self, event: dict) -> None:
            raise ConnectionError("redis is away")

    client_app = client._transport.app  # type: ignore[attr-defined]
    client_app.state.services.api.orders.events = Broken()
    async with runtime.db.connect() as conn:
        stage = (await conn.execute(select(ORDERS.c.stage).where(ORDERS.c.id == oid))).scalar_one()
    nxt = {"pending_confirm": "designing", "designing": "ordered"}[stage]
    res = await client.post(f"/api/orders/{oid}/transition", json={"to": nxt},
                            headers={"authorization": f"Bearer {token}"})
    assert res.status_code == 200, res.text
    async with runtime.db.connect() as conn:
        assert (await conn.execute(select(ORDERS.c.stage).where(ORDERS.c.id == oid))).scalar_one() == nxt


def test_board_refusals_follow_the_use_cases_codes_not_its_words() -> None:
    """board/app.py maps `MoveRefused.code`: rewording a refusal's sentence changes nothing on the board."""
    from board.app import _refusal
    from board.text import bt
    from handlers.orders import MoveRefused

    for code, key in (("awaiting_approval", "refused.approval"), ("changed", "refused.changed"),
                      ("reason_required", "refused.reason")):
        for lang in ("zh", "en"):
            assert _refusal(MoveRefused(code, "reworded entirely"), lang) == bt(key, lang)
    assert _refusal(MoveRefused("something new about an approval"), "en") == "something new about an approval"
