"""Cards of exception notes: the answer to a note from chat (its category, a Correct button), the category menu,
the low-confidence note sent to a person with its top three categories, and the notes listed on a trend card."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from engine.display import order_words_from_key
from engine.note_learning import category_ref
from engine.note_text import nt
from engine.text import shorten
from engine.tokens import Action, sign
from handlers.chat import Button, Card

MENU_PAGE = 5  # category buttons per menu card (WeCom holds six buttons; the sixth is "More")
NOTE_SHOWN = 300  # characters of a note on a card


def _name(names: Mapping[str, tuple[str, str]], cid: str | None, lang: str) -> str:
    if cid is None:
        return nt("note.unclassified", lang)
    zh, en = names.get(cid, (cid, cid))
    return en if lang == "en" else zh


def correct_button(note_id: int, key: bytes, lang: str) -> Button:
    return Button(nt("note.btn.correct", lang), sign(key, Action.NOTE_MENU, note_id, "0"))


def set_button(note_id: int, cid: str, names: Mapping[str, tuple[str, str]], key: bytes, lang: str) -> Button:
    return Button(_name(names, cid, lang), sign(key, Action.NOTE_SET, note_id, category_ref(cid)))


def note_reply_card(note_id: int, order_ref: str, text: str, category: str | None, confidence: float,
                    names: Mapping[str, tuple[str, str]], key: bytes, lang: str, *, review: bool = False,
                    trends: Sequence[str] = ()) -> Card:
    """What the author of a note from chat gets back: the category it was put in, and a way to correct it."""
    status = [nt("note.review_sent", lang)] if review else []
    if trends:
        status.append(nt("note.trends", lang, trends=", ".join(trends)))
    return Card(nt("note.recorded", lang, order=order_ref),
                ((nt("note.f.text", lang), shorten(text, NOTE_SHOWN)),
                 (nt("note.f.category", lang), _name(names, category, lang)),
                 (nt("note.f.confidence", lang), f"{confidence:.2f}")),
                " ".join(status), (correct_button(note_id, key, lang),))


def note_menu_card(note_id: int, known: Sequence[str], names: Mapping[str, tuple[str, str]], page: int, key: bytes,
                   lang: str) -> Card:
    """Every category of the rules, MENU_PAGE at a time, with "More" cycling through the pages."""
    pages = max(1, -(-len(known) // MENU_PAGE))
    page = page % pages
    shown = known[page * MENU_PAGE:(page + 1) * MENU_PAGE]
    buttons = [set_button(note_id, cid, names, key, lang) for cid in shown]
    if pages > 1:
        buttons.append(Button(nt("note.btn.more", lang), sign(key, Action.NOTE_MENU, note_id, str((page + 1) % pages))))
    return Card(nt("note.menu.title", lang, note=note_id), (), "", tuple(buttons))


def note_review_card(payload: Mapping[str, Any], key: bytes, lang: str) -> Card:
    """A low-confidence note for the supply-chain lead: the note, the classifier's guess, top-3 buttons, More.
    The payload carries the categories' names as the rules said when the note came."""
    note_id = int(payload["note_id"])
    names = {str(k): (str(v[0]), str(v[1])) for k, v in (payload.get("names") or {}).items()}
    buttons = [set_button(note_id, str(cid), names, key, lang) for cid in payload.get("candidates") or ()][:3]
    buttons.append(Button(nt("note.btn.more", lang), sign(key, Action.NOTE_MENU, note_id, "0")))
    guess = payload.get("category")
    return Card(nt("note.review.title", lang, order=payload.get("order_ref", "")),
                ((nt("note.f.text", lang), shorten(str(payload.get("text", "")), NOTE_SHOWN)),),
                nt("note.review.status", lang, guess=_name(names, guess, lang),
                   confidence=f"{float(payload.get('confidence') or 0):.2f}"),
                tuple(buttons))


def relabelled_card(note_id: int, category: str, actor: str, names: Mapping[str, tuple[str, str]],
                    lang: str) -> Card:
    return Card(nt("note.relabelled", lang, note=note_id, category=_name(names, category, lang), actor=actor))


def trend_notes_text(notes: Iterable[Mapping[str, Any]], lang: str) -> str:
    """One line per note of a trend: `TM1（天猫）：text` (the stored key in people's words)."""
    sep = ": " if lang == "en" else "："
    return "\n".join(f"{order_words_from_key(str(n.get('order', '')), lang)}{sep}{n.get('text', '')}"
                     for n in notes if n.get("text"))
