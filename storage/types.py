"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import BigInteger, DateTime, Dialect
from sqlalchemy.types import TypeDecorator

_T = TypeVar("_T")


class _NoneSafe(TypeDecorator[_T]):
    """None passes through both ways unchanged; a subclass converts only real values (`_to_db`, `_from_db`)."""

    cache_ok = True

    def _to_db(self, value: _T) -> Any:
        raise NotImplementedError

    def _from_db(self, value: Any) -> _T:
        raise NotImplementedError

    def process_bind_param(self, value: _T | None, dialect: Dialect) -> Any:
        return None if value is None else self._to_db(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> _T | None:
        return None if value is None else self._from_db(value)


class UTCDateTime(_NoneSafe[datetime]):
    """Stores naive UTC, returns aware UTC: SQLite keeps no zone, and mixing zones in storage is how bugs start."""

    impl = DateTime
    cache_ok = True

    def _to_db(self, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def _from_db(self, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC)


class MoneyCents(_NoneSafe[Decimal]):
    """Decimal yuan in, integer fen on disk: exact, indexable and comparable on every backend."""

    impl = BigInteger
    cache_ok = True

    def _to_db(self, value: Decimal) -> int:
        return int((Decimal(value) * 100).to_integral_value())

    def _from_db(self, value: int) -> Decimal:
        return (Decimal(value) / 100).quantize(Decimal("0.01"))
