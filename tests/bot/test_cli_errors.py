"""No traceback reaches a user from any command: what escapes is one line, exit code 1 (a user error: 2)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_an_unreachable_database_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "ORDERHUB_DATABASE_URL": "postgresql://root@127.0.0.1:1/nothing",
           "ORDERHUB_REDIS_URL": "redis://127.0.0.1:1/0",
           "ORDERHUB_DATA_DIR": str(tmp_path / "data")}
    env.pop("ORDERHUB_DEBUG", None)
    proc = subprocess.run([sys.executable, "-m", "bot", "users", "list"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    out = (proc.stdout + proc.stderr).strip()
    assert proc.returncode == 1, out
    assert "Traceback" not in out and len(out.splitlines()) == 1 and out.startswith("error:"), out
