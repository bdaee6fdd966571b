"""Every place a refund can start — the HTTP API, the CLI, the customer in chat (text and button), and the Taobao
refund push through its queue — goes through `handlers.refunds.request_refund`, so the rules' matrix decides the same
three situations the same way whichever door the request came through: not shipped → approved, shipped 2 days ago →
waiting for the return proof, delivered 20 days ago → refused (with the after-sales contact)."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.wiring.chat import build_chat_core
from bot.wiring.runtime import Runtime
from engine.refunds import RefundState
from handlers.chat import ButtonPressed, Sender, TextReceived
from handlers.orders import transition
from storage.chat_repo import SqlChatRepo
from storage.orders_repo import SqlOrders
from tests.bot.test_cli_users import cli, env  # noqa: F401 - the fixture
from tests.chatfake import FakeChannel
from tests.conftest import SECRETS
from tests.factories import order_json, signed
from tests.webhooks.test_api import add_user, seed

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = {  # situation → (state, the matrix row that decided)
    "unshipped": (RefundState.APPROVED, "refund-not-shipped"),
    "in_transit": (RefundState.WAITING_PROOF, "refund-in-transit"),
    "late": (RefundState.REJECTED, "refund-after-7d"),
}
CUSTOMER = "4242"


async def _orders(client: httpx.AsyncClient, runtime: Runtime) -> dict[str, str]:
    """One order per situation (external id → situation), moved through the one move use case at past times."""
    await seed(client, runtime, [order_json(i, amount=Decimal("900.00")) for i in (1, 2, 3)])
    now, repo, rules = datetime.now(UTC), SqlOrders(runtime.db), runtime.current_rules()
    paths = {"G00000002": [("ordered", 5), ("in_production", 4), ("shipped", 2)],
             "G00000003": [("ordered", 30), ("in_production", 28), ("shipped", 24), ("awaiting_install", 20)]}
    for ext, moves in paths.items():
        for stage, days in moves:
            await transition(repo, rules, f"generic:{ext}", stage, "", "ops", now - timedelta(days=days))
    return {"G00000001": "unshipped", "G00000002": "in_transit", "G00000003": "late"}


async def _decided(runtime: Runtime, situations: dict[str, str]) -> dict[str, tuple[RefundState, str | None]]:
    out = {}
    for ext, situation in situations.items():
        detail = await SqlOrders(runtime.db).get(f"generic:{ext}", with_history=False)
        assert detail is not None
        [refund] = await runtime.refund_deps().refunds.of_order(detail.order.id)
        out[situation] = (refund.state, refund.rule_id)
    return out


async def _chat(runtime: Runtime, db: AsyncEngine, situations: dict[str, str], *, button: bool) -> FakeChannel:
    channel = FakeChannel("telegram")
    core = build_chat_core(db, runtime.redis, {"telegram": channel}, runtime.clock, runtime.current_rules,
                           token_key=b"k", refunds=runtime.refund_deps())
    me = Sender("telegram", CUSTOMER, CUSTOMER)
    for ext in situations:
        detail = await SqlOrders(db).get(f"generic:{ext}", with_history=False)
        assert detail is not None
        await SqlChatRepo(db).grant_order_access("telegram", CUSTOMER, CUSTOMER, detail.order.id, runtime.clock.now())
        if not button:
            await core.handle(TextReceived(me, f"我要退款 {ext} 不想要了"))
            continue
        await core.handle(TextReceived(me, f"{ext} 到哪了"))
        card = channel.to(CUSTOMER)[-1].message.card
        if card is None:  # no button: the matrix would refuse — the text path asks, and is refused the same way
            assert situations[ext] == "late"
            await core.handle(TextReceived(me, f"我要退款 {ext} 不想要了"))
            continue
        await core.handle(ButtonPressed(me, card.buttons[0].token, "cb"))
        reasons = channel.to(CUSTOMER)[-1].message.card
        assert reasons is not None
        await core.handle(ButtonPressed(me, reasons.buttons[0].token, "cb"))
    await core.close()
    return channel


@pytest.mark.parametrize("entry", ["api", "cli", "chat_text", "chat_button", "taobao_push"])
async def test_every_entry_point_is_decided_by_the_same_matrix(entry: str, client: httpx.AsyncClient,
                                                               runtime: Runtime, db: AsyncEngine,
                                                               env: dict[str, str]) -> None:  # noqa: F811
    situations = await _orders(client, runtime)
    if entry == "api":
        auth = {"Authorization": f"Bearer {await add_user(runtime, 'ops', 'admin')}"}
        for ext in situations:
            r = await client.post(f"/api/orders/generic:{ext}/refunds", json={"reason": "不想要了"}, headers=auth)
            assert r.status_code == 201, r.text
    elif entry == "cli":
        assert (await cli(env, "users", "add", "ops", "--role", "admin")).exit_code == 0
        for ext in situations:
            out = await cli(env, "refunds", "request", f"generic:{ext}", "--as", "ops", "--reason", "不想要了")
            assert out.exit_code == 0, out.output
    elif entry in ("chat_text", "chat_button"):
        channel = await _chat(runtime, db, situations, button=entry == "chat_button")
        assert len(channel.texts_to(CUSTOMER)) >= 3  # each request answered in the chat it came from
    else:
        for n, ext in enumerate(situations):
            body = {"refund_id": f"R{n}", "tid": ext, "oid": f"O{n}", "refund_fee": "900.00",
                    "has_good_return": False, "reason": "不想要了", "status": "WAIT_SELLER_AGREE"}
            raw, headers = signed(SECRETS["tmall"], body)
            assert (await client.post("/webhooks/refunds/taobao", content=raw, headers=headers)).status_code == 202
        assert (await runtime.refund_worker().run(burst=True)).stored == 3
    assert await _decided(runtime, situations) == EXPECTED


def test_only_the_refund_use_case_creates_refunds() -> None:
    """Nothing but handlers/refunds.py stores a new refund (`save(..., expected=None)`), and every entry module
    calls `request_refund`: a new door cannot bypass the matrix."""
    creators, callers = [], set()
    for d in ("bot", "webhooks", "board", "storage", "handlers"):
        for path in (ROOT / d).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                name = ast.unparse(node.func)
                if name.endswith(".save") and any(k.arg == "expected" and ast.unparse(k.value) == "None"
                                                  for k in node.keywords):
                    creators.append(str(path.relative_to(ROOT)))
                if name == "request_refund":
                    callers.add(str(path.relative_to(ROOT)))
    assert set(creators) == {"handlers/refunds.py"}
    assert callers == {"webhooks/refunds_api.py", "bot/cli/refunds.py", "handlers/refund_chat.py",
                       "bot/workers/refunds.py"}
