"""What the app needs from the outside, handed in by the composition root (bot/wiring/runtime.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from datetime import datetime

from engine.channels import ChannelAdapter
from engine.kpi import Kpis
from engine.rules import RuleSet
from handlers.orders import OrderDetail, OrderStore
from handlers.ports import Clock, IntakeQueue


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    webhook_secrets: dict[str, bytes]
    signature_tolerance_s: int = 300
    max_body_bytes: int = 1024 * 1024
    timezone: str = "Asia/Shanghai"


class Principal(Protocol):
    id: int
    name: str
    role: str
    regions: tuple[str, ...]


class ApiBackend(Protocol):
    """What the staff API needs; bot/ wiring implements it over storage."""

    orders: OrderStore
    clock: Clock
    language: str

    def rules(self) -> RuleSet: ...

    async def authenticate(self, token: str) -> Principal | None: ...

    async def add_note(self, detail: OrderDetail, text: str, author: str) -> dict[str, Any]: ...

    async def approvals(self, status: str, limit: int) -> list[dict[str, Any]]: ...

    async def decide(self, approval_id: int, user: Principal, verdict: Any, reason: str) -> dict[str, Any]:
        """handlers.approvals.decide as `user`; raises handlers.approvals.DecisionRefused."""
        ...

    async def kpis(self, since: datetime, until: datetime) -> Kpis: ...


@dataclass(slots=True)
class LogisticsIntake:
    """Carrier pushes: one verifier per configured carrier (its form fields → signature valid?), and the durable
    queue they go to (a RedisIntakeQueue on the tracking stream)."""

    verifiers: dict[str, Callable[[Mapping[str, str]], bool]]
    queue: IntakeQueue


class TrackingApi(Protocol):
    """Shipping and tracking for the staff API; bot/ wiring implements it over handlers.tracking."""

    async def timeline(self, ref: str) -> dict[str, Any]: ...

    async def ship(self, ref: str, carrier: str | None, waybill: str | None, company: str | None,
                   actor: str) -> dict[str, Any]: ...


@dataclass(slots=True)
class AppServices:
    config: WebhookConfig
    intake: IntakeQueue
    adapters: dict[str, ChannelAdapter]
    queue_depth: Callable[[], Awaitable[int]]
    dead_letters: Callable[[], Awaitable[int]] | None = None
    worker_beats: Callable[[], Awaitable[dict[str, float]]] | None = None  # consumer → unix time its loop last turned
    api: ApiBackend | None = None  # the staff API; None for an intake-only app
    extra_routers: list[Any] = field(default_factory=list)  # chat platform routes, added by bot/ when configured
    mounts: list[tuple[str, Any]] = field(default_factory=list)  # sub-apps by path, e.g. ("/board", board app)
    on_startup: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    on_shutdown: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    logistics: LogisticsIntake | None = None  # carrier pushes; None: /webhooks/logistics/* answers 404
    tracking: TrackingApi | None = None  # /api/orders/{id}/ship and /tracking; None: not offered
    refund_intake: IntakeQueue | None = None  # Taobao refund pushes; None: /webhooks/refunds/taobao answers 404
    notes: Any = None  # handlers.note_learning.NoteLearning: /api/notes/{id}/category; None: not offered
