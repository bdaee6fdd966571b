"""Short opaque action tokens for chat buttons: `<action>.<id>.<ref>.<mac>`, at most 64 bytes (Telegram's cap).

The server signs with its own key (HMAC-SHA256, truncated to 96 bits), so a token cannot be forged or edited.
`ref` pins the token to the version of what it acts on (an approval's order version, an alert's stage): when
the object has moved on, the handler sees the mismatch and refuses the token as stale. Replays of a consumed
token are refused by the state they act on (an approval decides only once).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from enum import StrEnum

MAX_TOKEN_BYTES = 64
_MAC_BYTES = 12
_REF_RE = re.compile(r"^[A-Za-z0-9_\-]{0,16}$")


class Action(StrEnum):
    APPROVE = "ap"
    REJECT = "rj"
    APPROVAL_DETAILS = "ad"
    ACK = "ak"
    SNOOZE = "sz"
    ADVANCE = "av"
    ORDER_DETAILS = "od"
    NOTE_MENU = "nm"  # an exception note's "correct category" menu (ref: page)
    NOTE_SET = "ns"  # set an exception note's category (ref: engine.note_learning.category_ref)
    CARRIER_SWITCH = "cs"
    CARRIER_UNDO = "cu"
    REFUND_START = "rf"
    GROUP_ACK = "ga"  # a grouped stall card: acknowledge every order on it
    GROUP_SNOOZE = "gs"
    GROUP_PAGE = "gp"  # ref: the page to show
    ASSIGN_MENU = "om"  # a stall card's "assign": the menu of who may own the order (id: order, ref: page)
    ASSIGN_SET = "os"  # make that person the owner (id: order, ref: their user id)


class TokenError(ValueError):
    """Why a token was refused: `malformed`, `forged` or `stale` (the last is raised by handlers)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ActionToken:
    action: Action
    id: int
    ref: str = ""


def _mac(key: bytes, body: str) -> str:
    digest = hmac.new(key, body.encode(), hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def sign(key: bytes, action: Action, id: int, ref: str = "") -> str:
    if not key:
        raise ValueError("token key must not be empty")
    if id < 0 or not _REF_RE.match(ref):
        raise ValueError("token id must be >= 0 and ref at most 16 url-safe characters")
    body = f"{action.value}.{id}.{ref}"
    token = f"{body}.{_mac(key, body)}"
    assert len(token.encode()) <= MAX_TOKEN_BYTES, token
    return token


def verify(key: bytes, token: str) -> ActionToken:
    """Return the token's content, or raise TokenError('malformed'|'forged')."""
    if not token or len(token.encode()) > MAX_TOKEN_BYTES:
        raise TokenError("malformed")
    parts = token.split(".")
    if len(parts) != 4:
        raise TokenError("malformed")
    action_s, id_s, ref, mac = parts
    body = f"{action_s}.{id_s}.{ref}"
    if not hmac.compare_digest(_mac(key, body), mac):
        raise TokenError("forged")
    try:
        return ActionToken(Action(action_s), int(id_s), ref)
    except ValueError:
        raise TokenError("malformed") from None


def version_ref(version: str) -> str:
    """A short form of a long version string (payload hash) to pin a token to it."""
    return re.sub(r"[^A-Za-z0-9_\-]", "", version)[:10]
