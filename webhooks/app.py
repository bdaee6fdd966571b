"""`create_app(services)`: the one FastAPI app behind `serve` and `api`."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import Response

from webhooks import errors, intake, logistics, metrics, openapi_docs
from webhooks.errors import JsonResponse
from webhooks.services import AppServices

WORKER_STALL_S = 30.0  # a worker loop turns at least every few seconds (its blocking read waits 1 s)
WORKER_GONE_S = 600.0  # a beat older than this is a worker that was stopped or killed: not reported


def create_app(services: AppServices) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for start in services.on_startup:
            await start()
        try:
            yield
        finally:
            for stop in reversed(services.on_shutdown):
                await stop()

    app = FastAPI(
        title="OrderHub",
        version="0.1.0",
        description="A programmable order hub: signed intake webhooks, order API, chat bot callbacks.",
        lifespan=lifespan,
        default_response_class=JsonResponse,
        docs_url=None,  # served by openapi_docs from local assets, not a CDN
        redoc_url=None,
    )
    app.state.services = services
    errors.install(app)
    # The intake routes go onto the app's own router, first: an included router adds dispatch work to every small
    # request (bench/intake.py, signed single-order intake, shows the difference).
    app.router.routes.extend(intake.router.routes)
    from webhooks import refund_intake

    app.include_router(refund_intake.router)
    app.router.routes.extend(logistics.router.routes)
    if services.api is not None:
        from webhooks import api  # the staff API needs a database; intake-only test apps skip it

        from webhooks import refunds_api

        app.include_router(api.router)
        app.include_router(refunds_api.router)
        from webhooks import notes_api

        app.include_router(notes_api.router)
        from webhooks import owners_api

        app.include_router(owners_api.router)
        if services.tracking is not None:
            from webhooks import tracking_api

            app.include_router(tracking_api.router)
    for router in services.extra_routers:
        app.include_router(router)
    for path, sub_app in services.mounts:  # the web board (board/, built by bot/wiring/board.py)
        app.mount(path, sub_app)

    @app.get("/healthz", tags=["ops"])
    async def healthz(request: Request) -> JsonResponse:
        """Liveness with the intake queue depth and the intake workers; 503 when Redis does not answer or a
        worker that registered has stopped consuming (its loop has not turned for WORKER_STALL_S)."""
        services = request.app.state.services
        try:
            depth = await services.queue_depth()
            beats = await services.worker_beats() if services.worker_beats is not None else {}
        except Exception as exc:
            return JsonResponse({"status": "degraded", "detail": type(exc).__name__}, status_code=503)
        metrics.QUEUE_DEPTH.set(depth)
        now = time.time()
        stalled = sorted(c for c, at in beats.items() if WORKER_STALL_S < now - at < WORKER_GONE_S)
        consuming = sum(1 for at in beats.values() if now - at <= WORKER_STALL_S)
        metrics.INTAKE_WORKERS.labels(state="consuming").set(consuming)
        metrics.INTAKE_WORKERS.labels(state="stalled").set(len(stalled))
        body: dict[str, object] = {"status": "degraded" if stalled else "ok", "queue_depth": depth}
        if services.worker_beats is not None:
            body["workers"] = {"consuming": consuming, "stalled": stalled}
        return JsonResponse(body, status_code=503 if stalled else 200)

    @app.get("/metrics", tags=["ops"])
    async def prometheus_metrics(request: Request) -> Response:
        services = request.app.state.services
        try:
            metrics.QUEUE_DEPTH.set(await services.queue_depth())
            if services.dead_letters is not None:
                metrics.DEAD_LETTERS.set(await services.dead_letters())
        except Exception:  # a scrape must still answer while Redis is away
            pass
        body, media_type = metrics.exposition()
        return Response(body, media_type=media_type)

    openapi_docs.install(app)
    return app
