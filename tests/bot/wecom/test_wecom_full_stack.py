"""The whole chat path on WeCom as `orderhub serve` wires it (bot/processes/chat_runtime.py), wechatpy against the
stand-in:

intake webhook → queue → worker → approval row + outbox → notifier → message/send (one template card, the right
manager's userid) → template_card_event, encrypted, on /webhooks/wecom → event queue → consumer → decision →
message/update_template_card. Plus commands, /link and a customer query over the same path.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine
from wechatpy.enterprise.crypto import WeChatCrypto

from bot.processes.asgi import create_asgi_app
from bot.processes.chat_runtime import WORKER, ChatRuntime
from bot.platforms.inbound.consumer import InboundConsumer
from bot.settings import Settings
from bot.wiring.runtime import Runtime
from storage.chat_repo import SqlChatRepo
from storage.models import ApprovalRow, ChatIdentityRow, OrderRow, UserRow
from tests.bot.stack_support import OrderStack, one_row
from tests.bot.wecom.test_wecom_callback import AES_KEY, TOKEN, click_xml, encrypted, message_xml
from tests.standins.wecom_api import AGENT_ID, WecomStandIn

_times = itertools.count(1731290000)
_msg_ids = itertools.count(1)


@dataclass
class Stack(OrderStack):
    api: WecomStandIn
    crypto: WeChatCrypto
    card_id = "task_id"

    async def _callback(self, plain: str) -> None:
        query, body = encrypted(self.crypto, plain)
        assert (await self.client.post(f"/webhooks/wecom?{query}", content=body)).status_code == 200

    async def click(self, user: str, card: dict[str, Any], button: int = 0, key: str | None = None) -> None:
        task_id = card["task_id"]
        key = key or card["button_list"][button]["key"]
        await self._callback(click_xml(user, key, task_id, self.api.click_code(task_id), at=next(_times)))

    async def say(self, user: str, text: str) -> None:
        await self._callback(message_xml(user, text, next(_msg_ids)))

    async def drain(self) -> int:
        wecom = self.chat.platform("wecom")
        assert wecom is not None
        return await wecom.consumer(self.chat.core.handle, "c1").drain()

    def cards(self) -> list[dict[str, Any]]:
        return [{**c["template_card"], "touser": c["touser"]} for c in self.api.ok_calls("message/send")
                if c["msgtype"] == "template_card"]

    def texts(self, user: str) -> list[str]:
        return [c["text"]["content"] for c in self.api.ok_calls("message/send")
                if c["msgtype"] == "text" and c["touser"] == user]


@pytest.fixture
async def stack(settings: Settings, db: AsyncEngine, wecom_api: WecomStandIn) -> AsyncIterator[Stack]:
    s = settings.model_copy(update={
        "wecom_corp_id": wecom_api.corp_id, "wecom_agent_id": str(AGENT_ID),
        "wecom_secret": SecretStr(wecom_api.secret), "wecom_token": SecretStr(TOKEN),
        "wecom_aes_key": SecretStr(AES_KEY), "wecom_api_url": wecom_api.url})
    runtime = Runtime.build(s)
    await runtime.start_rules(watch=False)
    chat = ChatRuntime.build(runtime)
    assert chat.platform("wecom") is not None and "wecom" in chat.core.ctx.channels
    now = runtime.clock.now()
    for name, region, userid in (("东区经理", "华东", "dong1"), ("东区副经理", "华东", "dong2"),
                                 ("南区经理", "华南", "nan1")):
        await runtime.users.add(name, "manager", [region], None, None, now)
        await runtime.users.link(name, "wecom", userid, now)
    app = create_asgi_app(runtime, chat.routers)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield Stack(runtime, chat, client, wecom_api, WeChatCrypto(TOKEN, AES_KEY, wecom_api.corp_id))
    await chat.close()
    await runtime.close()


async def test_big_order_yields_one_card_to_its_manager_and_a_click_decides_it(stack: Stack,
                                                                               db: AsyncEngine) -> None:
    await stack.post_order(1, "8600.00", "广州")  # 华南: one manager there
    [card] = stack.cards()
    assert card["touser"] == "nan1" and card["card_type"] == "button_interaction"
    shown = "\n".join([card["main_title"]["title"], *stack.texts("nan1"),
                       *(f"{r['keyname']}: {r['value']}" for r in card.get("horizontal_content_list", []))])
    assert "G00000001" in shown and "¥8,600.00" in shown and "广州 (华南)" in shown and "138****0001" in shown
    await stack.chat.core.notifier.run_once()  # a second sweep sends nothing new
    assert len(stack.cards()) == 1

    await stack.click("dong1", card)  # 华东's manager on the 华南 card: refused, nothing changes
    assert await stack.drain() == 1
    assert stack.texts("dong1") == ["无权审批此订单"]  # the "toast", as a short message
    order = await one_row(db, OrderRow, OrderRow.external_id == "G00000001")
    assert order.stage == "pending_confirm"
    assert stack.api.ok_calls("message/update_template_card") == []

    await stack.click("nan1", card)
    assert await stack.drain() == 1
    order = await one_row(db, OrderRow, OrderRow.external_id == "G00000001")
    approval = await one_row(db, ApprovalRow, ApprovalRow.order_id == order.id)
    assert (order.stage, approval.status) == ("designing", "approved")
    [edit] = stack.api.ok_calls("message/update_template_card")
    assert edit["userids"] == ["nan1"] and edit["template_card"]["task_id"] == card["task_id"]
    status = edit["template_card"]["main_title"].get("desc", "") + edit["template_card"].get("sub_title_text", "")
    assert "已批准" in status and "南区经理" in status
    assert card["button_list"][0]["key"] not in [b["key"] for b in edit["template_card"]["button_list"]]


async def test_both_copies_of_a_card_are_edited_after_one_decision(stack: Stack, db: AsyncEngine) -> None:
    await stack.post_order(2, "12000.00", "杭州")  # 华东: two managers get a copy each
    cards = {c["touser"]: c for c in stack.cards()}
    assert sorted(cards) == ["dong1", "dong2"]
    await stack.click("dong2", cards["dong2"])
    assert await stack.drain() == 1
    await stack.chat.core.notifier.run_once()
    edited = {e["userids"][0] for e in stack.api.ok_calls("message/update_template_card")}
    assert edited == {"dong1", "dong2"}  # dong1's copy with the send's code, dong2's with the click's


async def test_forged_token_changes_nothing_and_says_why(stack: Stack, db: AsyncEngine) -> None:
    await stack.post_order(3, "9000.00", "广州")
    [card] = stack.cards()
    real = card["button_list"][0]["key"]
    await stack.click("nan1", card, key=real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB"))
    assert await stack.drain() == 1
    order = await one_row(db, OrderRow, OrderRow.external_id == "G00000003")
    assert order.stage == "pending_confirm"
    assert stack.texts("nan1")[-1] == "无效的按钮（签名不符）"
    assert stack.api.ok_calls("message/update_template_card") == []


async def test_commands_link_and_customer_queries_work_on_wecom(stack: Stack, db: AsyncEngine) -> None:
    await stack.post_order(4, "3000.00", "广州")  # auto-confirmed: no card
    await stack.say("nan1", "/help")
    await stack.say("nan1", "/order G00000004")
    await stack.say("nan1", "/find G00000004")
    await stack.say("nan1", "/pending")
    await stack.say("nan1", "/stalled")
    user = await stack.runtime.users.add("新同事", "supply_chain", [], None, None, stack.runtime.clock.now())
    code = await SqlChatRepo(db).create_link_code(user[0].id, stack.runtime.clock.now(), timedelta(days=3))
    await stack.say("xintongshi", f"/link {code}")
    await stack.say("kehu", "G00000004 0004")  # a customer: order number + last 4 digits
    assert await stack.drain() == 7
    help_text, order_text, find_text, pending_text, stalled_text = stack.texts("nan1")[:5]
    assert "/order" in help_text and "G00000004" in order_text and "G00000004" in find_text
    assert pending_text == "没有等待您审批的订单。" and stalled_text == "没有超时订单。"
    assert stack.texts("xintongshi")[0].startswith("绑定成功：新同事")
    ident = await one_row(db, ChatIdentityRow, ChatIdentityRow.external_id == "xintongshi")
    assert (ident.platform, ident.chat_id) == ("wecom", "xintongshi")
    assert any("G00000004" in x for x in stack.texts("kehu"))


async def test_start_asks_a_customer_for_order_number_not_a_contact(stack: Stack) -> None:
    await stack.say("kehu2", "/start")
    assert await stack.drain() == 1
    [text] = stack.texts("kehu2")
    assert "订单号 手机后四位" in text and "分享手机号”按钮" not in text


async def test_the_consumer_is_the_one_the_runtime_runs(stack: Stack) -> None:
    wecom = stack.chat.platform("wecom")
    assert wecom is not None
    consumer = wecom.consumer(stack.chat.core.handle)
    assert isinstance(consumer, InboundConsumer) and consumer.queue.stream == "orderhub:wecom:events"
    assert [r.path for router in stack.chat.routers for r in router.routes] == ["/webhooks/wecom"] * 2


async def test_reject_asks_for_a_reason_and_the_next_message_is_it(stack: Stack, db: AsyncEngine) -> None:
    await stack.post_order(5, "9900.00", "广州")
    [card] = stack.cards()
    await stack.click("nan1", card, button=1)  # Reject
    assert await stack.drain() == 1
    assert any("原因" in x for x in stack.texts("nan1"))  # the prompt, as plain text
    await stack.say("nan1", "价格有误")
    assert await stack.drain() == 1
    order = await one_row(db, OrderRow, OrderRow.external_id == "G00000005")
    approval = await one_row(db, ApprovalRow, ApprovalRow.order_id == order.id)
    assert (order.stage, approval.status, approval.reason) == ("cancelled", "rejected", "价格有误")
    [edit] = stack.api.ok_calls("message/update_template_card")
    assert "价格有误" in str(edit["template_card"])


async def test_a_worker_process_consumes_wecom_callbacks(stack: Stack) -> None:
    stop = asyncio.Event()
    await stack.chat.start(WORKER, stop)
    assert [t.get_name() for t in stack.chat.tasks] == ["wecom"]
    await stack.say("nan1", "/help")
    for _ in range(200):
        if stack.texts("nan1"):
            break
        await asyncio.sleep(0.05)
    stop.set()
    assert "/order" in stack.texts("nan1")[0]


async def test_advance_on_a_stall_card_never_bypasses_the_pending_approval(stack: Stack, db: AsyncEngine) -> None:
    """Issue 8 #1 on WeCom: Advance on the stall card of an 8,000 order waiting for approval is refused with the
    reason, the order stays, and the approval still decides it."""
    approval_card, order, stall_card = await stack.stall_awaiting_approval(db, 40, "8000.00", "广州")
    assert stall_card["touser"] == "nan1"
    advance = next(b["key"] for b in stall_card["button_list"] if b["text"] == "推进阶段")

    await stack.click("nan1", stall_card, key=advance)
    assert await stack.drain() == 1
    assert stack.texts("nan1")[-1] == "无法推进：订单正在等待审批，只能由审批决定"
    order = await one_row(db, OrderRow, OrderRow.id == order.id)
    assert order.stage == "pending_confirm"
    assert (await one_row(db, ApprovalRow, ApprovalRow.order_id == order.id)).status == "pending"

    await stack.click("nan1", approval_card)  # the approval still decides it
    assert await stack.drain() == 1
    order = await one_row(db, OrderRow, OrderRow.id == order.id)
    assert order.stage == "designing"
    assert (await one_row(db, ApprovalRow, ApprovalRow.order_id == order.id)).status == "approved"


async def test_assign_from_a_stall_card(stack: Stack, db: AsyncEngine) -> None:
    """Issue 10's left-over on WeCom: 指派负责人 on the stall card of an order nobody owns, a person from the menu
    card, the order is theirs and the menu card is edited to say so."""
    _approval, order, stall_card = await stack.stall_awaiting_approval(db, 41, "8000.00", "广州")
    await stack.runtime.users.add("南跟单", "supply_chain", ["华南"], None, None, stack.runtime.clock.now())
    assign = next(b["key"] for b in stall_card["button_list"] if b["text"] == "指派负责人")
    await stack.click("nan1", stall_card, key=assign)
    assert await stack.drain() == 1
    menu = stack.cards()[-1]
    assert menu["touser"] == "nan1" and menu["main_title"]["title"] == "指派 generic:G00000041 的负责人"
    assert [b["text"] for b in menu["button_list"]] == ["南跟单（0 单）", "南区经理（0 单）"]

    await stack.click("nan1", menu, key=menu["button_list"][0]["key"])
    assert await stack.drain() == 1
    assert stack.texts("nan1")[-1] == "已指派给 南跟单"  # WeCom has no toasts: a short message
    [edit] = stack.api.ok_calls("message/update_template_card")  # its buttons give way to what was done
    assert edit["userids"] == ["nan1"] and "template_card" not in edit
    assert edit["button"]["replace_name"].startswith("✅") and stack.api.cards[menu["task_id"]]["replaced"]
    person = await one_row(db, UserRow, UserRow.name == "南跟单")
    assert (await one_row(db, OrderRow, OrderRow.id == order.id)).owner_user_id == person.id
