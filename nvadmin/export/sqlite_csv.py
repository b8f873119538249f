"""Finished CSV lines from SQLite: the whole row formatted inside the query.

Formatting rows in Python (the csv module, a tuple per row, a local time per row) costs three
to five times what SQLite spends reading them. Here SQLite returns each row as one finished
line, as bytes: the cells as :mod:`nvadmin.export.columns` formats them, quoted as the csv
module quotes (``QUOTE_MINIMAL``: a cell containing a comma, a quote, CR or LF is enclosed in
quotes with its quotes doubled), joined by commas and ended by the profile's line end (CRLF
or LF). Python only joins a batch of lines and writes it.

Local times: SQLite knows no time zones; the zone's UTC offsets over the exported range come
from :class:`nvadmin.export.columns.ZoneClock`. When every offset is a whole number of hours
(and changes on the hour), each event is joined to its UTC hour in a temporary table of the
range's hours that holds the hour's local date and hour and its offset cells, and the local
time is those plus the stored minutes and seconds: no date arithmetic per row. Otherwise
(half-hour zones, a weekday or hour filter, a plan that would not read the hours in order)
each local time is ``datetime()`` on the stored second in a ``CASE`` branch per stretch
between two offset changes. Measurements: benchmarks/RESULTS.md, "Export".
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from nvadmin.export.columns import Column, Hour, Kind, Piece, Plain
from nvadmin.export.plain import QUOTED_IN_SQL, SPECIALS

# A cell holding one of the characters that make it quoted (``SPECIALS``), as SQL's GLOB and
# as the bytes looked for in a batch of probes.
_NEEDS_QUOTES = f"'*[{''.join(SPECIALS)}]*'"
_SPECIAL_BYTES = tuple(c.encode("ascii") for c in SPECIALS)
# Cells of these kinds never hold one of the four characters: numbers, offsets, lowercase hex,
# and labels, names from a fixed list nvadmin chose (tests/unit/test_export_sqlite_lines.py
# checks them). Time cells copy parts of the stored time text (the UTC time, the local
# minutes and seconds), so the stored time is in the probe once.
_NEVER_QUOTED = frozenset({Kind.NUMBER, Kind.UTC_OFFSET, Kind.HEX, Kind.LABEL})
# Whole lines are chosen among variants for this many columns quoted in SQL (2 ** n printfs).
_VARIANTS_FOR = 2


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


def _line(cells: Sequence[str], line_end: str, formats: Sequence[str] | None = None) -> str:
    """One printf (a chain of ``||`` copies the growing line once per cell); ``formats``: each
    cell's conversion (default ``%s``), ``cells`` their arguments in order."""
    pieces = ",".join(formats or ["%s"] * len(cells))
    return f"CAST(printf('{pieces}{line_end}', {', '.join(cells)}) AS BLOB)"


def _has_specials(raw: str, first: str) -> str:
    """SQL: the stored text ``raw`` holds a comma, quote, CR or LF (NULL when it is NULL).

    ``instr`` scans at memory speed; a ``GLOB`` character class costs about five times as
    much per character. ``first`` is looked for first; the other three only when
    ``json_quote`` (one pass for the three) escaped something: it escapes quotes, CR and LF,
    and also backslashes and other control characters, hence the exact test after it."""
    literal = {'"': "'\"'", ",": "','", "\r": "'\r'", "\n": "'\n'"}
    exact = " OR ".join(f"instr({raw}, {literal[c]})" for c in SPECIALS if c != first)
    escaped = f"length(CAST(json_quote({raw}) AS BLOB)) <> length(CAST({raw} AS BLOB)) + 2"
    return f"instr({raw}, {literal[first]}) OR ({escaped} AND ({exact}))"


def fast_row_sql(
    columns: Sequence[Column],
    cells: Sequence[Piece],
    table: str,
    line_end: str,
    plain: Plain,
) -> list[str]:
    """The select list ``id, probe, line`` for rows whose cells need no quotes, the usual case;
    ``cells``: each column's printf piece (:func:`nvadmin.export.columns.sqlite_pieces`).

    Testing every cell for a comma, quote, CR or LF in SQL costs more than reading the row, so
    SQLite only joins the raw stored values the free-text cells are made from (``probe``) and
    the caller looks for those four characters in a whole batch of probes at once. A row whose
    probe has one is read again with :func:`careful_line_sql`. Formatting never adds one of
    the four (the apostrophe of neutralising, digits, dashes, colons, ``T``, ``Z``), and cells
    of the kinds in ``_NEVER_QUOTED`` never hold one, nor do the columns ``plain`` names
    (:mod:`nvadmin.export.plain`: their cells are the stored text as it is). Columns that
    often need quotes (``QUOTED_IN_SQL``: a row read again costs a query, and a column that
    needed it in most rows would make the export several times slower) are tested in SQL
    instead, and quoted by printf's ``%w`` (which doubles quotes) inside the line itself:
    the line is one of the printfs for each combination of them. ``line`` is only right for
    rows whose probe is clean."""
    probed: list[str] = []
    in_sql: list[tuple[int, str]] = []  # (cell, its test)
    pieces = list(cells)
    for i, column in enumerate(columns):
        raw = f"{table}.{column.source}"
        if column.derived is None and column.source in QUOTED_IN_SQL:
            in_sql.append((i, _has_specials(raw, QUOTED_IN_SQL[column.source])))
        elif column.as_stored(plain):
            pieces[i] = ("%s", (raw,))
        elif column.kind not in _NEVER_QUOTED and raw not in probed:
            probed.append(raw)
    probe = "x''"
    if probed:
        probe = f"CAST(printf('{'%s' * len(probed)}', {', '.join(probed)}) AS BLOB)"
    # Beyond the variants, a column quoted in SQL is a printf of its own (a free-text cell:
    # one ``%s``).
    for i, test in in_sql[_VARIANTS_FOR:]:
        (cell,) = pieces[i][1]
        pieces[i] = ("%s", (f"CASE WHEN {test} THEN printf('\"%w\"', {cell}) ELSE {cell} END",))
    return [f"{table}.id", probe, _variants(pieces, in_sql[:_VARIANTS_FOR], [], line_end)]


def _variants(
    pieces: list[Piece], tests: list[tuple[int, str]], quoted: list[int], line_end: str
) -> str:
    """The line as a ``CASE`` over ``tests`` (cells ``quoted`` so far need quotes)."""
    if not tests:
        formats = ['"%w"' if i in quoted else piece[0] for i, piece in enumerate(pieces)]
        if len(pieces) == 1 and formats == ["%s"]:
            return _line([_lone(pieces[0][1][0])], line_end)
        return _line([arg for _format, args in pieces for arg in args], line_end, formats)
    (i, test), rest = tests[0], tests[1:]
    return (
        f"CASE WHEN {test} THEN {_variants(pieces, rest, [*quoted, i], line_end)} "
        f"ELSE {_variants(pieces, rest, quoted, line_end)} END"
    )


def careful_line_sql(cells_sql: Sequence[str], line_end: str) -> tuple[list[tuple[str, str]], str]:
    """``(cells, line)``: the name and SQL of each cell's text (``c0``, ``c1``, ...) for an
    inner query, and the expression over those names giving the finished line, every cell
    tested and quoted if need be. The inner query must not be flattened into the outer one
    (SQLite would then compute each cell once per use): give it ``LIMIT -1 OFFSET 0``."""
    cells = [(f"c{i}", sql) for i, sql in enumerate(cells_sql)]
    quoted = [_quoted(name) for name, _sql in cells]
    if len(quoted) == 1:
        quoted = [_lone(quoted[0])]
    return cells, _line(quoted, line_end)


def _lone(cell: str) -> str:
    """The csv module writes a row of one empty cell as "" (an empty line is no row)."""
    return f"CASE WHEN ifnull({cell}, '') = '' THEN '\"\"' ELSE {cell} END"


def needs_quotes(probe: bytes) -> bool:
    return any(c in probe for c in _SPECIAL_BYTES)


# The hours of :meth:`nvadmin.export.columns.ZoneClock.hours`, for one export's read
# transaction on one connection (a temporary table: the main database is not written).
HOURS = "nvadmin_export_hours"
_HOURS_COLUMNS = "lo, hi, local, offset_cell, after"


def create_hours(db: Any, hours: Sequence[Hour]) -> None:
    db.execute(f"DROP TABLE IF EXISTS temp.{HOURS}")
    db.execute(
        f"CREATE TEMP TABLE {HOURS} (n INTEGER PRIMARY KEY, lo TEXT NOT NULL, hi TEXT NOT NULL,"
        " local TEXT NOT NULL, offset_cell TEXT NOT NULL, after TEXT NOT NULL)"
    )
    db.executemany(f"INSERT INTO temp.{HOURS} ({_HOURS_COLUMNS}) VALUES (?, ?, ?, ?, ?)", hours)


def drop_hours(db: Any) -> None:
    db.execute(f"DROP TABLE IF EXISTS temp.{HOURS}")


def hourly_from(where: str, table: str) -> tuple[str, str]:
    """``(from, where)`` joining each event to its hour: the hours are the outer loop (in
    order), each one's events an index range on the time, so the rows come in the file's
    order with no sort. ``CROSS JOIN`` keeps that order of the loops (SQLite's rule)."""
    return (
        f"temp.{HOURS} AS {HOURS} CROSS JOIN {table}",
        f"{where} AND {table}.occurred_at >= {HOURS}.lo AND {table}.occurred_at < {HOURS}.hi",
    )


def hourly_plan_ok(plan: Sequence[str], table: str) -> bool:
    """Whether SQLite's plan reads each hour's events by a time range of an index and sorts
    nothing: else (a filter its planner serves by another index) every hour would cost a
    scan, and the lines are made without the hours."""
    searched = [
        d
        for d in plan
        if d.startswith(f"SEARCH {table} ") and "occurred_at>? AND occurred_at<?" in d
    ]
    return len(searched) == 1 and not any("TEMP B-TREE" in d for d in plan)
