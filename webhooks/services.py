"""What the app needs from the outside, handed in by the composition root (bot/wiring.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from engine.channels import ChannelAdapter
from handlers.ports import IntakeQueue


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    webhook_secrets: dict[str, bytes]
    signature_tolerance_s: int = 300
    max_body_bytes: int = 1024 * 1024
    telegram_secret_token: str | None = None
    timezone: str = "Asia/Shanghai"


@dataclass(slots=True)
class AppServices:
    config: WebhookConfig
    intake: IntakeQueue
    adapters: dict[str, ChannelAdapter]
    queue_depth: Callable[[], Awaitable[int]]
    api: Any = None  # handlers.api_ports.ApiBackend: order reads, transitions, notes, approvals, KPIs, auth
    extra_routers: list[Any] = field(default_factory=list)  # chat platform routes, added by bot/ when configured
    on_startup: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    on_shutdown: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
