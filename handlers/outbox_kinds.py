"""Outbox kinds that more than one module writes, each built by one constructor here (dedup key, payload, recipients).

Storage writes the rows it is given (`storage/outbox_rows.py`); the notifier renders each kind through its renderer
table (`handlers/notifier.RENDERERS`). Kinds written by one use case only keep their constructor next to it
(`handlers/stalls.py`, `digest.py`, `notes.py`, `tracking.py`, `carrier_trends.py`, `carrier_switch.py`,
`refunds.py`) and their name in the same table.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from handlers.chat_ports import NewOutbox

APPROVAL_REQUEST = "approval_request"  # a request card to the deciding role (and region)
APPROVAL_OUTCOME = "approval_outcome"  # edits every stored copy of a request card; no recipients, its refs say where
ADMIN_NOTICE = "admin_notice"  # plain text to the admins
DEAD_LETTER = "dead_letter"  # an intake entry given up: facts, worded by the notifier
RULES_INVALID = "rules_invalid"  # a rules file that was refused: facts, worded by the notifier
ADMIN_ROLE = "admin"


def approval_request(approval_id: Any, order_id: Any, due_at: Any, *, role: Any, region: Any = None,
                     again: int | None = None, escalation_level: int = 0, refund_id: int | None = None,
                     fields: Sequence[Sequence[str]] | None = None) -> NewOutbox:
    """The row that sends one approval's request card (dedup `approval:<id>`).

    `again`: a stamp for a request reopened by the same content (a new key, so it is sent again);
    `escalation_level`: a silent request escalated (its own key per level); `refund_id` and `fields`: what a refund
    request brings to its card. The arguments may be column expressions: `storage/intake_store_pg.py` turns this row
    into its bulk SQL, so they must appear as given (no arithmetic on them here)."""
    key = f"approval:{approval_id}"
    payload: dict[str, Any] = {"approval_id": approval_id, "order_id": order_id}
    if escalation_level:
        key += f":esc:{escalation_level}"
        payload["escalation_level"] = escalation_level
    elif again is not None:
        key += f":{again}"
    if refund_id is not None:
        payload["refund_id"] = refund_id
        payload["fields"] = [list(f) for f in fields or ()]
    return NewOutbox(key, APPROVAL_REQUEST, due_at, payload, recipient_role=role, recipient_region=region)


def approval_outcome(approval_id: int, now: datetime) -> NewOutbox:
    """Edits every stored copy of the request card to show the outcome (no recipients: refs say where)."""
    return NewOutbox(f"approval_outcome:{approval_id}", APPROVAL_OUTCOME, now, {"approval_id": approval_id})


def admin_notice(dedup_key: str, text: str, now: datetime) -> NewOutbox:
    """Plain text for the admins, already worded in the chat language (`notice:<what>:<scope>`)."""
    return NewOutbox(dedup_key, ADMIN_NOTICE, now, {"text": text}, recipient_role=ADMIN_ROLE)


def dead_letter(entry_id: str, channel: str, error: str, attempts: int, now: datetime) -> NewOutbox:
    """An intake entry moved to the dead letters: one alert per entry."""
    return NewOutbox(f"dead_letter:{entry_id}", DEAD_LETTER, now,
                     {"entry_id": entry_id, "channel": channel, "error": error[:500], "attempts": attempts},
                     recipient_role=ADMIN_ROLE)


def rules_invalid_key(sha256: str) -> str:
    return f"{RULES_INVALID}:{sha256}"


def rules_invalid(sha256: str, error: str, error_zh: str, path: str, now: datetime) -> NewOutbox:
    """A refused rules file: one alert per content; both reports kept, the notifier picks the language."""
    return NewOutbox(rules_invalid_key(sha256), RULES_INVALID, now,
                     {"error": error, "error_zh": error_zh, "path": path}, recipient_role=ADMIN_ROLE)
