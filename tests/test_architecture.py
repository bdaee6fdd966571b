"""The dependency direction of DESIGN.md, enforced: bot → webhooks | storage → handlers → engine."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_layers_are_respected() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True,
                            text=True)
    assert "Contracts: 1 kept, 0 broken." in result.stdout, result.stdout + result.stderr


FORBIDDEN_IN_ENGINE = {"datetime.now", "datetime.utcnow", "time.time", "date.today", "open"}


def test_engine_reads_no_clock_and_does_no_io() -> None:
    offenders = []
    for path in (ROOT / "engine").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = ast.unparse(node.func)
                if name in FORBIDDEN_IN_ENGINE or name.endswith(".now") or name.endswith("today"):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}()")
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mod = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
                if mod and mod.split(".")[0] in {"sqlalchemy", "redis", "httpx", "telegram", "wechatpy", "fastapi",
                                                  "socket", "requests", "asyncio"}:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {mod}")
    assert not offenders, offenders
