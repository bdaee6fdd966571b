"""`orderhub serve` and `orderhub scheduler`: the long-running processes that are more than one loop."""

from __future__ import annotations

import asyncio
import logging

import uvicorn

from bot.asgi import create_asgi_app
from bot.chat_runtime import SCHEDULER, SERVE, ChatRuntime
from bot.settings import Settings
from bot.wiring import Runtime

log = logging.getLogger("orderhub.serve")


async def serve_all(settings: Settings, host: str, port: int) -> None:
    """Everything in one process: HTTP (with the chat webhook routes), intake worker, chat consumer, notifier and
    scheduler. Stops on SIGINT/SIGTERM (uvicorn's handlers), then closes the parts in reverse order."""
    runtime = Runtime.build(settings)
    await runtime.upgrade_db()
    await runtime.start_rules()
    runtime.start_heartbeat("api")
    chat = ChatRuntime.build(runtime)
    stop = asyncio.Event()
    try:
        await chat.start(SERVE, stop)
        app = create_asgi_app(runtime, chat.routers, chat.core.ctx)
        runtime.background.append(asyncio.create_task(runtime.intake_worker().run(stop), name="intake-worker"))
        runtime.background.append(asyncio.create_task(runtime.tracking_worker().run_forever(stop), name="tracking-worker"))
        runtime.background.append(asyncio.create_task(runtime.refund_worker().run_forever(stop), name="refund-worker"))
        server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))
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
