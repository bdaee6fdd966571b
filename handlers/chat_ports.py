"""What the chat use cases need from storage, as small Protocols plus the plain data they exchange.

`storage.chat_repo.SqlChatRepo` implements all of them; tests use it on a temporary SQLite file. Nothing here is
an ORM object: rows are mapped to these dataclasses (and to `engine` ones) at the repository's edge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from engine.approvals import Actor, Approval, Decided
from engine.order import Order
from engine.stages import Stage
from handlers.chat import ChatRef
from handlers.orders import Move, OrderStore


@dataclass(frozen=True, slots=True)
class UserInfo:
    id: int
    name: str
    role: str  # admin | manager | finance | supply_chain | customer
    regions: tuple[str, ...] = ()
    phone: str | None = None
    supervisor_id: int | None = None
    email: str | None = None  # escalations go here too when SMTP is configured
    quiet_hours: str | None = None  # "22:00-08:00": chat alerts held until it ends (engine/quiet.py)

    @property
    def is_staff(self) -> bool:
        return self.role != "customer"

    def as_actor(self) -> Actor:
        return Actor(user_id=self.id, name=self.name, role=self.role, regions=self.regions)


@dataclass(frozen=True, slots=True)
class Identity:
    """A chat identity tied to a user: where to reach them on one platform."""

    user_id: int
    platform: str
    external_id: str
    chat_id: str | None
    verified_phone: str | None = None


@dataclass(frozen=True, slots=True)
class ChatOrderView:
    """An order plus what chats show besides the engine's Order (version, tracking, alert state)."""

    order: Order
    version: str
    tracking: Mapping[str, Any] | None = None
    owner_user_id: int | None = None
    snoozed_until: datetime | None = None
    completed_at: datetime | None = None
    flagged: bool = False  # among the top `top_fraction` of open orders at the last priority refresh (🔴)
    rank: tuple[int, int] | None = None  # (open orders scoring higher, open orders) when the reader looked it up
    owner_name: str | None = None  # the owner's user name, shown on cards
    production_base: str | None = None


@dataclass(frozen=True, slots=True)
class NewOutbox:
    dedup_key: str
    kind: str
    due_at: datetime
    payload: Mapping[str, Any]
    recipient_user_id: int | None = None
    recipient_role: str | None = None
    recipient_region: str | None = None


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    dedup_key: str
    kind: str
    due_at: datetime
    payload: Mapping[str, Any]
    status: str
    attempts: int = 0
    recipient_user_id: int | None = None
    recipient_role: str | None = None
    recipient_region: str | None = None
    last_error: str | None = None
    group_id: int | None = None  # a stall alert held for / shown on a grouped card


StageMove = Move  # an order transition to record together with a decision (one transaction)


@dataclass(frozen=True, slots=True)
class AwaitingReason:
    """A Reject press waiting for its reason (a ForceReply answer); kept in the DB so a restart loses nothing."""

    approval_id: int
    platform: str
    user_external_id: str
    chat_id: str
    prompt_message_id: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AuditEntry:
    actor: str
    action: str
    subject: str
    detail: Mapping[str, Any] = field(default_factory=dict)


class UserDirectory(Protocol):
    async def user(self, user_id: int) -> UserInfo | None: ...
    async def user_by_identity(self, platform: str, external_id: str) -> UserInfo | None: ...
    async def users_with_role(self, role: str, region: str | None) -> list[UserInfo]: ...
    async def identities_of(self, user_ids: Sequence[int]) -> list[Identity]: ...
    async def redeem_link_code(
        self, code: str, platform: str, external_id: str, chat_id: str, now: datetime
    ) -> UserInfo | None: ...
    async def link_customer_phone(
        self, platform: str, external_id: str, chat_id: str, phone: str, display_name: str, now: datetime
    ) -> UserInfo: ...
    async def verified_phone(self, platform: str, external_id: str) -> str | None: ...
    async def grant_order_access(
        self, platform: str, external_id: str, chat_id: str, order_id: int, now: datetime
    ) -> None: ...
    async def granted_order_ids(self, platform: str, external_id: str) -> set[int]: ...


class OrderReader(Protocol):
    async def order(self, order_id: int) -> ChatOrderView | None: ...
    async def order_by_ref(self, ref: str, *, external_only: bool = False) -> ChatOrderView | None:
        """Internal id (unless `external_only`), `channel:external_id`, or an external id unique across channels."""
        ...
    async def orders_by_phone(self, phone: str, limit: int = 50) -> list[ChatOrderView]: ...
    async def orders_by_ids(self, ids: Sequence[int]) -> list[ChatOrderView]: ...
    async def overdue_orders(self, now: datetime, *, after: tuple[datetime, int] | None = None,
                             limit: int = 1000) -> list[ChatOrderView]:
        """Open orders whose stage deadline has passed (snoozed ones included: the policy decides), by (deadline,
        id); `after` is the last (deadline, id) of the previous page."""
        ...
    async def stalled(
        self, now: datetime, *, city: str | None = None, stage: Stage | None = None, limit: int = 1000
    ) -> list[ChatOrderView]: ...
    async def search(self, text: str, limit: int = 20) -> list[ChatOrderView]: ...
    async def top_orders(self, limit: int = 200) -> list[ChatOrderView]:
        """The flagged open orders, highest priority first (ties: older first)."""
        ...


class ApprovalStore(Protocol):
    async def approval(self, approval_id: int) -> Approval | None: ...
    async def approvals_of_order(self, order_id: int) -> list[Approval]: ...
    async def pending_approvals(self, limit: int = 200) -> list[Approval]: ...
    async def due_escalations(self, now: datetime, limit: int = 200) -> list[Approval]: ...
    async def apply_decision(
        self,
        decided: Decided,
        *,
        move: StageMove | None,
        outbox: Sequence[NewOutbox],
        audit: AuditEntry,
        now: datetime,
        supersede_ids: Sequence[int] = (),
        reschedule: Sequence[tuple[int, datetime | None]] = (),
    ) -> bool:
        """Compare-and-set: store only if the row still has `decided.expected_status`; all or nothing.

        `supersede_ids` are other pending requests of the order that die with this decision (same transaction);
        `reschedule` sets `escalate_at` of the next level's requests, whose cards go out with this decision.
        """
        ...
    async def apply_escalation(
        self, escalated: Approval, *, expected_level: int, outbox: Sequence[NewOutbox], now: datetime
    ) -> bool: ...
    async def await_reason(self, pending: AwaitingReason) -> None: ...
    async def take_awaiting_reason(self, platform: str, user_external_id: str, chat_id: str) -> AwaitingReason | None:
        ...


class OutboxStore(Protocol):
    async def enqueue(self, items: Sequence[NewOutbox], now: datetime) -> list[int]:
        """Insert rows whose dedup key is new; return the ids of those inserted (a known key is skipped)."""
        ...
    async def existing_keys(self, keys: Sequence[str]) -> set[str]: ...
    async def outbox_ids_for_keys(self, keys: Sequence[str]) -> list[int]: ...
    async def outbox_item(self, outbox_id: int) -> OutboxItem | None: ...
    async def due_outbox(self, now: datetime, limit: int = 100) -> list[OutboxItem]: ...
    async def claim_outbox(self, outbox_id: int, owner: str, now: datetime, until: datetime) -> OutboxItem | None:
        """Hold a pending row for `owner` until `until`, atomically, unless another owner's claim is still running;
        claiming again renews the holder's claim. The row as claimed, or None (not pending, or held by another).
        Marking the row (sent, retry, failed, deferred) clears the claim."""
        ...
    async def refs_of_outbox(self, outbox_id: int) -> list[ChatRef]: ...
    async def refs_of_approval(self, approval_id: int) -> list[ChatRef]: ...
    async def record_sent(self, outbox_id: int, approval_id: int | None, ref: ChatRef, now: datetime) -> None: ...
    async def mark_sent(self, outbox_id: int, now: datetime, error: str | None = None) -> None: ...
    async def mark_retry(self, outbox_id: int, due_at: datetime, error: str) -> None: ...
    async def mark_failed(self, outbox_id: int, error: str, now: datetime) -> None: ...


class StallStore(Protocol):
    async def acked_stages(self, order_ids: Sequence[int]) -> dict[int, str]:
        """Per order, the stage whose stall someone acknowledged (no further escalation for it)."""
        ...
    async def acknowledge(self, order_id: int, stage: Stage, actor: str, now: datetime) -> None: ...
    async def snooze(self, order_id: int, until: datetime, actor: str, now: datetime) -> None: ...


@dataclass(frozen=True, slots=True)
class HeldAlert:
    """A stall alert that waits for its group's decision (engine/alert_groups.py) instead of going out alone."""

    alert: NewOutbox
    group_key: str
    labels: Mapping[str, str | None]


@dataclass(frozen=True, slots=True)
class AlertGroup:
    id: int
    group_key: str
    labels: Mapping[str, Any]
    first_at: datetime
    last_sent_at: datetime | None
    shown: int
    version: int
    card_outbox_id: int | None
    recipient_user_id: int | None = None
    recipient_role: str | None = None
    recipient_region: str | None = None


class AlertGroupStore(Protocol):
    async def hold_alerts(self, alerts: Sequence[HeldAlert], now: datetime) -> list[int]:
        """Store each alert (unique dedup key) as held in the open group of its key, opening it if needed; return
        the ids of alerts new to the store."""
        ...
    async def open_groups(self, limit: int = 500) -> list[AlertGroup]: ...
    async def alert_group(self, group_id: int) -> AlertGroup | None: ...
    async def group_members(self, group_id: int) -> list[OutboxItem]: ...
    async def advance_group(self, group_id: int, expected_version: int, now: datetime, *, card: NewOutbox | None,
                            show_ids: Sequence[int], single_id: int | None = None) -> int | None:
        """One group step in one transaction, only if the group is still at `expected_version` (another scheduler
        may have taken it): queue `card` (or release the single alert `single_id` to go out alone), mark
        `show_ids` as shown; return the card's outbox id, None when the step was already taken."""
        ...
    async def close_group(self, group_id: int, expected_version: int, now: datetime) -> bool: ...
    async def defer_outbox(self, outbox_id: int, due_at: datetime, note: str) -> None:
        """Hold a row until `due_at` without counting a failed attempt (quiet hours)."""
        ...


class AuditLog(Protocol):
    async def audit(self, entry: AuditEntry, now: datetime) -> None: ...


class ChatRepo(UserDirectory, OrderReader, OrderStore, ApprovalStore, OutboxStore, StallStore, AlertGroupStore,
               AuditLog, Protocol):
    """Everything the chat core reads and writes; orders move only through `handlers.orders` (OrderStore.move)."""


class AttemptLimiter(Protocol):
    """Failed verification tries per chat identity (5 per hour, then locked an hour); Redis implements it."""

    async def locked_for(self, key: str) -> float:
        """Seconds left on the lock, 0 when free."""
        ...

    async def fail(self, key: str, *, limit: int | None = None) -> int:
        """Record one failed try; return the failures in the window (the lock starts at the limit, or at `limit`
        for this key)."""
        ...

    async def reset(self, key: str) -> None: ...


class DeadlinePolicy(Protocol):
    """The SLA rules' stage deadline (engine.rules.RuleSet has this method)."""

    def deadline_for(self, order: Order, stage: Stage, entered_at: datetime) -> datetime | None: ...


class OutboxDelivery(Protocol):
    """Deliver given outbox rows now (the notifier); used to edit cards right after a decision."""

    async def deliver_ids(self, outbox_ids: Sequence[int]) -> None: ...
