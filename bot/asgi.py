"""ASGI factory for `orderhub api --workers N`: every HTTP worker process builds its own Runtime."""

from __future__ import annotations

from fastapi import FastAPI

from bot.gc_tuning import freeze_startup_objects, tune_gc
from bot.settings import Settings
from bot.wiring import Runtime
from webhooks.app import create_app


def create_asgi_app(runtime: Runtime | None = None) -> FastAPI:
    rt = runtime or Runtime.build(Settings())
    services = rt.app_services()
    if runtime is not None:  # the caller (serve, demo) starts the rules itself
        services.on_startup.clear()
    if runtime is None:  # we own it: close it with the app
        services.on_shutdown.append(rt.close)
        tune_gc()  # this process is an HTTP worker: see bot/gc_tuning.py
        services.on_startup.append(freeze_startup_objects)
    return create_app(services)
