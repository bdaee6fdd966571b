"""Stripe-style request signatures: `X-OrderHub-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`."""

from __future__ import annotations

import hashlib
import hmac


class SignatureError(Exception):
    """Why a signature was refused; the text is safe to return (it never contains the secret)."""


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret, b"%d." % timestamp + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: bytes, body: bytes, header: str | None, now: float, tolerance_s: int) -> None:
    if not header:
        raise SignatureError("missing X-OrderHub-Signature header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError("signature timestamp is not an integer") from None
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureError("signature header must carry t=<unix> and v1=<hex>")
    if abs(now - timestamp) > tolerance_s:
        raise SignatureError(f"signature timestamp is more than {tolerance_s} s away from now")
    expected = hmac.new(secret, b"%d." % timestamp + body, hashlib.sha256).hexdigest()
    # Several v1 values allow secret rotation: the sender signs with old and new secret during the switch.
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise SignatureError("signature does not match")
