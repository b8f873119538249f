"""Columns of plain values: read from the indexes before an export, written as stored.

A free-text cell is tested for a formula start (and, on SQLite, for the characters that need
quotes) row by row; on either backend that costs more than reading the value (PostgreSQL, 1M
events: the default columns' tests took the server's COPY from 1.13 s to 1.47 s). Most
free-text columns hold a few hundred values at most (actions, outcomes, roles, members, IP
addresses), so before the rows, in the export's own read transaction (the exported rows' values
are among those read), each column an index leads with has its distinct values read, one seek
each (the least value after the last: a loose index scan in a recursive query). A column whose
every value is plain is written as stored: no value gets an apostrophe, and on SQLite, which
makes the lines itself, none holds a comma, quote, CR or LF either (PostgreSQL's COPY quotes
the cells that need it, whatever the SQL gave it).

A column no index leads with (after the workspace) is not read, nor is one with more distinct
values than the rows exported make worth reading (below): its cells are tested row by row.
Values are read workspace by workspace, or over the whole table when the column's index does
not start with the workspace (the member e-mail's): more values than the export's, never fewer.
A PostgreSQL staff session reads only the workspaces it has opened (row-level security), so
for it such a column is read only in an export of every workspace, else tested row by row.
Whether a seek is one is asked of the database's planner, so a missing index only costs the
tests per row, never a scan per value. Measured: benchmarks/RESULTS.md, "Export".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from nvadmin.export.columns import Column, Plain
from nvadmin.files.cells import NEUTRALISED_STARTS
from nvadmin.query.fields import nullable_sql

# SQL and its parameters -> the rows, in the export's read transaction.
Run = Callable[[str, Sequence[Any]], list[Any]]

# The characters that make a CSV cell quoted (the csv module's; PostgreSQL's COPY: a CR too).
SPECIALS = (",", '"', "\r", "\n")
# Columns whose text often needs quotes, tested cell by cell in SQL, and the character each
# most often holds (tested first): JSON objects always hold quotes, and browsers' user agents
# a comma ("KHTML, like Gecko"). Never plain.
QUOTED_IN_SQL = {"details": '"', "user_agent": ","}

# A column's values are read one index seek each: about 2 µs when the index is in the cache,
# up to 50 µs when it is not (a 5M-event file read cold: 43,779 patients in 2.3 s), while
# testing a column's cells costs about 0.06 s per million rows. So a column is read only up
# to one value per 500 rows exported (at least 50, at most 2,000): a few hundred members or
# IP addresses, never the patients or resources of a large workspace.
_FEWEST_VALUES = 50
_MOST_VALUES = 2_000
_ROWS_PER_VALUE = 500


def plain_columns(
    db: Any,
    dialect: str,
    columns: Sequence[Column],
    table: str,
    workspace_ids: Sequence[int],
    rows: int,
) -> Plain:
    """The free-text columns whose every stored value in these workspaces is plain text (so
    the cell is the value as stored, neither quoted nor neutralised), read through ``db`` (the
    driver's connection or cursor of the export's transaction: ``db.execute(sql, params)``) on
    a ``dialect`` ("sqlite" or "postgresql") database. Empty without rows to export."""
    if not rows:
        return {}

    def run(sql: str, params: Sequence[Any]) -> list[Any]:
        return list(db.execute(sql, params).fetchall())

    found: dict[str, bool] = {}  # NULL is read as '' where the index holds coalesce(c, '')
    limit = min(max(rows // _ROWS_PER_VALUE, _FEWEST_VALUES), _MOST_VALUES)
    postgresql = dialect == "postgresql"
    quoting = not postgresql  # SQLite's export quotes the cells itself, COPY does it there
    # A staff session's rows are those of the workspaces it has opened (row-level security,
    # migration 0009): it may not read the whole table.
    whole_table = not postgresql or not run("SELECT row_security_active(%s)", (table,))[0][0]
    if postgresql:
        # PostgreSQL plans the seeks into a small table as a scan of it: the index is asked
        # for (it serves the seeks whatever the size), and the planner's own choice given
        # back for the rows (the settings are the transaction's: ``set_config(..., true)``).
        ((seqscan, bitmapscan),) = run(
            "SELECT current_setting('enable_seqscan'), current_setting('enable_bitmapscan')", ()
        )
        run(
            "SELECT set_config('enable_seqscan', 'off', true), "
            "set_config('enable_bitmapscan', 'off', true)",
            (),
        )
    for column in columns:
        if not column.free_text or column.source in found:
            continue
        if quoting and column.source in QUOTED_IN_SQL:
            continue
        values = _distinct_values(
            run, dialect, table, column.source, workspace_ids, limit, whole_table
        )
        if values is not None and all(_plain_value(v, quoting) for v in values):
            found[column.source] = "" in values
    if postgresql:  # (a failure above ends the transaction, and the settings with it)
        run(
            "SELECT set_config('enable_seqscan', %s, true), "
            "set_config('enable_bitmapscan', %s, true)",
            (seqscan, bitmapscan),
        )
    return found


def _plain_value(value: Any, quoting: bool) -> bool:
    """Whether ``value`` goes into a cell as it is: text that gets no apostrophe (starts no
    formula, nor with an apostrophe) and, when the export quotes the cells itself
    (``quoting``), holds none of the characters needing it."""
    return (
        isinstance(value, str)
        and not value.startswith(NEUTRALISED_STARTS)
        and not (quoting and any(c in value for c in SPECIALS))
    )


def _distinct_values(
    run: Run,
    dialect: str,
    table: str,
    name: str,
    workspace_ids: Sequence[int],
    limit: int,
    whole_table: bool,
) -> list[Any] | None:
    """Every distinct value of ``table.name`` in the workspaces, by a loose index scan (over
    the whole table when an index of the value alone serves it and ``whole_table`` says the
    connection may read every row); None when no index serves one or there are more than
    ``limit``."""
    for value in (name, nullable_sql(name)):
        whole = [[""]] if whole_table or not workspace_ids else []
        for scopes in ([f"workspace_id = {int(w)} AND " for w in workspace_ids], *whole):
            if scopes and all(_seeks(run, dialect, table, value, scope) for scope in scopes):
                values: list[Any] = []
                for scope in scopes:
                    values += _scan(run, dialect, table, value, scope, limit + 1)
                return values if len(values) <= limit else None
    return None


def _mark(dialect: str) -> str:
    return "%s" if dialect == "postgresql" else "?"


def _least(table: str, value: str, scope: str, after: str | None) -> str:
    bound = "IS NOT NULL" if after is None else f"> {after}"
    return f"SELECT min({value}) FROM {table} WHERE {scope}{value} {bound}"


def _seeks(run: Run, dialect: str, table: str, value: str, scope: str) -> bool:
    """Whether the database reads the least value after another with one seek into an index
    on the value (the value's range is part of the index search, not a filter on the rows
    read)."""
    sql = _least(table, value, scope, _mark(dialect))
    if dialect == "postgresql":
        ((plan,),) = run(f"EXPLAIN (FORMAT JSON) {sql}", ("",))
        plan = json.loads(plan) if isinstance(plan, str) else plan
        scans = [node for node in _nodes(plan[0]["Plan"]) if "Relation Name" in node]
        return bool(scans) and all(
            node["Node Type"] in ("Index Scan", "Index Only Scan")
            and " > " in node.get("Index Cond", "")
            for node in scans
        )
    steps = [row[3] for row in run(f"EXPLAIN QUERY PLAN {sql}", ("",))]
    return len(steps) == 1 and steps[0].startswith(f"SEARCH {table} ") and steps[0].endswith(">?)")


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A PostgreSQL plan node and every node under it."""
    yield node
    for child in node.get("Plans", ()):
        yield from _nodes(child)


def _scan(run: Run, dialect: str, table: str, value: str, scope: str, limit: int) -> list[Any]:
    """Up to ``limit`` distinct values, least first (NULL is not a value: it is written as
    nothing). PostgreSQL refuses a limit inside a recursive query, and stops one as soon as
    the rows it was asked for are made; SQLite's limit stops the recursion itself."""
    mark = _mark(dialect)
    inner, outer = (f" LIMIT {mark}", "") if dialect == "sqlite" else ("", f" LIMIT {mark}")
    sql = (
        f"WITH RECURSIVE v(x) AS (SELECT ({_least(table, value, scope, None)}) UNION ALL "
        f"SELECT ({_least(table, value, scope, 'v.x')}) FROM v WHERE v.x IS NOT NULL{inner}) "
        f"SELECT x FROM v WHERE x IS NOT NULL{outer}"
    )
    return [x for (x,) in run(sql, (limit,))]
