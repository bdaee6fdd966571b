"""Library classifier: weighted domain terms per category + fuzzy token matches + learned (corrected) examples.

Pure: the caller passes the note's tokens (jieba at the edge, see handlers/tokenizer.py). Confidence combines how much
evidence the best category has with its margin over the runner-up; below the threshold the note stays unclassified.

Fast path (bench/classify.py), same answers as the straightforward version it replaced (recorded in
tests/engine/data/lib_classifier_golden.json, checked by tests/engine/test_lib_classifier_fast.py):
- term hits: instead of ~330 substring searches per note, the note's substrings that start with a term's first
  character are looked up in a dict (`_TermTable`), and the weights summed in the library's order (same floats);
- fuzzy token hits: the best near-identical term per token is a pure function of the token, memoised (bounded);
- learned examples: an `ExampleIndex` (built once per example set: pass a tuple, or build it when corrections
  change; a list is scored as it is) reduces every example to its token set, scored once per distinct set. `fuzz.token_set_ratio` of two
  token sets that share no token is exactly `fuzz.ratio` of their sorted, space-joined forms, which rapidfuzz scores
  against all examples in one call; only the sets that share a token with the note (an inverted index) need the
  full `token_set_ratio`, in a second call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz, process

from engine.anomaly_library import TERMS

EXAMPLE_CUTOFF = 60  # token_set_ratio below this is no evidence
FUZZY_CACHE = 16_384  # distinct tokens remembered by the fuzzy term lookup


@dataclass(frozen=True, slots=True)
class LibResult:
    category: str | None
    confidence: float  # 0..1
    ranked: tuple[tuple[str, float], ...]  # top categories with raw evidence, best first (for correction buttons)


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    category: str


def _long_terms(terms: Mapping[str, Mapping[str, float]]) -> tuple[list[str], list[tuple[str, float]]]:
    keys, owners = [], []
    for cid, weights in terms.items():
        for term, w in weights.items():
            if len(term) >= 3:
                keys.append(term.lower())
                owners.append((cid, w))
    return keys, owners


class _TermTable:
    """The terms of a library arranged for lookup: lowered term → its (category, weight) entries in library order."""

    __slots__ = ("cats", "by_term", "first_chars", "lengths", "keys", "owners")

    def __init__(self, terms: Mapping[str, Mapping[str, float]]) -> None:
        self.cats = list(terms)
        by_term: dict[str, list[tuple[int, int, float]]] = {}  # term -> (category index, position, weight)
        for ci, weights in enumerate(terms.values()):
            for pos, (term, w) in enumerate(weights.items()):
                by_term.setdefault(term.lower(), []).append((ci, pos, w))
        self.by_term = by_term
        self.first_chars = frozenset(t[0] for t in by_term if t)
        self.lengths = tuple(sorted({len(t) for t in by_term if t}))
        self.keys, self.owners = _long_terms(terms)

    def hits(self, low: str) -> dict[str, float]:
        """Per category, the sum of the weights of its terms found in `low`, summed in library order."""
        by_term, lengths, first = self.by_term, self.lengths, self.first_chars
        found: set[str] = set()
        n = len(low)
        for i, ch in enumerate(low):
            if ch not in first:
                continue
            for size in lengths:
                if i + size > n:
                    break
                sub = low[i:i + size]
                if sub in by_term:
                    found.add(sub)
        if not found:
            return {}
        entries = sorted(e for t in found for e in by_term[t])
        sums: dict[int, float] = {}
        for ci, _, w in entries:
            sums[ci] = sums[ci] + w if ci in sums else w
        return {self.cats[ci]: s for ci, s in sorted(sums.items()) if s}


_TABLE = _TermTable(TERMS)
_KEYSET = frozenset(_TABLE.keys)


@lru_cache(maxsize=FUZZY_CACHE)
def _fuzzy_library_hit(low_token: str) -> tuple[str, float] | None:
    return _fuzzy_hit(low_token, _TABLE)


def _fuzzy_hit(low_token: str, table: _TermTable) -> tuple[str, float] | None:
    # A misspelt or abbreviated term: a near-identical token counts for most of the term's weight.
    hit = process.extractOne(low_token, table.keys, scorer=fuzz.ratio, score_cutoff=80)
    if hit is None or hit[1] >= 100:
        return None
    return table.owners[hit[2]]


def _term_scores(text: str, tokens: Sequence[str], terms: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    table = _TABLE if terms is TERMS else _TermTable(terms)
    scores = table.hits(text.lower())
    for tok in tokens:
        if len(tok) < 3:
            continue
        low = tok.lower()
        if low in _KEYSET:
            continue
        hit = _fuzzy_library_hit(low) if table is _TABLE else _fuzzy_hit(low, table)
        if hit is not None:
            cid, w = hit
            scores[cid] = scores.get(cid, 0.0) + w * 0.6
    return scores


class ExampleIndex:
    """Learned examples prepared once for many notes. `token_set_ratio` reads only a text's set of tokens, so
    examples are scored per distinct token set (its sorted, space-joined form: repeated corrections cost nothing),
    with an inverted index from token to the forms that hold it."""

    __slots__ = ("examples", "forms", "members", "postings", "_last")

    def __init__(self, examples: Sequence[Example]) -> None:
        self.examples = tuple(examples)
        form_ids: dict[str, int] = {}
        self.forms: list[str] = []
        self.members: list[list[tuple[int, str]]] = []  # per form: (example position, category), in example order
        postings: dict[str, list[int]] = {}
        for i, ex in enumerate(self.examples):
            toks = set(ex.text.split())
            if not toks:
                continue  # scores 0 against anything
            form = " ".join(sorted(toks))
            f = form_ids.get(form)
            if f is None:
                f = form_ids[form] = len(self.forms)
                self.forms.append(form)
                self.members.append([])
                for tok in toks:
                    postings.setdefault(tok, []).append(f)
            self.members[f].append((i, ex.category))
        self.postings = postings
        self._last: tuple[str, list[tuple[float, int, str]]] | None = None

    def __len__(self) -> int:
        return len(self.examples)

    def similar(self, joined: str) -> dict[str, float]:
        """Per category, the best `token_set_ratio / 100` (≥ the cutoff) of `joined` against its examples; exactly
        what scoring every example with `fuzz.token_set_ratio` gives."""
        best: dict[str, float] = {}
        # best score first, then example order: the order `process.extract` over the examples returns, so categories
        # new to the note enter the scores in the same order (ties in the ranking keep it)
        for neg, _, cat in self._hits(joined):
            sim = -neg / 100.0
            if sim > best.get(cat, 0.0):
                best[cat] = sim
        return best

    def nearest(self, joined: str) -> tuple[str, float] | None:
        """(category, token_set_ratio 0-100) of the closest example, the earliest on a tie: what
        `process.extractOne` over the examples' texts returns (above the cutoff)."""
        hits = self._hits(joined)
        return (hits[0][2], -hits[0][0]) if hits else None

    def _hits(self, joined: str) -> list[tuple[float, int, str]]:
        """(-score, example position, category) of every example scoring at least the cutoff, best first. The last
        note's answer is remembered: the use case asks for the nearest example and the scores of the same note."""
        last = self._last
        if last is not None and last[0] == joined:
            return last[1]
        hits = self._score(joined)
        self._last = (joined, hits)
        return hits

    def _score(self, joined: str) -> list[tuple[float, int, str]]:
        toks = set(joined.split())
        forms = self.forms
        if not toks or not forms:
            return []
        shared: set[int] = set()
        for tok in toks:
            ids = self.postings.get(tok)
            if ids:
                shared.update(ids)
        scores: dict[int, float] = {}
        query = " ".join(sorted(toks))
        if len(shared) < len(forms):  # no token in common: token_set_ratio is the ratio of the sorted forms
            for _, score, f in process.extract(query, forms, scorer=fuzz.ratio, limit=None,
                                               score_cutoff=EXAMPLE_CUTOFF):
                if f not in shared:
                    scores[f] = score
        if shared:  # one batch call: a Python-level call per form costs more than the scoring itself
            ids = sorted(shared)
            for _, score, j in process.extract(query, [forms[f] for f in ids], scorer=fuzz.token_set_ratio,
                                               limit=None, score_cutoff=EXAMPLE_CUTOFF):
                scores[ids[j]] = score
        members = self.members
        return sorted((-score, i, cat) for f, score in scores.items() for i, cat in members[f])


_INDEXES: dict[int, tuple[tuple[Example, ...], ExampleIndex]] = {}


def example_index(examples: tuple[Example, ...] | ExampleIndex) -> ExampleIndex:
    """The index of an example set, remembered for a tuple (immutable: the same object is the same set)."""
    if isinstance(examples, ExampleIndex):
        return examples
    known = _INDEXES.get(id(examples))
    if known is not None and known[0] is examples:
        return known[1]
    index = ExampleIndex(examples)
    if len(_INDEXES) >= 8:
        _INDEXES.clear()
    _INDEXES[id(examples)] = (examples, index)  # the strong reference keeps the id from being reused
    return index


def _similar_unindexed(joined: str, examples: Sequence[Example]) -> dict[str, float]:
    """`ExampleIndex.similar` for a sequence that may change between calls (a list): every example scored."""
    best: dict[str, float] = {}
    for _, score, i in process.extract(joined, [ex.text for ex in examples], scorer=fuzz.token_set_ratio,
                                       limit=None, score_cutoff=EXAMPLE_CUTOFF):
        cat, sim = examples[i].category, score / 100.0
        if sim > best.get(cat, 0.0):
            best[cat] = sim
    return best


def classify_note(text: str, tokens: Sequence[str], examples: Sequence[Example] | ExampleIndex = (),
                  threshold: float = 0.5, terms: Mapping[str, Mapping[str, float]] = TERMS) -> LibResult:
    text = text.strip()
    if not text:
        return LibResult(None, 0.0, ())
    scores = _term_scores(text, tokens, terms)
    if len(examples):
        joined = " ".join(tokens)
        # a tuple or an ExampleIndex: the prepared index; a list (which may change): scored as it is
        best = (example_index(examples).similar(joined) if isinstance(examples, (tuple, ExampleIndex))
                else _similar_unindexed(joined, examples))
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
