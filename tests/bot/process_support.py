"""Starting `orderhub <command>` as a real process for the tests that need one (serve, api): on a free port, waited
for until /healthz answers, stopped again however the test ends."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.demo.day import free_port


@contextlib.contextmanager
def running_orderhub(command: list[str], env: dict[str, str], cwd: Path, *, start_timeout: float = 90,
                     stop_timeout: float = 10) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`python -m bot <command> --port N` with its output piped; yields (the process, its base URL) once /healthz says
    200. A process that exits or is not up within `start_timeout` fails the test with its output. On the way out it
    is asked to stop (SIGTERM) and killed after `stop_timeout`; one that already ended is left as it is."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bot", *command, "--port", str(port)], env=env, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                if proc.poll() is None:  # still starting: stop it first, or reading its output blocks forever
                    proc.kill()
                out = proc.communicate(timeout=10)[0].decode() if proc.stdout else ""
                pytest.fail(f"orderhub {command[0]} did not start:\n{out}")
            time.sleep(0.2)
        yield proc, base
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(stop_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
