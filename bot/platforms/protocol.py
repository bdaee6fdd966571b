"""What a chat platform is to the rest of OrderHub: the `ChatPlatform` protocol and the `PlatformEntry` that registers
one (the list itself is bot/platforms/registry.py). The runtime, the ASGI app and the CLI iterate entries; nothing
outside a platform's own package names it.

A platform's capabilities (contact sharing, toasts, photos, card edits, which chats are groups) are declared on its
channel (`handlers.chat.Capabilities`): the handlers read them from there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self, TypeVar

from bot.platforms.inbound.consumer import EventHandler, InboundConsumer
from handlers.chat import ChatChannel

if TYPE_CHECKING:
    import redis.asyncio as aioredis
    from fastapi import APIRouter

    from bot.settings import Settings


class ChatPlatform(Protocol):
    """One configured chat platform as a process runs it."""

    name: str
    channel: ChatChannel  # sends, edits, answers; `channel.capabilities` says what the platform can do

    @property
    def router(self) -> APIRouter | None:
        """The webhook/callback routes to mount (None: nothing arrives over HTTP, e.g. Telegram polling)."""

    async def start(self, *, register: bool) -> None:
        """Before consuming: learn who we are; with `register`, publish menus/webhooks (one process does it)."""

    def consumer(self, handle: EventHandler, name: str | None = None) -> InboundConsumer:
        """A consumer of this platform's inbound queue feeding `handle` (tests and `--burst` drain it)."""

    async def run(self, stop: asyncio.Event, handle: EventHandler | None, *, poll: bool) -> None:
        """Until `stop`: consume into `handle` (None: this process does not consume) and, with `poll`, fetch
        updates where the platform is polled. Returns at once when there is nothing to do."""

    async def close(self) -> None: ...


@dataclass(frozen=True)
class PlatformEntry:
    """How to get a platform from Settings. `build` and `routes` return None when the platform is not configured;
    `routes` is what an HTTP-only process (`orderhub api`) mounts: the routes queue, consumers run elsewhere."""

    name: str
    labels: Mapping[str, str]  # the platform's name for people, per language
    build: Callable[[Settings, aioredis.Redis], ChatPlatform | None]
    routes: Callable[[Settings, aioredis.Redis], APIRouter | None]

    def label(self, language: str) -> str:
        return self.labels.get(language) or next(iter(self.labels.values()), self.name)


C = TypeVar("C")
T = TypeVar("T")


def if_configured(config: C | None, make: Callable[[C], T]) -> T | None:
    """`make(config)`, or None when the platform's settings are missing: the `build`/`routes` rule written once."""
    return None if config is None else make(config)


class FromSettings(ABC):
    """A platform service built from its own settings, `settings.<name>()`: `build` is its PlatformEntry's `build`."""

    name: ClassVar[str]

    @classmethod
    def build(cls, settings: Settings, redis: aioredis.Redis) -> Self | None:
        """From `settings.<name>()` only; None when the platform is not configured there."""
        return if_configured(getattr(settings, cls.name)(), lambda config: cls.from_config(config, redis))

    @classmethod
    @abstractmethod
    def from_config(cls, config: Any, redis: aioredis.Redis) -> Self:
        """The service from the platform's settings (known to be complete)."""
