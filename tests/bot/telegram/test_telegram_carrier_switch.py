"""The carrier-degradation card's Switch and Undo buttons on the Telegram stand-in, through our webhook route, the
update queue and the real python-telegram-bot client: a 华南 manager's press writes a new rules version with the
backup carrier (hot-reloaded, versioned, audited) and the next waybill of 华南 uses it; Undo restores the carrier as
another version; another region's manager is refused and nothing is written."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.workers.rules_runtime import RulesRuntime
from bot.settings import BUNDLED_RULES
from bot.platforms.telegram.channel import TelegramChannel
from bot.platforms.telegram.runner import SECRET_HEADER, UpdateConsumer
from engine.carriers import TrackEvent
from handlers.carrier_switch import SwitchDeps
from handlers.carrier_trends import check_degradation
from handlers.carriers import Party, ShipmentRequest
from handlers.tracking import TrackingDeps, ship
from storage.db import make_sessionmaker
from storage.models import AuditRow, RuleVersionRow
from storage.notes_repo import SqlTrendNotes
from storage.orders_repo import SqlOrders
from storage.rules_file import RulesFileEditor
from storage.rules_repo import RulesRepo
from storage.tracking_repo import SqlTracking
from tests.bot.telegram.conftest import webhook_route
from tests.chatfake import FakeTime
from tests.engine.test_carrier_performance import NOW, month
from tests.handlers.conftest import Clock, World, make_world
from tests.standins.telegram_api import TelegramStandIn, parse_html

SECRET = "switch-secret"
SOUTH, EAST, CHAIN = 701, 702, 700  # 华南 manager, 华东 manager, supply chain


class FakeCarrier:
    """A carrier that issues waybills and records for which shipments (the stand-ins test the real clients)."""

    def __init__(self, name: str, prefix: str) -> None:
        self.name, self.prefix, self.created = name, prefix, []

    async def create_waybill(self, request: ShipmentRequest) -> str:
        self.created.append(request.reference)
        return f"{self.prefix}{len(self.created):012d}"

    async def query_routes(self, waybill: str, company: str | None = None) -> list[TrackEvent]:
        return []

    async def subscribe(self, waybill: str, company: str | None = None) -> None:
        return None


class Facts:
    def __init__(self) -> None:
        self.rows = [(x.carrier, x.region, x.picked_up_at, x.delivered_at)
                     for x in month(random.Random(3), slow=("sf", "华南"))]

    async def transit_facts(self, since: datetime) -> list[tuple[str, str | None, datetime, datetime]]:
        return [r for r in self.rows if r[3] >= since]


@pytest.fixture
async def sw(db: AsyncEngine, channel: TelegramChannel, redis: aioredis.Redis, tmp_path: Path
             ) -> AsyncIterator[tuple[World, httpx.AsyncClient, UpdateConsumer, RulesRuntime, Path]]:
    path = tmp_path / "rules.yaml"
    path.write_text(BUNDLED_RULES.read_text(encoding="utf-8"), encoding="utf-8")
    runtime = RulesRuntime(path, RulesRepo(make_sessionmaker(db)), confirm_delay=0)
    await runtime.start()
    clock = Clock(NOW)
    w = make_world(db, runtime.current, channel, clock, FakeTime(clock=clock))
    editor = RulesFileEditor(lambda: path, runtime.repo, protected=[BUNDLED_RULES], reload=runtime.poll)
    w.ctx.carrier_switch = SwitchDeps(editor, lambda: runtime.current, w.repo, w.repo, users=w.repo)
    async with webhook_route(redis, channel, w.ctx, SECRET, "sw") as (client, consumer):
        yield w, client, consumer, runtime, path


_ids = iter(range(40_000, 50_000))


async def _press(client: httpx.AsyncClient, consumer: UpdateConsumer, api: TelegramStandIn, user: int, data: str
                 ) -> str:
    """Press a button as `user` on the last message the bot sent them; the toast's text."""
    message_id = max((mid for chat, mid in api.messages if chat == str(user)), default=1)
    cbq = f"cbq-{next(_ids)}"
    press = {"update_id": next(_ids), "callback_query": {
        "id": cbq, "from": {"id": user, "is_bot": False, "first_name": "经理"}, "chat_instance": "ci", "data": data,
        "message": {"message_id": message_id, "date": 1731290000, "text": "card",
                    "from": {"id": 7000001, "is_bot": True, "first_name": "OrderHub"},
                    "chat": {"id": user, "type": "private", "first_name": "经理"}}}}
    r = await client.post("/webhooks/telegram", json=press, headers={SECRET_HEADER: SECRET})
    assert r.status_code == 200
    assert await consumer.drain() == 1
    [answer] = [a for a in api.ok_calls("answerCallbackQuery") if a["callback_query_id"] == cbq]
    return str(answer.get("text", ""))


def _cards_to(api: TelegramStandIn, chat: int) -> list[dict[str, Any]]:
    return [m for m in api.ok_calls("sendMessage") if str(m["chat_id"]) == str(chat)]


def _button(card: dict[str, Any]) -> tuple[str, str]:
    b = card["reply_markup"]["inline_keyboard"][0][0]
    return b["text"], b["callback_data"]


async def _ship_next(w: World, runtime: RulesRuntime, carriers: dict[str, FakeCarrier], ext: str) -> str:
    oid = await w.order(ext, city="广州", stage="in_production")
    deps = TrackingDeps(SqlTracking(w.engine), SqlOrders(w.engine), SqlTrendNotes(w.engine), w.repo,
                        lambda: runtime.current)
    result = await ship(deps, carriers, str(oid), None, None, "ops", w.clock.now(), Party("仓库", "", "佛山"))
    return result.shipment.carrier


async def _count(db: AsyncEngine, model: Any, *where: Any) -> int:
    async with db.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(model).where(*where))).scalar_one())


async def test_switch_and_undo_from_the_degradation_card(sw, telegram_api: TelegramStandIn) -> None:
    w, client, consumer, runtime, path = sw
    original = path.read_text(encoding="utf-8")
    await w.user("供应链老周", "supply_chain", tg=str(CHAIN))
    await w.user("华南经理", "manager", ["华南"], tg=str(SOUTH))
    await w.user("华东经理", "manager", ["华东"], tg=str(EAST))
    carriers = {"sf": FakeCarrier("sf", "SF1"), "deppon": FakeCarrier("deppon", "DPK")}
    assert await _ship_next(w, runtime, carriers, "TM20261201-000001") == "sf"  # the default: sf, backup deppon

    hits = await check_degradation(Facts(), w.repo, lambda: runtime.current, NOW)
    assert [(h.carrier, h.region) for h in hits] == [("sf", "华南")]
    await w.drain()
    [chain_card] = _cards_to(telegram_api, CHAIN)
    [south_card] = _cards_to(telegram_api, SOUTH)
    assert _cards_to(telegram_api, EAST) == []
    label, data = _button(south_card)
    assert label == "切换到 德邦快递" == _button(chain_card)[0]
    assert "华南" in parse_html(south_card["text"]) and "p50" in parse_html(south_card["text"])
    versions = await _count(w.engine, RuleVersionRow)

    # another region's manager (who got the card forwarded, say) is refused; nothing is written
    refused = await _press(client, consumer, telegram_api, EAST, data)
    assert "华南" in refused and "经理" in refused
    assert path.read_text(encoding="utf-8") == original and await _count(w.engine, RuleVersionRow) == versions

    toast = await _press(client, consumer, telegram_api, SOUTH, data)
    assert "已切换" in toast and "德邦快递" in toast
    [edited] = [e for e in telegram_api.ok_calls("editMessageText") if str(e["chat_id"]) == str(SOUTH)]
    assert "华南经理" in parse_html(edited["text"]) and not edited.get("reply_markup")  # no button left to press
    text = path.read_text(encoding="utf-8")
    assert text.startswith(original) and "华南: {primary: deppon, backup: sf}" in text  # comments and order kept
    assert runtime.current.model.carriers.choice("华南").primary == "deppon"
    assert await _count(w.engine, RuleVersionRow) == versions + 1
    stored = await runtime.repo.get_version(runtime.current.version)
    assert stored is not None and "华南经理" in stored.loaded_by
    assert await _count(w.engine, AuditRow, AuditRow.action == "carrier.switch", AuditRow.subject == "region:华南") == 1
    assert await _ship_next(w, runtime, carriers, "TM20261201-000002") == "deppon"  # the next waybill
    assert carriers["deppon"].created and len(carriers["sf"].created) == 1

    await w.drain()
    switched = _cards_to(telegram_api, SOUTH)[-1]
    assert "德邦快递" in parse_html(switched["text"]) and runtime.current.version[:12] in parse_html(switched["text"])
    undo_label, undo = _button(switched)
    assert undo_label == "撤销切换"
    assert "只有" in await _press(client, consumer, telegram_api, EAST, undo)  # undo is checked the same way
    assert runtime.current.model.carriers.choice("华南").primary == "deppon"

    assert "已撤销" in await _press(client, consumer, telegram_api, SOUTH, undo)
    assert path.read_text(encoding="utf-8").rstrip() == original.rstrip()  # the region follows the default again
    assert runtime.current.model.carriers.choice("华南").primary == "sf"
    assert await _count(w.engine, RuleVersionRow) == versions + 2  # another new version, not a rollback
    assert await _count(w.engine, AuditRow, AuditRow.action == "carrier.undo") == 1
    assert await _ship_next(w, runtime, carriers, "TM20261201-000003") == "sf"
    again = await _press(client, consumer, telegram_api, SOUTH, undo)
    assert "未切换" in again and await _count(w.engine, RuleVersionRow) == versions + 2
