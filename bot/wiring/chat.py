"""Wiring of the chat core for the composition root: one call builds the context every chat event is handled in,
the outbox notifier and (on demand) the leader-only scheduler.

    core = build_chat_core(runtime.db, runtime.redis, channels, runtime.clock, runtime.current_rules,
                           token_key=chat_token_key(settings), language=settings.language, timezone=settings.timezone,
                           digest_at=settings.digest_at)
    handle = core.handle                       # give this to each platform's consumer (Telegram, WeCom)
    await core.start_scheduler()               # stall scan, escalation, outbox sweep, digest (leader only)
    ...
    await core.close()
"""

from __future__ import annotations

from dataclasses import replace

from handlers.refunds import RefundDeps, follow_ups

import asyncio
import os
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.wiring.notes import note_chat
from bot.workers.scheduler import ChatJobs, ChatScheduler, start_scheduler
from engine.digest import ChartData, parse_at
from engine.order import Order
from engine.rules import RuleSet
from engine.stages import Stage
from engine.stall import ladder_from_rules
from handlers.chat import ChatChannel, InboundEvent
from handlers.digest import DigestJob
from handlers.chat_context import ChatContext
from handlers.dispatch import handle_event
from handlers.mail import MailSender
from handlers.notes import category_names
from handlers.notifier import Notifier
from handlers.ports import Clock
from handlers.priority import RefreshResult, refresh_with_retry
from storage.board_repo import RedisBoardEvents
from storage.chat_repo import SqlChatRepo
from storage.digest_repo import SqlDigestSource
from storage.priority_repo import SqlPriorities
from storage.rate_limit import RedisAttemptLimiter
from storage.send_attempts import SqlSendAttempts


class LiveDeadlines:
    """`DeadlinePolicy` over the rules as they are now (they reload while the process runs)."""

    def __init__(self, rules: Callable[[], RuleSet]) -> None:
        self._rules = rules

    def deadline_for(self, order: Order, stage: Stage, entered_at: datetime) -> datetime | None:
        return self._rules().deadline_for(order, stage, entered_at)

    def owner_need_for(self, order: Order, stage: Stage, base: str | None) -> Any:
        """The owner the current rules ask for a stage entered (handlers.orders.plan_move)."""
        return self._rules().owner_need_for(order, stage, base)


def chat_token_key(settings: Any) -> bytes:
    """The button-token signing key: `ORDERHUB_TOKEN_KEY` when set (needed when processes run on several hosts),
    else a random key kept in `<data_dir>/token.key` (created once, mode 0600)."""
    configured = getattr(settings, "token_key", None)
    if configured is not None:
        value = configured.get_secret_value() if hasattr(configured, "get_secret_value") else str(configured)
        return value.encode()
    path = Path(settings.data_dir) / "token.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(32))
    return path.read_bytes()


@dataclass
class ChatCore:
    ctx: ChatContext
    notifier: Notifier
    repo: SqlChatRepo
    redis: aioredis.Redis
    rules: Callable[[], RuleSet]
    scheduler: ChatScheduler | None = field(default=None)
    digest_at: str | None = None  # local HH:MM of the morning digest; None: this core sends no digest
    timezone: str = "Asia/Shanghai"
    language: str = "zh"
    extra_jobs: list[tuple[str, float, Callable[[], Awaitable[object]]]] = field(default_factory=list)
    stall_every_s: float = 60  # ORDERHUB_STALL_SCAN_EVERY_S: how often the leader scans for warnings and stalls

    def digest_job(self) -> DigestJob | None:
        """The morning digest over this core's database, in its time zone and language."""
        if self.digest_at is None:
            return None
        source = SqlDigestSource(self.repo.engine)
        return DigestJob(source, self.repo, self.ctx.clock, lambda: category_names(self.rules()),
                         parse_at(self.digest_at), self.timezone, self.language, chart_source=source)

    async def handle(self, event: InboundEvent) -> None:
        await handle_event(event, self.ctx)

    async def refresh_priorities(self) -> RefreshResult:
        """The nightly job: re-score the open orders on current facts and flag the rules' top fraction."""
        return await refresh_with_retry(SqlPriorities(self.repo.engine), self.rules, self.ctx.clock.now, asyncio.sleep)

    async def start_scheduler(self, **every: float) -> ChatScheduler:
        jobs = ChatJobs(self.repo, self.ctx.clock, self.notifier, lambda: ladder_from_rules(self.rules().escalation),
                        self.digest_job(), self.extra_jobs,
                        daily=[("priority_refresh", time(0, 0), self.timezone, self.refresh_priorities)],
                        plan_for=lambda order: self.rules().stage_ladder(order),
                        policy=lambda: self.rules().group_policy)
        every = {"stall_every_s": self.stall_every_s, "groups_every_s": min(5.0, self.stall_every_s), **every}
        self.scheduler = await start_scheduler(self.redis, jobs, **every)
        return self.scheduler

    async def close(self) -> None:
        if self.scheduler is not None:
            await self.scheduler.stop()


def render_digest_chart(data: ChartData, language: str) -> bytes:
    """The digest chart as PNG; matplotlib is imported on the first digest, not when a process starts."""
    from bot.adapters.digest_chart import render_chart

    return render_chart(data, language)


def build_chat_core(db: AsyncEngine, redis: aioredis.Redis, channels: Mapping[str, ChatChannel], clock: Clock,
                    rules: Callable[[], RuleSet], *, token_key: bytes, language: str = "zh",
                    timezone: str = "Asia/Shanghai", digest_at: str | None = None,
                    mailer: MailSender | None = None, board_url: str | None = None,
                    refunds: RefundDeps | None = None) -> ChatCore:
    repo = SqlChatRepo(db, RedisBoardEvents(redis))  # chat moves and decisions reach every open board
    notifier = Notifier(repo, channels, clock, token_key=token_key, language=language, timezone=timezone,
                        mailer=mailer, attempts=SqlSendAttempts(db), chart_renderer=render_digest_chart,
                        quiet_bypass_level=lambda: rules().model.sla.quiet_bypass_level)
    ctx = ChatContext(channels=channels, repo=repo, clock=clock, token_key=token_key,
                      limiter=RedisAttemptLimiter(redis), deadlines=LiveDeadlines(rules), delivery=notifier,
                      language=language, timezone=timezone)
    ctx.notes = note_chat(repo, rules)  # exception notes from chat (/note, replies) and their corrections
    from storage.owners import SqlOwners

    ctx.owners = SqlOwners(db, repo.events)  # `/assign ORDER NAME` (handlers.owner_chat), announced to boards
    if refunds is not None:  # customers' refunds in chat; finance's decisions carry on to their refunds
        deps = replace(refunds, delivery=notifier)
        ctx.refunds = deps
        ctx.follow_ups = follow_ups(deps)
    if board_url is not None:  # `/board` in chat answers with a one-time sign-in link to <board_url>/board
        from board.auth import BoardAuth, derive_key
        from storage.board_repo import RedisNonces

        ctx.login_links = BoardAuth(derive_key(token_key), RedisNonces(redis), board_url)
    return ChatCore(ctx, notifier, repo, redis, rules, digest_at=digest_at, timezone=timezone, language=language)
