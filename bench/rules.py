"""Rules-engine throughput: evaluations per second of the bundled example rules on generated orders.

Run: `.venv/bin/python -m bench.rules [--orders 100000] [--seed 7]`. Prints, from the same run, the cost of merely
constructing the Order objects beside the cost of evaluating them, so the engine's own share is visible.
Target: >= 20,000 evaluations/s on one core.

The garbage collector runs as in the worker (`bot.processes.gc_tuning`: its thresholds, and what lives for the whole run
frozen, there the start-up objects, here the 100,000 generated orders too). A worker holds one batch of orders at a
time; with CPython's defaults and 100,000 live orders, full collections re-scanning them cost a third of the
evaluation time, which measures the bench's data set rather than the engine. That case is printed as well.
"""

from __future__ import annotations

import argparse
import gc
import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bot.processes.gc_tuning import THRESHOLDS
from engine.order import Customer, Item, Order, OrderData
from engine.rules import Facts, RefundRequest, evaluate, load_rules
from engine.stages import BOARD

EXAMPLE = Path(__file__).resolve().parent.parent / "engine" / "rules.example.yaml"
CITIES = ["杭州", "上海", "南京", "苏州", "宁波", "广州", "深圳", "北京", "天津", "成都", "重庆", "拉萨", "西安"]
SKUS = ["CUR-LINEN-280", "CUR-VELVET-300", "BLD-ROLLER-120", "SOFA-3S-GREY", "CAB-OAK-180", "ACC-HOOK-20", "X-GIFT"]
NOTES = ["", "", "", "请周末安装", "加急，客户下周搬家", "urgent please", "请尽快发货"]
TIERS = ["normal", "normal", "normal", "vip"]


def raw_orders(n: int, seed: int) -> list[dict]:
    """Plain field values generated up front, so construction and evaluation are timed on the same data."""
    rng = random.Random(seed)
    start = datetime(2025, 11, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        lines = rng.randint(1, 2)
        items = []
        total = Decimal(0)
        for _ in range(lines):
            price = Decimal(rng.randint(5_000, 300_000)) / 100
            qty = rng.randint(1, 3)
            items.append((rng.choice(SKUS), qty, price))
            total += price * qty
        created = start + timedelta(minutes=rng.randint(0, 60 * 24 * 30))
        out.append(
            {
                "i": i,
                "external_id": f"B{i:08d}",
                "created_at": created,
                "city": rng.choice(CITIES),
                "tier": rng.choice(TIERS),
                "items": items,
                "amount": total,
                "notes": rng.choice(NOTES),
                "stage": rng.choice(BOARD[:-1]),
                "entered": created + timedelta(hours=rng.randint(0, 72)),
                "complaints": rng.choice([0, 0, 0, 1, 2, 3]),
                "refund": rng.random() < 0.05,
            }
        )
    return out


def build(raw: dict) -> tuple[Order, Facts]:
    data = OrderData(
        external_id=raw["external_id"],
        channel="tmall",
        created_at=raw["created_at"],
        customer=Customer(id=f"C{raw['i'] % 5000}", name="顾客", phone="13800138000", city=raw["city"], tier=raw["tier"]),
        items=[Item(sku=s, name=s, qty=q, unit_price=p) for s, q, p in raw["items"]],
        amount=raw["amount"],
        notes=raw["notes"],
    )
    order = Order(raw["i"], "tmall", data, raw["stage"], raw["entered"])
    refund = None
    if raw["refund"]:
        refund = RefundRequest(
            raw["amount"] / 2,
            raw["entered"] + timedelta(days=3),
            "customer",
            shipped_at=raw["entered"],
            delivered_at=raw["entered"] + timedelta(days=1),
        )
    return order, Facts(complaints_30d=raw["complaints"], refund=refund)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--rules", type=Path, default=EXAMPLE)
    args = ap.parse_args()

    t0 = time.perf_counter()
    rules = load_rules(args.rules.read_text(encoding="utf-8"), str(args.rules))
    t_load = time.perf_counter() - t0

    raw = raw_orders(args.orders, args.seed)
    t0 = time.perf_counter()
    built = [build(r) for r in raw]
    t_build = time.perf_counter() - t0

    now = datetime(2025, 12, 5, tzinfo=UTC)
    # First with CPython's default collector and everything young, as a plain script would run it.
    default_thresholds = gc.get_threshold()
    t0 = time.perf_counter()
    for order, facts in built:
        evaluate(order, facts, rules, now, trace=False)
    t_lean_default_gc = time.perf_counter() - t0

    # From here on as the worker runs (bot.processes.gc_tuning): its thresholds, the long-lived objects frozen.
    gc.set_threshold(*THRESHOLDS)
    gc.collect()
    gc.freeze()
    t0 = time.perf_counter()
    approvals = 0
    for order, facts in built:
        d = evaluate(order, facts, rules, now)
        approvals += d.needs_approval
    t_eval = time.perf_counter() - t0

    # What intake stores: the compact summary, built from the rules that matched (`rules explain` re-evaluates).
    t0 = time.perf_counter()
    lean_approvals = 0
    for order, facts in built:
        d = evaluate(order, facts, rules, now, trace=False)
        lean_approvals += d.needs_approval
    t_lean = time.perf_counter() - t0
    assert lean_approvals == approvals, "the lean evaluation must decide exactly as the full one"

    n = args.orders
    table = Table(title=f"rules bench: {n:,} orders, {args.rules.name} (loaded + compiled in {t_load * 1000:.1f} ms)")
    table.add_column("step")
    table.add_column("total s", justify="right")
    table.add_column("µs / order", justify="right")
    table.add_column("orders / s", justify="right")
    for name, t in (("construct Order + Facts (baseline)", t_build), ("evaluate (all sections, with trace)", t_eval),
                    ("evaluate as intake does (trace=False)", t_lean),
                    (f"  the same, default GC {default_thresholds}", t_lean_default_gc)):
        table.add_row(name, f"{t:.2f}", f"{t / n * 1e6:.1f}", f"{n / t:,.0f}")
    Console().print(table)
    verdict = "meets" if n / t_lean >= 20_000 else "MISSES"
    Console().print(f"{approvals:,} orders need approval; intake's evaluation {verdict} the 20,000 orders/s target "
                    f"({t_eval / t_build:.1f}x / {t_lean / t_build:.1f}x the cost of constructing the orders)")


if __name__ == "__main__":
    main()
