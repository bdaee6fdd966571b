"""Prometheus metrics. In `serve` one registry holds all; separate `worker` processes expose their own port."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

INTAKE_ACCEPTED = Counter("orderhub_intake_accepted_total", "Orders accepted into the intake queue", ["channel"])
INTAKE_REJECTED = Counter("orderhub_intake_rejected_total", "Webhook requests refused", ["reason"])
INTAKE_STORED = Counter("orderhub_intake_processed_total", "Queue entries processed by workers", ["outcome"])
QUEUE_DEPTH = Gauge("orderhub_queue_depth", "Intake entries not yet stored (stream + retry set)")
DEAD_LETTERS = Gauge("orderhub_dead_letters", "Entries in the dead-letter stream")
BATCH_SECONDS = Histogram(
    "orderhub_intake_batch_seconds", "Time to store one intake batch",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
BATCH_SIZE = Histogram("orderhub_intake_batch_size", "Entries per intake batch", buckets=(1, 10, 50, 100, 250, 500))
WORKER_RESTARTS = Counter("orderhub_worker_restarts_total", "Worker loops restarted after a crash", ["loop"])
INTAKE_WORKERS = Gauge("orderhub_intake_workers", "Intake workers by state, as /healthz last saw them", ["state"])
