"""Neutral `Card` / text → WeCom application messages, within WeCom's limits.

- Text messages: at most 2,048 bytes of UTF-8 (`text.content`); longer text goes out as several messages, cut
  between lines where possible, never dropped.
- A card becomes a `template_card` of card_type `button_interaction`: main_title (title ≤ 36 characters, desc ≤ 44),
  up to 6 `horizontal_content_list` rows (keyname ≤ 5 characters, value ≤ 30, one line), `sub_title_text`
  (≤ 160 characters) and up to 6 buttons whose key (our opaque token) is 1-1024 bytes. WeCom only *recommends* most
  of these lengths and truncates silently beyond them, so we treat them as hard limits.
- What does not fit the native card is not lost: `render_card` says so (`complete=False`), and the channel sends
  the whole card as text first, then the compact card carrying the buttons (as Telegram's split puts the keyboard
  on the last part).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.text import t
from handlers.chat import Card, PermanentSendError

TEXT_LIMIT_BYTES = 2048
TITLE_MAX = 36
DESC_MAX = 44
SUBTITLE_MAX = 160
ROWS_MAX = 6
KEYNAME_MAX = 5
VALUE_MAX = 30
BUTTONS_MAX = 6
BUTTON_TEXT_MAX = 10
BUTTON_KEY_MAX = 1024  # bytes
REPLACE_NAME_MAX = 16
_ELLIPSIS = "…"


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + _ELLIPSIS


@dataclass(frozen=True, slots=True)
class RenderedCard:
    template_card: dict[str, Any]
    complete: bool  # everything of the card is on it; False: send `card.as_text()` before it


def _row_fits(key: str, value: str) -> bool:
    return 0 < len(key) <= KEYNAME_MAX and 0 < len(value) <= VALUE_MAX and "\n" not in value


def buttons_payload(card: Card) -> list[dict[str, Any]]:
    if len(card.buttons) > BUTTONS_MAX:
        raise PermanentSendError(f"a WeCom card holds at most {BUTTONS_MAX} buttons, this one has {len(card.buttons)}")
    out = []
    for i, b in enumerate(card.buttons):
        size = len(b.token.encode())
        if not 1 <= size <= BUTTON_KEY_MAX:
            raise PermanentSendError(f"button {b.label!r}: token is {size} bytes; WeCom allows 1-{BUTTON_KEY_MAX}")
        # style 1 (blue) for the first, primary action, 4 (plain) for the rest
        out.append({"text": cut(b.label, BUTTON_TEXT_MAX), "style": 1 if i == 0 else 4, "key": b.token})
    return out


def render_card(card: Card, task_id: str, language: str = "zh", *, for_update: bool = False) -> RenderedCard:
    """The native card. With `for_update` (an edit cannot add a message) overflow is cut into sub_title_text with
    "… (+N)"; otherwise it is replaced by a pointer to the full text sent just before."""
    complete = len(card.title) <= TITLE_MAX
    main: dict[str, Any] = {"title": cut(card.title or _ELLIPSIS, TITLE_MAX)}
    rest: list[str] = []
    status = card.status.strip()
    if status and "\n" not in status and len(status) <= DESC_MAX:
        main["desc"] = status
        status = ""
    rows: list[dict[str, str]] = []
    for key, value in card.fields:
        value = str(value).strip()
        if len(rows) < ROWS_MAX and _row_fits(key, value):
            rows.append({"keyname": key, "value": value})
        else:
            rest.append(f"{key}: {value}")
    if status:
        rest.append(status)
    if card.image_url:
        rest.append(card.image_url)
    tc: dict[str, Any] = {"card_type": "button_interaction", "task_id": task_id, "main_title": main}
    if rows:
        tc["horizontal_content_list"] = rows
    sub = "\n".join(rest)
    if len(sub) > SUBTITLE_MAX:
        complete = False
        sub = _cut_lines(rest, SUBTITLE_MAX) if for_update else t("wecom.see_above", language)
    if sub:
        tc["sub_title_text"] = sub
    tc["button_list"] = buttons_payload(card)
    return RenderedCard(tc, complete)


def _cut_lines(lines: list[str], limit: int) -> str:
    """As many whole lines as fit, then "… (+N)" for the lines left out."""
    for keep in range(len(lines), -1, -1):
        left = len(lines) - keep
        out = "\n".join(lines[:keep] + ([f"{_ELLIPSIS} (+{left})"] if left else []))
        if len(out) <= limit:
            return out
    return cut(lines[0], limit) if lines else ""


def _byte_len(text: str) -> int:
    return len(text.encode("utf-8"))


def _cut_bytes(line: str, limit: int) -> list[str]:
    """An over-long line in pieces of at most `limit` bytes, never splitting a character."""
    pieces, current, size = [], [], 0
    for ch in line:
        cost = _byte_len(ch)
        if size + cost > limit and current:
            pieces.append("".join(current))
            current, size = [], 0
        current.append(ch)
        size += cost
    if current:
        pieces.append("".join(current))
    return pieces


def text_chunks(text: str, limit: int = TEXT_LIMIT_BYTES) -> list[str]:
    """All of `text`, in messages of at most `limit` UTF-8 bytes, cut between lines where possible."""
    lines: list[str] = []
    for line in text.split("\n"):
        lines += [line] if _byte_len(line) <= limit else _cut_bytes(line, limit)
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for line in lines:
        cost = _byte_len(line) + (1 if current else 0)
        if current and size + cost > limit:
            chunks.append("\n".join(current))
            current, size, cost = [], 0, _byte_len(line)
        current.append(line)
        size += cost
    if current:
        chunks.append("\n".join(current))
    return [c for c in chunks if c.strip()]  # WeCom rejects an empty text message
