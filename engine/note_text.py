"""Chat strings of exception notes and their corrections (Chinese default, English), kept beside the feature.

The texts are package data: engine/catalogs/notes.toml (see engine.catalog).
"""

from __future__ import annotations

from engine.catalog import Catalog

NOTES = Catalog.load("notes")
nt = NOTES.t  # the string `key` in `language` (Chinese when unknown), formatted with `kw`
