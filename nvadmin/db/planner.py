"""PostgreSQL's own estimate of how many rows a query returns, read from ``EXPLAIN``.

``EXPLAIN`` (without ``ANALYZE``) only plans the statement: it answers in milliseconds from the
table statistics, whatever the table's size. The statement is compiled like any other, so its
values stay bound parameters.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ClauseElement, Executable


class Explain(Executable, ClauseElement):
    """``EXPLAIN (FORMAT JSON) <statement>`` (PostgreSQL only)."""

    inherit_cache = False

    def __init__(self, statement: Any) -> None:
        self.statement = statement


@compiles(Explain, "postgresql")
def _explain(element: Explain, compiler: Any, **kw: Any) -> str:
    return "EXPLAIN (FORMAT JSON) " + str(compiler.process(element.statement, **kw))


def planned_rows(connection: Connection, statement: Any) -> int:
    """The planner's estimate of the rows ``statement`` returns."""
    plan = connection.execute(Explain(statement)).scalar_one()
    return int(plan[0]["Plan"]["Plan Rows"])
