"""`/assign ORDER NAME` end to end on WeCom (issue 12.1): an encrypted callback → queue → the shared chat core →
the reply through the WeCom stand-in, in English when configured."""

from __future__ import annotations

import functools

from sqlalchemy import insert, select

from bot.platforms.inbound.consumer import InboundConsumer
from bot.platforms.wecom.events import EventReader
from handlers.dispatch import handle_event
from storage.models import ChatIdentityRow, OrderRow
from storage.owners import SqlOwners
from tests.bot.wecom.test_wecom_callback import AGENT_ID, Callback, callback, message_xml  # noqa: F401 - fixture
from tests.bot.wecom.test_wecom_e2e import wc_world  # noqa: F401 - the fixture
from tests.handlers.conftest import World
from tests.standins.wecom_api import WecomStandIn


async def test_assign_over_wecom(wc_world: World, wecom_api: WecomStandIn, callback: Callback) -> None:  # noqa: F811
    w = wc_world
    w.ctx.owners = SqlOwners(w.engine)
    w.ctx.language = "en"
    boss = await w.user("east", "manager", ["华东"])
    south = await w.user("south", "manager", ["华南"])
    target = await w.user("east2", "manager", ["华东"])
    async with w.engine.begin() as conn:
        for uid, userid in ((boss, "zhangsan"), (south, "lisi")):
            await conn.execute(insert(ChatIdentityRow.__table__).values(
                user_id=uid, platform="wecom", external_id=userid, chat_id=userid, linked_at=w.clock.now()))
    oid = await w.order("TM-W1", stage="designing")
    for i, (who, text) in enumerate((("lisi", "/assign tmall:TM-W1 east2"), ("zhangsan", "/assign tmall:TM-W1"),
                                     ("zhangsan", "/assign tmall:TM-W1 east2")), start=1):
        assert (await callback.post(message_xml(who, text, 900 + i))).status_code == 200
    consumer = InboundConsumer(callback.queue, functools.partial(handle_event, ctx=w.ctx), consumer="t",
                               read=EventReader(callback.codes, AGENT_ID), name="wecom")
    assert await consumer.drain() == 3
    replies = [(c["touser"], c["text"]["content"]) for c in wecom_api.ok_calls("message/send")]
    assert replies == [
        ("lisi", "Only admins and managers of the order's region may reassign it."),
        ("zhangsan", "Usage: /assign ORDER NAME"),
        ("zhangsan", "✅ Order tmall:TM-W1 is now owned by east2 (was: nobody)."),
    ]
    async with w.engine.connect() as conn:
        assert (await conn.execute(select(OrderRow.__table__.c.owner_user_id)
                                   .where(OrderRow.__table__.c.id == oid))).scalar_one() == target
