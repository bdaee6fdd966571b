"""`orderhub import FILE`: CSV or XLSX orders into the intake queue — 63 % of these merchants live in Excel.

One row is one order line; rows sharing an `external_id` form one order with several items. Columns named
`attr:<name>` become item attributes, `custom:<name>` custom fields. A naive `created_at` is read in the configured
time zone. CSV is read as UTF-8 (with or without BOM), GBK or GB18030 (what Excel and WPS on Chinese Windows write),
detected with charset-normalizer. Reads are bounded (file size, rows, cell length); a file that cannot be read is
one sentence (`ImportFileError`), never a traceback.

Every row that cannot become an order is refused with row, column and reason (in ORDERHUB_LANGUAGE): invalid
fields, an `amount` that disagrees with the items, a city in no region of the rules. A missing phone is accepted
with a warning row (the merchant may well want the order; that customer just cannot verify in chat). The good
orders are queued through the same intake queue as the webhooks, so the worker treats them identically.
"""

from __future__ import annotations

import codecs
import csv
import io
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import orjson
from pydantic import ValidationError
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from engine.channels.generic import generic_to_order
from engine.rules import RuleSet
from engine.text_cli import field_name, pydantic_reason, tc
from storage.users_repo import UserError

if TYPE_CHECKING:
    from bot.wiring.runtime import Runtime

CUSTOMER_COLUMNS = {"customer_id": "id", "customer_name": "name", "phone": "phone", "city": "city", "tier": "tier"}
ITEM_COLUMNS = {"sku": "sku", "item_name": "name", "qty": "qty", "unit_price": "unit_price"}
# pydantic error location → the column a person should fix
FIELD_TO_COLUMN = {**{("customer", v): k for k, v in CUSTOMER_COLUMNS.items()},
                   **{("items", v): k for k, v in ITEM_COLUMNS.items()}}
CHUNK = 500
MAX_FILE_BYTES = 64 * 1024 * 1024  # ~300,000 order lines; a bigger export is split (and /dev/zero ends here)
MAX_ROWS = 300_000
CSV_FIELD_LIMIT = csv.field_size_limit()  # 131,072 characters: far beyond any real cell
# What charset-normalizer may call a GBK/GB18030 file; GB18030 is a superset of both others, so it decodes them all.
CHINESE_ENCODINGS = {"gb18030", "gbk", "gb2312", "hz"}


class ImportFileError(UserError):
    """The file as a whole cannot be read: said in one line, exit code 2."""


@dataclass(frozen=True, slots=True)
class RowError:
    row: int
    column: str
    reason: str


def read_bytes(path: Path, language: str = "zh") -> bytes:
    """The whole file, refusing what is not a regular file or is larger than MAX_FILE_BYTES (read bounded too)."""
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise ImportFileError(tc("imp.not_file", language, path=path))
        if st.st_size > MAX_FILE_BYTES:
            raise ImportFileError(tc("imp.too_big", language, limit=MAX_FILE_BYTES // 2**20, path=path))
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ImportFileError(tc("imp.unreadable", language, path=path, reason=exc.strerror or exc)) from None
    if len(data) > MAX_FILE_BYTES:
        raise ImportFileError(tc("imp.too_big", language, limit=MAX_FILE_BYTES // 2**20, path=path))
    return data


def decode_text(data: bytes, path: Path, language: str = "zh") -> str:
    """UTF-8 (BOM or not) when it is valid UTF-8; else GB18030 (a superset of GBK and GB2312) when the bytes are valid
    GB18030 and charset-normalizer finds that a plausible reading; anything else is refused in one line.

    A short GBK file is often *ranked* below cp949 or Shift-JIS by the detector (the byte ranges overlap), so the
    question asked is "is GB18030 plausible", not "is it the best guess": the only encodings we read are these."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    if b"\0" in data:  # no text encoding we read has NUL bytes: a binary file (or UTF-16) under a .csv name
        raise ImportFileError(tc("imp.encoding", language, path=path))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError:
            text = None
        if text is not None:
            from charset_normalizer import from_bytes

            if any(m.encoding.replace("-", "").lower() in CHINESE_ENCODINGS for m in from_bytes(data)):
                return text
    raise ImportFileError(tc("imp.encoding", language, path=path))


def _xlsx_rows(data: bytes, path: Path, language: str) -> Iterator[tuple[int, dict[str, Any]]]:
    from openpyxl import load_workbook

    if not data.startswith(b"PK\x03\x04"):
        raise ImportFileError(tc("imp.not_xlsx", language, path=path))
    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # openpyxl raises many kinds (BadZipFile, KeyError, InvalidFileException): all mean "not xlsx"
        raise ImportFileError(tc("imp.not_xlsx", language, path=path)) from None
    try:
        rows = wb.active.iter_rows(values_only=True)
        header = [str(h).strip() if h is not None else "" for h in next(rows, [])]
        for n, values in enumerate(rows, start=2):
            if n > MAX_ROWS + 1:
                raise ImportFileError(tc("imp.too_many_rows", language, limit=MAX_ROWS, path=path))
            if any(v not in (None, "") for v in values):
                yield n, {h: v for h, v in zip(header, values, strict=False) if h}
    finally:
        wb.close()


def _csv_rows(text: str, path: Path, language: str) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    n = 1
    try:
        for n, row in enumerate(reader, start=2):
            if n > MAX_ROWS + 1:
                raise ImportFileError(tc("imp.too_many_rows", language, limit=MAX_ROWS, path=path))
            if any((v or "").strip() for v in row.values() if isinstance(v, str)):
                yield n, {k.strip(): (v.strip() if isinstance(v, str) else v) for k, v in row.items() if k}
    except csv.Error as exc:
        reason = (tc("imp.field_too_long", language, limit=f"{CSV_FIELD_LIMIT:,}")
                  if "field larger" in str(exc) else str(exc))
        raise ImportFileError(tc("imp.bad_csv", language, line=n + 1, reason=reason)) from None


def read_rows(path: Path, language: str = "zh") -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number as the user sees it, header → value) for CSV and XLSX; an unreadable file is ImportFileError."""
    data = read_bytes(path, language)
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return _xlsx_rows(data, path, language)
    return _csv_rows(decode_text(data, path, language), path, language)


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


def _items_total(items: list[dict[str, Any]]) -> Decimal | None:
    try:
        return sum((Decimal(str(i["qty"])) * Decimal(str(i["unit_price"])) for i in items), Decimal(0))
    except (KeyError, InvalidOperation, ValueError):
        return None


def group_orders(rows: Iterator[tuple[int, dict[str, Any]]], channel: str, tz: ZoneInfo, language: str = "zh"
                 ) -> tuple[dict[str, tuple[list[int], dict[str, Any]]], list[RowError]]:
    orders: dict[str, tuple[list[int], dict[str, Any]]] = {}
    errors: list[RowError] = []
    refused: set[str] = set()  # orders whose first row was refused: their other rows go with it
    for n, row in rows:
        ext = _text(row.get("external_id"))
        if not ext:
            errors.append(RowError(n, "external_id", tc("r.missing", language, field=field_name("external_id", language))))
            continue
        if ext in refused:
            errors.append(RowError(n, "external_id", tc("r.order_refused", language, order=ext)))
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
        except (ValueError, TypeError):
            key = "r.missing" if row.get("created_at") in (None, "") else "r.not_date"
            errors.append(RowError(n, "created_at", tc(key, language, field=field_name("created_at", language))))
            refused.add(ext)
            continue
        orders[ext] = ([n], order)
    return orders, errors


def _column(loc: tuple[Any, ...]) -> str:
    if len(loc) > 3 and loc[0] == "items" and loc[2] == "attributes":
        return f"attr:{loc[3]}"
    if len(loc) > 1 and loc[0] == "custom_fields":
        return f"custom:{loc[1]}"
    key = (loc[0], loc[2]) if len(loc) > 2 and loc[0] == "items" else tuple(loc[:2])
    return FIELD_TO_COLUMN.get(key, str(loc[-1]) if loc else "(row)")  # type: ignore[arg-type]


@dataclass(slots=True)
class Checked:
    bodies: list[bytes]
    errors: list[RowError]  # refused: these rows are not imported
    warnings: list[RowError]  # imported, with something the merchant should know
    refused_rows: set[int]


def validate(orders: dict[str, tuple[list[int], dict[str, Any]]], rules: RuleSet | None = None,
             language: str = "zh") -> tuple[list[bytes], list[RowError]]:
    """(bodies to queue, refusals) — see `check` for the warnings as well."""
    checked = check(orders, rules, language)
    return checked.bodies, checked.errors


def check(orders: dict[str, tuple[list[int], dict[str, Any]]], rules: RuleSet | None = None,
          language: str = "zh") -> Checked:
    """Each order through the same validation as the webhook, then what only a file import can get wrong: an amount
    that is not the items' total, a city the rules do not place in a region (with `rules`), a missing phone."""
    out = Checked([], [], [], set())
    for rows, order in orders.values():
        if order["amount"] == "":  # no amount column value: the items' total is what the merchant means
            total = _items_total(order["items"])
            if total is not None:
                order["amount"] = str(total)
        problems: list[RowError] = []
        try:
            data = generic_to_order(order)
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                loc = tuple(err["loc"])
                row = rows[loc[1]] if len(loc) > 2 and loc[0] == "items" and isinstance(loc[1], int) else rows[0]
                column = _column(loc)
                problems.append(RowError(row, column, pydantic_reason(dict(err), column, language)))
        else:
            total = sum((i.unit_price * i.qty for i in data.items), Decimal(0))
            if total != data.amount:
                problems.append(RowError(rows[0], "amount", tc("r.amount_mismatch", language,
                                                              amount=f"{data.amount:.2f}", total=f"{total:.2f}")))
            city = data.customer.city
            if rules is not None and rules.region_of(city) is None:
                reason = (tc("r.unknown_city", language, city=city) if city
                          else tc("r.missing", language, field=field_name("city", language)))
                problems.append(RowError(rows[0], "city", reason))
            if not problems and not data.customer.phone:
                out.warnings.append(RowError(rows[0], "phone", tc("r.no_phone", language)))
        if problems:
            out.errors += problems
            out.refused_rows.update(rows)
            continue
        out.bodies.append(orjson.dumps(order))
    return out


def _table(title: str, rows: list[RowError], language: str) -> Table:
    table = Table(title=title)
    for col in ("imp.col_row", "imp.col_column", "imp.col_reason"):
        table.add_column(tc(col, language))
    for e in sorted(rows, key=lambda e: e.row):
        table.add_row(str(e.row), e.column, e.reason)
    return table


async def import_orders(rt: Runtime, path: Path, channel: str, console: Console, requested_by: str = "system") -> int:
    """Queue every valid order of the file; print the refused and warned rows. Returns the number of refused rows.

    `requested_by` (`user:<id>` of the staff member importing) is named by the approval requests these orders
    cause, so four-eyes keeps that person from deciding them."""
    lang = rt.settings.language
    tz = ZoneInfo(rt.settings.timezone)
    orders, errors = group_orders(read_rows(path, lang), channel, tz, lang)
    await rt.start_rules(watch=False)  # the regions the worker will place the orders in
    checked = check(orders, rt.rules.current, lang)
    errors += checked.errors
    refused_rows = checked.refused_rows | {e.row for e in errors}
    bodies = checked.bodies
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(tc("imp.queueing", lang, name=path.name), total=len(bodies))
        for i in range(0, len(bodies), CHUNK):
            chunk = bodies[i:i + CHUNK]
            await rt.queue.enqueue("generic", chunk, requested_by)
            progress.advance(task, len(chunk))
    console.print(tc("imp.queued", lang, n=len(bodies), path=path))
    if checked.warnings:
        console.print(_table(tc("imp.warn_title", lang, rows=len(checked.warnings)), checked.warnings, lang))
    if errors:
        console.print(_table(tc("imp.refused_title", lang, rows=len(refused_rows), problems=len(errors)), errors, lang))
    if bodies and not any(c.live for c in await rt.queue.consumers()):
        console.print(f"[yellow]{tc('imp.no_worker', lang)}[/]")
    return len(refused_rows)
