"""The event loop of OrderHub's processes: uvloop where it is installed (it comes with uvicorn[standard]), as the
API's uvicorn already runs. The intake worker spends a fifth of its time in the loop and its socket writes (a
500-order batch is one ~1 MB statement to PostgreSQL); uvloop does that part in C.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on uvloop when available."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; kept for platforms without a build of it
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
