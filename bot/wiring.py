"""The composition root: the one module that knows the concrete classes and connects them."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.api_backend import SqlApiBackend
from bot.settings import Settings
from bot.worker import IntakeWorker, WorkerOptions
from engine.channels import ChannelAdapter, default_adapters
from engine.rules import RuleSet, load_rules
from handlers.intake import IntakeProcessor
from storage import migrate
from storage.db import make_engine
from storage.dead_letters import SqlDeadLetters
from storage.intake_queue import RedisIntakeQueue, consumer_name
from storage.intake_store import SqlIntakeStore
from storage.orders_repo import SqlOrders
from storage.redis_conn import EmbeddedRedis, connect
from storage.reports_repo import SqlReports
from storage.users_repo import SqlUsers
from webhooks.services import AppServices, WebhookConfig


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class Runtime:
    """Everything a process needs, built once at start-up from Settings and closed on the way out."""

    settings: Settings
    db: AsyncEngine
    redis: aioredis.Redis
    queue: RedisIntakeQueue
    clock: SystemClock
    adapters: dict[str, ChannelAdapter]
    rules: RuleSet
    embedded: EmbeddedRedis | None = None
    background: list[asyncio.Task[Any]] = field(default_factory=list)

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        """Connect lazily (nothing is dialled until first use), load the rules; no event loop needed."""
        embedded = None
        redis_url = settings.redis_url
        if redis_url is None:
            embedded = EmbeddedRedis(settings.data_dir)
            redis_url = embedded.url()
        redis = connect(redis_url)
        db = make_engine(settings.async_database_url)
        rules = load_rules(settings.rules_path.read_text(encoding="utf-8"), str(settings.rules_path))
        return cls(settings=settings, db=db, redis=redis, queue=RedisIntakeQueue(redis), clock=SystemClock(),
                   adapters=default_adapters(), rules=rules, embedded=embedded)

    async def upgrade_db(self) -> None:
        await migrate.upgrade(self.db)

    def current_rules(self) -> RuleSet:
        return self.rules

    async def close(self) -> None:
        for task in self.background:
            task.cancel()
        for task in self.background:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.redis.aclose()
        await self.db.dispose()
        if self.embedded is not None:
            self.embedded.close()

    # --- parts ----------------------------------------------------------------------------------------------------

    @property
    def users(self) -> SqlUsers:
        return SqlUsers(self.db)

    @property
    def dead_letters(self) -> SqlDeadLetters:
        return SqlDeadLetters(self.db)

    def intake_worker(self, consumer: str | None = None) -> IntakeWorker:
        s = self.settings
        processor = IntakeProcessor(SqlIntakeStore(self.db, self.clock), self.adapters, self.current_rules)
        options = WorkerOptions(
            consumer=consumer or consumer_name(), batch_size=s.intake_batch_size, max_attempts=s.intake_max_attempts,
            retry_backoff_s=s.intake_retry_backoff_s, claim_idle_s=s.intake_claim_idle_s,
        )
        return IntakeWorker(self.queue, processor, self.dead_letters, self.clock, options)

    def app_services(self) -> AppServices:
        s = self.settings
        config = WebhookConfig(
            webhook_secrets={k: v.get_secret_value().encode() for k, v in s.webhook_secrets.items()},
            signature_tolerance_s=s.signature_tolerance_s,
            max_body_bytes=s.max_body_bytes,
            timezone=s.timezone,
        )
        api = SqlApiBackend(SqlOrders(self.db), self.users, SqlReports(self.db), self.clock, self.current_rules,
                            s.language)
        return AppServices(config=config, intake=self.queue, adapters=self.adapters, queue_depth=self.queue.depth,
                           api=api)


def dumps(obj: Any) -> str:
    return orjson.dumps(obj, default=str).decode()
