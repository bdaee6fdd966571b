"""Correcting an exception note's category: the one use case behind `POST /api/notes/{id}/category`, the chat
button and `orderhub notes relabel`. The correction is audited and becomes an example the classifier uses for
every later note (handlers.notes.record_note reads them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from engine.access import Viewer
from engine.anomaly_library import LIBRARY_VERSION
from engine.note_learning import examples_version, may_correct, valid_category
from engine.rules import RuleSet
from handlers.notes import category_names
from handlers.ports import Refused


class NoteLearningStore(Protocol):
    async def note(self, note_id: int) -> Any: ...  # storage.note_learning_repo.NoteInfo | None

    async def relabel(self, note: Any, category: str, actor: str, via: str, rules_version: str,
                      library_version: str, now: datetime) -> None: ...

    async def examples(self, limit: int = ...) -> list[tuple[str, str]]: ...

    async def export(self) -> list[dict[str, Any]]: ...


class RelabelRefused(Refused):
    """`code`: note_not_found | unknown_category | forbidden."""


@dataclass(frozen=True, slots=True)
class Relabelled:
    note_id: int
    order_id: int
    order_ref: str
    previous: str | None
    category: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.note_id, "order_id": self.order_id, "order": self.order_ref, "previous": self.previous,
                "category": self.category}


@dataclass(slots=True)
class NoteLearning:
    store: NoteLearningStore
    rules: Callable[[], RuleSet]


async def relabel(deps: NoteLearning, note_id: int, category: str, actor_name: str, actor: Viewer | None,
                  via: str, now: datetime) -> Relabelled:
    """Set a note's category as a person says. `actor` None: the operator's shell (trusted like an admin).

    Refused: an unknown note, a category not in the rules in force, or someone who neither owns the categories
    (admin, supply chain) nor may act on the note's order."""
    rules = deps.rules()
    known = category_names(rules)
    if not valid_category(category, known):
        raise RelabelRefused("unknown_category", f"{category[:40]!r} is not a category of the rules; one of: "
                                                 f"{', '.join(known)}")
    note = await deps.store.note(note_id)
    if note is None:
        raise RelabelRefused("note_not_found", f"no exception note {note_id}")
    if actor is not None and not may_correct(actor, note.region, note.owner_user_id):
        raise RelabelRefused("forbidden", f"a {actor.role} may not correct notes on an order of "
                                          f"{note.region or 'no region'}")
    await deps.store.relabel(note, category, actor_name, via, rules.version, LIBRARY_VERSION, now)
    return Relabelled(note.id, note.order_id, note.order_ref, note.category, category)


async def export_examples(deps: NoteLearning) -> dict[str, Any]:
    """Every learned example with the version of the set, the rules version in force and the library's."""
    rows = await deps.store.export()
    return {"version": examples_version((r["text"], r["category"]) for r in rows),
            "rules_version": deps.rules().version, "library_version": LIBRARY_VERSION, "examples": rows}
