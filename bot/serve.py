"""`orderhub serve`: HTTP, intake worker, and (when configured) bots, notifier and scheduler in one process."""

from __future__ import annotations

import asyncio
import logging

import uvicorn

from bot.asgi import create_asgi_app
from bot.settings import Settings
from bot.wiring import Runtime

log = logging.getLogger("orderhub.serve")


async def serve_all(settings: Settings, host: str, port: int) -> None:
    runtime = Runtime.build(settings)
    await runtime.upgrade_db()
    await runtime.start_rules()
    runtime.start_heartbeat("api")
    stop = asyncio.Event()
    try:
        app = create_asgi_app(runtime)
        runtime.background.append(asyncio.create_task(runtime.intake_worker().run(stop), name="intake-worker"))
        server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))
        log.info("OrderHub listening on http://%s:%d (docs at /docs)", host, port)
        await server.serve()
    finally:
        stop.set()
        await runtime.close()
