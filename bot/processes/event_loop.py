"""The event loop of OrderHub's processes: uvloop where it is installed, as the API's uvicorn already runs. A 500-order
batch goes to PostgreSQL as one large statement, and uvloop's C transports move it with less overhead than the
default loop; bench/intake.py (c) measures the two side by side.
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
