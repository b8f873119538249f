"""The schema stays ready to be distributed by workspace (docs/scaling.md, "Sharding").

A sharded PostgreSQL (Citus, distribution column ``workspace_id``) checks a primary key or a
unique constraint within one shard only, so it accepts one only if the key contains the
distribution column; a foreign key between two distributed tables must join on it too, and a
table copied to every node (a reference table) may not point at a distributed one. These tests
read the live schema of a migrated database (SQLAlchemy's inspector, both backends, the
monthly partitions included) and name every table that is not a workspace's.
"""

from __future__ import annotations

import warnings
from datetime import date

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import SAWarning

from nvadmin.db import partitions

DISTRIBUTION_COLUMN = "workspace_id"

# Tables whose rows belong to no workspace: in a sharded database each is either a reference
# table (copied whole to every node, so any shard can join it) or kept on the coordinator.
GLOBAL_TABLES = {
    # The clinics themselves: a reference table, the target of every workspace table's
    # foreign key (a distributed table may point at a reference table).
    "workspaces": "reference table: the list of clinics",
    # nvadmin's own staff act across all workspaces; their events go to the staff workspace's
    # chain, which is distributed like any other.
    "staff": "reference table: staff accounts act across every workspace",
    "remember_tokens": "reference table: a staff member's sign-in tokens",
    "staff_sign_in_attempts": "coordinator: the sign-in gate's attempts (PostgreSQL only)",
    "staff_sessions": "coordinator: signed-in staff sessions (PostgreSQL only)",
    "staff_session_backends": "coordinator: the server connections of a session",
    "staff_read_grants": "coordinator: the workspaces a session has opened (PostgreSQL only)",
    # Settings of the whole database (security policy, demo flag, request due days).
    "nvadmin_meta": "reference table: settings of the whole database",
    "alembic_version": "coordinator: the schema revision",
}


def _is_rowid_key(connection: Connection, table: str, key: list[str]) -> bool:
    """SQLite numbers a table's rows only through a one-column ``INTEGER PRIMARY KEY`` (the
    rowid); an SQLite file is a single-user local database, never distributed, so that key
    stays as it is there."""
    if connection.dialect.name != "sqlite" or key != ["id"]:
        return False
    columns = {c["name"]: c for c in inspect(connection).get_columns(table)}
    return str(columns["id"]["type"]) == "INTEGER"  # exactly: BIGINT is no rowid


def workspace_tables(connection: Connection) -> list[str]:
    return sorted(set(inspect(connection).get_table_names()) - set(GLOBAL_TABLES))


def key_problems(connection: Connection) -> list[str]:
    """Every key of the live schema that a database distributed by workspace would refuse."""
    with warnings.catch_warnings():
        # SQLite's reflection skips expression indexes (the sort indexes, none of them unique).
        warnings.filterwarnings("ignore", "Skipped unsupported reflection", SAWarning)
        return _key_problems(connection)


def _key_problems(connection: Connection) -> list[str]:
    inspector = inspect(connection)
    owned = workspace_tables(connection)
    problems = []
    for table in owned:
        columns = {c["name"] for c in inspector.get_columns(table)}
        if DISTRIBUTION_COLUMN not in columns:
            problems.append(f"{table}: no {DISTRIBUTION_COLUMN} and not named a global table")
            continue
        key = inspector.get_pk_constraint(table)["constrained_columns"]
        if DISTRIBUTION_COLUMN not in key and not _is_rowid_key(connection, table, key):
            problems.append(f"{table}: primary key {key}")
        for unique in inspector.get_unique_constraints(table):
            if DISTRIBUTION_COLUMN not in unique["column_names"]:
                problems.append(f"{table}: unique {unique['name']} {unique['column_names']}")
        for index in inspector.get_indexes(table):
            if index.get("duplicates_constraint"):
                continue  # a unique constraint's own index, checked above
            if index["unique"] and DISTRIBUTION_COLUMN not in index["column_names"]:
                problems.append(f"{table}: unique index {index['name']} {index['column_names']}")
        for foreign in inspector.get_foreign_keys(table):
            if foreign["referred_table"] in GLOBAL_TABLES:
                continue  # a distributed table may point at a reference table
            pairs = zip(foreign["constrained_columns"], foreign["referred_columns"], strict=True)
            if (DISTRIBUTION_COLUMN, DISTRIBUTION_COLUMN) not in set(pairs):
                problems.append(
                    f"{table}: foreign key {foreign['name']} to {foreign['referred_table']} "
                    f"{foreign['constrained_columns']} without {DISTRIBUTION_COLUMN}"
                )
    for table in set(GLOBAL_TABLES) & set(inspector.get_table_names()):
        for foreign in inspector.get_foreign_keys(table):
            if foreign["referred_table"] not in GLOBAL_TABLES:
                problems.append(
                    f"{table}: global table pointing at {foreign['referred_table']}, "
                    "a workspace's table"
                )
    return problems


def _with_a_partition(engine: Engine) -> None:
    """On PostgreSQL the monthly partitions are tables of their own: make one to inspect."""
    partitions.ensure(engine, [date(2026, 1, 1)])


def test_every_key_of_a_workspace_table_carries_the_workspace(engine: Engine) -> None:
    _with_a_partition(engine)
    with engine.connect() as connection:
        owned = workspace_tables(connection)
        assert key_problems(connection) == []
    expected = {
        "activity_events",
        "api_clients",
        "chain_checkpoints",
        "chain_heads",
        "export_requests",
        "team_members",
    }
    assert expected <= set(owned)
    if engine.dialect.name == "postgresql":
        assert "activity_events_2026_01" in owned
        assert all(t.startswith("activity_events_20") for t in set(owned) - expected)
    else:
        assert set(owned) == expected


def test_the_event_key_keeps_id_first_for_look_ups_by_id(engine: Engine) -> None:
    with engine.connect() as connection:
        key = inspect(connection).get_pk_constraint("activity_events")["constrained_columns"]
    if engine.dialect.name == "postgresql":
        assert key == ["id", "occurred_at", "workspace_id"]
    else:
        assert key == ["id"]


def test_a_key_without_the_workspace_is_reported(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text(
            "CREATE TABLE case_notes (id integer NOT NULL, workspace_id integer NOT NULL, "
            "ticket varchar(40) NOT NULL, event_id bigint, "
            "CONSTRAINT pk_case_notes PRIMARY KEY (id, workspace_id), "
            "CONSTRAINT uq_case_notes_ticket UNIQUE (ticket))"
        ))  # fmt: skip
        connection.execute(text(
            "CREATE TABLE case_links (id integer NOT NULL, workspace_id integer NOT NULL, "
            "note_id integer NOT NULL, note_workspace integer NOT NULL, "
            "CONSTRAINT pk_case_links PRIMARY KEY (workspace_id, id), "
            "CONSTRAINT fk_case_links_note FOREIGN KEY (note_id, note_workspace) "
            "REFERENCES case_notes (id, workspace_id))"
        ))  # fmt: skip
        connection.execute(text("CREATE TABLE scratch (id integer PRIMARY KEY, note text)"))
        connection.execute(text("CREATE UNIQUE INDEX ix_scratch_note ON team_members (email)"))
        problems = key_problems(connection)
    assert "case_notes: unique uq_case_notes_ticket ['ticket']" in problems
    assert any(p.startswith("case_links: foreign key fk_case_links_note") for p in problems)
    assert "scratch: no workspace_id and not named a global table" in problems
    assert "team_members: unique index ix_scratch_note ['email']" in problems
    assert len(problems) == 4


def test_a_primary_key_without_the_workspace_is_reported(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text(
            "CREATE TABLE case_notes (id integer NOT NULL, workspace_id integer NOT NULL, "
            "seq integer NOT NULL, CONSTRAINT pk_case_notes PRIMARY KEY (id, seq))"
        ))  # fmt: skip
        problems = key_problems(connection)
    assert problems == ["case_notes: primary key ['id', 'seq']"]


def test_the_models_and_the_migrations_agree_on_the_keys(engine: Engine) -> None:
    """models.py stays the one declaration of unique and foreign keys; on PostgreSQL each
    model's key is the model's identity (``id``) with the workspace (and, for events, the
    partition key) added by the migrations."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from nvadmin.db.models import Base

    with engine.connect() as connection, warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection", SAWarning)
        warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression")
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        keys = {
            name: inspect(connection).get_pk_constraint(name)["constrained_columns"]
            for name in Base.metadata.tables
        }
    kinds = {"add_constraint", "remove_constraint", "add_fk", "remove_fk", "add_table"}
    assert [d for d in differences if isinstance(d, tuple) and d[0] in kinds] == []
    for name, table in Base.metadata.tables.items():
        declared = [c.name for c in table.primary_key.columns]
        assert keys[name][: len(declared)] == declared, name


def test_only_an_integer_rowid_key_stands_without_the_workspace_on_sqlite(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text(
            "CREATE TABLE case_notes (id BIGINT NOT NULL, workspace_id integer NOT NULL, "
            "CONSTRAINT pk_case_notes PRIMARY KEY (id))"
        ))  # fmt: skip
        problems = key_problems(connection)
    assert problems == ["case_notes: primary key ['id']"]
