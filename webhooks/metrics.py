"""The HTTP edge's Prometheus metrics and the scrape body. In `serve` one registry holds all (the worker's own,
bot/workers/intake_metrics.py, included); separate `worker` processes expose their own port.

Under `api --workers N` every HTTP worker is its own process: prometheus-client's multiprocess mode
(PROMETHEUS_MULTIPROC_DIR, set by the `api` command under the data dir and emptied at start) keeps each process's
values in files and `exposition()` sums them, so one scrape reports the whole server, whichever worker answers.
"""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client import multiprocess as _mp

from handlers.metrics import (  # noqa: F401 - re-exported: the business metrics are served with these
    APPROVALS_DECIDED,
    APPROVALS_REQUESTED,
    NOTIFY_FAILED,
    NOTIFY_RETRIED,
    NOTIFY_SENT,
    REFUNDS_REQUESTED,
    STALL_ALERTS,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

INTAKE_ACCEPTED = Counter("orderhub_intake_accepted_total", "Orders accepted into the intake queue", ["channel"])
INTAKE_REJECTED = Counter("orderhub_intake_rejected_total", "Webhook requests refused", ["reason"])
# Every process reads the same Redis value: across processes the most recent reading is the value.
QUEUE_DEPTH = Gauge("orderhub_queue_depth", "Intake entries not yet stored (stream + retry set)",
                    multiprocess_mode="mostrecent")
DEAD_LETTERS = Gauge("orderhub_dead_letters", "Entries in the dead-letter stream", multiprocess_mode="mostrecent")
INTAKE_WORKERS = Gauge("orderhub_intake_workers", "Intake workers by state, as /healthz last saw them", ["state"])


def exposition() -> tuple[bytes, str]:
    """The scrape body: this process's registry, or the sum over all processes in multiprocess mode."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        _mp.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
