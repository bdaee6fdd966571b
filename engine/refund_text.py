"""What the customer and finance are told about a refund, in Chinese (default) and English (engine.text's rules).

The texts are package data: engine/catalogs/refunds.toml (see engine.catalog).
"""

from __future__ import annotations

from engine.catalog import Catalog

REFUNDS = Catalog.load("refunds")
rt = REFUNDS.t
