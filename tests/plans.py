"""The planner's plan of a SQLAlchemy statement, exactly as the driver runs it.

The statement is run once to capture the SQL text and parameters the driver receives (after
every bind processor and expanding IN list), then the same text is explained on the same
connection. Used by the index tests and the browse benchmark.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, event


def explain(
    engine: Engine, statement: Any, *, analyze: bool = False, price_out_sorts: bool = False
) -> str:
    """PostgreSQL: ``EXPLAIN (FORMAT JSON)`` text (with ``ANALYZE`` if asked). SQLite: the
    ``EXPLAIN QUERY PLAN`` details, one per line, each indented two spaces deeper than the
    step it belongs to (as the ``sqlite3`` shell draws it). ``price_out_sorts``
    (PostgreSQL): turn off sorting and sequential scans, so a tiny table cannot make them
    look cheaper than an index; a Sort or Seq Scan left in the plan then means no index has
    the order."""
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        seen.append((sql, params))

    with engine.connect() as connection:
        event.listen(connection, "before_cursor_execute", capture)
        connection.execute(statement).fetchall()
        event.remove(connection, "before_cursor_execute", capture)
        sql, params = seen[-1]
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        if engine.dialect.name == "postgresql":
            if price_out_sorts:
                cursor.execute("SET LOCAL enable_sort = off")
                cursor.execute("SET LOCAL enable_seqscan = off")
            options = "ANALYZE, BUFFERS, FORMAT JSON" if analyze else "FORMAT JSON"
            cursor.execute(f"EXPLAIN ({options}) {sql}", params)
            plan = json.dumps(cursor.fetchone()[0], indent=1)
        else:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            depth: dict[int, int] = {0: -1}
            lines = []
            for step, parent, _unused, detail in cursor.fetchall():
                depth[step] = depth.get(parent, -1) + 1
                lines.append("  " * depth[step] + str(detail))
            plan = "\n".join(lines)
        connection.rollback()
        return plan


def sorted_inside_a_part(plan: str) -> list[str]:
    """SQLite: the steps of a page's parts (each ``CO-ROUTINE`` of a ``UNION ALL``) that sort
    the rows they read, not only merge pages already limited: "USE TEMP B-TREE" directly
    under a co-routine."""
    found: list[str] = []
    lines = plan.splitlines()
    for i, line in enumerate(lines):
        if line.strip() != "USE TEMP B-TREE FOR ORDER BY":
            continue
        indent = len(line) - len(line.lstrip())
        owner = next((up for up in reversed(lines[:i]) if len(up) - len(up.lstrip()) < indent), "")
        if owner.strip().startswith("CO-ROUTINE"):
            found.append(owner.strip())
    return found
