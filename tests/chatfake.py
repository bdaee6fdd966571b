"""A recording fake ChatChannel for every test, plus an in-memory attempt limiter and a fake time source.

`FakeChannel` records sends, updates and answers; it can be told to fail: a scripted list of errors for the next
calls, or random retryable/5xx failures at given rates (seeded, so a failing run can be replayed). A failed send
delivers nothing, exactly like a 429 or 500 from a real Bot API.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from handlers.chat import Capabilities, Card, ChatRef, Outgoing, PermanentSendError, RetryableSendError, SendError


@dataclass
class Sent:
    ref: ChatRef
    message: Outgoing

    @property
    def text(self) -> str:
        """What the person reads: the text first, then the card (as the adapters send both)."""
        card = self.message.card.as_text() if self.message.card else ""
        return "\n".join(p for p in (self.message.text, card) if p)


@dataclass
class Answer:
    callback_id: str
    text: str
    alert: bool


class FakeChannel:
    """Implements `handlers.chat.ChatChannel`; everything it was asked to do is in `sent`, `updates`, `answers`."""

    def __init__(self, platform: str = "telegram", *, seed: int = 0,
                 capabilities: Capabilities | None = None) -> None:
        self.platform = platform
        self.capabilities = capabilities or Capabilities(group_prefixes=("-", "group:"))
        self.sent: list[Sent] = []
        self.updates: list[tuple[ChatRef, Card]] = []
        self.answers: list[Answer] = []
        self.calls = 0
        self.script: list[SendError] = []  # raised, in order, by the next send/update calls
        self.retry_rate = 0.0  # share of calls answered like a 429 ...
        self.retry_after = 3.0  # ... with this retry_after
        self.server_error_rate = 0.0  # share of calls answered like a 500 (retryable, no retry_after)
        self.permanent_chats: set[str] = set()  # chats that blocked the bot
        self._rng = random.Random(seed)
        self._ids = itertools.count(1)

    def _maybe_fail(self, chat_id: str) -> None:
        self.calls += 1
        if chat_id in self.permanent_chats:
            raise PermanentSendError(f"Forbidden: bot was blocked by the user {chat_id}")
        if self.script:
            raise self.script.pop(0)
        roll = self._rng.random()
        if roll < self.retry_rate:
            raise RetryableSendError("Too Many Requests", retry_after=self.retry_after)
        if roll < self.retry_rate + self.server_error_rate:
            raise RetryableSendError("Internal Server Error")

    async def send(self, message: Outgoing) -> ChatRef:
        self._maybe_fail(message.chat_id)
        ref = ChatRef(self.platform, message.chat_id, str(next(self._ids)))
        self.sent.append(Sent(ref, message))
        return ref

    async def update(self, ref: ChatRef, card: Card) -> None:
        self._maybe_fail(ref.chat_id)
        self.updates.append((ref, card))

    async def answer(self, callback_id: str, text: str, alert: bool = False) -> None:
        self.answers.append(Answer(callback_id, text, alert))

    # --- helpers for assertions -----------------------------------------------------------------------------------

    def to(self, chat_id: str) -> list[Sent]:
        return [s for s in self.sent if s.message.chat_id == chat_id]

    def texts_to(self, chat_id: str) -> list[str]:
        return [s.text for s in self.to(chat_id)]

    def last_card(self, ref: ChatRef) -> Card | None:
        cards = [c for r, c in self.updates if r == ref]
        return cards[-1] if cards else None


class PassThroughChannel:
    """A real channel seen through a test's wrapper, which overrides `send` to note or break something: updates,
    answers, the platform and its capabilities pass through unchanged."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.platform, self.capabilities = inner, inner.platform, inner.capabilities

    async def send(self, message: Outgoing) -> ChatRef:
        return await self.inner.send(message)

    async def update(self, ref: ChatRef, card: Card) -> None:
        await self.inner.update(ref, card)

    async def answer(self, callback_id: str, text: str, alert: bool = False) -> None:
        await self.inner.answer(callback_id, text, alert)


class MemoryAttemptLimiter:
    """`handlers.chat_ports.AttemptLimiter` in memory on a clock: `limit` failures per `window`, then `lock`."""

    def __init__(self, clock, limit: int = 5, window: timedelta = timedelta(hours=1),
                 lock: timedelta = timedelta(hours=1)) -> None:
        self.clock, self.limit, self.window, self.lock = clock, limit, window, lock
        self.failures: dict[str, list[datetime]] = {}
        self.locked_until: dict[str, datetime] = {}

    async def locked_for(self, key: str) -> float:
        until = self.locked_until.get(key)
        now = self.clock.now()
        return max((until - now).total_seconds(), 0.0) if until else 0.0

    async def fail(self, key: str, *, limit: int | None = None) -> int:
        now = self.clock.now()
        recent = [t for t in self.failures.get(key, []) if now - t < self.window] + [now]
        self.failures[key] = recent
        if len(recent) >= (limit or self.limit):
            self.locked_until[key] = now + self.lock
        return len(recent)

    async def reset(self, key: str) -> None:
        self.failures.pop(key, None)
        self.locked_until.pop(key, None)


@dataclass
class FakeTime:
    """Monotonic time + sleep for the notifier's rate limiter: sleeping advances time (and the clock, if given)."""

    now_s: float = 1000.0
    sleeps: list[float] = field(default_factory=list)
    clock: object | None = None

    def monotonic(self) -> float:
        return self.now_s

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now_s += seconds
        if self.clock is not None and hasattr(self.clock, "at"):
            self.clock.at += timedelta(seconds=seconds)  # type: ignore[attr-defined]
