"""The event indexes of a case file of one workspace (case schema 3).

A case file is built with the main database's migrations, so it has the same tables; but
building it keeps every index of the event table up to date row by row (in bounded memory:
see ``builder.CACHE_KIB``), and that upkeep is nearly all of a build's time. The main
database's indexes are made for many workspaces: each sort index starts with the workspace,
and a few others (by time, member e-mail, patient, action) serve searches across workspaces.
A case file of one workspace needs one index per order the browser offers and per search it
answers from an index, none of them twice:

* every sort of the activity table, ``(value, occurred_at, id)`` exactly as
  :func:`nvadmin.query.paging.order_columns` orders it (time alone: ``(occurred_at, id)``,
  which also answers the workspace sort once the workspace is chosen, and every time range);
* a team member's events in time order (``user:`` with an e-mail address; a patient's, an
  action's, an outcome's and a category's are read from their sort indexes: the ``patient:``
  search also compares ``coalesce(patient_id, '')``, the patient sort's expression);
* the chain, ``(seq, workspace_id)``, for verification and for counting the workspace's
  events without reading them.

No index starts with the workspace: with one, SQLite takes ``workspace_id = ?`` (in every
browser query) as the selective condition and sorts the whole workspace instead of reading
the order's index (``tests/unit/test_casefile_plans.py`` keeps every browser query on an
index). A case of several workspaces keeps the main database's indexes, which are made for
that. Files written before (no ``case_schema`` in their manifest, or 1) carry the main
database's indexes, and those of schema 2 a patient index more; they open and browse as
before: the browser's queries do not depend on which indexes exist.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import sqlite

from nvadmin.casefile.encrypted import EncryptedConnection
from nvadmin.db.models import ActivityEvent as E
from nvadmin.query.fields import TABLE
from nvadmin.query.paging import order_columns

# Written into the manifest as "case_schema"; absent in files made before (schema 1).
# Schema 2 also had ``ix_case_events_patient_time``, which the patient sort index replaces.
ONE_WORKSPACE = 3
SEVERAL_WORKSPACES = 1
_TABLE = "activity_events"


def _sql(expression: Any) -> str:
    """An index column as SQLite's DDL spells it: unqualified, constants written out (the
    planner matches an index expression only against the same text)."""
    compiled = expression.compile(
        dialect=sqlite.dialect(), compile_kwargs={"include_table": False, "literal_binds": True}
    )
    return str(compiled)


def sorted_keys() -> list[str]:
    """The sort keys the activity table offers, time first; the workspace sort is the time
    sort once there is one workspace."""
    keys = {f.table.sort for f in TABLE if f.table is not None and f.table.sort}
    keys.discard("workspace")
    keys.discard("time")
    return ["time", *sorted(keys)]


def event_indexes() -> dict[str, tuple[str, ...]]:
    """Index name -> its columns (SQL), for a case file of one workspace."""
    indexes = {
        f"ix_case_events_{key}_order": tuple(_sql(c) for c in order_columns(key))
        for key in sorted_keys()
    }
    indexes["ix_case_events_user_time"] = (_sql(E.actor_email), _sql(E.occurred_at), _sql(E.id))
    indexes["ix_case_events_chain"] = (_sql(E.seq), _sql(E.workspace_id))
    return indexes


def use_one_workspace_indexes(database: EncryptedConnection) -> None:
    """Replace the event table's indexes (made by the migrations, the table still empty) by
    those of :func:`event_indexes`."""
    made = [
        name
        for (name,) in database.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
            "AND sql IS NOT NULL",
            (_TABLE,),
        ).fetchall()
    ]
    for name in made:
        database.execute(f'DROP INDEX "{name}"')
    for name, columns in event_indexes().items():
        database.execute(f"CREATE INDEX {name} ON {_TABLE} ({', '.join(columns)})")
