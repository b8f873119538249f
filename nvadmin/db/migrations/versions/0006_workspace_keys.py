"""Every key of a workspace's rows carries ``workspace_id``, ready for distribution by workspace.

A database sharded by workspace (Citus, with ``workspace_id`` as the distribution column; see
docs/scaling.md) accepts a primary key or unique constraint only if it contains the
distribution column: a shard can check uniqueness only among its own rows. The unique keys
already do (``(workspace_id, email)``, ``(workspace_id, name)``, ``(workspace_id, ticket)``),
as does the chain head's key; the primary keys of team members, API clients, events,
checkpoints and export requests were ``id`` alone. They become ``(id, workspace_id)`` — for
events ``(id, occurred_at, workspace_id)``, the partition key staying in — with ``id`` still
first, so a look-up by id reads the same index as before. Ids stay unique on their own (one
sequence per table); nothing nvadmin reads or writes changes.

PostgreSQL only. On SQLite a table's id is numbered by the database only while it is the
table's whole ``INTEGER PRIMARY KEY`` (the rowid); a composite key would make nvadmin number
rows itself, and the embedded single-user file is never distributed.

On PostgreSQL the event table's key is rebuilt on every monthly partition while the table is
locked: about 3 s per million events here (docs/scaling.md has the measurement).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Table -> its new primary key, in index order.
KEYS = {
    "team_members": ("id", "workspace_id"),
    "api_clients": ("id", "workspace_id"),
    "chain_checkpoints": ("id", "workspace_id"),
    "export_requests": ("id", "workspace_id"),
    "activity_events": ("id", "occurred_at", "workspace_id"),
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, columns in KEYS.items():
        # One statement: the table is without a key for no moment another session could see.
        op.execute(
            f"ALTER TABLE {table} DROP CONSTRAINT pk_{table}, "
            f"ADD CONSTRAINT pk_{table} PRIMARY KEY ({', '.join(columns)})"
        )


def downgrade() -> None:  # pragma: no cover - nvadmin never downgrades an audit database
    raise NotImplementedError
