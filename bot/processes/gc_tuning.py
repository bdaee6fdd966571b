"""Garbage-collector settings for the long-running processes (`api`, `worker`, `serve`).

With CPython's default thresholds (700, 10, 10) a loaded `orderhub api` spends much of its CPU in cyclic GC, mostly
full collections re-scanning the objects built at start-up (FastAPI routes, pydantic schemas, the compiled rules,
SQLAlchemy metadata), which never die. Freezing them after start-up and collecting young objects less often removes
that work (bench/intake.py measures it). Reference counting still frees almost everything at once; only cycles wait
a little longer, so memory stays bounded.
"""

from __future__ import annotations

import gc

THRESHOLDS = (30_000, 20, 20)


def tune_gc() -> None:
    """Collect young objects less often; call once per process."""
    gc.set_threshold(*THRESHOLDS)


async def freeze_startup_objects() -> None:
    """Move everything alive now into the permanent generation, so full collections stop re-scanning it.

    Async so it can be the last of an app's start-up hooks (after the rules are loaded).
    """
    gc.collect()
    gc.freeze()
