"""Chat strings of order owners and `/assign` (Chinese default, English), kept beside the feature.

The texts are package data: engine/catalogs/owners.toml (see engine.catalog).
"""

from __future__ import annotations

from engine.catalog import Catalog

OWNERS = Catalog.load("owners")
t = OWNERS.t
