"""The intake unit of work on PostgreSQL: a batch's rows travel as one JSON document per table, in few round trips.

A 500-order batch is two statements: the lookup of stored keys (joined to a JSON array of them) and one
`INSERT … SELECT FROM json_to_recordset(…$1…) AS u(col type, …)` of the orders whose data-modifying CTEs also
insert their transitions, approvals and the approvals' outbox rows, joined to the orders actually inserted. orjson
encodes a table's rows in one call and asyncpg sends those bytes as they are (a bytea parameter: as a str they were
decoded from UTF-8 and encoded again, which cost more than the encoding). Not one typed array per column:
asyncpg's array encoder checks every element against `collections.abc` classes. Not SQLAlchemy Core: per-row
TypeDecorator and JSON processing, a statement with thousands of parameters rendered each time, a tuple `IN`
planned badly, and more round trips (bench/intake.py compares the paths). Everything still
runs on the SQLAlchemy connection (`exec_driver_sql`), so the transaction, the pool and the exception types are
SQLAlchemy's, and `apply_update` (rare) stays on Core.

Values are converted here exactly as the column types of storage/types.py would: UTC datetimes stored naive (a naive
one refused), money as integer fen, JSON columns as nested JSON. Strings are read back as `text`, never cast to
`varchar(n)` explicitly (that would truncate silently); the INSERT's assignment cast refuses an over-long value, as
Core does. tests/storage/test_intake_store_pg_values.py checks the rows equal the Core unit's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

import orjson
from sqlalchemy import JSON, Boolean, Integer, Table
from sqlalchemy.dialects import postgresql

from engine.order import Transition
from engine.stages import Stage
from handlers.chat_ports import NewOutbox
from handlers.intake import StoredOrderStamp, HistoryAsk, OrderKey, IntakePlan, PlannedApproval, StoredHistory
from handlers.outbox_kinds import approval_request
from storage.intake_unit import (
    APPROVALS,
    HISTORY_SQL,
    ORDERS,
    PREV_COUNT,
    OUTBOX,
    TRANSITIONS,
    SqlIntakeUnit,
    history_of_rows,
    order_row,
)
from storage.outbox_rows import outbox_values
from storage.types import MoneyCents, UTCDateTime

# The keys as one JSON array of [channel, external_id] pairs (bytes, like the rows below): two text[] arrays cost
# asyncpg an isinstance check against `collections.abc` per element.
_EXISTING = (
    "SELECT o.id, o.channel, o.external_id, o.payload_hash, o.stage, o.stage_entered_at FROM orders o "
    "JOIN (SELECT k->>0 AS channel, k->>1 AS external_id "
    "FROM json_array_elements(convert_from($1::bytea, 'UTF8')::json) AS k) AS k "
    "ON o.channel = k.channel AND o.external_id = k.external_id"
)

# The facts lookup: the asked orders as one JSON array of [customer, created (naive UTC), channel, external id].
_HISTORY = HISTORY_SQL.format(
    asked="MATERIALIZED (SELECT (t.ord - 1)::int AS i, t.e->>0 AS cid, (t.e->>1)::timestamp AS at, t.e->>2 AS ch, "
          "t.e->>3 AS ext FROM json_array_elements(convert_from($1::bytea, 'UTF8')::json) WITH ORDINALITY AS t(e, ord))",
    since="$2::timestamp",
    prev=f"SELECT 'p' AS tag, k.i AS i, NULL AS cid, p.n AS n FROM k CROSS JOIN LATERAL (SELECT {PREV_COUNT} AS n) AS p "
         "WHERE p.n > 0",
)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# Most instants of a batch are shared: `now` (updated_at, stage_entered_at, every transition's `at`), the memoised SLA
# deadlines, the entries' receipt milliseconds. Keyed by the aware instant (equal instants convert equally); a naive
# value is never stored, so it never hits and always reaches the check.
_NAIVE_MEMO: dict[datetime, datetime] = {}


def _naive_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    naive = _NAIVE_MEMO.get(value)
    if naive is not None:
        return naive
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("naive datetime given to a UTC column")
    # the wall time shifted by the offset: what astimezone(UTC) gives, without building the UTC datetime first
    naive = (value - offset).replace(tzinfo=None) if offset else value.replace(tzinfo=None)
    if len(_NAIVE_MEMO) >= 4096:
        _NAIVE_MEMO.clear()
    _NAIVE_MEMO[value] = naive
    return naive


def _cents(value: Decimal | None) -> int | None:
    return None if value is None else int((Decimal(value) * 100).to_integral_value())


def _json(value: Any) -> str:
    # None becomes JSON 'null', as SQLAlchemy's JSON type (none_as_null=False) stores it.
    return orjson.dumps(value, default=_json_default).decode()


Converter = Callable[[Any], Any] | None


def _column_kind(table: Table, name: str) -> tuple[str, Converter]:
    """(type of the column in the JSON recordset, Python converter applied before encoding) for one column."""
    t = table.c[name].type
    if isinstance(t, UTCDateTime):
        return "timestamp", _naive_utc
    if isinstance(t, MoneyCents):
        return "int8", _cents
    if isinstance(t, JSON):
        return t.compile(dialect=postgresql.dialect()), None  # the value travels as JSON inside the JSON
    if isinstance(t, Boolean):
        return "bool", None
    if isinstance(t, Integer):
        return "int8", None
    return "text", None


class RecordsInsert:
    """`INSERT INTO t (cols) SELECT … FROM json_to_recordset(…$n…) … ORDER BY (the rows' order) [suffix]` for rows
    given as dicts with the same keys.

    The rows travel as ONE JSON document (orjson, one C call per batch) rather than an array per column: asyncpg's array
    encoder checks every element against `collections.abc` classes, which cost the worker more than the rest of the
    encoding. PostgreSQL reads the rows back into typed columns: datetimes are converted to naive UTC and money to
    fen here first (the same converters as the column types), JSON columns are nested JSON values, and text stays
    `text` so that the INSERT's assignment cast still refuses an over-long value.

    Values the same for every row (`shared`, e.g. the batch's `now`) are sent once as scalar parameters; so are the
    model's scalar defaults of the columns the rows leave out, as a Core insert would fill them in. With
    `via_orders`, the rows name their order by `channel` and `external_id` and are joined to the CTE `o` (the orders
    just inserted) for `order_id`: rows of an order that was not inserted (a duplicate) are dropped by the join.
    Parameters are numbered from `start`, so several of these can share one statement.
    """

    def __init__(self, table: Table, columns: Sequence[str], suffix: str = "", *, start: int = 1,
                 via_orders: bool = False, shared: Sequence[str] = ()) -> None:
        keys = ["channel", "external_id"] if via_orders else []
        own = [c for c in columns if c not in keys and not (via_orders and c == "order_id")]
        self.defaults = {
            c.name: c.default.arg for c in table.c
            if c.name not in own and c.name not in shared and c.default is not None and c.default.is_scalar
            and c.name != "order_id"
        }
        self.columns = own
        self.scalars = [*shared, *self.defaults]  # one value each
        kinds = [(c, *_column_kind(ORDERS, c)) for c in keys] + [(c, *_column_kind(table, c)) for c in own]
        scalar_kinds = [_column_kind(table, c) for c in self.scalars]
        self.converted = [(name, conv) for name, _, conv in kinds if conv is not None]
        self.scalar_converters = [_json if isinstance(table.c[c].type, JSON) else k[1]
                                  for c, k in zip(self.scalars, scalar_kinds, strict=True)]
        record = ", ".join(f'"{name}" {sqltype}' for name, sqltype, _ in kinds)
        names = ", ".join(f'"{name}"' for name, _, _ in kinds)
        first_scalar = start + 1
        select = ", ".join([*(["o.id"] if via_orders else []), *(f'u."{c}"' for c in own),
                            *(f"${first_scalar + i}::{k[0]}" for i, k in enumerate(scalar_kinds))])
        target = ", ".join([*(["order_id"] if via_orders else []), *own, *self.scalars])
        join = ' JOIN o ON o.channel = u."channel" AND o.external_id = u."external_id"' if via_orders else ""
        # In the rows' order (ids are given in it: an order's "received" transition before its "auto-confirmed"), which
        # a join does not keep by itself.
        self.sql = (f"INSERT INTO {table.name} ({target}) SELECT {select} "
                    f"FROM ROWS FROM (json_to_recordset(convert_from(${start}::bytea, 'UTF8')::json) AS ({record})) "
                    f"WITH ORDINALITY AS u({names}, n)"
                    f"{join} ORDER BY u.n {suffix}").strip()

    def params(self, rows: Sequence[dict[str, Any]], shared: Mapping[str, Any] | None = None) -> tuple[Any, ...]:
        """The rows as one JSON text, then the scalars. Converts the rows' values in place (they are built for this)."""
        for name, conv in self.converted:
            for r in rows:
                r[name] = conv(r[name])
        # bytes, sent as bytea: as a str, decoding orjson's UTF-8 (Chinese names, notes) and asyncpg encoding it
        # back cost more than the encoding itself; PostgreSQL checks the UTF-8 in convert_from.
        out: list[Any] = [orjson.dumps(rows, default=_json_default)]
        given = {**(shared or {}), **self.defaults}
        for name, conv in zip(self.scalars, self.scalar_converters, strict=True):
            out.append(given[name] if conv is None else conv(given[name]))
        return tuple(out)


_cache: dict[tuple[Any, ...], RecordsInsert] = {}


def records_insert(table: Table, rows: Sequence[dict[str, Any]], suffix: str = "", *, start: int = 1,
                   via_orders: bool = False, shared: Sequence[str] = ()) -> RecordsInsert:
    key = (table.name, tuple(rows[0]), suffix, start, via_orders, tuple(shared))
    stmt = _cache.get(key)
    if stmt is None:
        stmt = _cache[key] = RecordsInsert(table, list(rows[0]), suffix, start=start, via_orders=via_orders,
                                           shared=shared)
    return stmt


class _Col:
    """A column expression standing in for a value, so the bulk SQL takes its row from the one constructor
    (`handlers.outbox_kinds.approval_request`): the row's fields become the SELECT list over the inserted approvals."""

    def __init__(self, sql: str) -> None:
        self.sql = sql

    def __format__(self, spec: str) -> str:
        return f"\x00{self.sql}\x00"  # inside an f-string (a dedup key): split out again by `_sql_value`


def _sql_value(value: Any) -> str:
    if isinstance(value, _Col):
        return value.sql
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(f"no SQL for {value!r} in a bulk outbox row")
    if isinstance(value, int):
        return str(value)
    parts = value.split("\x00")  # literal, expression, literal, …
    terms = [f"({p})::text" if i % 2 else "'" + p.replace("'", "''") + "'" for i, p in enumerate(parts) if p or not i]
    return " || ".join(terms)


def _outbox_select(row: NewOutbox, created_at: _Col) -> str:
    """`INSERT INTO outbox … SELECT <the row's fields as SQL>`, the FROM clause left to the caller."""
    values = {**outbox_values(row, cast(datetime, created_at)),
              "payload": "json_build_object(" + ", ".join(f"{_sql_value(k)}, {_sql_value(v)}"
                                                          for k, v in row.payload.items()) + ")"}
    values = {k: v for k, v in values.items() if v is not None}
    sql = {k: v if k == "payload" else _sql_value(v) for k, v in values.items()}
    return f"INSERT INTO {OUTBOX.name} ({', '.join(sql)}) SELECT {', '.join(sql.values())}"


_OUTBOX_FOR_APPROVALS = (
    _outbox_select(approval_request(_Col("a.id"), _Col("a.order_id"), _Col("${now}::timestamp"),
                                    role=_Col("a.required_role"), region=_Col("a.region")),
                   _Col("${now}::timestamp"))
    + " FROM a "
    # levels run in order: only the lowest level of each (order, kind) is sent now (storage.intake_unit.first_levels)
    "WHERE a.level = (SELECT min(b.level) FROM a b WHERE b.order_id = a.order_id AND b.kind = a.kind)"
)


@dataclass(frozen=True, slots=True)
class EncodedInsert:
    """A batch's insert statement with its parameters, encoded while the batch was planned."""

    sql: str
    params: tuple[Any, ...]


class PgIntakeUnit(SqlIntakeUnit):
    """`SqlIntakeUnit` with the batch statements sent as arrays; same rows, same results."""

    async def _run(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        result = await self.conn.exec_driver_sql(sql, params)
        return list(result.all()) if result.returns_rows else []

    async def existing(self, keys: list[OrderKey]) -> dict[OrderKey, StoredOrderStamp]:
        if not keys:
            return {}
        rows = await self._run(_EXISTING, (orjson.dumps(keys),))
        return {
            (ch, ext): StoredOrderStamp(oid, digest, Stage(stage), entered.replace(tzinfo=UTC))
            for oid, ch, ext, digest, stage, entered in rows
        }

    async def history(self, asked: list[HistoryAsk], since: datetime) -> dict[int, StoredHistory]:
        payload = orjson.dumps([[cid, _naive_utc(at), ch, ext] for cid, at, ch, ext in asked])
        return history_of_rows(asked, await self._run(_HISTORY, (payload, _naive_utc(since))))

    @staticmethod
    def encode(plans: list[IntakePlan], now: datetime) -> EncodedInsert:
        """Orders, their transitions, approvals and the approvals' outbox rows as one statement (one round trip):
        data-modifying CTEs, the children joined to the orders actually inserted. `now`: the batch's time."""
        orders = [order_row(p) for p in plans]
        transitions = [  # stages as the enum members: orjson writes a StrEnum as its value
            {"channel": p.channel, "external_id": p.data.external_id, "at": t.at, "from_stage": t.from_stage,
             "to_stage": t.to_stage, "actor": t.actor, "reason": t.reason}
            for p in plans for t in p.transitions
        ]
        approvals = [
            {"channel": p.channel, "external_id": p.data.external_id, **_approval(p, a, now)}
            for p in plans for a in p.approvals
        ]
        o = records_insert(ORDERS, orders, "ON CONFLICT (channel, external_id) DO NOTHING RETURNING id, channel, "
                          "external_id", shared=["updated_at"])
        ctes, params = [f"o AS ({o.sql})"], [*o.params(orders, {"updated_at": now})]
        if transitions:
            t = records_insert(TRANSITIONS, transitions, start=len(params) + 1, via_orders=True)
            ctes.append(f"t AS ({t.sql})")
            params += t.params(transitions)
        if approvals:
            a = records_insert(APPROVALS, approvals, "RETURNING id, order_id, required_role, region, kind, level",
                              start=len(params) + 1, via_orders=True)
            params += a.params(approvals)
            ctes += [f"a AS ({a.sql})", "x AS (" + _OUTBOX_FOR_APPROVALS.replace("{now}", str(len(params) + 1)) + ")"]
            params.append(_naive_utc(now))
        return EncodedInsert(f"WITH {', '.join(ctes)} SELECT id, channel, external_id FROM o", tuple(params))

    async def insert_new(self, plans: list[IntakePlan], encoded: object | None = None) -> set[OrderKey]:
        stmt = encoded if isinstance(encoded, EncodedInsert) else self.encode(plans, self.now)
        rows = await self._run(stmt.sql, stmt.params)
        if any(p.owner is not None for p in plans):
            await self.assign_owners(plans, {(ch, ext): oid for oid, ch, ext in rows})
        return {(ch, ext) for _, ch, ext in rows}

    async def _children(self, plans: list[IntakePlan], ids: dict[OrderKey, int]) -> None:
        """Children of orders whose ids are known (an update of a stored order)."""
        transitions = [{"order_id": ids[p.key], **_transition(t)} for p in plans for t in p.transitions]
        if transitions:
            stmt = records_insert(TRANSITIONS, transitions)
            await self._run(stmt.sql, stmt.params(transitions))
        approvals = [{"order_id": ids[p.key], **_approval(p, a, self.now)} for p in plans for a in p.approvals]
        if approvals:
            stmt = records_insert(APPROVALS, approvals, "RETURNING id, order_id, required_role, region, kind, level")
            params = stmt.params(approvals)
            outbox = _OUTBOX_FOR_APPROVALS.replace("{now}", str(len(params) + 1))
            await self._run(f"WITH a AS ({stmt.sql}) {outbox}", (*params, _naive_utc(self.now)))


def _approval(p: IntakePlan, a: PlannedApproval, now: datetime) -> dict[str, Any]:
    return {"kind": a.need.kind, "level": a.need.level, "required_role": a.need.role, "region": a.need.region,
            "amount": p.data.amount, "order_version": p.payload_hash, "rule_id": a.need.rule_id,
            "status": "pending", "requested_by": p.requested_by, "requested_at": now,
            "escalate_at": a.escalate_at, "escalation_level": 0, "reason": ""}


def _transition(t: Transition) -> dict[str, Any]:
    return {"at": t.at, "from_stage": t.from_stage.value if t.from_stage else None, "to_stage": t.to_stage.value,
            "actor": t.actor, "reason": t.reason}
