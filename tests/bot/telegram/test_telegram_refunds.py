"""Refunds end to end on the Telegram stand-in, through our webhook route, the update queue and the real
python-telegram-bot client: an unshipped order's refund approved in one message; a shipped order's refund asks for
proof, the photo is fetched with getFile, read, confirmed by the carrier and approved; a refund over 2,000 goes to
finance's card and finance's button approves it; bad files are refused with a clear message and nothing stored."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.settings import BUNDLED_RULES
from bot.platforms.telegram.channel import TelegramChannel
from bot.platforms.telegram.runner import SECRET_HEADER, UpdateConsumer
from engine.refunds import RefundState, ReturnStatus
from engine.rules import RuleSet, load_rules
from handlers.refunds import RefundDeps, follow_ups
from storage.models import StageTransitionRow
from storage.proof_files import ProofDirectory
from storage.refunds_repo import SqlRefunds
from tests.bot.telegram.conftest import webhook_route
from tests.chatfake import FakeTime
from tests.handlers.conftest import T0, Clock, World, make_world
from tests.standins.telegram_api import TelegramStandIn, parse_html

SECRET = "refund-secret"
CUSTOMER = 4242
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 300


class FakeOcr:
    def __init__(self, text: str = "顺丰速运 SF1234567890123") -> None:
        self.text = text

    async def read(self, data: bytes) -> str:
        return self.text


class FakeTracker:
    carriers = ("sf", "deppon")

    async def status(self, carrier: str, waybill: str) -> ReturnStatus | None:
        return ReturnStatus("in_transit", True) if waybill == "SF1234567890123" else None


@pytest.fixture
async def tg(db: AsyncEngine, channel: TelegramChannel, redis: aioredis.Redis, tmp_path: Path
             ) -> AsyncIterator[tuple[World, httpx.AsyncClient, UpdateConsumer, RefundDeps]]:
    rules: RuleSet = load_rules(BUNDLED_RULES.read_text(encoding="utf-8"), str(BUNDLED_RULES))
    clock = Clock(T0)
    w = make_world(db, rules, channel, clock, FakeTime(clock=clock))
    repo = SqlRefunds(db)
    deps = RefundDeps(repo, repo, lambda: rules, ProofDirectory(tmp_path / "proofs"), FakeOcr(), FakeTracker(),
                      w.notifier, after_sales="400-800-1234")
    w.ctx.refunds = deps
    w.ctx.follow_ups = follow_ups(deps)
    async with webhook_route(redis, channel, w.ctx, SECRET, "e2e") as (client, consumer):
        yield w, client, consumer, deps


_ids = iter(range(20_000, 30_000))


def _message(user_id: int, **content: Any) -> dict[str, Any]:
    return {"update_id": next(_ids), "message": {
        "message_id": next(_ids), "date": 1731290000, "from": {"id": user_id, "is_bot": False, "first_name": "王"},
        "chat": {"id": user_id, "type": "private", "first_name": "王"}, **content}}


async def _post(client: httpx.AsyncClient, consumer: UpdateConsumer, update: dict[str, Any]) -> None:
    r = await client.post("/webhooks/telegram", json=update, headers={SECRET_HEADER: SECRET})
    assert r.status_code == 200
    assert await consumer.drain() == 1


def _said_to(api: TelegramStandIn, chat: int) -> list[str]:
    return [parse_html(m["text"]) for m in api.ok_calls("sendMessage") if str(m["chat_id"]) == str(chat)]


async def _customer_order(w: World, ext: str, *, amount: str, stage: str, shipped_days_ago: float | None = None
                          ) -> int:
    oid = await w.order(ext, amount=amount, stage=stage)
    if shipped_days_ago is not None:
        async with w.engine.begin() as conn:
            await conn.execute(insert(StageTransitionRow.__table__).values(
                order_id=oid, at=w.clock.now() - timedelta(days=shipped_days_ago), from_stage="in_production",
                to_stage="shipped", actor="system", reason=""))
    await w.repo.grant_order_access("telegram", str(CUSTOMER), str(CUSTOMER), oid, w.clock.now())
    return oid


async def test_unshipped_order_refund_is_approved_in_one_message(tg, telegram_api: TelegramStandIn):
    w, client, consumer, deps = tg
    oid = await _customer_order(w, "TM20251111-000001", amount="1200.00", stage="designing")
    await _post(client, consumer, _message(CUSTOMER, text="我要退款 TM20251111-000001 不想要了"))
    [said] = _said_to(telegram_api, CUSTOMER)
    assert "已通过" in said and "TM20251111-000001" in said and "1,200.00" in said
    [refund] = await deps.refunds.of_order(oid)
    assert refund.state is RefundState.APPROVED and refund.requested_by == "customer:C-TM20251111-000001"
    assert (await deps.orders.get(str(oid))).order.stage.value == "cancelled"


async def test_shipped_order_asks_for_proof_and_the_photo_approves(tg, telegram_api: TelegramStandIn):
    w, client, consumer, deps = tg
    oid = await _customer_order(w, "TM20251111-000002", amount="1800.00", stage="shipped", shipped_days_ago=2)
    await _post(client, consumer, _message(CUSTOMER, text="我要退款 000002 尺寸不对"))
    [asked] = _said_to(telegram_api, CUSTOMER)
    assert "照片" in asked
    file_id = telegram_api.add_file(JPEG)
    await _post(client, consumer, _message(CUSTOMER, photo=[
        {"file_id": "small", "file_unique_id": "s", "width": 90, "height": 60, "file_size": 100},
        {"file_id": file_id, "file_unique_id": "b", "width": 1200, "height": 900, "file_size": len(JPEG)}]))
    assert [c["file_id"] for c in telegram_api.ok_calls("getFile")] == [file_id]
    said = _said_to(telegram_api, CUSTOMER)
    assert len(said) == 3 and "SF1234567890123" in said[1] and "已通过" in said[2]
    [refund] = await deps.refunds.of_order(oid)
    assert refund.state is RefundState.APPROVED and refund.proof["waybill"] == "SF1234567890123"


@pytest.mark.parametrize("content,file_name,announced", [
    (b"just some text, not a photo", "a.jpg", None),
    (b"%PDF-1.7\n" + b"0" * 500, "waybill.jpg", None),  # a PDF named .jpg
    (JPEG, "huge.jpg", 50 * 1024 * 1024),  # Telegram announces 50 MiB: never downloaded
])
async def test_bad_files_in_chat_are_refused_and_nothing_is_stored(tg, telegram_api: TelegramStandIn, content,
                                                                   file_name, announced):
    w, client, consumer, deps = tg
    oid = await _customer_order(w, "TM20251111-000003", amount="800.00", stage="shipped", shipped_days_ago=1)
    await _post(client, consumer, _message(CUSTOMER, text="我要退款 TM20251111-000003 坏了"))
    file_id = telegram_api.add_file(content)
    doc = {"file_id": file_id, "file_unique_id": "u", "file_name": file_name, "mime_type": "image/jpeg",
           "file_size": announced or len(content)}
    await _post(client, consumer, _message(CUSTOMER, document=doc))
    said = _said_to(telegram_api, CUSTOMER)
    assert len(said) == 2 and "无法接收" in said[1]
    assert ("10 MiB" in said[1]) is (announced is not None)
    if announced:
        assert telegram_api.ok_calls("getFile") == []
    [refund] = await deps.refunds.of_order(oid)
    assert refund.state is RefundState.WAITING_PROOF and refund.proof is None
    assert not deps.proofs.root.exists() or not any(deps.proofs.root.rglob("*"))


async def test_over_2000_goes_to_finance_whose_button_approves_and_the_customer_is_told(
        tg, telegram_api: TelegramStandIn):
    w, client, consumer, deps = tg
    await w.user("财务李", "finance", tg="900")
    oid = await _customer_order(w, "TM20251111-000004", amount="2600.00", stage="designing")
    await _post(client, consumer, _message(CUSTOMER, text="我要退款 TM20251111-000004 取消订单"))
    [waiting] = _said_to(telegram_api, CUSTOMER)
    assert "财务" in waiting
    await w.drain()
    [card] = [m for m in telegram_api.ok_calls("sendMessage") if str(m["chat_id"]) == "900"]
    text = parse_html(card["text"])
    assert "TM20251111-000004" in text and "取消订单" in text and "2,600.00" in text
    approve = card["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    message_id = max(mid for chat, mid in telegram_api.messages if chat == "900")
    press = {"update_id": next(_ids), "callback_query": {
        "id": "cbq-900", "from": {"id": 900, "is_bot": False, "first_name": "李"}, "chat_instance": "ci",
        "data": approve, "message": {"message_id": message_id, "date": 1731290000, "text": "card",
                                     "from": {"id": 7000001, "is_bot": True, "first_name": "OrderHub"},
                                     "chat": {"id": 900, "type": "private", "first_name": "李"}}}}
    await _post(client, consumer, press)
    said = _said_to(telegram_api, CUSTOMER)
    assert len(said) == 2 and "财务已批准" in said[1]
    [refund] = await deps.refunds.of_order(oid)
    assert refund.state is RefundState.APPROVED


async def test_the_refund_button_under_the_status_reply(tg, telegram_api: TelegramStandIn):
    w, client, consumer, deps = tg
    oid = await _customer_order(w, "TM20251111-000005", amount="900.00", stage="designing")
    await _post(client, consumer, _message(CUSTOMER, text="TM20251111-000005 到哪了"))
    [status] = [m for m in telegram_api.ok_calls("sendMessage") if str(m["chat_id"]) == str(CUSTOMER)]
    assert "TM20251111-000005" in parse_html(status["text"])  # the status and its button in one message
    [[button]] = status["reply_markup"]["inline_keyboard"]
    assert button["text"] == "申请退款"

    async def press(data: str) -> None:
        message_id = max(mid for chat, mid in telegram_api.messages if chat == str(CUSTOMER))
        await _post(client, consumer, {"update_id": next(_ids), "callback_query": {
            "id": f"cbq-{next(_ids)}", "from": {"id": CUSTOMER, "is_bot": False, "first_name": "王"},
            "chat_instance": "ci", "data": data,
            "message": {"message_id": message_id, "date": 1731290000, "text": "status",
                        "from": {"id": 7000001, "is_bot": True, "first_name": "OrderHub"},
                        "chat": {"id": CUSTOMER, "type": "private", "first_name": "王"}}}})

    await press(button["callback_data"])
    reasons = [b for row in telegram_api.ok_calls("sendMessage")[-1]["reply_markup"]["inline_keyboard"] for b in row]
    assert [b["text"] for b in reasons] == ["不想要了", "尺寸不符", "质量问题", "等待时间太长"]
    await press(reasons[2]["callback_data"])
    [refund] = await deps.refunds.of_order(oid)
    assert (refund.state, refund.reason) == (RefundState.APPROVED, "质量问题")
    assert "已通过" in _said_to(telegram_api, CUSTOMER)[-1]
