"""Exception notes: classify on arrival (with the examples people's corrections left, handlers/note_learning.py),
store, send an unsure note to a person (a `note_review` card), and queue a trend alert when a category repeats.

The note is stored first and the trend decided after, from what is stored: the decision is the engine's
(`engine.trends`), the alert an outbox row whose dedup key names the run, so a repeated check never alerts twice.
A crash between the two loses no note; the next note of the same run proposes the same alert again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from typing import Protocol

from engine.anomaly import Category, Classification, categories_from_rules, classify
from engine.anomaly_lib_classifier import Example, ExampleIndex, classify_note
from engine.anomaly_library import TERMS
from engine.note_learning import CANDIDATES, candidates, nearest_in, needs_review
from handlers.tokenizer import tokens
from engine.rules import RuleSet
from engine.trends import (
    MAX_RUN_LOOKBACK,
    NoteFact,
    Per,
    TrendHit,
    detect,
    group_of,
    hit_payload,
    recipients,
    specs_from_rules,
)
from handlers.chat_ports import NewOutbox, OutboxStore

log = logging.getLogger(__name__)
KIND = "trend_alert"
REVIEW_KIND = "note_review"
WINDOW_NOTES_MAX = 2000  # notes read for one count-within-window check


class NoteWriter(Protocol):
    async def add_note(self, order_id: int, text: str, author: str, category: str | None, score: float | None,
                       now: datetime) -> int: ...


class TrendNotes(Protocol):
    async def learned_examples(self) -> list[tuple[str, str]]:
        """People's corrections (text, category), newest first: the classifier learns from them."""
        ...
    async def note_fact(self, note_id: int) -> NoteFact | None: ...
    async def group_notes(self, upto_id: int, per: Per, group: str | None, *, since: datetime | None,
                          limit: int) -> list[NoteFact]: ...


@dataclass(frozen=True, slots=True)
class NoteResult:
    id: int
    classification: Classification
    trends: tuple[TrendHit, ...] = ()
    candidates: tuple[str, ...] = ()  # the categories a person is offered, most likely first
    review: bool = False  # sent to a person because the classifier was unsure


def category_names(rules: RuleSet) -> dict[str, tuple[str, str]]:
    cats = categories_from_rules(rules.anomaly_categories, rules.model.anomalies.threshold)
    return {c.id: (c.name_zh, c.name_en) for c in cats}


def classify_text(text: str, rules: RuleSet, examples: Sequence[tuple[str, str]] = ()) -> Classification:
    """Bundled library first (domain terms, jieba tokens, confidence, the corrected examples); the merchant's own
    rule categories otherwise."""
    return analyse(text, rules, examples)[0]


def analyse(text: str, rules: RuleSet, examples: Sequence[tuple[str, str]] = ()
            ) -> tuple[Classification, tuple[str, ...]]:
    """The classification and the categories a person would be offered (the library's ranking, then the rules'
    example similarity), restricted to the rules' categories."""
    cats = categories_from_rules(rules.anomaly_categories, rules.model.anomalies.threshold)
    known = [c.id for c in cats]
    toks = tokens(text)
    joined = " ".join(toks)
    taught = learned(examples, frozenset(known)) if examples else None
    lib = classify_note(text, toks, taught.index if taught is not None else (), terms=_library_for(frozenset(known)))
    ranked = [cid for cid, _ in lib.ranked]
    near = taught.nearest(joined) if taught is not None else None  # a person decided a note like this one
    if near is not None:
        result = Classification(near[0], near[1], "learned")
    elif lib.category is not None and lib.category in known:
        result = Classification(lib.category, lib.confidence, "library")
    else:
        result = classify(text, cats)
    if result.category is not None:
        ranked.insert(0, result.category)
    if len(set(ranked) & set(known)) < CANDIDATES:  # the library had too few: the rules' examples rank the rest
        ranked += [c.id for c in sorted(cats, key=lambda c: -_similarity(text, c))]  # stable: file order on ties
    return result, candidates(ranked, known)


@dataclass(frozen=True, slots=True)
class Learned:
    """People's corrections prepared for classifying many notes: the examples of the rules' categories as jieba
    tokens, indexed once (engine.anomaly_lib_classifier.ExampleIndex)."""

    index: ExampleIndex

    def nearest(self, joined: str) -> tuple[str, float] | None:
        """`engine.note_learning.nearest_example` over the same examples, read off the index's scores."""
        return nearest_in(self.index, joined)


_LEARNED: dict[tuple[tuple[tuple[str, str], ...], frozenset[str]], Learned] = {}
LEARNED_SETS = 4  # example sets remembered: the current one, plus a few while rules or corrections change


def learned(examples: Sequence[tuple[str, str]], known: frozenset[str]) -> Learned:
    """The prepared form of an example set, rebuilt only when the set (its content and order: what a correction
    changes) or the rules' categories change. Keyed by the set itself: hashing it costs far less than one
    unindexed scoring pass, and a different set can never be served a stale index."""
    key = (tuple(examples), known)
    hit = _LEARNED.get(key)
    if hit is None:
        hit = Learned(ExampleIndex(tuple(Example(_joined_tokens(t), c) for t, c in key[0] if c in known)))
        if len(_LEARNED) >= LEARNED_SETS:
            _LEARNED.pop(next(iter(_LEARNED)))  # the oldest set
        _LEARNED[key] = hit
    return hit


@lru_cache(maxsize=64)
def _library_for(known: frozenset[str]) -> Mapping[str, Mapping[str, float]]:
    """The library's terms of the categories the rules have: a term of a category the rules lack can never be the
    answer, so it must not dilute the confidence of those that can. All present: the library itself (its memos)."""
    return TERMS if known >= TERMS.keys() else {cid: w for cid, w in TERMS.items() if cid in known}


@lru_cache(maxsize=20_000)
def _joined_tokens(text: str) -> str:
    """An example in the form the note is matched in (its jieba tokens), tokenized once per process."""
    return " ".join(tokens(text))


def _similarity(text: str, cat: Category) -> float:
    return classify(text, [replace(cat, threshold=0.0)]).score


async def record_note(writer: NoteWriter, trends: TrendNotes, outbox: OutboxStore, rules: RuleSet, order_id: int,
                      text: str, author: str, now: datetime, order_ref: str | None = None) -> NoteResult:
    """Classify (with what people taught it) and store one exception note, send it to a person when the classifier
    is unsure, then queue any trend it completes. Every entry point (API, chat, board, carriers) calls this."""
    result, offered = analyse(text, rules, await trends.learned_examples())
    note_id = await writer.add_note(order_id, text, author, result.category, result.score, now)
    anomalies = rules.model.anomalies
    review = needs_review(result.category, result.score, anomalies.review_below)
    if review:
        try:
            if order_ref is None:  # how people name the order, for the card (carrier exceptions come by id)
                fact = await trends.note_fact(note_id)
                order_ref = fact.order_ref if fact is not None else None
            await outbox.enqueue([NewOutbox(f"note_review:{note_id}", REVIEW_KIND, now, {
                "note_id": note_id, "order_id": order_id, "order_ref": order_ref or f"#{order_id}", "text": text,
                "category": result.category, "confidence": result.score, "candidates": list(offered),
                "names": {cid: list(zh_en) for cid, zh_en in category_names(rules).items()
                          if cid in offered or cid == result.category}},
                recipient_role=anomalies.review_role)], now)
        except Exception:  # the note is stored and classified; a lost review card must not fail the request
            log.exception("review card for note %s not queued", note_id)
    hits: tuple[TrendHit, ...] = ()
    if result.category is not None:
        try:
            hits = tuple(await check_trends(trends, outbox, rules, note_id, now))
        except Exception:  # the note is stored; a failed check must not fail the request (the next note retries)
            log.exception("trend check after note %s failed", note_id)
    return NoteResult(note_id, result, hits, offered, review)


async def check_trends(trends: TrendNotes, outbox: OutboxStore, rules: RuleSet, note_id: int,
                       now: datetime) -> list[TrendHit]:
    """Queue one `trend_alert` row per recipient for every trend the note completes; return the new hits."""
    new = await trends.note_fact(note_id)
    if new is None or new.category is None:
        return []
    names: Mapping[str, tuple[str, str]] = category_names(rules)
    hits: list[TrendHit] = []
    for spec in specs_from_rules(rules.trends):
        group = group_of(new, spec.per)
        if spec.per != "all" and group is None:
            continue  # the order has no base / carrier yet: it belongs to no group
        if spec.consecutive is not None:
            recent = await trends.group_notes(note_id, spec.per, group, since=None, limit=MAX_RUN_LOOKBACK)
            hit = detect(spec, new, recent, truncated=len(recent) >= MAX_RUN_LOOKBACK)
        elif spec.window is not None:
            recent = await trends.group_notes(note_id, spec.per, group, since=new.at - spec.window,
                                              limit=WINDOW_NOTES_MAX)
            hit = detect(spec, new, recent)
        else:
            continue
        if hit is not None:
            hits.append(hit)
    if not hits:
        return []
    rows = [NewOutbox(f"{hit.key}:{role}:{region or '*'}", KIND, now, hit_payload(hit, names),
                      recipient_role=role, recipient_region=region)
            for hit in hits for role, region in recipients(hit.spec, new)]
    existing = await outbox.existing_keys([r.dedup_key for r in rows])
    new_rows = [r for r in rows if r.dedup_key not in existing]
    if new_rows:
        await outbox.enqueue(new_rows, now)  # insert-or-ignore: a concurrent check cannot double a row
    fired = {r.payload["hit"] for r in new_rows}
    return [hit for hit in hits if hit.key in fired]
