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
    ``EXPLAIN QUERY PLAN`` details, one per line. ``price_out_sorts`` (PostgreSQL): turn off
    sorting and sequential scans, so a tiny table cannot make them look cheaper than an
    index; a Sort or Seq Scan left in the plan then means no index has the order."""
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
            plan = "\n".join(str(row[-1]) for row in cursor.fetchall())
        connection.rollback()
        return plan
