"""`orderhub serve` and `orderhub scheduler`: the long-running processes that are more than one loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator

import uvicorn

from bot.processes.asgi import create_asgi_app
from bot.processes.chat_runtime import SCHEDULER, SERVE, ChatRuntime
from bot.settings import Settings
from bot.wiring.runtime import Runtime

log = logging.getLogger("orderhub.serve")


class _Server(uvicorn.Server):
    """uvicorn's server without its signal capture: uvicorn re-raises a captured SIGTERM once it has stopped, which
    kills the process before `serve_all` closes what it started (the embedded redis-server was left orphaned)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _on_stop_signals(callback: asyncio.Event | None, server: uvicorn.Server) -> None:
    loop = asyncio.get_running_loop()

    def stop() -> None:
        server.should_exit = True
        if callback is not None:
            callback.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)


async def serve_all(settings: Settings, host: str, port: int) -> None:
    """Everything in one process: HTTP (with the chat webhook routes), intake worker, chat consumer, notifier and
    scheduler. Stops on SIGINT/SIGTERM, then closes the parts in reverse order, down to the embedded redis-server."""
    runtime = Runtime.build(settings)
    await runtime.upgrade_db()
    await runtime.start_rules()
    runtime.start_heartbeat("api")
    chat = ChatRuntime.build(runtime)
    stop = asyncio.Event()
    try:
        await chat.start(SERVE, stop)
        app = create_asgi_app(runtime, chat.routers, chat.core.ctx)
        runtime.background.append(asyncio.create_task(runtime.intake_worker().run_forever(stop), name="intake-worker"))
        runtime.background.append(asyncio.create_task(runtime.tracking_worker().run_forever(stop), name="tracking-worker"))
        runtime.background.append(asyncio.create_task(runtime.refund_worker().run_forever(stop), name="refund-worker"))
        server = _Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                        log_config=None))
        _on_stop_signals(stop, server)
        log.info("OrderHub listening on http://%s:%d (docs at /docs)", host, port)
        await server.serve()
    finally:
        stop.set()
        await chat.close()
        await runtime.close()


async def run_scheduler(settings: Settings, stop: asyncio.Event) -> None:
    """The timed jobs (stall scan, approval escalation, outbox sweep) and, in Telegram polling mode, the poller.
    Run one per machine or more for fail-over: the Redis lease lets exactly one of them act."""
    runtime = Runtime.build(settings)
    await runtime.upgrade_db()
    await runtime.start_rules()
    chat = ChatRuntime.build(runtime)
    try:
        await chat.start(SCHEDULER, stop)
        await stop.wait()
    finally:
        stop.set()
        await chat.close()
        await runtime.close()
