"""The dependency direction of DESIGN.md, enforced: bot → webhooks | storage → handlers → engine."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_hold() -> None:
    """pyproject's import-linter contracts: the layers, the adapters apart, no I/O libraries in the core, a pure
    engine, and no import cycle inside any package (function-local imports count: grimp reads every import)."""
    config = ROOT / "pyproject.toml"
    contracts = len(tomllib.loads(config.read_text(encoding="utf-8"))["tool"]["importlinter"]["contracts"])
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), str(config)], cwd=ROOT, capture_output=True, text=True)
    assert f"Contracts: {contracts} kept, 0 broken." in result.stdout, result.stdout + result.stderr


def test_the_cycle_contract_sees_a_function_local_import(tmp_path: Path) -> None:
    """The cycle a lazy import hides (b imports a inside a function) breaks the same contract type pyproject uses."""
    pkg = tmp_path / "cyclepkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from cyclepkg import b\n")
    (pkg / "b.py").write_text("def f() -> None:\n    from cyclepkg import a  # noqa: F401\n")
    config = tmp_path / "contracts.toml"
    config.write_text('[tool.importlinter]\nroot_packages = ["cyclepkg"]\n\n[[tool.importlinter.contracts]]\n'
                      'name = "no cycles"\ntype = "acyclic_siblings"\nancestors = ["cyclepkg"]\n')
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), str(config)], cwd=tmp_path, capture_output=True, text=True)
    assert "Contracts: 0 kept, 1 broken." in result.stdout, result.stdout + result.stderr
    assert ".b -> .a" in result.stdout


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


# --- one way to move an order ----------------------------------------------------------------------------------------
# `storage/order_moves.apply_move` is the one function that writes the stage of a stored order (compare-and-set).
# Intake's INSERT of a new order sets its first stage (creation, not a move) and is allowed; its update of a changed
# order writes the content only and moves the order through apply_move. Every other UPDATE of `orders` must leave
# `stage` and `stage_entered_at` alone.

MOVE_OWNER = Path("storage/order_moves.py")
STAGE_COLUMNS = {"stage", "stage_entered_at"}
ORDER_TABLES = {"ORDERS", "OrderRow.__table__", "OrderRow"}
_RAW_SQL_MOVE = re.compile(r"UPDATE\s+orders\b[^;]*\bSET\b[^;]*\bstage\s*=", re.IGNORECASE | re.DOTALL)


def _updates_orders(call: ast.Call) -> bool:
    """`update(ORDERS)...values(...)`: the chain under `.values` starts at update() of the orders table."""
    node: ast.AST = call.func
    while isinstance(node, (ast.Attribute, ast.Call)):
        if isinstance(node, ast.Call):
            if ast.unparse(node.func) in {"update", "sa.update", "sqlalchemy.update"} and node.args:
                return ast.unparse(node.args[0]) in ORDER_TABLES
            if isinstance(node.func, ast.Attribute) and node.func.attr == "update" and \
                    ast.unparse(node.func.value) in ORDER_TABLES:
                return True
            node = node.func
        else:
            node = node.value
    return False


def _dict_keys(node: ast.AST) -> set[str]:
    return {k.value for k in getattr(node, "keys", []) if isinstance(k, ast.Constant) and isinstance(k.value, str)}


def _stripped(func: ast.AST, name: str) -> bool:
    """`for k in (..., "stage", "stage_entered_at", ...): name.pop(k)` removes the stage columns from `name`."""
    for loop in ast.walk(func):
        if isinstance(loop, ast.For) and isinstance(loop.iter, (ast.Tuple, ast.List)):
            consts = {e.value for e in loop.iter.elts if isinstance(e, ast.Constant)}
            pops = any(isinstance(c, ast.Call) and ast.unparse(c.func) == f"{name}.pop" for c in ast.walk(loop))
            if pops and STAGE_COLUMNS <= consts:
                return True
    return False


def stage_writes(source: str, filename: str) -> list[str]:
    """Every place in `source` that may write the stage of an existing order."""
    found = []
    tree = ast.parse(source)
    funcs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))] or [tree]
    for func in funcs:
        assigned = {t.id: n.value for n in ast.walk(func) if isinstance(n, ast.Assign)
                    for t in n.targets if isinstance(t, ast.Name)}
        subscripted = {n.value.id for n in ast.walk(func) if isinstance(n, ast.Subscript)
                       and isinstance(n.value, ast.Name) and isinstance(n.slice, ast.Constant)
                       and n.slice.value in STAGE_COLUMNS and isinstance(n.ctx, ast.Store)}
        for call in ast.walk(func):
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                    and call.func.attr == "values" and _updates_orders(call)):
                continue
            where = f"{filename}:{call.lineno}"
            for kw in call.keywords:
                if kw.arg in STAGE_COLUMNS:
                    found.append(f"{where} sets {kw.arg}=")
                elif kw.arg is None:  # **mapping
                    name = ast.unparse(kw.value)
                    origin = assigned.get(name)
                    if name in subscripted:
                        found.append(f"{where} sets {name}['stage']")
                    elif isinstance(origin, ast.Dict):
                        if _dict_keys(origin) & STAGE_COLUMNS:
                            found.append(f"{where} **{name} holds the stage")
                    elif not _stripped(func, name):
                        found.append(f"{where} **{name} may hold the stage")
            for arg in call.args:
                if _dict_keys(arg) & STAGE_COLUMNS or not isinstance(arg, ast.Dict):
                    found.append(f"{where} positional values")
    for m in _RAW_SQL_MOVE.finditer(source):
        found.append(f"{filename}:{source[:m.start()].count(chr(10)) + 1} raw SQL sets stage")
    return found


def test_only_the_move_function_writes_the_stage_of_a_stored_order() -> None:
    offenders = []
    for top in ("storage", "handlers", "bot", "webhooks", "engine"):
        for path in (ROOT / top).rglob("*.py"):
            rel = path.relative_to(ROOT)
            if rel == MOVE_OWNER or "migrations" in rel.parts:
                continue
            offenders += stage_writes(path.read_text(encoding="utf-8"), str(rel))
    assert not offenders, offenders
    assert stage_writes((ROOT / MOVE_OWNER).read_text(encoding="utf-8"), str(MOVE_OWNER))  # the scan sees the one


def test_the_stage_scan_catches_every_form_of_a_second_move() -> None:
    bad = {
        "kw": "async def f(c):\n    await c.execute(update(ORDERS).where(ORDERS.c.id == 1).values(stage='designing'))\n",
        "dict": "async def f(c):\n    v = {'stage': 'x', 'updated_at': 1}\n    await c.execute(update(ORDERS).values(**v))\n",
        "subscript": "async def f(c, v):\n    v['stage'] = 'x'\n    await c.execute(update(ORDERS).values(**v))\n",
        "opaque": "async def f(c, p):\n    v = order_values(p)\n    await c.execute(update(ORDERS).values(**v))\n",
        "table_method": "async def f(c):\n    await c.execute(ORDERS.update().values(stage='x'))\n",
        "raw": "Q = 'UPDATE orders SET stage = $1 WHERE id = $2'\n",
    }
    for name, src in bad.items():
        assert stage_writes(src, name), name
    ok = ("async def f(c, p):\n    v = order_values(p)\n    for k in ('stage', 'stage_entered_at', 'x'):\n"
          "        v.pop(k)\n    await c.execute(update(ORDERS).values(**v))\n"
          "    await c.execute(update(ORDERS).values(snoozed_until=None))\n")
    assert stage_writes(ok, "ok") == []


# Issue 16: every stored move and decision reaches open boards. The stores that write moves announce them after
# their commit through `handlers.orders.OrderEvents`; these two checks keep a new entry point from bypassing it.
EVENT_STORES = {"SqlOrders": 1, "SqlChatRepo": 1, "SqlIntakeStore": 2}  # index of the `events` argument


def _production_files() -> list[Path]:
    return [p for d in ("bot", "webhooks", "board", "storage", "handlers") for p in (ROOT / d).rglob("*.py")]


def test_every_store_that_moves_orders_is_built_with_the_events_port() -> None:
    offenders = []
    for path in _production_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in EVENT_STORES:
                given = len(node.args) > EVENT_STORES[node.func.id] or any(k.arg == "events" for k in node.keywords)
                if not given:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.func.id}(...) without events")
    assert not offenders, offenders


def test_every_caller_of_apply_move_announces_after_its_commit() -> None:
    """A function that applies a move passes it a list of events and publishes that list (`announce`) once its
    transaction is committed; the intake unit's list is published by SqlIntakeStore.unit after the commit."""
    offenders, found = [], 0
    store_publishes = "await announce(self.events, unit.announced)" in (
        ROOT / "storage" / "intake_store.py").read_text(encoding="utf-8")
    for path in _production_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            calls = [n for n in ast.walk(fn) if isinstance(n, ast.Call) and ast.unparse(n.func) == "apply_move"]
            if not calls:
                continue
            found += len(calls)
            announces = any(isinstance(n, ast.Call) and ast.unparse(n.func) == "announce" for n in ast.walk(fn))
            via_unit = path.name.startswith("intake_") and store_publishes and all(
                len(c.args) == 4 and ast.unparse(c.args[3]) == "self.announced" for c in calls)
            if not (announces or via_unit):
                offenders.append(f"{path.relative_to(ROOT)}:{fn.lineno} {fn.name} moves without announcing")
    assert found >= 3 and not offenders, offenders


# --- one way to the database, one way to the chat platforms ---------------------------------------------------------
ENGINE_FACTORIES = {"create_async_engine", "create_engine", "make_engine"}
ENGINE_BUILDERS = {Path("storage/db.py"), Path("bot/wiring/runtime.py"), Path("storage/migrations/env.py")}


def test_every_process_and_command_gets_its_engine_from_wiring() -> None:
    """`bot.wiring.runtime.database_engine` is the one place an engine is made for a process or a command (its driver
    and timeouts); a command building its own (as `orderhub rules` once did) would run without them."""
    offenders = []
    for path in _production_files():
        rel = path.relative_to(ROOT)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and ast.unparse(node.func).split(".")[-1] in ENGINE_FACTORIES \
                    and rel not in ENGINE_BUILDERS:
                offenders.append(f"{rel}:{node.lineno} {ast.unparse(node.func)}()")
    assert not offenders, offenders


PLATFORM_NAMES = re.compile(r"""["'](telegram|wecom)["']""")
PLATFORM_MODULES = re.compile(r"\b(TelegramService|WecomService|platforms\.(telegram|wecom)|"
                              r"platforms import (telegram|wecom))\b")
PLATFORM_BLIND = [Path("bot/processes/chat_runtime.py"), Path("bot/processes/asgi.py"),
                  Path("bot/platforms/protocol.py"), Path("handlers")]


def test_the_shared_code_names_no_chat_platform() -> None:
    """The runtime, the ASGI app and the handlers iterate the registry (bot/platforms/registry.py) and read
    capabilities; a platform's name in them is a platform check creeping back."""
    offenders = []
    for target in PLATFORM_BLIND:
        for path in [ROOT / target] if target.suffix else sorted((ROOT / target).rglob("*.py")):
            for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                code = line.split("#", 1)[0]
                if PLATFORM_NAMES.search(code) or PLATFORM_MODULES.search(code):
                    offenders.append(f"{path.relative_to(ROOT)}:{no} {line.strip()}")
    assert not offenders, offenders


STREAM_CONSUMING = re.compile(r"\.(xreadgroup|xautoclaim|xclaim|xack)\(|'XACK'|\"XACK\"")


def test_one_stream_queue_implementation() -> None:
    """Reading, reclaiming and acknowledging stream entries live in storage/stream_queue.py only: the chat inbound
    queues and the intake/tracking/refund queues are built on it, not on copies of it."""
    offenders = [f"{p.relative_to(ROOT)}:{no}" for p in _production_files() if p.name != "stream_queue.py"
                 for no, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
                 if STREAM_CONSUMING.search(line)]
    assert not offenders, offenders
