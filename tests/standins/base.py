"""What the HTTP stand-ins (Telegram, WeCom, carriers) share: serving an ASGI app on a free local port in a thread,
seeded fault draws, and scripted answers that take precedence over them.

The stand-ins differ in how a fault looks on the wire (a Bot API envelope, a WeCom errcode, a carrier refusal), so
this module only decides *whether* and *which* fault comes next; each stand-in builds its own fault objects.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import uvicorn

F = TypeVar("F")


@dataclass
class SeededFaults(ABC, Generic[F]):
    """Deterministic fault injection: for each call to one of `methods`, one draw from a seeded RNG decides.

    A draw below `throttle_share` is the platform's rate limit, the next `share_500` an HTTP 500; subclasses name
    the rate-limit share after the platform's own code and build both faults."""

    share_500: float = 0.0
    methods: frozenset[str] = frozenset()
    seed: int = 0
    delay_s: float = 0.0  # answer every call to `methods` this late (to provoke client timeouts)
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    @property
    @abstractmethod
    def throttle_share(self) -> float:
        """The share of calls answered with the platform's rate limit."""

    @abstractmethod
    def throttled(self) -> F:
        """The platform's rate-limit answer."""

    @abstractmethod
    def server_error(self) -> F:
        """The platform's HTTP 500."""

    def draw(self, method: str) -> F | None:
        throttle = self.throttle_share
        if method not in self.methods or (throttle <= 0 and self.share_500 <= 0):
            return None
        r = self.rng.random()
        if r < throttle:
            return self.throttled()
        if r < throttle + self.share_500:
            return self.server_error()
        return None


class ScriptedFaults(Generic[F]):
    """Scripted answers per method, consumed in order before the seeded draws of `faults` are asked."""

    faults: SeededFaults[F]
    scripted: dict[str, list[F | None]]
    _lock: threading.Lock

    def _next_fault(self, method: str) -> F | None:
        with self._lock:
            queue = self.scripted.get(method)
            if queue:
                return queue.pop(0)  # may be None: this call goes through
            return self.faults.draw(method)


def _free_port() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on 127.0.0.1:<free port> in a daemon thread; yields its base URL."""
    sock = _free_port()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", loop="asyncio", http="h11",
                            access_log=False, timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="standin")
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("stand-in server did not start")
        time.sleep(0.005)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()


class Served(Protocol):
    """A stand-in: an ASGI `app`, and the `url` it is reachable at once served."""

    app: Any
    url: str


S = TypeVar("S", bound=Served)


@contextmanager
def serving(standin: S) -> Iterator[S]:
    """Serve `standin` (see serve_in_thread) with its `url` set for the clients under test."""
    with serve_in_thread(standin.app) as url:
        standin.url = url
        yield standin
