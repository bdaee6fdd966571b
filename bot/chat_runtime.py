"""The chat side of a process: the platforms Settings configure, the chat core over them, and the parts of it this
process runs. Each process kind plays its own parts, so N processes never do the same job twice:

    part        serve   api   worker   scheduler
    route        yes    yes     -         -       the webhook routes only queue updates (Telegram webhook mode, WeCom)
    consume      yes     -     yes        -       updates → the core's handle_event (Redis consumer group)
    poll         yes     -      -        yes      getUpdates (polling mode only; one process should do it)
    schedule     yes     -      -        yes      stall scan, escalation, outbox sweep, morning digest (leader only)
    register     yes     -      -        yes      getMe, command menu, setWebhook

With no chat platform configured, the scheduler still scans for stalls and escalations; the outbox rows wait for a
process that has a platform (the notifier touches nothing without one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import APIRouter

from bot.chat_wiring import ChatCore, build_chat_core, chat_token_key
from bot.mail import mail_sender_from
from bot.telegram.service import TelegramService
from bot.wecom.service import WecomService
from handlers.chat import ChatChannel

if TYPE_CHECKING:
    from bot.wiring import Runtime

log = logging.getLogger("orderhub.chat")


@dataclass(frozen=True)
class ChatParts:
    consume: bool = False
    poll: bool = False
    schedule: bool = False
    register: bool = False


SERVE = ChatParts(consume=True, poll=True, schedule=True, register=True)
WORKER = ChatParts(consume=True)
SCHEDULER = ChatParts(poll=True, schedule=True, register=True)


@dataclass
class ChatRuntime:
    core: ChatCore
    telegram: TelegramService | None
    wecom: WecomService | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def build(cls, runtime: Runtime) -> ChatRuntime:
        s = runtime.settings
        telegram = TelegramService.build(s, runtime.redis)
        channels: dict[str, ChatChannel] = {}
        if telegram is not None:
            channels["telegram"] = telegram.channel
        wecom = WecomService.build(s, runtime.redis)
        if wecom is not None:
            channels["wecom"] = wecom.channel
        core = build_chat_core(runtime.db, runtime.redis, channels, runtime.clock, runtime.current_rules,
                               token_key=chat_token_key(s), language=s.language, timezone=s.timezone,
                               digest_at=s.digest_at, mailer=mail_sender_from(s),
                               board_url=s.public_url or "http://127.0.0.1:8000",
                               refunds=runtime.refund_deps())
        core.extra_jobs.extend(runtime.tracking_jobs())
        core.stall_every_s = s.stall_scan_every_s
        core.ctx.tracking = runtime.tracking_service()  # /ship and /track
        return cls(core, telegram, wecom)

    @property
    def platforms(self) -> list[str]:
        return list(self.core.ctx.channels)

    @property
    def routers(self) -> list[APIRouter]:
        """Webhook routes to mount in the HTTP app (empty in polling mode or with no platform)."""
        routers = [self.telegram.router] if self.telegram is not None and self.telegram.router is not None else []
        return routers + ([self.wecom.router] if self.wecom is not None else [])

    async def start(self, parts: ChatParts, stop: asyncio.Event) -> None:
        """Start this process's parts; their loops end when `stop` is set, or at `close()`."""
        tasks = self.tasks
        if self.telegram is not None:
            if parts.register or parts.consume:
                await self.telegram.start(register=parts.register)  # getMe: our name tells commands apart
            if parts.consume or (parts.poll and not self.telegram.webhook_mode):
                handle = self.core.handle if parts.consume else None
                poll = parts.poll and not self.telegram.webhook_mode
                tasks.append(asyncio.create_task(self.telegram.run(stop, handle, poll=poll), name="telegram"))
        if self.wecom is not None and parts.consume:  # WeCom only pushes (callback route): nothing to poll
            tasks.append(asyncio.create_task(self.wecom.run(stop, self.core.handle), name="wecom"))
        if parts.schedule:
            await self.core.start_scheduler()
        log.info("chat: platforms %s; %s", ", ".join(self.platforms) or "none configured",
                 ", ".join(k for k, v in vars(parts).items() if v) or "no parts")

    async def close(self) -> None:
        """Stop the loops and the scheduler (handing the lease on), then close the platform clients; call it
        before Runtime.close() (the lease release needs Redis)."""
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.tasks.clear()
        await self.core.close()
        if self.telegram is not None:
            await self.telegram.close()
        if self.wecom is not None:
            await self.wecom.close()
