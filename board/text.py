"""The board's words, Chinese by default, English with ORDERHUB_LANGUAGE=en.

The texts are package data: board/catalog.toml (see engine.catalog).
"""

from __future__ import annotations

from engine.catalog import Catalog

BOARD = Catalog.load("catalog", "board")


def bt(key: str, language: str = "zh", **kw: object) -> str:
    text = BOARD.text(key, language)
    return text.format(**kw) if kw else text


def words(language: str) -> dict[str, str]:
    """Every string in one language, for templates and the client script."""
    return BOARD.words(language)
