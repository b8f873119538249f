"""Finished CSV lines from SQLite: the whole row formatted inside the query.

Formatting rows in Python (the csv module, a tuple per row, a local time per row) costs three
to five times what SQLite spends reading them. Here SQLite returns each row as one finished
line, as bytes: the cells as :mod:`nvadmin.export.columns` formats them, quoted as the csv
module quotes (``QUOTE_MINIMAL`` with ``\\r\\n`` line ends: a cell containing a comma, a
quote, CR or LF is enclosed in quotes with its quotes doubled), joined by commas and ended by
CRLF. Python only joins a batch of lines and writes it.

Local times: SQLite knows no time zones, so the zone's UTC offsets over the exported range are
worked out here from the IANA database (:func:`nvadmin.audit.localtime.offset_spans`) and
handed to SQLite as one ``CASE`` branch per stretch between two offset changes. Offsets change
on whole minutes in every zone since the early 20th century; a range where the zone's offset
has seconds (local mean time) returns None and the export formats its local times in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from nvadmin.audit.localtime import offset_spans
from nvadmin.db.types import sqlite_timestamp
from nvadmin.export.columns import Column, Kind
from nvadmin.export.columns import _offset_text as offset_text

# The characters that make the csv module quote a cell (with "\r\n" as line terminator).
_NEEDS_QUOTES = "'*[,\"\r\n]*'"
# Columns whose text often needs quotes, tested cell by cell in SQL: JSON objects always hold
# quotes, and browsers' user agents a comma ("KHTML, like Gecko"). A row read again costs a
# query; a column that needed it in most rows would make the export several times slower.
_QUOTED_IN_SQL = frozenset({"details", "user_agent"})


def local_time_sql(column: str, zone: ZoneInfo, first: datetime, last: datetime) -> str | None:
    """SQL for the local-time cell of ``column`` (stored UTC text) for events in
    ``[first, last]``, the same text as ``columns.local_time_formatter``; None when an offset
    in that range is not a whole number of minutes."""
    spans = offset_spans(zone, first, last + timedelta(microseconds=1))
    branches: list[tuple[str, str]] = []
    since = first
    for until, _minutes in spans:
        offset = since.astimezone(zone).utcoffset() or timedelta(0)
        seconds = int(offset.total_seconds())
        if seconds % 60:
            return None
        # The minute is computed from the stored minute alone (seconds are copied as stored):
        # whole-minute offsets never change them, and SQLite never rounds them into the minute.
        text = (
            f"strftime('%Y-%m-%dT%H:%M', substr({column}, 1, 16), '{seconds // 60:+d} minutes')"
            f" || rtrim(rtrim(substr({column}, 17), '0'), '.') || '{offset_text(offset)}'"
        )
        branches.append((sqlite_timestamp(until), text))
        since = until
    if len(branches) == 1:
        return branches[0][1]
    whens = " ".join(f"WHEN {column} < '{until}' THEN {text}" for until, text in branches[:-1])
    return f"CASE {whens} ELSE {branches[-1][1]} END"


def stored_instant(text: str | None) -> datetime | None:
    """A stored UTC time text as an aware datetime (None if it is not one)."""
    if not isinstance(text, str):
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _quoted(cell: str) -> str:
    """The CSV text of a cell, quoted as the csv module quotes it."""
    return (
        f"CASE WHEN {cell} GLOB {_NEEDS_QUOTES} "
        f"THEN '\"' || replace({cell}, '\"', '\"\"') || '\"' ELSE ifnull({cell}, '') END"
    )


def _cell(column: Column, table: str, local_sql: str | None) -> str:
    if column.kind is Kind.LOCAL_TIME:
        if local_sql is None:
            raise ValueError("local times need the zone's offsets")
        return local_sql
    return column.sqlite_sql(table)


def _line(cells: Sequence[str]) -> str:
    """One printf (a chain of ``||`` copies the growing line once per cell)."""
    return f"CAST(printf('{','.join(['%s'] * len(cells))}\r\n', {', '.join(cells)}) AS BLOB)"


def fast_row_sql(columns: Sequence[Column], table: str, local_sql: str | None) -> list[str]:
    """The select list ``id, probe, line`` for rows whose cells need no quotes, the usual case.

    Testing every cell for a comma, quote, CR or LF in SQL costs more than reading the row, so
    SQLite only joins the raw stored values the cells are made from (``probe``) and the caller
    looks for those four characters in a whole batch of probes at once. A row whose probe has
    one is read again with :func:`careful_line_sql`. Formatting never adds one of the four
    (the apostrophe of neutralising, digits, dashes, colons, ``T``, ``Z``). Columns that
    often need quotes (``_QUOTED_IN_SQL``) are quoted in SQL instead. ``line`` is only right
    for rows whose probe is clean."""
    probed: list[str] = []
    cells: list[str] = []
    for column in columns:
        cell = _cell(column, table, local_sql)
        if column.source in _QUOTED_IN_SQL:
            cells.append(_quoted(cell))
            continue
        cells.append(cell)
        if column.kind is not Kind.HEX:
            probed.append(f"{table}.{column.source}")
    probe = "x''"
    if probed:
        probe = f"CAST(printf('{'%s' * len(probed)}', {', '.join(probed)}) AS BLOB)"
    if len(cells) == 1:
        cells = [_lone(cells[0])]
    return [f"{table}.id", probe, _line(cells)]


def careful_line_sql(
    columns: Sequence[Column], table: str, local_sql: str | None
) -> tuple[list[tuple[str, str]], str]:
    """``(cells, line)``: the name and SQL of each cell's text (``c0``, ``c1``, ...) for an
    inner query, and the expression over those names giving the finished line, every cell
    tested and quoted if need be. The inner query must not be flattened into the outer one
    (SQLite would then compute each cell once per use): give it ``LIMIT -1 OFFSET 0``."""
    cells = [(f"c{i}", _cell(column, table, local_sql)) for i, column in enumerate(columns)]
    quoted = [_quoted(name) for name, _sql in cells]
    if len(quoted) == 1:
        quoted = [_lone(quoted[0])]
    return cells, _line(quoted)


def _lone(cell: str) -> str:
    """The csv module writes a row of one empty cell as "" (an empty line is no row)."""
    return f"CASE WHEN ifnull({cell}, '') = '' THEN '\"\"' ELSE {cell} END"


def needs_quotes(probe: bytes) -> bool:
    return b"," in probe or b'"' in probe or b"\r" in probe or b"\n" in probe
