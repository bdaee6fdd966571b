"""Exception notes → anomaly categories by similarity (rapidfuzz), and the "N in a row" trend check.

Notes are short free Chinese text without word boundaries, so similarity is character based (`fuzz.partial_ratio`
against each example phrase) and keywords are substring hits. The categories come from the rules file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rapidfuzz import fuzz, process


@dataclass(frozen=True, slots=True)
class Category:
    id: str
    name_zh: str
    name_en: str
    keywords: tuple[str, ...]
    examples: tuple[str, ...]
    threshold: float


@dataclass(frozen=True, slots=True)
class Classification:
    category: str | None  # None: no category is similar enough
    score: float  # 0..1
    matched: str  # the example or keyword that decided it, for explanations


def categories_from_rules(raw: Mapping[str, Any], default_threshold: float) -> tuple[Category, ...]:
    """Adapt the rules file's anomaly section (pydantic models or plain dicts) into classifier categories."""
    out = []
    for cid, c in raw.items():
        get = c.get if isinstance(c, Mapping) else lambda k, d=None, c=c: getattr(c, k, d)
        name = get("name")
        zh = name.get("zh") if isinstance(name, Mapping) else getattr(name, "zh", str(name))
        en = name.get("en") if isinstance(name, Mapping) else getattr(name, "en", zh)
        threshold = get("threshold")
        out.append(Category(cid, zh or cid, en or zh or cid, tuple(get("keywords", ()) or ()),
                            tuple(get("examples", ()) or ()), default_threshold if threshold is None else threshold))
    return tuple(out)


def _keyword_score(hits: int) -> float:
    # One keyword is good evidence, two are strong; a full example match still outranks them.
    return 0.0 if hits == 0 else (0.75 if hits == 1 else 0.9)


def classify(text: str, categories: Sequence[Category]) -> Classification:
    text = text.strip()
    best = Classification(None, 0.0, "")
    if not text:
        return best
    for cat in categories:
        hits = [k for k in cat.keywords if k and k in text]
        score, matched = _keyword_score(len(hits)), "、".join(hits)
        if cat.examples:
            example, sim, _ = process.extractOne(text, cat.examples, scorer=fuzz.partial_ratio)
            sim /= 100.0
            if sim > score:
                score, matched = sim, example
        if score >= cat.threshold and score > best.score:
            best = Classification(cat.id, round(score, 3), matched)
    return best


def consecutive_run(recent: Iterable[str | None]) -> tuple[str | None, int]:
    """The category of the newest note and how many notes in a row (newest first) share it."""
    run_cat: str | None = None
    n = 0
    for cat in recent:
        if n == 0:
            run_cat = cat
        if cat is None or cat != run_cat:
            break
        n += 1
    return (run_cat, n) if run_cat is not None else (None, 0)
