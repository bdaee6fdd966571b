"""An outbox row as the columns storage writes: the row itself is built by its constructor in handlers/."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from handlers.chat_ports import NewOutbox


def outbox_values(item: NewOutbox, now: datetime) -> dict[str, Any]:
    """The insert values of a new, pending row (`now`: when it was created)."""
    return {"dedup_key": item.dedup_key, "kind": item.kind, "created_at": now, "due_at": item.due_at,
            "recipient_user_id": item.recipient_user_id, "recipient_role": item.recipient_role,
            "recipient_region": item.recipient_region, "payload": dict(item.payload), "status": "pending",
            "attempts": 0}
