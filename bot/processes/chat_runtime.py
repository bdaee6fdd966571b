"""The chat side of a process: the platforms Settings configure, the chat core over them, and the parts of it this
process runs. Each process kind plays its own parts, so N processes never do the same job twice:

The platforms are the ones bot/platforms/registry.py lists that Settings configure; nothing here names one.

    part        serve   api   worker   scheduler
    route        yes    yes     -         -       the webhook routes only queue updates (Telegram webhook mode, WeCom)
    consume      yes     -     yes        -       updates → the core's handle_event (Redis consumer group)
    poll         yes     -      -        yes      platforms that are polled (Telegram's getUpdates; one process)
    schedule     yes     -      -        yes      stall scan, escalation, outbox sweep, morning digest (leader only)
    register     yes     -      -        yes      identity and set-up (Telegram: getMe, command menu, setWebhook)

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

from bot.platforms import registry
from bot.wiring.chat import ChatCore, build_chat_core, chat_token_key
from bot.adapters.mail import mail_sender_from
from bot.platforms.protocol import ChatPlatform

if TYPE_CHECKING:
    from bot.wiring.runtime import Runtime

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
    platforms: list[ChatPlatform] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def build(cls, runtime: Runtime) -> ChatRuntime:
        s = runtime.settings
        configured = registry.configured(s, runtime.redis)
        core = build_chat_core(runtime.db, runtime.redis, {p.name: p.channel for p in configured}, runtime.clock,
                               runtime.current_rules, token_key=chat_token_key(s), language=s.language,
                               timezone=s.timezone, digest_at=s.digest_at, mailer=mail_sender_from(s),
                               board_url=s.public_url or "http://127.0.0.1:8000",
                               refunds=runtime.refund_deps())
        core.extra_jobs.extend(runtime.tracking_jobs())
        core.extra_jobs.extend(runtime.housekeeping_jobs())
        core.stall_every_s = s.stall_scan_every_s
        core.ctx.tracking = runtime.tracking_service()  # /ship and /track
        core.ctx.carrier_switch = runtime.carrier_switch_deps()  # the degradation card's Switch / Undo
        return cls(core, configured)

    def platform(self, name: str) -> ChatPlatform | None:
        return next((p for p in self.platforms if p.name == name), None)

    @property
    def routers(self) -> list[APIRouter]:
        """Webhook routes to mount in the HTTP app (empty in polling mode or with no platform)."""
        return [p.router for p in self.platforms if p.router is not None]

    async def start(self, parts: ChatParts, stop: asyncio.Event) -> None:
        """Start this process's parts; their loops end when `stop` is set, or at `close()`."""
        for p in self.platforms:
            if parts.register or parts.consume:
                await p.start(register=parts.register)  # e.g. getMe: our name tells commands apart
            if parts.consume or parts.poll:
                handle = self.core.handle if parts.consume else None
                self.tasks.append(asyncio.create_task(p.run(stop, handle, poll=parts.poll), name=p.name))
        if parts.schedule:
            await self.core.start_scheduler()
        log.info("chat: platforms %s; %s", ", ".join(p.name for p in self.platforms) or "none configured",
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
        for p in self.platforms:
            await p.close()
