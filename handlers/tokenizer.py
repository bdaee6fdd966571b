"""jieba tokenizer at the edge: dictionary only, no HMM (cheaper, and the domain terms are in the dictionary, so
HMM's guesses at unknown words add nothing); quiet init, cache in the temp dir, library terms added so domain words
stay whole."""

from __future__ import annotations

import logging
import os
import tempfile
from functools import lru_cache

from engine.anomaly_library import TERMS


@lru_cache(maxsize=1)
def _jieba():  # type: ignore[no-untyped-def]
    import jieba

    jieba.setLogLevel(logging.WARNING)
    tk = jieba.Tokenizer()
    tk.tmp_dir = tempfile.gettempdir()
    tk.cache_file = os.path.join(tk.tmp_dir, "orderhub-jieba.cache")
    tk.initialize()
    for weights in TERMS.values():
        for term in weights:
            tk.add_word(term, freq=2000)
    return tk


TOKEN_CACHE = 4096  # distinct short notes remembered: the same few phrases come back all day ("物流延误", "改地址")
CACHED_CHARS = 200  # longer notes are rare and rarely repeated: not worth the memory


@lru_cache(maxsize=TOKEN_CACHE)
def _cut(text: str) -> tuple[str, ...]:
    return tuple(t for t in _jieba().lcut(text, HMM=False) if t.strip())


def tokens(text: str) -> list[str]:
    """The note's words (a fresh list: the caller may change it)."""
    if len(text) <= CACHED_CHARS:
        return list(_cut(text))
    return [t for t in _jieba().lcut(text, HMM=False) if t.strip()]


def clear_cache() -> None:
    """Forget the remembered notes (a benchmark measures cold)."""
    _cut.cache_clear()
