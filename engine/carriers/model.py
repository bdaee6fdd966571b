"""The neutral tracking vocabulary every carrier is mapped into."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

CARRIERS = ("sf", "deppon", "kuaidi100")


class TrackStatus(StrEnum):
    PICKED_UP = "picked_up"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    EXCEPTION = "exception"
    RETURNING = "returning"
    RETURNED = "returned"


@dataclass(frozen=True, slots=True)
class TrackEvent:
    """One scan of one parcel, as the carrier reported it (time in UTC)."""

    carrier: str
    waybill: str
    at: datetime
    status: TrackStatus
    text: str
    place: str = ""
    code: str = ""  # the carrier's own code (SF opCode, Kuaidi100 state, Deppon status)


def event_key(ev: TrackEvent) -> str:
    """What makes two reports the same event: carrier, waybill, time, carrier code and text.

    A carrier re-sends its whole route with every push (Kuaidi100 sends `data` in full each time), so the key must
    not depend on where in a push an event sits.
    """
    raw = "\x1f".join((ev.carrier, ev.waybill, ev.at.isoformat(), ev.code, ev.text.strip()))
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


# Waybill numbers as the carriers issue them; anything else goes through Kuaidi100 (which needs the company code).
WAYBILL_PATTERNS: dict[str, re.Pattern[str]] = {
    "sf": re.compile(r"^SF\d{12,13}$"),
    "deppon": re.compile(r"^(DPK\d{12}|\d{10})$"),
}
WAYBILL_ANY = re.compile(r"^[A-Za-z0-9-]{6,40}$")


def waybill_ok(carrier: str, waybill: str) -> bool:
    """A waybill plausible for `carrier` (bounded, carrier pattern where one is known)."""
    pattern = WAYBILL_PATTERNS.get(carrier)
    return bool(pattern.match(waybill)) if pattern else bool(WAYBILL_ANY.match(waybill))


def guess_carrier(waybill: str) -> str | None:
    for carrier, pattern in WAYBILL_PATTERNS.items():
        if pattern.match(waybill):
            return carrier
    return None
