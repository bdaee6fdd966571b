"""Intake benchmark: every figure printed beside its baseline or limit, measured in the same run on the same machine.

Run: `.venv/bin/python bench/intake.py [--db sqlite|postgres|both] [--quick]`

  (a) signed single-order HTTP intake (one uvicorn process, 64 connections, distinct orders, wrk + Lua cycling
      pre-signed requests) beside a bare FastAPI endpoint that parses the same order with Pydantic and answers 202;
  (b) 100 orders per request, orders/s;
  (c) queue → database drain by one worker (`IntakeWorker.run(burst=True)`, ~10 % duplicates) beside a raw batched
      `executemany` of the same rows into a table of the same shape;
  (d) a 20,000-order burst end to end: POST in batches → every row committed (api + worker processes);
  (e) POST → committed-row latency at a steady 500 orders/s. "Committed" is when a separate connection first sees the
      row: it polls every millisecond, so the figure is an upper bound on the true commit latency (never flattering).

Each run uses a fresh PostgreSQL database (dropped afterwards), a temporary SQLite file and a dedicated Redis db
(flushed before and after). Nothing here asserts timings; it prints tables.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from rich.console import Console
from rich.table import Table

from webhooks.signing import sign

SECRET = "bench-secret"
PATH = "/webhooks/orders/generic"
POLL_S = float(os.environ.get("ORDERHUB_BENCH_POLL_MS", "1")) / 1000  # (e): how often committed rows are looked for
console = Console(width=max(Console().width, 150))


# --- the bare baseline app ----------------------------------------------------------------------------------------


def create_bare_app() -> Any:
    """The ceiling for (a): FastAPI + Pydantic parsing of the same order, no signature, no queue."""
    from engine.order import OrderData

    app = FastAPI()

    @app.post("/webhooks/orders/{channel}", status_code=202)
    async def receive(channel: str, request: Request) -> Response:
        OrderData.model_validate_json(await request.body())
        return Response(b'{"accepted":1}', status_code=202, media_type="application/json")

    return app


# --- sample data --------------------------------------------------------------------------------------------------


class Orders:
    """Distinct realistic orders, fast: a few thousand templates from the test factory with fresh external ids."""

    def __init__(self) -> None:
        from tests.factories import order_json

        self.templates = [order_json(i) for i in range(2000)]

    def make(self, prefix: str, i: int) -> dict[str, Any]:
        order = dict(self.templates[i % len(self.templates)])
        order["external_id"] = f"{prefix}{i:09d}"
        return order

    def bodies(self, prefix: str, n: int) -> list[bytes]:
        return [orjson.dumps(self.make(prefix, i)) for i in range(n)]


def signed_headers(body: bytes, ts: int | None = None) -> dict[str, str]:
    return {"X-OrderHub-Signature": sign(SECRET.encode(), body, ts or int(time.time())),
            "Content-Type": "application/json"}


# --- processes ----------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Backend:
    name: str  # "sqlite" | "postgres"
    database_url: str
    redis_url: str
    workdir: Path

    def env(self, **extra: str) -> dict[str, str]:
        from bot.settings import BUNDLED_RULES

        return {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "ORDERHUB_DATABASE_URL": self.database_url,
            "ORDERHUB_REDIS_URL": self.redis_url,
            "ORDERHUB_RULES": str(BUNDLED_RULES),
            "ORDERHUB_WEBHOOK_SECRETS": f"generic={SECRET}",
            "ORDERHUB_DATA_DIR": str(self.workdir / "data"),
            **extra,
        }

    def settings(self) -> Any:
        from bot.settings import BUNDLED_RULES, Settings

        return Settings(_env_file=None, database_url=self.database_url, redis_url=self.redis_url,
                        rules=BUNDLED_RULES, webhook_secrets=f"generic={SECRET}", data_dir=self.workdir / "data")


@contextlib.contextmanager
def process(args: Sequence[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        p = subprocess.Popen(list(args), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield p
        finally:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def orderhub(*args: str) -> list[str]:
    return [sys.executable, "-c", "from bot.cli.main import main; main()", *args]


def bare_server(port: int) -> list[str]:
    # The same uvicorn settings `orderhub api` uses (uvicorn.run defaults: uvloop and httptools when installed).
    code = ("import uvicorn; uvicorn.run('bench.intake:create_bare_app', factory=True, host='127.0.0.1', "
            f"port={port}, workers=1, log_level='warning', access_log=False)")
    return [sys.executable, "-c", code]


def wait_http(port: int, proc: subprocess.Popen[bytes], path: str = "/docs", timeout: float = 30) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {proc.returncode}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=1).status_code < 500:
                return
        time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not answer in {timeout} s")


# --- load generation ----------------------------------------------------------------------------------------------

WRK_LUA = r"""
local reqs, idx, counter = {}, 0, 1
function setup(thread) thread:set("id", counter); counter = counter + 1 end
function init(args)
  local nthreads, n = tonumber(args[2]), 0
  for line in io.lines(args[1]) do
    n = n + 1
    if n % nthreads == id - 1 then
      local tab = line:find("\t", 1, true)
      reqs[#reqs + 1] = wrk.format("POST", args[3], {["Content-Type"] = "application/json",
        ["X-OrderHub-Signature"] = line:sub(1, tab - 1)}, line:sub(tab + 1))
    end
  end
end
function request()
  idx = idx % #reqs + 1
  return reqs[idx]
end
"""


@dataclass
class Load:
    rps: float
    requests: int
    errors: int
    tool: str


def write_requests(path: Path, bodies: Sequence[bytes]) -> None:
    ts = int(time.time())
    with path.open("wb") as f:
        for body in bodies:
            f.write(sign(SECRET.encode(), body, ts).encode() + b"\t" + body + b"\n")


def run_wrk(port: int, reqfile: Path, workdir: Path, duration: float, conns: int = 64) -> Load:
    script = workdir / "cycle.lua"
    script.write_text(WRK_LUA)
    threads = 2
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{conns}", f"-d{int(duration)}s", "--timeout", "10s", "-s", str(script),
         f"http://127.0.0.1:{port}", "--", str(reqfile), str(threads), PATH],
        capture_output=True, text=True, check=True,
    ).stdout
    rps = float(_after(out, "Requests/sec:"))
    total = int(next(line.split()[0] for line in out.splitlines() if "requests in" in line))
    errors = int(_after(out, "Non-2xx or 3xx responses:") or 0)
    if "Socket errors" in out:
        errors += sum(int(x.split()[-1]) for x in _after(out, "Socket errors:").split(","))
    return Load(rps, total, errors, "wrk")


def _after(text: str, marker: str) -> str:
    for line in text.splitlines():
        if marker in line:
            return line.split(marker, 1)[1].strip()
    return ""


class RawClient:
    """A minimal keep-alive HTTP/1.1 client: cheap enough per request that the load generator is not what we measure."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        request = f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Length: {len(body)}\r\n{head}\r\n".encode() + body
        while True:
            conn = self.idle.pop() if self.idle else await asyncio.open_connection("127.0.0.1", self.port)
            reader, writer = conn
            try:
                writer.write(request)
                status_line = await reader.readline()
            except ConnectionError:
                status_line = b""
            if status_line:
                break
            writer.close()  # the server closed this idle keep-alive connection; it never read the request
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        await reader.readexactly(length)
        self.idle.append(conn)
        return int(status_line.split()[1])

    async def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


def python_load(port: int, lines: list[tuple[str, bytes]], duration: float, conns: int) -> Load:
    """Fallback when wrk is missing: the raw client in a separate process, `conns` connections."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1) as pool:
        return pool.submit(_python_load_child, port, lines, duration, conns).result()


def _python_load_child(port: int, lines: list[tuple[str, bytes]], duration: float, conns: int) -> Load:
    async def main() -> Load:
        done = errors = 0
        end = time.perf_counter() + duration
        start = time.perf_counter()

        async def conn(k: int) -> None:
            nonlocal done, errors
            client, i = RawClient(port), k
            while time.perf_counter() < end:
                sig, body = lines[i % len(lines)]
                status = await client.post(PATH, body, {"X-OrderHub-Signature": sig,
                                                        "Content-Type": "application/json"})
                done += 1
                errors += status != 202
                i += conns
            await client.close()

        await asyncio.gather(*(conn(k) for k in range(conns)))
        return Load(done / (time.perf_counter() - start), done, errors, "python (wrk not found)")

    return asyncio.run(main())


def http_load(port: int, bodies: Sequence[bytes], workdir: Path, duration: float, conns: int = 64) -> Load:
    if shutil.which("wrk"):
        reqfile = workdir / f"requests-{port}.tsv"
        write_requests(reqfile, bodies)
        try:
            return run_wrk(port, reqfile, workdir, duration, conns)
        finally:
            reqfile.unlink()
    ts = int(time.time())
    return python_load(port, [(sign(SECRET.encode(), b, ts), b) for b in bodies], duration, conns)


# --- databases ----------------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def backend(name: str, pg_url: str, redis_url: str, workdir: Path) -> AsyncIterator[Backend]:
    """A migrated, empty database and a flushed Redis db, removed again afterwards."""
    import redis.asyncio as aioredis

    from storage import migrate
    from storage.db import make_engine

    r = aioredis.Redis.from_url(redis_url)
    await r.flushdb()
    dbname = f"orderhub_bench_{uuid.uuid4().hex[:8]}"
    if name == "postgres":
        import asyncpg

        admin = await asyncpg.connect(pg_url)
        await admin.execute(f'CREATE DATABASE "{dbname}"')
        await admin.close()
        url = pg_url.rsplit("/", 1)[0] + f"/{dbname}"
    else:
        url = f"sqlite:///{workdir / 'bench.db'}"
    b = Backend(name, url, redis_url, workdir)
    engine = make_engine(b.settings().async_database_url)
    await migrate.upgrade(engine)
    await engine.dispose()
    try:
        yield b
    finally:
        await r.flushdb()
        await r.aclose()
        if name == "postgres":
            admin = await asyncpg.connect(pg_url)
            await admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            await admin.close()


class Db:
    """A thin raw connection for the bench's own reads (counts, polling) and the raw-insert baseline."""

    def __init__(self, b: Backend) -> None:
        self.b = b
        self.pg: Any = None
        self.lite: sqlite3.Connection | None = None

    async def __aenter__(self) -> Db:
        if self.b.name == "postgres":
            import asyncpg

            self.pg = await asyncpg.connect(self.b.database_url)
        else:
            self.lite = sqlite3.connect(self.b.database_url.removeprefix("sqlite:///"), isolation_level=None,
                                        check_same_thread=False)
            self.lite.execute("PRAGMA busy_timeout=30000")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.pg is not None:
            await self.pg.close()
        if self.lite is not None:
            self.lite.close()

    async def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        if self.pg is not None:
            return [tuple(r) for r in await self.pg.fetch(sql.replace("?", "$1"), *args)]
        assert self.lite is not None
        return self.lite.execute(sql, args).fetchall()

    async def scalar(self, sql: str) -> Any:
        return (await self.fetch(sql))[0][0]

    async def reset(self) -> None:
        from storage.models import Base

        tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
        if self.pg is not None:
            await self.pg.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        else:
            assert self.lite is not None
            for t in tables:
                self.lite.execute(f"DELETE FROM {t}")

    async def raw_insert_baseline(self, batch: int = 500) -> tuple[int, float]:
        """The same order rows the worker wrote, inserted again into an identical empty table by plain executemany
        in transactions of `batch` rows: what the database and driver alone cost, with no application code."""
        cols = [c for c in await self._columns() if c != "id"]
        rows = await self.fetch(f"SELECT {', '.join(cols)} FROM orders")
        collist = ", ".join(cols)
        if self.pg is not None:
            await self.pg.execute("DROP TABLE IF EXISTS bench_raw")
            await self.pg.execute("CREATE TABLE bench_raw (LIKE orders INCLUDING ALL)")
            sql = f"INSERT INTO bench_raw ({collist}) VALUES ({', '.join(f'${i + 1}' for i in range(len(cols)))})"
            started = time.perf_counter()
            for i in range(0, len(rows), batch):
                async with self.pg.transaction():
                    await self.pg.executemany(sql, rows[i : i + batch])
            elapsed = time.perf_counter() - started
            await self.pg.execute("DROP TABLE bench_raw")
        else:
            assert self.lite is not None
            self.lite.execute("DROP TABLE IF EXISTS bench_raw")
            ddl = self.lite.execute("SELECT sql FROM sqlite_master WHERE tbl_name = 'orders' AND sql IS NOT NULL")
            for (stmt,) in ddl.fetchall():
                self.lite.execute(stmt.replace("orders", "bench_raw").replace("uq_", "uqb_").replace("ix_", "ixb_"))
            sql = f"INSERT INTO bench_raw ({collist}) VALUES ({', '.join('?' for _ in cols)})"
            started = time.perf_counter()
            for i in range(0, len(rows), batch):
                self.lite.execute("BEGIN")
                self.lite.executemany(sql, rows[i : i + batch])
                self.lite.execute("COMMIT")
            elapsed = time.perf_counter() - started
            self.lite.execute("DROP TABLE bench_raw")
        return len(rows), elapsed

    async def _columns(self) -> list[str]:
        if self.pg is not None:
            rows = await self.pg.fetch("SELECT column_name FROM information_schema.columns "
                                       "WHERE table_name = 'orders' ORDER BY ordinal_position")
            return [r[0] for r in rows]
        assert self.lite is not None
        return [r[1] for r in self.lite.execute("PRAGMA table_info(orders)").fetchall()]


# --- the measurements ---------------------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    result: str
    baseline: str
    ratio: str
    target: str
    met: bool | None


@dataclass
class Report:
    backend: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


async def measure_http(b: Backend, orders: Orders, quick: bool, rep: Report) -> None:
    duration = 5 if quick else 10
    singles = orders.bodies("A", 50_000 if quick else 120_000)  # more than one run sends: all distinct
    port = free_port()
    with process(bare_server(port), b.env(), b.workdir / "bare.log") as p:
        wait_http(port, p)
        http_load(port, singles[:2000], b.workdir, 2)  # warm-up
        bare = http_load(port, singles, b.workdir, duration)
    port = free_port()
    with process(orderhub("api", "--port", str(port)), b.env(), b.workdir / "api.log") as p:
        wait_http(port, p, "/healthz")
        http_load(port, singles[:2000], b.workdir, 2)
        intake = http_load(port, singles, b.workdir, duration)
        await asyncio.sleep(1)  # requests still in flight when wrk stopped
        await _flush_redis(b)
        batch_bodies = [orjson.dumps({"orders": [orders.make("B", i * 100 + k) for k in range(100)]})
                        for i in range(300 if quick else 600)]
        batched = http_load(port, batch_bodies, b.workdir, duration)
        await _flush_redis(b)
    ratio = intake.rps / bare.rps if bare.rps else 0.0
    rep.rows.append(Row("(a) signed single-order intake, req/s", f"{intake.rps:,.0f}",
                        f"bare FastAPI+Pydantic {bare.rps:,.0f}", f"{ratio:.0%}", "≥ 65 % of bare", ratio >= 0.65))
    rep.rows.append(Row("(b) 100 orders per request, orders/s", f"{batched.rps * 100:,.0f}",
                        f"({batched.rps:,.0f} req/s)", "", "≥ 12,000", batched.rps * 100 >= 12_000))
    for label, load in (("bare", bare), ("single", intake), ("batch", batched)):
        if load.errors:
            rep.notes.append(f"{label}: {load.errors} of {load.requests} responses were not 2xx")
    rep.notes.append(f"(a)/(b): load by {intake.tool}, 64 connections, {duration} s each, one uvicorn process; (a) "
                     f"sent {intake.requests:,} requests from {len(singles):,} distinct signed orders, (b) cycles "
                     f"{len(batch_bodies)} distinct 100-order bodies")


async def _flush_redis(b: Backend) -> None:
    import redis.asyncio as aioredis

    r = aioredis.Redis.from_url(b.redis_url)
    await r.flushdb()
    await r.aclose()


async def measure_drain(b: Backend, orders: Orders, quick: bool, rep: Report) -> None:
    from bot.processes.gc_tuning import freeze_startup_objects, tune_gc
    from bot.wiring.runtime import Runtime

    await _flush_redis(b)  # what the HTTP runs left behind
    n = 20_000 if quick else 50_000
    distinct = int(n / 1.1)
    rng = random.Random(7)
    deliveries = [orders.make("C", i) for i in range(distinct)]
    deliveries += [deliveries[rng.randrange(distinct)] for _ in range(n - distinct)]  # redeliveries, identical
    rng.shuffle(deliveries)
    rt = Runtime.build(b.settings())
    try:
        await rt.start_rules(watch=False)
        tune_gc()  # as `orderhub worker` does
        await freeze_startup_objects()
        await rt.queue.ensure_group()
        for i in range(0, n, 1000):
            await rt.queue.enqueue("generic", [orjson.dumps(o) for o in deliveries[i : i + 1000]])
        worker = rt.intake_worker("bench-drain")
        started = time.perf_counter()
        totals = await worker.run(burst=True)
        elapsed = time.perf_counter() - started
    finally:
        await rt.close()
    async with Db(b) as db:
        stored = await db.scalar("SELECT count(*) FROM orders")
        raw_rows, raw_elapsed = await db.raw_insert_baseline()
        await db.reset()
    rate, raw_rate = n / elapsed, raw_rows / raw_elapsed if raw_rows else float("nan")
    target = 15_000 if b.name == "postgres" else None
    rep.rows.append(Row(
        "(c) queue → DB drain, one worker, orders/s", f"{rate:,.0f}",
        f"raw executemany of the rows {raw_rate:,.0f}", f"{rate / raw_rate:.0%}",
        "≥ 15,000 (PostgreSQL)" if target else "—", rate >= target if target else None,
    ))
    rep.notes.append(f"(c): {n:,} entries ({n - distinct:,} redeliveries) → {stored:,} orders "
                     f"({totals.inserted:,} inserted, {totals.duplicates:,} duplicates) in {elapsed:.2f} s; "
                     "the worker also writes transitions, approvals and outbox rows, the raw baseline only orders")
    if stored != distinct:
        rep.notes.append(f"[red](c): expected {distinct} orders, found {stored}[/]")


async def measure_end_to_end(b: Backend, orders: Orders, quick: bool, rep: Report) -> None:
    port = free_port()
    env = b.env()
    with process(orderhub("api", "--port", str(port)), env, b.workdir / "api-e2e.log") as api, \
            process(orderhub("worker"), env, b.workdir / "worker-e2e.log") as worker:
        wait_http(port, api, "/healthz")
        await _wait_worker(b, worker)
        async with Db(b) as db:
            await _burst(port, db, orders, rep)
            await db.reset()
            await _steady(port, db, orders, quick, rep)
            await db.reset()


async def _wait_worker(b: Backend, worker: subprocess.Popen[bytes]) -> None:
    import redis.asyncio as aioredis

    r = aioredis.Redis.from_url(b.redis_url)
    try:
        for _ in range(300):
            if worker.poll() is not None:
                raise RuntimeError("worker exited")
            # Ready once some client is blocked reading the intake group (an idle consumer is not listed by XINFO).
            if any(c.get("cmd") == "xreadgroup" for c in await r.client_list()):
                return
            await asyncio.sleep(0.1)
        raise RuntimeError("worker did not join the consumer group")
    finally:
        await r.aclose()


async def _burst(port: int, db: Db, orders: Orders, rep: Report, n: int = 20_000, per: int = 100) -> None:
    bodies = [orjson.dumps({"orders": [orders.make("D", i + k) for k in range(per)]}) for i in range(0, n, per)]
    client, sem = RawClient(port), asyncio.Semaphore(16)

    async def send(body: bytes) -> int:
        async with sem:
            return await client.post(PATH, body, signed_headers(body))

    started = time.perf_counter()
    statuses = await asyncio.gather(*(send(body) for body in bodies))
    posted = time.perf_counter() - started
    while (stored := await db.scalar("SELECT count(*) FROM orders")) < n:
        if time.perf_counter() - started > 120:
            break
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - started
    await client.close()
    rate = stored / elapsed
    rep.rows.append(Row(f"(d) {n:,}-order burst end to end, orders/s", f"{rate:,.0f}",
                        f"all accepted (202) after {posted:.2f} s", f"committed {elapsed:.2f} s",
                        "≥ 4,000", rate >= 4_000 and stored == n))
    if set(statuses) != {202} or stored != n:
        rep.notes.append(f"[red](d): statuses {sorted(set(statuses))}, stored {stored} of {n}[/]")


async def _steady(port: int, db: Db, orders: Orders, quick: bool, rep: Report, rate: int = 500) -> None:
    seconds = 5 if quick else 12
    n = rate * seconds
    bodies = [orjson.dumps(orders.make("E", i)) for i in range(n)]
    sent: dict[str, float] = {}
    sent_wall: dict[str, float] = {}
    seen: dict[str, float] = {}
    acked: list[float] = []
    client = RawClient(port)
    done = asyncio.Event()

    async def send(i: int) -> None:
        body = bodies[i]
        headers = signed_headers(body)
        t0 = time.perf_counter()
        sent[f"E{i:09d}"] = t0
        sent_wall[f"E{i:09d}"] = time.time()
        await client.post(PATH, body, headers)
        acked.append(time.perf_counter() - t0)

    async def poll() -> None:
        """Rows become visible to this connection at commit; one worker commits serially, so ids grow with commit
        order and `id > last` sees each row once."""
        last = 0
        while not done.is_set() or len(seen) < n:
            for row_id, ext in await db.fetch("SELECT id, external_id FROM orders WHERE id > ? ORDER BY id", last):
                seen.setdefault(ext, time.perf_counter())
                last = max(last, row_id)
            if len(seen) >= n:
                return
            await asyncio.sleep(POLL_S)

    poller = asyncio.create_task(poll())
    tasks = []
    start = time.perf_counter()
    for i in range(n):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(i)))
    await asyncio.gather(*tasks)
    done.set()
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(poller, 30)
    await client.close()
    lat = sorted((seen[k] - sent[k]) * 1000 for k in sent if k in seen)
    # updated_at is the worker's clock when it began the batch: splits the latency into queue wait and the rest
    picked = sorted((_epoch(at) - sent_wall[ext]) * 1000
                    for ext, at in await db.fetch("SELECT external_id, updated_at FROM orders") if ext in sent_wall)
    offered = n / (time.perf_counter() - start)
    p50, p99 = _pct(lat, 50), _pct(lat, 99)
    rep.rows.append(Row(f"(e) POST → committed p50 / p99 at {rate}/s, ms", f"{p50:.1f} / {p99:.1f}",
                        f"POST → 202 p50 / p99 {_pct(sorted(a * 1000 for a in acked), 50):.1f} / "
                        f"{_pct(sorted(a * 1000 for a in acked), 99):.1f}", f"max {lat[-1]:.0f}" if lat else "",
                        "p50 ≤ 10, p99 ≤ 50", bool(lat) and p50 <= 10 and p99 <= 50 and len(lat) == n))
    rep.notes.append(f"(e): {n:,} single-order POSTs over {seconds} s ({offered:,.0f}/s offered); {len(lat):,} "
                     f"commits observed by a {POLL_S * 1000:g} ms poll (an upper bound: up to that late); "
                     "the worker began the "
                     f"order's batch p50 {_pct(picked, 50):.1f} / p99 {_pct(picked, 99):.1f} ms after the POST")


def _epoch(value: Any) -> float:
    """A stored naive-UTC timestamp (PostgreSQL: datetime, SQLite: ISO text) as Unix time."""
    from datetime import UTC, datetime

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return float(value.replace(tzinfo=UTC).timestamp())


def _pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))]


# --- main ---------------------------------------------------------------------------------------------------------


async def run_backend(name: str, args: argparse.Namespace, orders: Orders) -> Report:
    rep = Report(name)
    workdir = Path(tempfile.mkdtemp(prefix=f"orderhub-bench-{name}-"))
    try:
        async with backend(name, args.pg_url, args.redis_url, workdir) as b:
            for step in (measure_http, measure_drain, measure_end_to_end):
                if args.only and step.__name__.removeprefix("measure_") not in args.only.split(","):
                    continue
                console.print(f"[dim]{name}: {step.__name__} …[/]")
                await step(b, orders, args.quick, rep)
    finally:
        if args.keep:
            console.print(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return rep


def print_report(rep: Report) -> None:
    title = {"sqlite": "SQLite", "postgres": "PostgreSQL"}[rep.backend]
    table = Table(title=f"OrderHub intake — {title} + Redis, {os.cpu_count()} cores")
    for col in ("measurement", "result", "baseline / limit (same run)", "ratio", "target", "met"):
        table.add_column(col, justify="left" if col in ("measurement", "baseline / limit (same run)") else "right")
    for r in rep.rows:
        met = "—" if r.met is None else ("[green]yes[/]" if r.met else "[red]no[/]")
        table.add_row(r.name, r.result, r.baseline, r.ratio, r.target, met)
    console.print(table)
    for note in rep.notes:
        console.print(f"  • {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--quick", action="store_true", help="shorter runs and fewer orders")
    parser.add_argument("--pg-url", default=os.environ.get("ORDERHUB_BENCH_PG_URL", "postgresql://root@127.0.0.1/test"),
                        help="an existing database to connect to for CREATE/DROP DATABASE")
    parser.add_argument("--redis-url", default=os.environ.get("ORDERHUB_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"),
                        help="a Redis db this run may flush")
    parser.add_argument("--only", help="comma-separated subset of: http (a, b), drain (c), end_to_end (d, e)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir with the server logs")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        console.print("[yellow]wrk not found: (a) and (b) use the Python load generator, which saturates sooner[/]")
    orders = Orders()
    names = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    from bot.processes import event_loop  # the loop `orderhub worker` runs on: (c) drains in this process

    reports = [event_loop.run(run_backend(name, args, orders)) for name in names]
    for rep in reports:
        print_report(rep)


if __name__ == "__main__":
    main()
