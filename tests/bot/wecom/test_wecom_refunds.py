"""Refunds on WeCom, wechatpy against the stand-in: the proof photo a member sends (an image message) is fetched with
`media/get`, stored like Telegram's and read by OCR; bad, expired and oversized files are refused with a clear message
and nothing stored; the status reply's refund button is a template card whose clicks start the refund."""

from __future__ import annotations

import importlib.util
import itertools
import random
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.adapters.ocr import RapidOcrReader
from bot.settings import BUNDLED_RULES
from bot.platforms.wecom.channel import WecomChannel
from bot.platforms.wecom.codes import MemoryResponseCodes
from bot.platforms.wecom.events import EventReader
from engine.refunds import RefundState, ReturnStatus
from engine.rules import RuleSet, load_rules
from handlers.dispatch import handle_event
from handlers.refunds import RefundDeps
from storage.models import StageTransitionRow
from storage.proof_files import ProofDirectory
from storage.refunds_repo import SqlRefunds
from tests.bot.conftest import no_sleep
from tests.bot.wecom.test_wecom_callback import click_xml, message_xml
from tests.chatfake import FakeTime
from tests.handlers.conftest import T0, Clock, World, make_world
from tests.standins.wecom_api import AGENT_ID, CORP_ID, WecomStandIn

USER = "wangnv"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 300
WAYBILL = "SF1234567890123"
_ids = itertools.count(5000)


class FakeOcr:
    def __init__(self) -> None:
        self.read_bytes: list[bytes] = []

    async def read(self, data: bytes) -> str:
        self.read_bytes.append(data)
        return f"顺丰速运 {WAYBILL}"


class Tracker:
    carriers = ("sf", "deppon")

    def __init__(self, waybill: str = WAYBILL) -> None:
        self.waybill = waybill

    async def status(self, carrier: str, waybill: str) -> ReturnStatus | None:
        return ReturnStatus("in_transit", True) if waybill == self.waybill else None


def image_xml(user: str, media_id: str, msg_id: int) -> str:
    return (f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
            f"<CreateTime>1731290000</CreateTime><MsgType><![CDATA[image]]></MsgType>"
            f"<PicUrl><![CDATA[http://p.qpic.cn/x]]></PicUrl><MediaId><![CDATA[{media_id}]]></MediaId>"
            f"<MsgId>{msg_id}</MsgId><AgentID>{AGENT_ID}</AgentID></xml>")


class Wecom:
    def __init__(self, w: World, api: WecomStandIn, codes: MemoryResponseCodes, deps: RefundDeps) -> None:
        self.w, self.api, self.deps, self.reader = w, api, deps, EventReader(codes, AGENT_ID)

    async def _in(self, xml: str) -> None:
        event = await self.reader(xml.encode())
        assert event is not None
        await handle_event(event, self.w.ctx)

    async def say(self, text: str) -> None:
        await self._in(message_xml(USER, text, next(_ids)))

    async def photo(self, data: bytes | None) -> str:
        media_id = self.api.add_media(data) if data is not None else "expired-media-id"
        await self._in(image_xml(USER, media_id, next(_ids)))
        return media_id

    async def click(self, card: dict[str, Any], button: int) -> None:
        task = card["task_id"]
        await self._in(click_xml(USER, card["button_list"][button]["key"], task, self.api.click_code(task),
                                 at=next(_ids)))

    def texts(self) -> list[str]:
        return [c["text"]["content"] for c in self.api.ok_calls("message/send")
                if c["msgtype"] == "text" and c["touser"] == USER]

    def cards(self) -> list[dict[str, Any]]:
        return [c["template_card"] for c in self.api.ok_calls("message/send")
                if c["msgtype"] == "template_card" and c["touser"] == USER]


def _world(db: AsyncEngine, rules: RuleSet, wecom_api: WecomStandIn, codes: MemoryResponseCodes, tmp_path: Path,
           ocr: Any) -> tuple[World, RefundDeps, WecomChannel]:
    channel = WecomChannel(wecom_api.corp_id, wecom_api.secret, AGENT_ID, wecom_api.url, codes=codes, timeout=5.0,
                           sleep=no_sleep)
    clock = Clock(T0)
    w = make_world(db, rules, channel, clock, FakeTime(clock=clock))
    repo = SqlRefunds(db)
    deps = RefundDeps(repo, repo, lambda: rules, ProofDirectory(tmp_path / "proofs"), ocr, Tracker(), w.notifier,
                      after_sales="400-800-1234")
    w.ctx.refunds = deps
    return w, deps, channel


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules(BUNDLED_RULES.read_text(encoding="utf-8"), str(BUNDLED_RULES))


@pytest.fixture
async def wc(db: AsyncEngine, rules: RuleSet, wecom_api: WecomStandIn, tmp_path: Path):
    codes = MemoryResponseCodes()
    w, deps, channel = _world(db, rules, wecom_api, codes, tmp_path, FakeOcr())
    yield Wecom(w, wecom_api, codes, deps)
    await channel.close()


async def _shipped_order(w: World, ext: str, amount: str = "1800.00") -> int:
    oid = await w.order(ext, amount=amount, stage="shipped")
    async with w.engine.begin() as conn:
        await conn.execute(insert(StageTransitionRow.__table__).values(
            order_id=oid, at=w.clock.now() - timedelta(days=2), from_stage="in_production", to_stage="shipped",
            actor="system", reason=""))
    await w.repo.grant_order_access("wecom", USER, USER, oid, w.clock.now())
    return oid


async def test_a_wecom_photo_is_fetched_with_media_get_stored_read_and_approves(wc: Wecom) -> None:
    oid = await _shipped_order(wc.w, "TM20251111-000201")
    await wc.say("我要退款 TM20251111-000201 尺寸不对")
    assert "照片" in wc.texts()[-1]
    wc.api.expire_tokens()  # the photo comes hours later: the token has expired, one refresh and it goes on
    media_id = await wc.photo(JPEG)
    calls = wc.api.all_calls("media/get")
    assert [(c.query["media_id"], c.errcode) for c in calls] == [(media_id, 42001), (media_id, 0)]
    assert wc.deps.ocr.read_bytes == [JPEG]  # type: ignore[union-attr]
    [refund] = await wc.deps.refunds.of_order(oid)
    assert refund.state is RefundState.APPROVED and refund.proof is not None
    assert refund.proof["waybill"] == WAYBILL and refund.proof["type"] == "jpeg"
    assert (wc.deps.proofs.root / refund.proof["file"]).read_bytes() == JPEG  # type: ignore[union-attr]
    said = wc.texts()
    assert WAYBILL in said[-2] and "已通过" in said[-1]


@pytest.mark.parametrize("content,expect", [
    (b"just some text, not a photo", "JPEG"),
    (b"%PDF-1.7\n" + b"0" * 500, "JPEG"),  # a PDF, whatever it is called
    (b"\xff\xd8\xff" + b"\x00" * (10 * 1024 * 1024 + 10), "10 MiB"),  # refused by its Content-Length
    (None, "重新发送"),  # an expired media_id: WeCom answers errcode 40007
])
async def test_bad_wecom_files_are_refused_and_nothing_is_stored(wc: Wecom, content: bytes | None,
                                                                 expect: str) -> None:
    oid = await _shipped_order(wc.w, "TM20251111-000202", amount="800.00")
    await wc.say("我要退款 TM20251111-000202 坏了")
    await wc.photo(content)
    said = wc.texts()
    assert "无法接收" in said[-1] and expect in said[-1], said[-1]
    [refund] = await wc.deps.refunds.of_order(oid)
    assert refund.state is RefundState.WAITING_PROOF and refund.proof is None
    root = wc.deps.proofs.root  # type: ignore[union-attr]
    assert not root.exists() or not any(root.rglob("*"))
    assert wc.deps.ocr.read_bytes == []  # type: ignore[union-attr]


async def test_the_refund_button_on_wecom_is_a_template_card(wc: Wecom) -> None:
    oid = await wc.w.order("TM20251111-000203", amount="1200.00", stage="designing")
    await wc.w.repo.grant_order_access("wecom", USER, USER, oid, wc.w.clock.now())
    await wc.say("TM20251111-000203 到哪了")
    assert "TM20251111-000203" in wc.texts()[-1]  # the status as text, then the card with the button
    [card] = wc.cards()
    assert [b["text"] for b in card["button_list"]] == ["申请退款"]
    await wc.click(card, 0)
    reasons = wc.cards()[-1]
    assert [b["text"] for b in reasons["button_list"]] == ["不想要了", "尺寸不符", "质量问题", "等待时间太长"]
    await wc.click(reasons, 0)
    [refund] = await wc.deps.refunds.of_order(oid)
    assert (refund.state, refund.reason, refund.notify_platform) == (RefundState.APPROVED, "不想要了", "wecom")
    assert "已通过" in wc.texts()[-1]


BENCH = Path(__file__).resolve().parents[3] / "bench" / "ocr.py"


@pytest.mark.slow
async def test_a_wecom_photo_read_by_the_real_offline_ocr(db: AsyncEngine, rules: RuleSet, wecom_api: WecomStandIn,
                                                          tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("bench_ocr", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules["bench_ocr"] = bench
    spec.loader.exec_module(bench)
    data, printed = bench.photo(random.Random(3), "sf")
    codes = MemoryResponseCodes()
    w, deps, channel = _world(db, rules, wecom_api, codes, tmp_path, RapidOcrReader())
    deps.tracker = Tracker(printed)
    wc = Wecom(w, wecom_api, codes, deps)
    try:
        oid = await _shipped_order(w, "TM20251111-000204")
        await wc.say("我要退款 TM20251111-000204 不合适")
        await wc.photo(data)
        [refund] = await deps.refunds.of_order(oid)
        assert refund.proof is not None and refund.proof["waybill"] == printed
        assert refund.state is RefundState.APPROVED
    finally:
        await channel.close()
