"""`/assign ORDER NAME` end to end on the Telegram stand-in (issue 12.1): webhook → queue → core → sendMessage."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from bot.platforms.telegram.runner import SECRET_HEADER, UpdateConsumer
from handlers.owners import MAX_NAME
from storage.models import OrderRow
from storage.owners import SqlOwners
from tests.bot.telegram.test_telegram_e2e import SECRET, tg_world, webhook  # noqa: F401 - fixtures
from tests.handlers.conftest import World
from tests.standins.telegram_api import TelegramStandIn, parse_html

_ids = iter(range(20_000, 30_000))


def command(user_id: int, text: str) -> dict[str, Any]:
    user = {"id": user_id, "is_bot": False, "first_name": f"u{user_id}"}
    return {"update_id": next(_ids), "message": {
        "message_id": next(_ids), "date": 1731290000, "text": text, "from": user,
        "chat": {"id": user_id, "type": "private", "first_name": "m"},
        "entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]}}


async def test_assign_over_telegram(tg_world: World, telegram_api: TelegramStandIn,  # noqa: F811
                                    webhook: tuple[httpx.AsyncClient, UpdateConsumer]) -> None:  # noqa: F811
    client, consumer = webhook
    w = tg_world
    w.ctx.owners = SqlOwners(w.engine)
    await w.user("东区经理", "manager", ["华东"], tg="101")
    await w.user("南区经理", "manager", ["华南"], tg="202")
    target = await w.user("东二", "manager", ["华东"])
    oid = await w.order("TM-A1", stage="designing")
    for user_id, text in ((202, "/assign tmall:TM-A1 东二"), (101, "/assign tmall:TM-A1 无此人"),
                          (101, f"/assign {'9' * 30} 东二"), (101, "/assign tmall:TM-A1 " + "x" * (MAX_NAME + 1)),
                          (101, "/assign tmall:TM-A1 东二")):
        resp = await client.post("/webhooks/telegram", json=command(user_id, text), headers={SECRET_HEADER: SECRET})
        assert resp.status_code == 200
    assert await consumer.drain() == 5
    replies = [(m["chat_id"], parse_html(m["text"])) for m in telegram_api.ok_calls("sendMessage")]
    assert replies == [
        ("202", "只有管理员或该订单所在区域的经理可以改派负责人。"),
        ("101", "没有名为 无此人 的员工。"),
        ("101", f"找不到订单 {'9' * 30}（请用订单内部编号或 渠道:外部单号）。"),
        ("101", "无法改派：订单号或用户名无效。"),
        ("101", "✅ 订单 tmall:TM-A1 的负责人已改为 东二（原：无）。"),
    ]
    async with w.engine.connect() as conn:
        owner = (await conn.execute(select(OrderRow.__table__.c.owner_user_id)
                                    .where(OrderRow.__table__.c.id == oid))).scalar_one()
    assert owner == target
