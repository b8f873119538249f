"""The columns an export can contain, and how each is formatted on either backend.

Both backends produce the same cell text. On PostgreSQL the formatting runs inside the
``COPY (SELECT ...)`` so the rows stream straight from the server to the file; the expressions
are chosen to be cheap: the session ``TimeZone`` renders local times (``::text``) instead of
``to_char``, and formula neutralising tests ``ascii(c)`` instead of a regex. On SQLite the
cells are formatted in SQL too (see :mod:`nvadmin.export.sqlite_csv` for local times).

Formula injection (OWASP "CSV Injection"): a spreadsheet treats a cell starting with ``=``, ``+``,
``-``, ``@``, tab, CR or LF as a formula. Every free-text cell starting with one of those gets a
leading apostrophe, which spreadsheets show as text and never evaluate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite

from nvadmin.db.models import ActivityEvent
from nvadmin.files.cells import FORMULA_STARTS
from nvadmin.query.fields import EXPORTED
from nvadmin.query.fields import Kind as Kind  # re-exported: the export service reads it

_SQL_FORMULA_CODES = ", ".join(str(ord(c)) for c in FORMULA_STARTS)


@dataclass(frozen=True, slots=True)
class Column:
    key: str  # also the CSV header
    source: str  # the event table column
    kind: Kind
    label: str  # shown in the export form
    # A derived column's SQL over the event table (``source`` is then the column it reads).
    derived: Callable[[], Any] | None = field(default=None, compare=False)
    identifier: bool = False  # a number naming something: text in JSON Lines

    def sqlite_sql(self, table: str) -> str:
        """The same cell text on SQLite, except local times (formatted in Python: SQLite has
        no time zone rules)."""
        if self.derived is not None:
            return _derived_sql(self.derived(), _SQLITE, table)
        c = f"{table}.{self.source}"
        if self.kind is Kind.TEXT:
            return (
                f"CASE WHEN unicode({c}) < 65 AND unicode({c}) IN ({_SQL_FORMULA_CODES}) "
                f"THEN '''' || {c} ELSE {c} END"
            )
        if self.kind is Kind.UTC_TIME:
            # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff' (always with the dot): trimming zeros and
            # then the dot never reaches the seconds.
            return f"replace(rtrim(rtrim({c}, '0'), '.'), ' ', 'T') || 'Z'"
        if self.kind is Kind.HEX:
            return f"lower(hex({c}))"
        return c

    def pg_sql(self, table: str) -> str:
        """The SQL expression for this cell, over the event table named ``table``."""
        if self.derived is not None:
            return _derived_sql(self.derived(), _POSTGRESQL, table)
        c = f"{table}.{self.source}"
        if self.kind is Kind.TEXT:
            # ascii() reads the first character's code without copying the text; every
            # formula start is below 'A' (65), so ordinary text costs one integer comparison.
            return (
                f"CASE WHEN ascii({c}) < 65 AND ascii({c}) IN ({_SQL_FORMULA_CODES}) "
                f"THEN '''' || {c} ELSE {c} END"
            )
        if self.kind is Kind.LOCAL_TIME:
            # The session TimeZone is the export's zone (SET LOCAL in the export transaction).
            return f"replace({c}::text, ' ', 'T')"
        if self.kind is Kind.UTC_TIME:
            return f"replace(({c} AT TIME ZONE 'UTC')::text, ' ', 'T') || 'Z'"
        if self.kind is Kind.HEX:
            return f"encode({c}, 'hex')"
        return c


_SQLITE = sqlite.dialect()
_POSTGRESQL = postgresql.dialect()


def _derived_sql(expression: Any, dialect: Any, table: str) -> str:
    """A derived column's SQL text (its constants inlined: they come from the registry)."""
    sql = str(expression.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    if table != ActivityEvent.__tablename__:
        raise ValueError(f"derived export columns read the event table, not {table!r}")
    return sql


# Every column an export can contain, in file order: the field registry's export columns.
COLUMNS: tuple[Column, ...] = tuple(
    Column(
        f.export.key,
        f.export.source or f.export.key,
        f.export.kind,
        f.export.label,
        f.export.sql,
        f.export.identifier,
    )
    for f in EXPORTED
    if f.export is not None
)
BY_KEY: dict[str, Column] = {c.key: c for c in COLUMNS}
# The event hash and storage id are for evidence work; the customer's file leaves them out,
# and columns added later are chosen in the export form, so the default file never changes.
DEFAULT_COLUMNS: tuple[str, ...] = tuple(
    f.export.key for f in EXPORTED if f.export is not None and f.export.default
)


def resolve(keys: tuple[str, ...] | list[str]) -> tuple[Column, ...]:
    unknown = [k for k in keys if k not in BY_KEY]
    if unknown:
        raise ValueError(f"unknown export column(s): {', '.join(unknown)}")
    if not keys:
        raise ValueError("choose at least one column to export")
    return tuple(BY_KEY[k] for k in keys)


def _offset_text(offset: timedelta) -> str:
    """An UTC offset as PostgreSQL prints it: ``+00``, ``-06``, ``+05:30``, ``-05:50:36``."""
    seconds = int(offset.total_seconds())
    sign = "-" if seconds < 0 else "+"
    seconds = abs(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{sign}{hours:02d}"
    if minutes or secs:
        text += f":{minutes:02d}"
    if secs:
        text += f":{secs:02d}"
    return text


def _trim_fraction(text: str) -> str:
    """Drop trailing zeros of the fraction (and a bare dot), as PostgreSQL does."""
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def local_text(value: datetime, zone: tzinfo) -> str:
    """ISO 8601 local time with offset, identical to PostgreSQL's ``::text`` plus ``T``."""
    local = value.astimezone(zone)
    base = local.strftime("%Y-%m-%dT%H:%M:%S")
    if local.microsecond:
        base = _trim_fraction(f"{base}.{local.microsecond:06d}")
    return base + _offset_text(local.utcoffset() or timedelta(0))


def local_time_formatter(zone: tzinfo) -> Callable[[str], str]:
    """Stored SQLite time text (UTC, ``YYYY-MM-DD HH:MM:SS.ffffff``) -> :func:`local_text`.

    Offsets change only on whole minutes (modern zones), so the local date, hour and minute
    are worked out once per UTC minute; seconds and fraction are copied. Offsets with seconds
    (local mean time before 1900) take the slow path.
    """
    minutes: dict[str, tuple[str, str] | None] = {}

    def local(stored: str) -> str:
        key = stored[:16]
        if key in minutes:
            known = minutes[key]
        else:
            instant = datetime.fromisoformat(key).replace(tzinfo=UTC).astimezone(zone)
            offset = instant.utcoffset() or timedelta(0)
            known = (
                None
                if int(offset.total_seconds()) % 60
                else (instant.strftime("%Y-%m-%dT%H:%M"), _offset_text(offset))
            )
            minutes[key] = known
        if known is None:
            return local_text(datetime.fromisoformat(stored).replace(tzinfo=UTC), zone)
        prefix, offset_text = known
        return prefix + _trim_fraction(stored[16:]) + offset_text

    return local
