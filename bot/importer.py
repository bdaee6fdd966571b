"""`orderhub import FILE`: CSV or XLSX orders into the intake queue — 63 % of these merchants live in Excel.

One row is one order line; rows sharing an `external_id` form one order with several items. Columns named
`attr:<name>` become item attributes, `custom:<name>` custom fields. A naive `created_at` is read in the configured
time zone. Every row that cannot become an order is reported (row number, column, reason); the good ones are queued
through the same intake queue as the webhooks, so the worker treats them identically.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from pydantic import ValidationError
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from bot.wiring import Runtime
from engine.channels.generic import generic_to_order

CUSTOMER_COLUMNS = {"customer_id": "id", "customer_name": "name", "phone": "phone", "city": "city", "tier": "tier"}
ITEM_COLUMNS = {"sku": "sku", "item_name": "name", "qty": "qty", "unit_price": "unit_price"}
# pydantic error location → the column a person should fix
FIELD_TO_COLUMN = {**{("customer", v): k for k, v in CUSTOMER_COLUMNS.items()},
                   **{("items", v): k for k, v in ITEM_COLUMNS.items()}}
CHUNK = 500


@dataclass(frozen=True, slots=True)
class RowError:
    row: int
    column: str
    reason: str


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number as the user sees it, header → value) for CSV (UTF-8, with or without BOM) and XLSX."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook

        wb = load_workbook(path, read_only=True, data_only=True)
        rows = wb.active.iter_rows(values_only=True)
        header = [str(h).strip() if h is not None else "" for h in next(rows, [])]
        for n, values in enumerate(rows, start=2):
            if any(v not in (None, "") for v in values):
                yield n, {h: v for h, v in zip(header, values, strict=False) if h}
        wb.close()
        return
    with path.open(newline="", encoding="utf-8-sig") as f:
        for n, row in enumerate(csv.DictReader(f), start=2):
            if any((v or "").strip() for v in row.values() if isinstance(v, str)):
                yield n, {k.strip(): (v.strip() if isinstance(v, str) else v) for k, v in row.items() if k}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _created_at(value: Any, tz: ZoneInfo) -> str:
    if isinstance(value, datetime):
        dt = value
    else:
        dt = datetime.fromisoformat(_text(value).replace("/", "-"))
    return (dt if dt.tzinfo else dt.replace(tzinfo=tz)).isoformat()


def group_orders(rows: Iterator[tuple[int, dict[str, Any]]], channel: str, tz: ZoneInfo
                 ) -> tuple[dict[str, tuple[list[int], dict[str, Any]]], list[RowError]]:
    orders: dict[str, tuple[list[int], dict[str, Any]]] = {}
    errors: list[RowError] = []
    for n, row in rows:
        ext = _text(row.get("external_id"))
        if not ext:
            errors.append(RowError(n, "external_id", "missing"))
            continue
        item: dict[str, Any] = {k2: _text(row.get(k)) for k, k2 in ITEM_COLUMNS.items() if row.get(k) not in (None, "")}
        item["attributes"] = {k[5:]: row[k] for k in row if k.startswith("attr:") and row[k] not in (None, "")}
        if ext in orders:
            orders[ext][0].append(n)
            orders[ext][1]["items"].append(item)
            continue
        order: dict[str, Any] = {
            "external_id": ext,
            "channel": _text(row.get("channel")) or channel,
            "customer": {k2: _text(row.get(k)) for k, k2 in CUSTOMER_COLUMNS.items() if row.get(k) not in (None, "")},
            "items": [item],
            "amount": _text(row.get("amount")),
            "currency": _text(row.get("currency")) or "CNY",
            "custom_fields": {k[7:]: row[k] for k in row if k.startswith("custom:") and row[k] not in (None, "")},
            "notes": _text(row.get("notes")),
        }
        try:
            order["created_at"] = _created_at(row.get("created_at"), tz)
        except ValueError as exc:
            errors.append(RowError(n, "created_at", f"not a date and time ({exc})"))
            continue
        orders[ext] = ([n], order)
    return orders, errors


def validate(orders: dict[str, tuple[list[int], dict[str, Any]]]) -> tuple[list[bytes], list[RowError]]:
    good: list[bytes] = []
    errors: list[RowError] = []
    for rows, order in orders.values():
        try:
            generic_to_order(order)
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                loc = err["loc"]
                row = rows[loc[1]] if len(loc) > 2 and loc[0] == "items" and isinstance(loc[1], int) else rows[0]
                key = (loc[0], loc[2]) if len(loc) > 2 and loc[0] == "items" else tuple(loc[:2])
                column = FIELD_TO_COLUMN.get(key, str(loc[-1]) if loc else "(row)")  # type: ignore[arg-type]
                errors.append(RowError(row, column, err["msg"]))
            continue
        good.append(orjson.dumps(order))
    return good, errors


async def import_orders(rt: Runtime, path: Path, channel: str, console: Console, requested_by: str = "system") -> int:
    """Queue every valid order of the file; print the per-row error report. Returns the number of bad rows.

    `requested_by` (`user:<id>` of the staff member importing) is named by the approval requests these orders
    cause, so four-eyes keeps that person from deciding them."""
    tz = ZoneInfo(rt.settings.timezone)
    orders, errors = group_orders(read_rows(path), channel, tz)
    bodies, invalid = validate(orders)
    errors += invalid
    with Progress(console=console) as progress:
        task = progress.add_task(f"queueing {path.name}", total=len(bodies))
        for i in range(0, len(bodies), CHUNK):
            chunk = bodies[i:i + CHUNK]
            await rt.queue.enqueue("generic", chunk, requested_by)
            progress.advance(task, len(chunk))
    console.print(f"queued {len(bodies)} order(s) from {path}")
    if errors:
        table = Table(title=f"{len(errors)} problem(s); these rows were not imported")
        for col in ("row", "column", "reason"):
            table.add_column(col)
        for e in sorted(errors, key=lambda e: e.row):
            table.add_row(str(e.row), e.column, e.reason)
        console.print(table)
    return len(errors)
