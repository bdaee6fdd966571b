"""A third chat platform, written the way a real one would be: its own package, nothing else in the tree changed.

It receives JSON on `POST /webhooks/fake` (`{"id": …, "user": …, "press": TOKEN}` or `{"id": …, "user": …,
"text": …}`), queues it on the shared stream queue, and sends into lists a test reads. It declares the poorest
capabilities (no contact sharing, no toasts, no photos, no card edits), so the shared handlers must take every
capability-driven path. Registering it is one line: `registry.register(FAKE)` (bot/platforms/registry.py).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from fastapi import APIRouter, Request

from bot.platforms.inbound.consumer import EventHandler, InboundConsumer
from bot.platforms.protocol import PlatformEntry
from bot.settings import Settings
from handlers.chat import (
    ButtonPressed,
    Capabilities,
    Card,
    ChatRef,
    CommandReceived,
    InboundEvent,
    Outgoing,
    PermanentSendError,
    Sender,
    TextReceived,
)
from storage import keys
from storage.stream_queue import UpdateQueue

NAME = "fake"
STREAM = keys.PREFIX + "fake:events"
GROUP = "fake-consumers"


@dataclass
class FakeChatChannel:
    platform: str = NAME
    capabilities: Capabilities = Capabilities(contact_sharing=False, toasts=False, photos=False, card_edits=False)
    sent: list[Outgoing] = field(default_factory=list)
    answers: list[tuple[str, str]] = field(default_factory=list)
    edits: list[ChatRef] = field(default_factory=list)  # attempted, though the capabilities say it cannot
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def send(self, message: Outgoing) -> ChatRef:
        self.sent.append(message)
        return ChatRef(NAME, message.chat_id, str(next(self._ids)))

    async def update(self, ref: ChatRef, card: Card) -> None:
        self.edits.append(ref)
        raise PermanentSendError("the fake platform cannot edit a card (it says so in its capabilities)")

    async def answer(self, callback_id: str, text: str, alert: bool = False) -> None:
        self.answers.append((callback_id, text))

    def to(self, chat_id: str) -> list[Outgoing]:
        return [m for m in self.sent if m.chat_id == chat_id]


async def read(raw: bytes) -> InboundEvent | None:
    """A queued payload → a neutral event (what every adapter's reader does for its own format)."""
    data: dict[str, Any] = json.loads(raw)
    user = str(data["user"])
    sender = Sender(NAME, user, user, user)
    if "press" in data:
        return ButtonPressed(sender, str(data["press"]), callback_id=user)
    text = str(data.get("text", ""))
    if text.startswith("/"):
        command, *args = text[1:].split()
        return CommandReceived(sender, command.lower(), tuple(args))
    return TextReceived(sender, text) if text else None


def _router(queue: UpdateQueue) -> APIRouter:
    router = APIRouter()

    @router.post("/webhooks/fake")
    async def receive(request: Request) -> dict[str, bool]:
        raw = await request.body()
        return {"queued": await queue.push(str(json.loads(raw)["id"]), raw)}

    return router


@dataclass
class FakePlatform:
    channel: FakeChatChannel
    queue: UpdateQueue
    router: APIRouter
    name: str = NAME
    started: list[bool] = field(default_factory=list)

    def consumer(self, handle: EventHandler, name: str | None = None) -> InboundConsumer:
        return InboundConsumer(self.queue, handle, consumer=name, read=read, name=NAME)

    async def start(self, *, register: bool) -> None:
        self.started.append(register)

    async def run(self, stop: asyncio.Event, handle: EventHandler | None, *, poll: bool = False) -> None:
        if handle is not None:
            await self.consumer(handle).run(stop)

    async def close(self) -> None:
        pass


def build(settings: Settings, redis: aioredis.Redis) -> FakePlatform:
    queue = UpdateQueue(redis, STREAM, GROUP)
    return FakePlatform(FakeChatChannel(), queue, _router(queue))


def routes(settings: Settings, redis: aioredis.Redis) -> APIRouter:
    return _router(UpdateQueue(redis, STREAM, GROUP))


FAKE = PlatformEntry(NAME, {"zh": "测试聊天", "en": "Fake chat"}, build, routes)
