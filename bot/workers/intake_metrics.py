"""The intake worker's Prometheus metrics, owned by the worker (bot/workers/intake.py) rather than the HTTP edge.

They register in prometheus-client's default registry like every other metric: `serve` (one process) scrapes them at
/metrics with the rest, a separate `orderhub worker --metrics-port N` serves them on its own port.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

INTAKE_STORED = Counter("orderhub_intake_processed_total", "Queue entries processed by workers", ["outcome"])
BATCH_SECONDS = Histogram(
    "orderhub_intake_batch_seconds", "Time to store one intake batch",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
BATCH_SIZE = Histogram("orderhub_intake_batch_size", "Entries per intake batch", buckets=(1, 10, 50, 100, 250, 500))
WORKER_RESTARTS = Counter("orderhub_worker_restarts_total", "Worker loops restarted after a crash", ["loop"])
