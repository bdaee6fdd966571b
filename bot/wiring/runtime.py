"""The composition root of the processes: `Runtime` builds the concrete stores, queues, workers and use-case
dependencies from `Settings`, once per process.

It is not the only module that names concrete classes: the chat side is wired in bot/wiring/chat.py and
bot/processes/chat_runtime.py, the board in bot/wiring/board.py, and the CLI builds a Runtime and picks what it needs.
What holds is the other direction: handlers/ and engine/ never import a concrete store or adapter (the architecture test
enforces it), so each can be tested with fakes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.wiring.api_backend import SqlApiBackend
from bot.wiring.notes import note_learning
from bot.adapters.ocr import RapidOcrReader
from bot.workers.rules_runtime import RulesRuntime
from bot.settings import Settings
from bot.wiring.stock import stock_intake, stock_note_sweep
from bot.workers.intake import IntakeWorker, WorkerOptions
from engine.channels import ChannelAdapter, default_adapters
from engine.display import names_from_rules
from engine.rules import RuleSet
from handlers.cards import set_field_names
from handlers.intake import IntakeProcessor
from handlers.refunds import RefundDeps
from handlers.orders import OrderEvents
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
from storage.owners import SqlOwners
from storage.refunds_repo import SqlRefunds
from storage.reports_repo import SqlReports
from storage.rules_repo import RulesRepo
from storage.send_attempts import SqlSendAttempts
from storage.users_repo import SqlUsers
from storage import keys
from storage.tracking_repo import SqlTracking
from bot.wiring.tracking_api import TrackingService
from bot.workers.tracking import TrackingWorker, TrackingWorkerOptions
from handlers.carrier_trends import check_degradation
from handlers.tracking import TrackingDeps, poll_routes
from handlers.tracking import scan_stalls as scan_tracking_stalls
from webhooks.services import AppServices, LogisticsIntake, WebhookConfig

log = logging.getLogger("orderhub")


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def database_engine(settings: Settings) -> AsyncEngine:
    """The database engine every process and command uses (its driver, connect and statement timeouts)."""
    return make_engine(settings.async_database_url, connect_timeout_s=settings.db_connect_timeout_s,
                       statement_timeout_s=settings.db_statement_timeout_s)


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
    _tracking_queue: RedisIntakeQueue | None = None
    _carriers: dict[str, Any] | None = None
    _refunds: RefundDeps | None = None
    _refund_queue: RedisIntakeQueue | None = None

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        """Connect lazily (nothing is dialled until first use), load the rules; no event loop needed."""
        embedded = None
        redis_url = settings.redis_url
        if redis_url is None:
            embedded = EmbeddedRedis(settings.data_dir)
            redis_url = embedded.url()
        redis = connect(redis_url)
        db = database_engine(settings)
        # the chain ORDERHUB_RULES → ./rules.yaml → bundled, resolved again on every poll (as the CLI resolves it)
        rules = RulesRuntime(lambda: settings.rules_path, RulesRepo(make_sessionmaker(db)), language=settings.language,
                             on_change=show_field_names)
        return cls(settings=settings, db=db, redis=redis, queue=RedisIntakeQueue(redis), clock=SystemClock(),
                   adapters=default_adapters(), rules=rules, embedded=embedded)

    async def upgrade_db(self) -> None:
        await migrate.upgrade(self.db)

    async def start_rules(self, *, watch: bool = True) -> None:
        """Load (and record) the rules; with `watch`, reload them on change for as long as this runtime lives."""
        show_field_names(await self.rules.start())
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
        if self._carriers:
            from bot.adapters.carriers.build import close_carriers

            await close_carriers(self._carriers)
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
        """The refund use cases over this runtime: proofs under <data_dir>/proofs, offline OCR, the configured
        carriers as the return tracker (none configured: every proof is checked by a person)."""
        if self._refunds is None:
            from bot.adapters.return_tracker import CarrierReturnTracker

            repo = SqlRefunds(self.db, self.order_events())
            clients = self.carriers()
            tracker = CarrierReturnTracker(clients) if clients else None
            self._refunds = RefundDeps(repo, repo, self.current_rules, ProofDirectory(self.settings.data_dir / "proofs"),
                                       RapidOcrReader(), tracker, None, self.settings.language,
                                       self.settings.after_sales_contact)
        return self._refunds if delivery is None else replace(self._refunds, delivery=delivery)

    def carrier_switch_deps(self) -> Any:
        """The carrier switch use case over this runtime: edits of the rules file in effect (never the bundled
        example), stored as versions and installed in this process at once; other processes' watchers follow."""
        from bot.adapters.holidays import official_holidays
        from bot.settings import BUNDLED_RULES
        from handlers.carrier_switch import SwitchDeps
        from storage.rules_file import RulesFileEditor

        editor = RulesFileEditor(lambda: self.settings.rules_path, self.rules.repo, protected=[BUNDLED_RULES],
                                 official=official_holidays(), reload=self.rules.poll)
        repo = SqlChatRepo(self.db, self.order_events())
        return SwitchDeps(editor, self.current_rules, repo, repo, self.settings.language, users=repo)

    def refund_queue(self) -> RedisIntakeQueue:
        """Verified Taobao refund pushes: the intake's stream implementation on the refund keys."""
        if self._refund_queue is None:
            self._refund_queue = RedisIntakeQueue(
                self.redis, stream=keys.REFUND_STREAM, group=keys.REFUND_GROUP, retry_key=keys.REFUND_RETRY_ZSET,
                dead_stream=keys.REFUND_DEAD_STREAM)
        return self._refund_queue

    def refund_worker(self, consumer: str | None = None) -> Any:
        from bot.workers.refunds import RefundIntakeWorker

        return RefundIntakeWorker(self.refund_queue(), self.refund_deps(), self.dead_letters, self.clock,
                                  consumer=consumer or consumer_name(), max_attempts=self.settings.intake_max_attempts)

    def intake_worker(self, consumer: str | None = None) -> IntakeWorker:
        s = self.settings
        store = SqlIntakeStore(self.db, self.clock, self.order_events())  # auto-confirmations reach the boards
        processor = IntakeProcessor(store, self.adapters, self.current_rules,
                                    **stock_intake(self.db, self.order_events(), s.language))
        options = WorkerOptions(
            consumer=consumer or consumer_name(), batch_size=s.intake_batch_size, max_attempts=s.intake_max_attempts,
            retry_backoff_s=s.intake_retry_backoff_s, claim_idle_s=s.intake_claim_idle_s,
            overlap_commits=self.db.dialect.name == "postgresql",
        )
        return IntakeWorker(self.queue, processor, self.dead_letters, self.clock, options)

    # --- carriers and tracking (bot/adapters/carriers, handlers/tracking) ---------------------------------------------

    @property
    def tracking_queue(self) -> RedisIntakeQueue:
        """Verified carrier pushes: the intake's stream implementation on the tracking keys."""
        if self._tracking_queue is None:
            self._tracking_queue = RedisIntakeQueue(
                self.redis, stream=keys.TRACKING_STREAM, group=keys.TRACKING_GROUP,
                retry_key=keys.TRACKING_RETRY_ZSET, dead_stream=keys.TRACKING_DEAD_STREAM)
        return self._tracking_queue

    def carriers(self) -> dict[str, Any]:
        if self._carriers is None:
            from bot.adapters.carriers.build import build_carriers

            self._carriers = dict(build_carriers(self.settings))
        return self._carriers

    def order_events(self) -> OrderEvents:
        """Every stored move and decision is announced here, after its commit, to every open board."""
        from storage.board_repo import RedisBoardEvents

        return RedisBoardEvents(self.redis)

    def tracking_deps(self) -> TrackingDeps:
        events = self.order_events()
        return TrackingDeps(SqlTracking(self.db), SqlOrders(self.db, events), SqlTrendNotes(self.db),
                            SqlChatRepo(self.db, events),
                            self.current_rules, self.settings.language, self.settings.timezone)

    def tracking_worker(self, consumer: str | None = None) -> TrackingWorker:
        s = self.settings
        options = TrackingWorkerOptions(consumer=consumer or consumer_name(), max_attempts=s.intake_max_attempts,
                                        retry_backoff_s=s.intake_retry_backoff_s, claim_idle_s=s.intake_claim_idle_s)
        return TrackingWorker(self.tracking_queue, self.tracking_deps(), self.dead_letters, self.clock, options)

    def tracking_jobs(self) -> list[tuple[str, float, Any]]:
        """Leader-only: the route poller (every 10 min, capped per carrier), the stall-after-pickup scan and the
        carrier-degradation check (every 6 h)."""
        deps, carriers = self.tracking_deps(), self.carriers()
        per = self.settings.carrier_poll_per_pass

        async def poll() -> object:
            return await poll_routes(deps, carriers, self.clock.now(), per_carrier=per) if carriers else None

        async def stalls() -> object:
            return await scan_tracking_stalls(deps, self.clock.now())

        async def degradation() -> object:
            return await check_degradation(SqlTracking(self.db), SqlChatRepo(self.db, self.order_events()),
                                           self.current_rules, self.clock.now(), self.settings.language)

        return [("carrier_poll", 600.0, poll), ("tracking_stalls", 900.0, stalls),
                ("carrier_degradation", 6 * 3600.0, degradation)]

    def housekeeping_jobs(self) -> list[tuple[str, float, Any]]:
        """Leader-only. Hourly: chat send attempts of settled messages older than `send_attempts_keep_days` go
        (the table grows by one row per message sent; only a pending message's attempts are ever read). Every
        5 minutes: a 库存不足 note that a crash between intake's commit and the note left unwritten."""
        attempts, keep = SqlSendAttempts(self.db), timedelta(days=self.settings.send_attempts_keep_days)

        async def prune_attempts() -> int:
            removed = await attempts.prune(self.clock.now() - keep)
            if removed:
                log.info("deleted %d chat send attempt(s) older than %d days", removed, keep.days)
            return removed

        notes = stock_note_sweep(self.db, self.order_events(), self.settings.language, self.current_rules,
                                 self.clock)
        return [("send_attempts_prune", 3600.0, prune_attempts), ("stock_notes", 300.0, notes)]

    def tracking_service(self) -> TrackingService:
        from bot.adapters.carriers.build import sender

        return TrackingService(self.tracking_deps(), self.carriers(), self.clock, sender(self.settings))

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
        from bot.adapters.carriers.build import push_verifiers

        events = self.order_events()  # API moves and decisions reach every open board
        chat_repo = SqlChatRepo(self.db, events)
        api = SqlApiBackend(SqlOrders(self.db, events), self.users, SqlReports(self.db),
                            self.clock, self.current_rules, SqlTrendNotes(self.db), chat_repo, s.language,
                            chat=chat_repo, refunds=self.refund_deps(), owners=SqlOwners(self.db, events))
        logistics = LogisticsIntake(push_verifiers(s), self.tracking_queue)
        return AppServices(config=config, intake=self.queue, adapters=self.adapters, queue_depth=self.queue.depth,
                           dead_letters=self.queue.dead_count, worker_beats=self.queue.worker_beats, api=api,
                           on_startup=[self.start_rules, self._start_api_heartbeat],
                           logistics=logistics, tracking=self.tracking_service(),
                           refund_intake=self.refund_queue(), notes=note_learning(self.db, self.current_rules, events))


def show_field_names(rules: RuleSet) -> None:
    """Cards and replies name attributes and custom fields as the active rules file says (`field_names`)."""
    set_field_names(names_from_rules(rules.model.field_names))


def dumps(obj: Any) -> str:
    return orjson.dumps(obj, default=str).decode()
