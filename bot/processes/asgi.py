"""ASGI factory for `orderhub api --workers N`: every HTTP worker process builds its own Runtime."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, FastAPI

from bot.wiring.board import build_board
from bot.processes.chat_runtime import ChatRuntime
from bot.processes.gc_tuning import freeze_startup_objects, tune_gc
from bot.settings import Settings
from bot.platforms.registry import http_routes
from bot.wiring.runtime import Runtime
from handlers.chat_context import ChatContext
from webhooks.app import create_app


def create_asgi_app(runtime: Runtime | None = None, extra_routers: Sequence[APIRouter] | None = None,
                    chat_ctx: ChatContext | None = None) -> FastAPI:
    """With `runtime`, the caller (serve, demo) owns it and passes the chat routes it serves; without, this is an
    `orderhub api` worker: its own Runtime, and the inbound routes of every configured chat platform."""
    if runtime is None:  # an `api --workers N` child process starts with no logging set up
        from bot.logs import configure_logging

        configure_logging(settings := Settings())
        rt = Runtime.build(settings)
    else:
        rt = runtime
    services = rt.app_services()
    if extra_routers is not None:
        services.extra_routers.extend(extra_routers)
    elif runtime is None:
        services.extra_routers.extend(http_routes(rt.settings, rt.redis))
    # The web board at /board; its approval decisions go through the caller's chat core (or one of our own).
    services.mounts.append(("/board", build_board(rt, chat_ctx or ChatRuntime.build(rt).core.ctx)))
    if runtime is not None:  # the caller (serve, demo) starts the rules itself
        services.on_startup.clear()
    if runtime is None:  # we own it: close it with the app
        services.on_shutdown.append(rt.close)
        tune_gc()  # this process is an HTTP worker: see bot/processes/gc_tuning.py
        services.on_startup.append(freeze_startup_objects)
    return create_app(services)
