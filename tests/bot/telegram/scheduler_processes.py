"""Real `orderhub scheduler` processes for the leader-kill fault tests: their environment (the test's backends and
the Bot API stand-in), starting one, waiting on what the stand-in saw, and stopping whatever is still running."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.standins.telegram_api import TelegramStandIn


def scheduler_env(database_url: str, redis_url: str, telegram_api: TelegramStandIn, tmp_path: Path,
                  **extra: str) -> dict[str, str]:
    """Telegram only (WeCom and the public URL unset, so polling mode), no daily digest, data under tmp_path."""
    env = {**os.environ, "ORDERHUB_DATABASE_URL": database_url, "ORDERHUB_REDIS_URL": redis_url,
           "ORDERHUB_TELEGRAM_TOKEN": telegram_api.token, "ORDERHUB_TELEGRAM_API_URL": telegram_api.url,
           "ORDERHUB_DIGEST_AT": "off", "ORDERHUB_DATA_DIR": str(tmp_path / "data"), **extra}
    for var in ("ORDERHUB_WECOM_CORP_ID", "ORDERHUB_PUBLIC_URL"):
        env.pop(var, None)
    return env


def start_scheduler(env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    """One scheduler process; its output is appended to `log` (a restarted process keeps writing the same one)."""
    return subprocess.Popen([sys.executable, "-m", "bot", "scheduler"], env=env, cwd=cwd,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


def wait_until(what: str, check: Callable[[], Any], timeout: float, poll_s: float) -> None:
    """Poll `check` (in wall-clock time: the processes run on their own) until it is true, or fail saying what."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(poll_s)
    raise AssertionError(f"{what}: not within {timeout} s")


def stop_all(*procs: subprocess.Popen[bytes] | None) -> None:
    """Terminate every process still running (killing one that ignores it), so no scheduler outlives its test."""
    for proc in procs:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
