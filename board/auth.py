"""Password-less sign-in: one-time links, signed session cookies and CSRF tokens, all HMAC-SHA256 with one key.

- link token  `<b64 {"u": user_id, "n": nonce, "e": expiry}>.<mac>`: valid 10 minutes, and only while its nonce is
  alive in the NonceStore; signing in consumes the nonce, so a link works once.
- session     `<b64 {"u": user_id, "s": session id, "e": expiry}>.<mac>`: the cookie (HttpOnly, SameSite=Lax).
  The user is read again on every request, so a deactivated user or a changed role takes effect at once.
- CSRF token  HMAC of the session id: in the page, sent back as `X-CSRF-Token` (or a form field) on every POST.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

from handlers.board import NonceStore

LINK_TTL = timedelta(minutes=10)
SESSION_TTL = timedelta(days=7)  # a wall screen stays signed in for a week; users are re-read on every request
COOKIE = "orderhub_board"
MAX_TOKEN = 512


def derive_key(secret: bytes) -> bytes:
    """The board's own key, derived from the server secret so button tokens and sessions never share one."""
    return hmac.new(secret, b"orderhub-board-v1", hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, kind: str, body: str) -> str:
    return _b64(hmac.new(key, f"{kind}|{body}".encode(), hashlib.sha256).digest())


def _sign(key: bytes, kind: str, payload: dict[str, object]) -> str:
    body = _b64(orjson.dumps(payload))
    return f"{body}.{_mac(key, kind, body)}"


def _open(key: bytes, kind: str, token: str) -> dict[str, object] | None:
    if not token or len(token) > MAX_TOKEN or token.count(".") != 1:
        return None
    body, mac = token.split(".")
    if not hmac.compare_digest(mac, _mac(key, kind, body)):
        return None
    try:
        payload = orjson.loads(_unb64(body))
    except (ValueError, orjson.JSONDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


@dataclass(frozen=True, slots=True)
class LinkCheck:
    user_id: int | None
    problem: str | None  # None | "invalid" | "expired" | "used"


@dataclass(frozen=True, slots=True)
class Session:
    user_id: int
    session_id: str


class BoardAuth:
    def __init__(self, key: bytes, nonces: NonceStore, base_url: str) -> None:
        self.key, self.nonces, self.base_url = key, nonces, base_url.rstrip("/")

    async def login_link(self, user_id: int, now: datetime) -> str:
        """A one-time sign-in URL for `user_id`, valid for 10 minutes."""
        nonce = secrets.token_urlsafe(18)
        await self.nonces.issue(nonce, int(LINK_TTL.total_seconds()))
        token = _sign(self.key, "link", {"u": user_id, "n": nonce, "e": int((now + LINK_TTL).timestamp())})
        return f"{self.base_url}/board/login?t={token}"

    async def check_link(self, token: str, now: datetime, *, consume: bool) -> LinkCheck:
        payload = _open(self.key, "link", token)
        if payload is None or not isinstance(payload.get("u"), int) or not isinstance(payload.get("n"), str):
            return LinkCheck(None, "invalid")
        expiry = payload.get("e")
        if not isinstance(expiry, int) or now.timestamp() >= expiry:
            return LinkCheck(None, "expired")
        nonce = str(payload["n"])
        ok = await self.nonces.consume(nonce) if consume else await self.nonces.alive(nonce)
        if not ok:
            return LinkCheck(None, "used")
        return LinkCheck(int(payload["u"]), None)  # type: ignore[arg-type]

    def session_cookie(self, user_id: int, now: datetime) -> str:
        return _sign(self.key, "session", {"u": user_id, "s": secrets.token_urlsafe(12),
                                           "e": int((now + SESSION_TTL).timestamp())})

    def session(self, cookie: str | None, now: datetime) -> Session | None:
        payload = _open(self.key, "session", cookie or "")
        if payload is None:
            return None
        user_id, sid, expiry = payload.get("u"), payload.get("s"), payload.get("e")
        if not isinstance(user_id, int) or not isinstance(sid, str) or not isinstance(expiry, int):
            return None
        if now.timestamp() >= expiry:
            return None
        return Session(user_id, sid)

    def csrf_token(self, session: Session) -> str:
        return _mac(self.key, "csrf", session.session_id)

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token), self.csrf_token(session))
