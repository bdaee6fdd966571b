"""The small interfaces handlers speak through. Storage and bot/ implement them; tests fake them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class IntakeEntry:
    """One queued order as it came in: the raw JSON of one order, the channel it arrived on, failed tries so far."""

    id: str
    channel: str
    body: bytes
    attempts: int = 0
    received_ms: int = 0
    requested_by: str = "system"  # who caused it: `user:<id>` for a staff import; its approvals name them (four-eyes)


class Refused(Exception):
    """A use case refused: `code` says why in a word the callers map (API error, chat text), `detail` for people."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


class Clock(Protocol):
    def now(self) -> datetime: ...


class IntakeQueue(Protocol):
    async def enqueue(self, channel: str, bodies: Sequence[bytes], requested_by: str = "system") -> None:
        """Return only once every body is durably in the queue."""
        ...


class StoreUnavailable(Exception):
    """The database could not be reached or is busy: retry the whole batch later, it is not the entries' fault."""
