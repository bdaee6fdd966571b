"""A platform send recorded before the call and completed after it, so a takeover can tell what may have landed.

A leader killed between the platform's answer and the `message_refs` write used to leave a row that the next leader
sent again (issue 9.7). Now each platform call is bracketed: `begin` is committed before the call, `finish` right
after (message id, or the error). What the next pass finds for a (row, chat) decides what it does:
- the last attempt finished with a message id but no ref was recorded: adopt that message, send nothing;
- the last attempt started and never finished: the message may or may not have landed. A channel that declares
  `dedup_window_s` (WeCom: `enable_duplicate_check`, identical request JSON within the interval is not delivered
  again) gets the same request again, same `send_key`, so the resend is harmless while the window lasts. Any other
  channel (Telegram: no idempotency key) is sent once more — an alert not lost beats a duplicate — and the resend
  is counted as a possible duplicate (metric and log).
The remaining window is the time from the platform's answer to the `finish` commit (bench/send_window.py).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from handlers import metrics
from handlers.chat import ChatChannel, ChatRef, Outgoing, SendError

log = logging.getLogger(__name__)

SEND_KEY = "send_key"  # Outgoing.extra: stable per (row, chat) across resends (WeCom derives its task_id from it)


@dataclass(frozen=True, slots=True)
class SendAttempt:
    id: int
    outbox_id: int
    platform: str
    chat_id: str
    send_key: str
    resend: bool
    started_at: datetime
    finished_at: datetime | None
    message_id: str | None
    error: str | None


class SendAttempts(Protocol):
    async def begin(self, outbox_id: int, platform: str, chat_id: str, send_key: str, resend: bool,
                    now: datetime) -> int: ...

    async def finish(self, attempt_id: int, now: datetime, message_id: str | None, error: str | None) -> None: ...

    async def last(self, outbox_id: int, platform: str, chat_id: str) -> SendAttempt | None: ...


@dataclass(slots=True)
class Prepared:
    """What to do for one (row, chat): `adopt` a delivered message, or send `message` (maybe as a resend)."""

    message: Outgoing
    adopt: ChatRef | None = None
    resend: bool = False


class AttemptedSends:
    """The narrow hook around the notifier's one platform-send call."""

    def __init__(self, store: SendAttempts, now: Callable[[], datetime]) -> None:
        self.store = store
        self.now = now
        self.resent = 0
        self.possible_duplicates = 0

    async def prepare(self, outbox_id: int, channel: ChatChannel, message: Outgoing) -> Prepared:
        prior = await self.store.last(outbox_id, channel.platform, message.chat_id)
        key = prior.send_key if prior is not None else uuid.uuid4().hex
        out = replace(message, extra={**message.extra, SEND_KEY: key})
        if prior is None:
            return Prepared(out)
        if prior.finished_at is not None and prior.message_id:
            return Prepared(out, adopt=ChatRef(channel.platform, prior.chat_id, prior.message_id))
        if prior.finished_at is not None:
            return Prepared(out)  # the platform answered an error: it did not land, an ordinary retry
        window = float(getattr(channel, "dedup_window_s", 0) or 0)
        age = (self.now() - prior.started_at).total_seconds()
        self.resent += 1
        if window > 0 and age < window:
            metrics.NOTIFY_RESENT.labels(platform=channel.platform, outcome="deduplicated").inc()
            log.info("outbox row %s: %s send to %s started %.0f s ago never finished; resent, the platform "
                     "deduplicates it", outbox_id, channel.platform, message.chat_id, age)
        else:
            self.possible_duplicates += 1
            metrics.NOTIFY_RESENT.labels(platform=channel.platform, outcome="possible_duplicate").inc()
            log.warning("outbox row %s: %s send to %s started %.0f s ago never finished; resent once, "
                        "possibly a duplicate", outbox_id, channel.platform, message.chat_id, age)
        return Prepared(out, resend=True)

    async def send(self, outbox_id: int, channel: ChatChannel, prepared: Prepared) -> ChatRef:
        """The platform call between a committed `begin` and its `finish`."""
        message = prepared.message
        attempt = await self.store.begin(outbox_id, channel.platform, message.chat_id, message.extra[SEND_KEY],
                                         prepared.resend, self.now())
        try:
            ref = await channel.send(message)
        except SendError as exc:  # the platform answered (or the adapter gave up): recorded as not delivered
            await self.store.finish(attempt, self.now(), None, str(exc)[:500])
            raise
        await self.store.finish(attempt, self.now(), ref.message_id, None)
        return ref
