"""The library classifier exactly as it was before the fast path (issue 13): the reference the fast path must
match (tests/engine/test_lib_classifier_fast.py) and the baseline bench/classify.py measures in the same run."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rapidfuzz import fuzz, process

from engine.anomaly import Category, Classification, classify
from engine.anomaly_lib_classifier import Example, LibResult
from engine.anomaly_library import TERMS


def _long_terms(terms: Mapping[str, Mapping[str, float]]) -> tuple[list[str], list[tuple[str, float]]]:
    keys, owners = [], []
    for cid, weights in terms.items():
        for term, w in weights.items():
            if len(term) >= 3:
                keys.append(term.lower())
                owners.append((cid, w))
    return keys, owners


def _lowered(terms: Mapping[str, Mapping[str, float]]) -> tuple[tuple[str, tuple[tuple[str, float], ...]], ...]:
    return tuple((cid, tuple((t.lower(), w) for t, w in weights.items())) for cid, weights in terms.items())


_LONG = _long_terms(TERMS)
_KEYSET = frozenset(_LONG[0])
_LOWERED = _lowered(TERMS)


def _term_scores(text: str, tokens: Sequence[str], terms: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    low = text.lower()
    scores: dict[str, float] = {}
    for cid, weights in (_LOWERED if terms is TERMS else _lowered(terms)):
        s = sum(w for term, w in weights if term in low)
        if s:
            scores[cid] = s
    keys, owners = _LONG if terms is TERMS else _long_terms(terms)
    for tok in tokens:
        if len(tok) < 3 or tok.lower() in _KEYSET:
            continue
        # A misspelt or abbreviated term: a near-identical token counts for most of the term's weight.
        hit = process.extractOne(tok.lower(), keys, scorer=fuzz.ratio, score_cutoff=80)
        if hit is not None and hit[1] < 100:
            cid, w = owners[hit[2]]
            scores[cid] = scores.get(cid, 0.0) + w * 0.6
    return scores


def classify_note(text: str, tokens: Sequence[str], examples: Sequence[Example] = (), threshold: float = 0.5,
                  terms: Mapping[str, Mapping[str, float]] = TERMS) -> LibResult:
    text = text.strip()
    if not text:
        return LibResult(None, 0.0, ())
    scores = _term_scores(text, tokens, terms)
    if examples:
        joined = " ".join(tokens)
        best: dict[str, float] = {}
        for _, score, i in process.extract(joined, [ex.text for ex in examples], scorer=fuzz.token_set_ratio,
                                           limit=None, score_cutoff=60):
            cat, sim = examples[i].category, score / 100.0
            if sim > best.get(cat, 0.0):
                best[cat] = sim
        for cid, sim in best.items():
            if sim >= 0.6:  # a close corrected example outweighs a single library term
                scores[cid] = scores.get(cid, 0.0) + 2.5 * (sim - 0.5)
    ranked = tuple(sorted(scores.items(), key=lambda kv: -kv[1]))[:3]
    if not ranked:
        return LibResult(None, 0.0, ())
    top = ranked[0][1]
    second = ranked[1][1] if len(ranked) > 1 else 0.0
    evidence = min(1.0, top / 1.0)
    margin = (top - second) / top
    confidence = round(evidence * (0.5 + 0.5 * margin), 3)
    return LibResult(ranked[0][0] if confidence >= threshold else None, confidence, ranked)


# --- the note use case's classification before the fast path (handlers.notes.classify_text) ----------------------

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


def classify_text(text: str, rules: Any, tokens: Callable[[str], list[str]]) -> Classification:
    cats = categories_from_rules(rules.anomaly_categories, rules.model.anomalies.threshold)
    known = {c.id for c in cats}  # the use case scores only the library terms of the rules' own categories
    terms = TERMS if known >= TERMS.keys() else {cid: w for cid, w in TERMS.items() if cid in known}
    lib = classify_note(text, tokens(text), terms=terms)
    if lib.category is not None and lib.category in known:
        return Classification(lib.category, lib.confidence, "library")
    return classify(text, cats)


def analyse(text: str, rules: Any, examples: Sequence[tuple[str, str]] = ()) -> tuple[Classification, tuple[str, ...]]:
    """handlers.notes.analyse before its learned examples were prepared once per set (issue 13 follow-up): the
    corrections re-tokenized into a list on every note, scored as a list, the nearest one found by a scan."""
    from engine.anomaly_lib_classifier import classify_note as lib_classify
    from engine.note_learning import CANDIDATES, candidates, nearest_example
    from handlers import notes
    from handlers.tokenizer import tokens

    cats = categories_from_rules(rules.anomaly_categories, rules.model.anomalies.threshold)
    known = [c.id for c in cats]
    learned = [Example(notes._joined_tokens(t), c) for t, c in examples if c in known]
    toks = tokens(text)
    lib = lib_classify(text, toks, learned, terms=notes._library_for(frozenset(known)))
    ranked = [cid for cid, _ in lib.ranked]
    near = nearest_example(" ".join(toks), [(ex.text, ex.category) for ex in learned])
    if near is not None:
        result = Classification(near[0], near[1], "learned")
    elif lib.category is not None and lib.category in known:
        result = Classification(lib.category, lib.confidence, "library")
    else:
        result = classify(text, cats)
    if result.category is not None:
        ranked.insert(0, result.category)
    if len(set(ranked) & set(known)) < CANDIDATES:
        ranked += [c.id for c in sorted(cats, key=lambda c: -notes._similarity(text, c))]
    return result, candidates(ranked, known)
