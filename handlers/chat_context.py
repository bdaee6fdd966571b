"""What every chat handler may use, built once by the composition root (bot/) and shared by all events.

Its own module so the use cases (approvals, queries, stalls, …) and the dispatcher that routes to them both import
it without importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.text import t
from handlers.board import LoginLinks
from handlers.chat import ChatChannel, Outgoing, Sender
from handlers.chat_ports import AttemptLimiter, ChatRepo, DeadlinePolicy, OutboxDelivery, UserInfo
from handlers.ports import Clock
from handlers.replies import send


@dataclass(slots=True)
class ChatContext:
    """What every chat handler may use: fields, and one lookup (`channel`).

    channels:  one ChatChannel per platform name (the platforms bot/platforms/registry.py registers, or the demo's
               console); replies go to the channel of the event's `sender.platform`, card edits after a decision go
               to every platform holding a copy.
    repo:      storage (storage.chat_repo.SqlChatRepo).
    clock:     `now()` in UTC; frozen in tests.
    token_key: server secret signing button tokens (engine.tokens).
    limiter:   failed customer verification tries (storage.rate_limit.RedisAttemptLimiter).
    deadlines: the SLA rules' stage deadlines (engine.rules.RuleSet), used when a button advances an order.
    delivery:  the Notifier, to push outbox rows (card edits) out right away; None leaves them to the sweep.
    language:  "zh" (default) or "en".
    timezone:  how times are shown to people.
    login_links: the web board's one-time sign-in links (`/board`); None: the board is not offered.
    """

    channels: Mapping[str, ChatChannel]
    repo: ChatRepo
    clock: Clock
    token_key: bytes
    limiter: AttemptLimiter
    deadlines: DeadlinePolicy
    delivery: OutboxDelivery | None = None
    language: str = "zh"
    timezone: str = "Asia/Shanghai"
    tracking: Any = None  # handlers.tracking_chat.TrackingChat: /ship and /track; None when not wired
    login_links: LoginLinks | None = None
    follow_ups: dict[str, Any] = field(default_factory=dict)  # by approval kind (handlers.approvals.Deciders)
    refunds: Any = None  # handlers.refunds.RefundDeps: customers' refund requests and proof photos in chat
    notes: Any = None  # handlers.note_chat.NoteChat: exception notes from chat and their corrections
    owners: Any = None  # handlers.owners.OwnerStore: `/assign ORDER NAME`; None when not wired
    carrier_switch: Any = None  # handlers.carrier_switch.SwitchDeps: the degradation card's Switch / Undo buttons

    def channel(self, platform: str) -> ChatChannel:
        return self.channels[platform]

    async def reply(self, sender: Sender, text: str, **kw: bool) -> None:
        """A direct answer to the person in front of us, in their chat on their platform."""
        await send(self.channel(sender.platform), Outgoing(chat_id=sender.chat_id, text=text, **kw))

    async def staff(self, sender: Sender) -> UserInfo | None:
        """The linked staff user behind `sender`; None for a customer or a stranger."""
        user = await self.repo.user_by_identity(sender.platform, sender.user_id)
        return user if user is not None and user.is_staff else None

    async def staff_only(self, sender: Sender) -> UserInfo | None:
        """The linked staff user behind `sender`, or None once the sender is told the command is for staff only."""
        user = await self.staff(sender)
        if user is None:
            await self.reply(sender, t("staff.only", self.language))
        return user
