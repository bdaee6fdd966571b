"""The composition root: the one module that knows the concrete classes and connects them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import orjson
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.api_backend import SqlApiBackend
from bot.ocr import RapidOcrReader
from bot.rules_runtime import RulesRuntime
from bot.settings import Settings
from bot.worker import IntakeWorker, WorkerOptions
from engine.channels import ChannelAdapter, default_adapters
from engine.rules import RuleSet
from handlers.intake import IntakeProcessor
from handlers.refunds import RefundDeps
from storage import migrate
from storage.chat_repo import SqlChatRepo
from storage.db import make_engine, make_sessionmaker
from storage.dead_letters import SqlDeadLetters
from storage.intake_queue import RedisIntakeQueue
from storage.intake_store import SqlIntakeStore
from storage.notes_repo import SqlTrendNotes
from storage.orders_repo import SqlOrders
from storage.proof_files import ProofDirectory
from storage.redis_conn import EmbeddedRedis, connect, consumer_name
from storage.refunds_repo import SqlRefunds
from storage.reports_repo import SqlReports
from storage.rules_repo import RulesRepo
from storage.users_repo import SqlUsers
from webhooks.services import AppServices, WebhookConfig

log = logging.getLogger("orderhub")


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
    rules: RulesRuntime
    embedded: EmbeddedRedis | None = None
    background: list[asyncio.Task[Any]] = field(default_factory=list)
    _refunds: RefundDeps | None = None

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
        rules = RulesRuntime(settings.rules_path, RulesRepo(make_sessionmaker(db)))
        return cls(settings=settings, db=db, redis=redis, queue=RedisIntakeQueue(redis), clock=SystemClock(),
                   adapters=default_adapters(), rules=rules, embedded=embedded)

    async def upgrade_db(self) -> None:
        await migrate.upgrade(self.db)

    async def start_rules(self, *, watch: bool = True) -> None:
        """Load (and record) the rules; with `watch`, reload them on change for as long as this runtime lives."""
        await self.rules.start()
        if watch:
            self.background.append(asyncio.create_task(self.rules.run(), name="rules-reload"))

    def start_heartbeat(self, component: str, interval_s: float = 30.0) -> None:
        """Record a minute as 'up' only when the health check's own dependencies answer (availability KPI)."""

        async def beat() -> None:
            reports = SqlReports(self.db)
            while True:
                try:
                    await self.queue.depth()
                    await reports.heartbeat(component, self.clock.now())
                except Exception as exc:  # a missed beat is the measurement, not a crash
                    log.warning("heartbeat missed: %s", exc)
                await asyncio.sleep(interval_s)

        self.background.append(asyncio.create_task(beat(), name=f"heartbeat-{component}"))

    def current_rules(self) -> RuleSet:
        return self.rules.current

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

    def refund_deps(self, delivery: Any = None) -> RefundDeps:
        """The refund use cases over this runtime: proofs under <data_dir>/proofs, offline OCR, the return tracker
        (None until the carriers are wired: a proof is then checked by a person)."""
        if self._refunds is None:
            repo = SqlRefunds(self.db)
            self._refunds = RefundDeps(repo, repo, self.current_rules, ProofDirectory(self.settings.data_dir / "proofs"),
                                       RapidOcrReader(), None, None, self.settings.language,
                                       self.settings.after_sales_contact)
        return self._refunds if delivery is None else replace(self._refunds, delivery=delivery)

    def intake_worker(self, consumer: str | None = None) -> IntakeWorker:
        s = self.settings
        processor = IntakeProcessor(SqlIntakeStore(self.db, self.clock), self.adapters, self.current_rules)
        options = WorkerOptions(
            consumer=consumer or consumer_name(), batch_size=s.intake_batch_size, max_attempts=s.intake_max_attempts,
            retry_backoff_s=s.intake_retry_backoff_s, claim_idle_s=s.intake_claim_idle_s,
            overlap_commits=self.db.dialect.name == "postgresql",
        )
        return IntakeWorker(self.queue, processor, self.dead_letters, self.clock, options)

    async def _start_api_heartbeat(self) -> None:
        self.start_heartbeat("api")

    def app_services(self) -> AppServices:
        s = self.settings
        config = WebhookConfig(
            webhook_secrets={k: v.get_secret_value().encode() for k, v in s.webhook_secrets.items()},
            signature_tolerance_s=s.signature_tolerance_s,
            max_body_bytes=s.max_body_bytes,
            timezone=s.timezone,
        )
        chat_repo = SqlChatRepo(self.db)
        api = SqlApiBackend(SqlOrders(self.db), self.users, SqlReports(self.db), self.clock, self.current_rules,
                            SqlTrendNotes(self.db), chat_repo, s.language, chat=chat_repo,
                            refunds=self.refund_deps())
        return AppServices(config=config, intake=self.queue, adapters=self.adapters, queue_depth=self.queue.depth,
                           dead_letters=self.queue.dead_count, api=api, on_startup=[self.start_rules, self._start_api_heartbeat])


def dumps(obj: Any) -> str:
    return orjson.dumps(obj, default=str).decode()
