"""Message catalogues: the texts people read, kept as package data (TOML), not as code.

A catalogue is a file `<name>.toml` in `engine/catalogs/` (the board's is `board/catalog.toml`), one table per key
with a text per language:

    ["approval.title"]
    zh = "审批请求 · 订单 {order}"
    en = "Approval request · order {order}"

Chinese is the default and the fallback for a language a key has no text in. Each feature binds its own catalogue
once (`CHAT = Catalog.load("chat")`, `t = CHAT.t`) so its call sites keep their short names.

Purity: the engine does no I/O, with one exception made here on purpose. A catalogue is the package's own immutable
data, read once when its module is imported (through `importlib.resources`, so it works from a wheel or a zip too);
looking a text up afterwards reads nothing, so every call stays pure and deterministic.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

DEFAULT_LANGUAGE = "zh"


def load_data(name: str, package: str = "engine") -> dict[str, Any]:
    """The TOML file `catalogs/<name>.toml` of `package` ("engine"), or `<name>.toml` beside it for another package
    (the board's `catalog`); read once at import by the module that binds it."""
    where = files(package) / "catalogs" if package == "engine" else files(package)
    return tomllib.loads((where / f"{name}.toml").read_text(encoding="utf-8"))


@dataclass(frozen=True, slots=True)
class Catalog:
    """One catalogue: key → language → text. Look-ups never do I/O."""

    name: str
    entries: dict[str, dict[str, str]]

    @classmethod
    def load(cls, name: str, package: str = "engine") -> Catalog:
        return cls(name, load_data(name, package))

    def text(self, key: str, language: str = DEFAULT_LANGUAGE) -> str:
        """The raw text of `key` in `language` (Chinese when it has none), placeholders unfilled."""
        entry = self.entries[key]
        return entry.get(language, entry[DEFAULT_LANGUAGE])

    def t(self, key: str, language: str = DEFAULT_LANGUAGE, **kw: object) -> str:
        """The text of `key` in `language` (Chinese when unknown), formatted with `kw`."""
        return self.text(key, language).format(**kw)

    def words(self, language: str) -> dict[str, str]:
        """Every raw text in one language (Chinese where a key has none)."""
        return {key: self.text(key, language) for key in self.entries}

    def __contains__(self, key: object) -> bool:
        return key in self.entries
