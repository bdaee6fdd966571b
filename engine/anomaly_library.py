"""Bundled anomaly category library: domain terms per anomaly category, weighted by how decisive they are.

The terms are package data, engine/catalogs/anomaly_terms.toml, read once at import (engine.catalog: no I/O after
that, so the engine stays pure); the tokenizer (jieba) adds these terms to its dictionary at the edge.
Weights: 1.0 = decisive on its own, 0.6 = strong hint, 0.3 = weak hint that needs company.
"""

from __future__ import annotations

from engine.catalog import load_data

LIBRARY_VERSION = "lib-1"

TERMS: dict[str, dict[str, float]] = load_data("anomaly_terms")  # category id → term → weight
