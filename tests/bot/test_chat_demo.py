"""The chat half of `orderhub demo` runs the real core on the console channel and tells a readable story."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import redis.asyncio as aioredis
from rich.console import Console
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.demo.chat import run_chat_demo
from bot.settings import BUNDLED_RULES
from engine.rules import load_rules
from handlers.refunds import RefundDeps
from storage.models import ApprovalRow, OrderRow, OutboxRow
from storage.refunds_repo import SqlRefunds


class Clock:
    def now(self) -> datetime:
        return datetime(2025, 11, 11, 6, 0, tzinfo=UTC)


async def _order(db: AsyncEngine, ext: str, city: str, region: str, amount: str, stage: str, approval: bool) -> None:
    now = Clock().now()
    async with db.begin() as conn:
        res = await conn.execute(insert(OrderRow.__table__).values(
            channel="generic", external_id=ext, created_at=now, received_at=now, updated_at=now, customer_id="C1",
            customer_name="王女士", customer_phone="13800138000", customer_city=city, region=region,
            amount=Decimal(amount), items=[{"sku": "CUR-1", "name": "窗帘", "qty": 1, "unit_price": amount}],
            custom_fields={}, payload_hash=hashlib.md5(ext.encode()).hexdigest(), stage=stage, stage_entered_at=now,
            stage_deadline=now + timedelta(days=1), priority=0))
        oid = res.inserted_primary_key[0]
        if approval:
            a = await conn.execute(insert(ApprovalRow.__table__).values(
                order_id=oid, kind="order", level=1, required_role="manager", region=region, amount=Decimal(amount),
                order_version=hashlib.md5(ext.encode()).hexdigest(), status="pending", requested_at=now))
            aid = a.inserted_primary_key[0]
            await conn.execute(insert(OutboxRow.__table__).values(
                dedup_key=f"approval:{aid}", kind="approval_request", created_at=now, due_at=now,
                recipient_role="manager", recipient_region=region, payload={"approval_id": aid, "order_id": oid}))


# The demo's three orders: (city, region, amount, stage); the two waiting for confirmation have a pending approval.
DEMO_ORDERS = (("杭州", "华东", "8000.00", "pending_confirm"), ("广州", "华南", "9000.00", "pending_confirm"),
               ("上海", "华东", "3000.00", "designing"))


async def _transcript(db: AsyncEngine, redis: aioredis.Redis, prefix: str, *, with_refunds: bool = False,
                      **options: str) -> str:
    """The chat demo run over DEMO_ORDERS numbered `prefix`000001…; its console text, once it reported success."""
    rules = load_rules(BUNDLED_RULES.read_text(encoding="utf-8"), str(BUNDLED_RULES))
    for n, (city, region, amount, stage) in enumerate(DEMO_ORDERS, 1):
        await _order(db, f"{prefix}{n:06d}", city, region, amount, stage, stage == "pending_confirm")
    out = StringIO()
    repo = SqlRefunds(db)
    refunds = RefundDeps(repo, repo, lambda: rules) if with_refunds else None
    ok = await run_chat_demo(db, redis, lambda: rules, Clock(), Console(file=out, width=120, color_system=None),
                             prefix=prefix, refunds=refunds, **options)
    text = out.getvalue()
    assert ok, text
    return text


async def test_chat_demo_transcript(db: AsyncEngine, redis: aioredis.Redis) -> None:
    text = await _transcript(db, redis, "D1-", with_refunds=True)
    for piece in ("审批请求 · 订单 D1-000001", "无权审批此订单", "✅ 已批准", "请回复驳回", "❌ 已驳回", "客户改单",
                  "⏰ 订单超时 · D1-000003", "已确认", "只接受您本人的联系方式", "📦 D1-000001", "138****8000"):
        assert piece in text, piece
    assert "按下「批准」" in text and "按下「驳回」" in text and "按下「确认」" in text  # which button, not "a button"
    for piece in ("按下「申请退款」", "按下「不想要了」", "财务小王", "财务已批准"):  # the refund, end to end
        assert piece in text, piece
    [refund] = await SqlRefunds(db).of_order(1)
    assert refund.state.value == "approved" and refund.reason == "不想要了" and refund.approval_id is not None


async def test_chat_demo_is_english_throughout_when_configured(db: AsyncEngine, redis: aioredis.Redis) -> None:
    import re

    text = await _transcript(db, redis, "D2-", language="en")
    assert "pressed “Approve”" in text and "The customer changed the order" in text
    # Chinese left only in names (people, cities, regions, plants), never in the story's own words
    names = set("".join(["华东华南华北西南经理运营主管跟单员小李杭州广州上海王女士李先生张窗帘"]))
    leftovers = {ch for ch in re.findall(r"[\u4e00-\u9fff]", text) if ch not in names}
    assert leftovers == set(), leftovers


def test_demo_uses_its_own_data_dir_and_the_local_day(tmp_path) -> None:
    from datetime import UTC, datetime

    from bot.demo.day import demo_settings, local_midnight
    from bot.settings import Settings

    s = demo_settings(Settings(database_url="sqlite:///orderhub.db", redis_url="redis://x:6379/0"),
                      tmp_path / "orderhub-demo")
    assert s.database_url == f"sqlite:///{(tmp_path / 'orderhub-demo' / 'orderhub.db').resolve()}"
    assert s.redis_url is None and s.data_dir == tmp_path / "orderhub-demo"
    # 01:30 in Shanghai is still the previous day in UTC: the demo's day is Shanghai's
    now = datetime(2025, 11, 10, 17, 30, tzinfo=UTC)
    assert local_midnight(now, "Asia/Shanghai") == datetime(2025, 11, 10, 16, 0, tzinfo=UTC)
