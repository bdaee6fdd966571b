"""`/metrics` under `orderhub api --workers 2` counts what the whole server accepted, whichever worker answers the
scrape (prometheus-client multiprocess mode), not one worker's share."""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx

from tests.bot.process_support import running_orderhub
from tests.conftest import SECRETS
from tests.factories import order_json, signed

ACCEPTED = re.compile(r'^orderhub_intake_accepted_total\{channel="generic"\} ([0-9.e+]+)$', re.M)


def test_metrics_under_two_workers_equal_the_orders_accepted(database_url: str, redis_url: str,
                                                            tmp_path: Path) -> None:
    env = {**os.environ, "ORDERHUB_DATABASE_URL": database_url, "ORDERHUB_REDIS_URL": redis_url,
           "ORDERHUB_WEBHOOK_SECRETS": f"generic={SECRETS['generic']}", "ORDERHUB_DATA_DIR": str(tmp_path / "data")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    stale = tmp_path / "data" / "prometheus"
    stale.mkdir(parents=True)
    (stale / "counter_99999.db").write_bytes(b"left over from a previous run")
    with running_orderhub(["api", "--workers", "2"], env, tmp_path, start_timeout=60, stop_timeout=20
                          ) as (proc, base):
        sent = 40
        for i in range(sent):  # a new connection each: the kernel spreads them over both workers
            body, headers = signed(SECRETS["generic"], order_json(900_000 + i))
            assert httpx.post(f"{base}/webhooks/orders/generic", content=body, headers=headers).status_code == 202
        seen = set()
        for _ in range(8):
            text = httpx.get(f"{base}/metrics").text
            seen.add(float(ACCEPTED.search(text).group(1)))
        assert seen == {float(sent)}
    logged = proc.stdout.read().decode() if proc.stdout else ""
    assert f"OrderHub API listening on {base} (2 HTTP worker processes)" in logged, logged
    assert "Traceback" not in logged and "apscheduler" not in logged.lower()  # quiet by default
