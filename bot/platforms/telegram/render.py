"""Neutral `Card` / text → Telegram HTML, split to respect the 4,096-character message limit.

Telegram counts the limit on the text *after* entity parsing, in UTF-16 code units. We measure the raw HTML we send
(tags and escapes included) in UTF-16 units, which is never less than what Telegram measures, so a chunk we accept is
always accepted by the server. Every line is self-contained HTML (a tag opened on a line closes on it), so a message
can be cut between any two lines without breaking the markup; a single line too long for one message is cut into
pieces, each escaped on its own so no `&amp;` is ever split.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from handlers.chat import Card

TEXT_LIMIT = 4096
_ELLIPSIS = "…"


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def esc(text: str) -> str:
    """Escape for parse_mode=HTML: Telegram needs <, > and & escaped (quotes too inside attributes)."""
    return html.escape(text, quote=True)


@dataclass(frozen=True, slots=True)
class _Line:
    raw: str  # unescaped text
    tag: str = ""  # "b", "i" or "" (plain)

    def html(self) -> str:
        body = esc(self.raw)
        return f"<{self.tag}>{body}</{self.tag}>" if self.tag else body


def _card_lines(card: Card) -> list[_Line]:
    lines = [_Line(card.title, "b")] if card.title else []
    for key, value in card.fields:
        first, *rest = str(value).split("\n") or [""]
        lines.append(_Line(f"{key}: {first}"))
        lines += [_Line(extra) for extra in rest]  # multi-line values (item lists) stay on their own lines
    if card.status:
        lines += [_Line(s, "i") for s in card.status.split("\n")]
    return lines


def _text_lines(text: str) -> list[_Line]:
    return [_Line(line) for line in text.split("\n")]


def _image_line(url: str) -> str:
    return f'<a href="{esc(url)}">🖼</a>'


def _cut(line: _Line, limit: int) -> list[str]:
    """Split one over-long line into HTML pieces each within `limit` (escaping piece by piece)."""
    wrap = utf16_len(f"<{line.tag}></{line.tag}>") if line.tag else 0
    pieces: list[str] = []
    current: list[str] = []
    size = wrap
    for ch in line.raw:
        cost = utf16_len(esc(ch))
        if size + cost > limit and current:
            pieces.append(_Line("".join(current), line.tag).html())
            current, size = [], wrap
        current.append(ch)
        size += cost
    if current or not pieces:
        pieces.append(_Line("".join(current), line.tag).html())
    return pieces


def _html_lines(lines: list[_Line], limit: int) -> list[str]:
    out: list[str] = []
    for line in lines:
        rendered = line.html()
        out += [rendered] if utf16_len(rendered) <= limit else _cut(line, limit)
    return out


def _pack(lines: list[str], limit: int) -> list[str]:
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for line in lines:
        cost = utf16_len(line) + (1 if current else 0)  # +1 for the joining newline
        if current and size + cost > limit:
            chunks.append("\n".join(current))
            current, size = [], 0
            cost = utf16_len(line)
        current.append(line)
        size += cost
    if current:
        chunks.append("\n".join(current))
    # Telegram rejects a message that is empty or only whitespace after parsing; drop such chunks.
    return [c for c in chunks if html.unescape(c).strip()]


def render_chunks(card: Card | None, text: str = "", limit: int = TEXT_LIMIT) -> list[str]:
    """Everything, in as many messages as it takes (never dropped): text first, then the card."""
    lines = (_text_lines(text) if text else []) + (_card_lines(card) if card else [])
    html_lines = _html_lines(lines, limit)
    if card and card.image_url:
        html_lines.append(_image_line(card.image_url))
    return _pack(html_lines, limit)


def render_single(card: Card, limit: int = TEXT_LIMIT) -> str:
    """One message (an edit cannot add messages): title and status always shown, fields cut with `… (+N)` if needed.

    Cards sent to chats are built by the core to fit (long lists paged or summarised); this cut is the last guard.
    """
    chunks = render_chunks(card, limit=limit)
    if len(chunks) <= 1:
        return chunks[0] if chunks else esc(card.title or _ELLIPSIS)
    head = _html_lines([_Line(card.title, "b")], limit)[:1] if card.title else []
    tail = _html_lines([_Line(s, "i") for s in card.status.split("\n")], limit) if card.status else []
    if card.image_url:
        tail.append(_image_line(card.image_url))
    body = _html_lines(_card_lines(Card(title="", fields=card.fields)), limit)
    fixed = head + tail
    budget = limit - sum(utf16_len(x) + 1 for x in fixed) - utf16_len(f"{_ELLIPSIS} (+{len(body)})") - 1
    kept: list[str] = []
    for line in body:
        cost = utf16_len(line) + 1
        if cost > budget:
            break
        kept.append(line)
        budget -= cost
    marker = f"{_ELLIPSIS} (+{len(body) - len(kept)})"
    out = "\n".join(head + kept + [marker] + tail)
    while utf16_len(out) > limit and tail:  # absurdly long status: give it up rather than exceed the limit
        tail.pop()
        out = "\n".join(head + kept + [marker] + tail)
    return out if utf16_len(out) <= limit else chunks[0]
