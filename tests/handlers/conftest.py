"""Chat-core fixtures: the real SQL repository on the session's test database, the recording fake channel, a
frozen clock, the bundled rules for deadlines, and helpers that seed rows the way intake writes them."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.settings import BUNDLED_RULES
from engine.rules import RuleSet, load_rules
from handlers.chat_context import ChatContext
from handlers.notifier import Notifier
from handlers.rate_limit import ChatRateLimiter
from storage.chat_repo import SqlChatRepo
from storage.models import ApprovalRow, ChatIdentityRow, OrderRow, OutboxRow, UserRow
from tests.chatfake import FakeChannel, FakeTime, MemoryAttemptLimiter

KEY = b"test-token-key"
T0 = datetime(2025, 11, 11, 2, 0, tzinfo=UTC)


class Clock:
    def __init__(self, at: datetime = T0) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, **kw: float) -> None:
        self.at += timedelta(**kw)


@pytest.fixture(scope="session")
def rules() -> RuleSet:
    return load_rules(BUNDLED_RULES.read_text(encoding="utf-8"), str(BUNDLED_RULES))


@dataclass
class World:
    """Everything a chat-core test touches, plus seeding helpers."""

    engine: AsyncEngine
    repo: SqlChatRepo
    channel: FakeChannel
    clock: Clock
    time: FakeTime
    notifier: Notifier
    ctx: ChatContext
    rules: RuleSet
    _n: int = 0

    async def user(self, name: str, role: str, regions: list[str] | None = None, *, tg: str | None = None,
                   phone: str | None = None, supervisor_id: int | None = None, email: str | None = None) -> int:
        async with self.engine.begin() as conn:
            res = await conn.execute(insert(UserRow.__table__).values(
                name=name, role=role, regions=regions or [], phone=phone, created_at=self.clock.now(), active=True,
                supervisor_id=supervisor_id, email=email))
            uid = int(res.inserted_primary_key[0])
            if tg:
                await conn.execute(insert(ChatIdentityRow.__table__).values(
                    user_id=uid, platform="telegram", external_id=tg, chat_id=tg, linked_at=self.clock.now()))
        return uid

    async def order(self, external_id: str, *, amount: str = "8000.00", city: str = "杭州", phone: str = "13800138000",
                    stage: str = "pending_confirm", deadline: datetime | None = None, items: int = 1,
                    name: str = "王女士", owner: int | None = None, tracking: dict[str, Any] | None = None,
                    priority: int = 1, flagged: bool = False) -> int:
        now = self.clock.now()
        item_list = [{"sku": f"CUR-LINEN-{i:03d}", "name": "亚麻遮光窗帘", "qty": 1 + i % 3, "unit_price": "1890.00",
                      "attributes": {"width_cm": 280, "height_cm": 260}} for i in range(items)]
        async with self.engine.begin() as conn:
            res = await conn.execute(insert(OrderRow.__table__).values(
                channel="tmall", external_id=external_id, created_at=now - timedelta(days=1), received_at=now,
                updated_at=now, customer_id=f"C-{external_id}", customer_name=name, customer_phone=phone,
                customer_city=city, customer_tier="normal", region=self.rules.region_of(city), amount=Decimal(amount),
                currency="CNY", items=item_list, custom_fields={"install_date": "2025-11-20"}, notes="请周末安装",
                payload_hash=hashlib.md5(f"{external_id}{amount}".encode()).hexdigest(), stage=stage,
                stage_entered_at=now, stage_deadline=deadline, priority=priority, flagged=flagged, owner_user_id=owner,
                tracking=tracking, manual_intervention=False))
        return int(res.inserted_primary_key[0])

    async def approval(self, order_id: int, *, role: str = "manager", region: str | None = "华东",
                       requested_by: str = "system", escalate_after: timedelta | None = timedelta(hours=4),
                       kind: str = "order", level: int = 1, card: bool | None = None) -> int:
        """An approval request and its outbox row, exactly as the intake worker writes them (a level above the
        first gets no card until the level below is approved, unless `card` says otherwise)."""
        now = self.clock.now()
        async with self.engine.begin() as conn:
            order = (await conn.execute(select(OrderRow.__table__).where(OrderRow.__table__.c.id == order_id))).one()
            res = await conn.execute(insert(ApprovalRow.__table__).values(
                order_id=order_id, kind=kind, level=level, required_role=role, region=region, amount=order.amount,
                order_version=order.payload_hash, rule_id="order-over-5000", status="pending",
                requested_by=requested_by, requested_at=now,
                escalate_at=now + escalate_after if escalate_after else None, escalation_level=0, reason=""))
            aid = int(res.inserted_primary_key[0])
            if not (card if card is not None else level == 1):
                return aid
            await conn.execute(insert(OutboxRow.__table__).values(
                dedup_key=f"approval:{aid}", kind="approval_request", created_at=now, due_at=now,
                recipient_role=role, recipient_region=region, payload={"approval_id": aid, "order_id": order_id},
                status="pending", attempts=0))
        return aid

    async def drain(self, passes: int = 50) -> None:
        """Run notifier passes, moving time on, until no row is pending."""
        for _ in range(passes):
            await self.notifier.run_once(limit=1000)
            pending = await self.repo.due_outbox(self.clock.now() + timedelta(days=365), 1)
            if not pending:
                return
            self.clock.advance(seconds=301)
        raise AssertionError("outbox did not drain")


def make_world(db: AsyncEngine, rules: RuleSet, channel: Any, clock: Clock, fake_time: FakeTime) -> World:
    """The chat core wired around one channel (the fake here; the Telegram and WeCom tests pass their real ones)."""
    repo = SqlChatRepo(db)
    channels = {channel.platform: channel}
    limiter = ChatRateLimiter(monotonic=fake_time.monotonic, sleep=fake_time.sleep)
    notifier = Notifier(repo, channels, clock, token_key=KEY, limiter=limiter, sleep=fake_time.sleep)
    ctx = ChatContext(channels=channels, repo=repo, clock=clock, token_key=KEY,
                      limiter=MemoryAttemptLimiter(clock), deadlines=rules, delivery=notifier)
    return World(db, repo, channel, clock, fake_time, notifier, ctx, rules)


@pytest.fixture
async def world(db: AsyncEngine, rules: RuleSet) -> AsyncIterator[World]:
    clock = Clock()
    yield make_world(db, rules, FakeChannel("telegram"), clock, FakeTime(clock=clock))
