"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC instant with microsecond precision.

    PostgreSQL stores ``timestamptz``. SQLite stores SQLAlchemy's fixed-width text form of the
    naive UTC value (``YYYY-MM-DD HH:MM:SS.ffffff``), which sorts and compares correctly as text.
    Naive datetimes are refused: an audit log must never guess a zone.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def sqlite_timestamp(value: datetime) -> str:
    """The text SQLite holds for an aware datetime (same as :class:`UTCDateTime`)."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def sqlite_parameters(compiled: Any) -> list[Any]:
    """The parameters of a statement compiled for SQLite (its IN lists rendered:
    ``render_postcompile``), in order, as the driver's ``execute`` takes them: an aware
    datetime as the text SQLite holds for it."""
    values = compiled.params
    ordered = [values[name] for name in compiled.positiontup]
    return [sqlite_timestamp(v) if isinstance(v, datetime) else v for v in ordered]


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys: the form stored, hashed and exported."""
    return _CANONICAL.encode(value)
