"""Library classifier: weighted domain terms per category + fuzzy token matches + learned (corrected) examples.

Pure: the caller passes the note's tokens (jieba at the edge, see handlers/tokenizer.py). Confidence combines how much
evidence the best category has with its margin over the runner-up; below the threshold the note stays unclassified.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from engine.anomaly_library import TERMS


@dataclass(frozen=True, slots=True)
class LibResult:
    category: str | None
    confidence: float  # 0..1
    ranked: tuple[tuple[str, float], ...]  # top categories with raw evidence, best first (for correction buttons)


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    category: str


def _term_scores(text: str, tokens: Sequence[str], terms: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    low = text.lower()
    scores: dict[str, float] = {}
    long_tokens = [t for t in tokens if len(t) >= 2]
    for cid, weights in terms.items():
        s = 0.0
        for term, w in weights.items():
            if term.lower() in low:
                s += w
            elif len(term) >= 3 and long_tokens:
                # A misspelt or abbreviated term: one near-identical token counts for most of the weight.
                hit = process.extractOne(term, long_tokens, scorer=fuzz.ratio, score_cutoff=80)
                if hit is not None:
                    s += w * 0.6
        if s:
            scores[cid] = s
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
        for ex in examples:
            sim = fuzz.token_set_ratio(joined, ex.text) / 100.0
            if sim > best.get(ex.category, 0.0):
                best[ex.category] = sim
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
