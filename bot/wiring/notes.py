"""Exception notes from chat and note corrections, wired over the database (one line in bot/wiring/chat.py and one
in bot/wiring/runtime.py use this)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from engine.rules import RuleSet
from handlers.orders import OrderEvents
from handlers.note_chat import NoteChat
from handlers.note_learning import NoteLearning
from storage.chat_repo import SqlChatRepo
from storage.note_learning_repo import SqlNoteLearning
from storage.notes_repo import SqlTrendNotes


def note_learning(db: AsyncEngine, rules: Callable[[], RuleSet], events: OrderEvents | None = None) -> NoteLearning:
    return NoteLearning(SqlNoteLearning(db, events), rules)


def note_chat(repo: SqlChatRepo, rules: Callable[[], RuleSet]) -> NoteChat:
    """The chat's note handlers over the chat core's repository (its orders store writes the note, as the API's)."""
    store = SqlNoteLearning(repo.engine, repo.events)  # corrections reach every open board
    return NoteChat(repo, SqlTrendNotes(repo.engine), repo, NoteLearning(store, rules), store)
