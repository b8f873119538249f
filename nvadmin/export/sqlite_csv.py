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

from nvadmin.export.columns import Column, Hour, Kind, Piece
from nvadmin.files.cells import FORMULA_STARTS

# The characters that make a cell quoted (the csv module's, PostgreSQL's COPY: a CR too).
_NEEDS_QUOTES = "'*[,\"\r\n]*'"
_SPECIALS = (",", '"', "\r", "\n")
# Columns whose text often needs quotes, tested cell by cell in SQL, and the character each
# most often holds (tested first): JSON objects always hold quotes, and browsers' user agents
# a comma ("KHTML, like Gecko"). A row read again costs a query; a column that needed it in
# most rows would make the export several times slower.
_QUOTED_IN_SQL = {"details": '"', "user_agent": ","}
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
    exact = " OR ".join(f"instr({raw}, {literal[c]})" for c in _SPECIALS if c != first)
    escaped = f"length(CAST(json_quote({raw}) AS BLOB)) <> length(CAST({raw} AS BLOB)) + 2"
    return f"instr({raw}, {literal[first]}) OR ({escaped} AND ({exact}))"


def fast_row_sql(
    columns: Sequence[Column],
    cells: Sequence[Piece],
    table: str,
    line_end: str,
    plain: frozenset[str] = frozenset(),
) -> list[str]:
    """The select list ``id, probe, line`` for rows whose cells need no quotes, the usual case;
    ``cells``: each column's printf piece (:func:`nvadmin.export.columns.sqlite_pieces`).

    Testing every cell for a comma, quote, CR or LF in SQL costs more than reading the row, so
    SQLite only joins the raw stored values the free-text cells are made from (``probe``) and
    the caller looks for those four characters in a whole batch of probes at once. A row whose
    probe has one is read again with :func:`careful_line_sql`. Formatting never adds one of
    the four (the apostrophe of neutralising, digits, dashes, colons, ``T``, ``Z``), and cells
    of the kinds in ``_NEVER_QUOTED`` never hold one, nor do the columns ``plain`` names
    (:func:`plain_columns`: their cells are the stored text as it is). Columns that often
    need quotes (``_QUOTED_IN_SQL``) are tested in SQL instead, and quoted by printf's
    ``%w`` (which doubles quotes) inside the line itself: the line is one of the printfs for
    each combination of them. ``line`` is only right for rows whose probe is clean."""
    probed: list[str] = []
    in_sql: list[tuple[int, str]] = []  # (cell, its test)
    pieces = list(cells)
    for i, column in enumerate(columns):
        raw = f"{table}.{column.source}"
        if column.derived is None and column.source in _QUOTED_IN_SQL:
            in_sql.append((i, _has_specials(raw, _QUOTED_IN_SQL[column.source])))
        elif _is_plain(column, plain):
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


def _is_plain(column: Column, plain: frozenset[str]) -> bool:
    return column.derived is None and column.kind is Kind.TEXT and column.source in plain


# A column's values are read one index seek each: about 2 µs when the index is in the cache,
# up to 50 µs when it is not (a 5M-event file read cold: 43,779 patients in 2.3 s), while
# testing a column's cells costs about 0.06 s per million rows. So a column is read only up
# to one value per 500 rows exported (at least 50, at most 2,000): a few hundred members or
# IP addresses, never the patients or resources of a large workspace.
_FEWEST_VALUES = 50
_MOST_VALUES = 2_000
_ROWS_PER_VALUE = 500


def plain_columns(
    db: Any, columns: Sequence[Column], table: str, workspace_ids: Sequence[int], rows: int
) -> frozenset[str]:
    """The free-text columns whose every stored value in these workspaces is plain text: no
    comma, quote, CR or LF, and no formula start (so the cell is the value as stored, neither
    quoted nor neutralised). Most of them hold a few hundred values at most (actions,
    outcomes, roles, members, IP addresses), so their distinct values are read from an index
    that starts with the column, one seek each (the least value after the last: a loose
    index scan), in the export's own read transaction, so the exported rows' values are
    among those read. A column no index leads with (after the workspace) is not read, nor is
    one with more distinct values than the ``rows`` exported make worth reading (above): its
    cells are tested row by row, as before. Values are read workspace by workspace, or over
    the whole table when the column's index does not start with the workspace (the member
    e-mail's): more values than the export's, never fewer. Measured: benchmarks/RESULTS.md,
    "Export"."""
    found: set[str] = set()
    limit = min(max(rows // _ROWS_PER_VALUE, _FEWEST_VALUES), _MOST_VALUES)
    for column in columns:
        if column.derived is not None or column.kind is not Kind.TEXT:
            continue
        if column.source in _QUOTED_IN_SQL or column.source in found:
            continue
        values = _distinct_values(db, table, column.source, workspace_ids, limit)
        if values is not None and all(map(_plain_value, values)):
            found.add(column.source)
    return frozenset(found)


def _plain_value(value: Any) -> bool:
    return (
        isinstance(value, str)
        and not any(c in value for c in _SPECIALS)
        and not value.startswith(FORMULA_STARTS)
    )


def _distinct_values(
    db: Any, table: str, name: str, workspace_ids: Sequence[int], limit: int
) -> list[Any] | None:
    """Every distinct value of ``table.name`` in the workspaces (NULL as ''), by a loose
    index scan; None when no index serves one or there are more than ``limit``."""
    for value in (name, f"coalesce({name}, '')"):
        for scopes in ([f"workspace_id = {int(w)} AND " for w in workspace_ids], [""]):
            if scopes and all(_seeks(db, table, value, scope) for scope in scopes):
                values: list[Any] = []
                for scope in scopes:
                    values += _scan(db, table, value, scope, limit + 1)
                return values if len(values) <= limit else None
    return None


def _least(table: str, value: str, scope: str, after: str | None) -> str:
    bound = "IS NOT NULL" if after is None else f"> {after}"
    return f"SELECT min({value}) FROM {table} WHERE {scope}{value} {bound}"


def _seeks(db: Any, table: str, value: str, scope: str) -> bool:
    """Whether SQLite reads the least value after another with one seek into an index on the
    value (the value's range is part of the index search, not a filter on the rows read)."""
    sql = _least(table, value, scope, "?")
    plan = [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", ("",))]
    return len(plan) == 1 and plan[0].startswith(f"SEARCH {table} ") and plan[0].endswith(">?)")


def _scan(db: Any, table: str, value: str, scope: str, limit: int) -> list[Any]:
    """Up to ``limit`` distinct values, least first (NULL is not a value: it is written as
    nothing)."""
    sql = (
        f"WITH RECURSIVE v(x) AS (SELECT ({_least(table, value, scope, None)}) UNION ALL "
        f"SELECT ({_least(table, value, scope, 'v.x')}) FROM v WHERE v.x IS NOT NULL LIMIT ?) "
        "SELECT x FROM v WHERE x IS NOT NULL"
    )
    return [x for (x,) in db.execute(sql, (limit,))]


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
    return b"," in probe or b'"' in probe or b"\r" in probe or b"\n" in probe


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
