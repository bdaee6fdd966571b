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
    """Adapt the rules file's anomaly section (pydantic models or plain dicts) into classifier categories.

    Asked for every note (twice: classification and trend names), so the answer for frozen rules models is
    remembered: the same model objects (a loaded RuleSet's) give the same categories. Plain dicts may change and are
    adapted afresh."""
    values = tuple(raw.values())
    frozen = all(_is_frozen_model(c) for c in values)
    key = (default_threshold, tuple(raw), tuple(map(id, values)))
    if frozen:
        hit = _MEMO.get(key)
        if hit is not None and all(a is b for a, b in zip(hit[0], values, strict=True)):
            return hit[1]
    out = []
    for cid, c in raw.items():
        get = c.get if isinstance(c, Mapping) else lambda k, d=None, c=c: getattr(c, k, d)
        name = get("name")
        if isinstance(name, Mapping):
            zh, en = name.get("zh"), name.get("en")
        else:
            zh = getattr(name, "zh") if hasattr(name, "zh") else str(name)
            en = getattr(name, "en", zh)
        threshold = get("threshold")
        out.append(Category(cid, zh or cid, en or zh or cid, tuple(get("keywords", ()) or ()),
                            tuple(get("examples", ()) or ()), default_threshold if threshold is None else threshold))
    result = tuple(out)
    if frozen:
        if len(_MEMO) >= 16:  # a few rules versions at a time (hot reload); the oldest go
            _MEMO.clear()
        _MEMO[key] = (values, result)  # the strong references keep the ids from being reused
    return result


_MEMO: dict[tuple[Any, ...], tuple[tuple[Any, ...], tuple[Category, ...]]] = {}


def _is_frozen_model(c: Any) -> bool:
    config = getattr(type(c), "model_config", None)
    return isinstance(config, Mapping) and bool(config.get("frozen"))


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
