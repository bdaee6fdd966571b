"""Chat strings of carriers and tracking (Chinese default, English), kept beside the feature.

The texts are package data: engine/catalogs/carriers.toml (see engine.catalog).
"""

from __future__ import annotations

from engine.catalog import Catalog

CARRIERS = Catalog.load("carriers")
t = CARRIERS.t
