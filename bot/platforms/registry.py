"""The chat platforms OrderHub knows, in one list: adding one is its own package plus one line here.

    PLATFORMS = [TELEGRAM, WECOM, MYCHAT]  # MYCHAT: a `PlatformEntry` (protocol.py) from bot/platforms/mychat/

Everything that used to name the platforms iterates this list: `ChatRuntime.build` (bot/processes/chat_runtime.py), the
`orderhub api` routes (bot/processes/asgi.py) and the CLI's names for them (`orderhub users list`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.platforms.protocol import ChatPlatform, PlatformEntry
from bot.platforms.telegram.service import TELEGRAM
from bot.platforms.wecom.service import WECOM

if TYPE_CHECKING:
    import redis.asyncio as aioredis
    from fastapi import APIRouter

    from bot.settings import Settings

PLATFORMS: list[PlatformEntry] = [TELEGRAM, WECOM]


def register(entry: PlatformEntry) -> PlatformEntry:
    """Add a platform at run time (a plug-in, a test's fake); the same as one more line in `PLATFORMS`."""
    if any(e.name == entry.name for e in PLATFORMS):
        raise ValueError(f"a chat platform named {entry.name!r} is registered already")
    PLATFORMS.append(entry)
    return entry


def configured(settings: Settings, redis: aioredis.Redis) -> list[ChatPlatform]:
    """The platforms Settings configure, built (each from its own settings model), in registration order."""
    return [p for e in PLATFORMS if (p := e.build(settings, redis)) is not None]


def http_routes(settings: Settings, redis: aioredis.Redis) -> list[APIRouter]:
    """The inbound routes of every configured platform, for a process that only receives (`orderhub api`)."""
    return [r for e in PLATFORMS if (r := e.routes(settings, redis)) is not None]


def label(name: str, language: str) -> str:
    """A platform's name for people ("企业微信"); an unknown name (a platform since removed) as it is."""
    return next((e.label(language) for e in PLATFORMS if e.name == name), name)
