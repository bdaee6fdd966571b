"""Corrections of exception-note categories: who may correct, which candidates a person is shown, how a category
travels in a signed button token, and what version a set of learned examples has.

Pure: the use case (handlers/note_learning.py) reads the note and writes the correction; this decides.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

from rapidfuzz import fuzz, process

from engine.access import Viewer, may_act_on_order
from engine.anomaly_lib_classifier import ExampleIndex

CATEGORY_MAX = 32  # the notes' category column
CANDIDATES = 3  # buttons on a low-confidence note's card
LEARNED_MATCH = 80.0  # token-set similarity (0-100) at which a corrected note decides a new one outright
CORRECTORS = ("admin", "supply_chain")  # the anomaly owners may correct any note; others, notes on their orders


def may_correct(viewer: Viewer, region: str | None, owner_user_id: int | None) -> bool:
    """The supply-chain lead owns the categories (and is sent the doubtful notes); anyone else needs the right to
    act on the order (engine.access)."""
    return viewer.role in CORRECTORS or may_act_on_order(viewer, region, owner_user_id)


def needs_review(category: str | None, confidence: float, review_below: float) -> bool:
    """A note the classifier is unsure of (or could not place) goes to a person; `review_below: 0` turns it off."""
    return review_below > 0 and (category is None or confidence < review_below)


def candidates(ranked: Iterable[str], known: Sequence[str], n: int = CANDIDATES) -> tuple[str, ...]:
    """The first `n` distinct known categories of `ranked`, padded with the remaining known ones in file order, so
    a person always has `n` buttons to press (fewer only when fewer categories exist)."""
    out: list[str] = []
    for cid in [*ranked, *known]:
        if cid in known and cid not in out:
            out.append(cid)
        if len(out) == n:
            break
    return tuple(out)


def category_ref(category: str) -> str:
    """A category id as a button token's `ref` (≤ 16 url-safe characters): a short digest, resolved against the
    categories in force when pressed, so a renamed or removed category is refused rather than guessed."""
    return hashlib.sha256(category.encode()).hexdigest()[:10]


def resolve_ref(ref: str, known: Iterable[str]) -> str | None:
    return next((cid for cid in known if category_ref(cid) == ref), None)


def examples_version(examples: Iterable[tuple[str, str]]) -> str:
    """A content hash of a set of (text, category) examples: the same set always has the same version."""
    digest = hashlib.sha256()
    for text, category in sorted(examples):
        digest.update(f"{category}\x1f{text}\x1e".encode())
    return digest.hexdigest()[:12]


def valid_category(category: str, known: Mapping[str, object] | Sequence[str]) -> bool:
    return 0 < len(category) <= CATEGORY_MAX and category in known


def nearest_example(joined: str, examples: Sequence[tuple[str, str]], cutoff: float = LEARNED_MATCH
                    ) -> tuple[str, float] | None:
    """(category, similarity 0..1) of the corrected example closest to a note, when it is this close: a person
    already decided a note like this one, and that outranks any library term. Both sides are jieba tokens joined
    by spaces; `examples` are (tokens, category)."""
    if not joined or not examples:
        return None
    hit = process.extractOne(joined, [text for text, _ in examples], scorer=fuzz.token_set_ratio,
                             score_cutoff=cutoff)
    return None if hit is None else (examples[hit[2]][1], round(hit[1] / 100.0, 3))


def nearest_in(index: ExampleIndex, joined: str, cutoff: float = LEARNED_MATCH) -> tuple[str, float] | None:
    """`nearest_example` over prepared examples (an index built once per example set, not a scan per note): the
    same answer, read off the index's scores. `cutoff` must not be below the index's own (EXAMPLE_CUTOFF)."""
    hit = index.nearest(joined) if joined else None
    return None if hit is None or hit[1] < cutoff else (hit[0], round(hit[1] / 100.0, 3))
