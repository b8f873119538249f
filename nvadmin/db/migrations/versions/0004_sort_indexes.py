"""An index for every order the browser offers, so no sort reads the whole workspace.

Sorting by any column other than time used to read every event of the workspace and sort
them (a parallel sequential scan and a top-N sort: 3-7 s over 5M events, past the browser's
5 s limit). Each index below starts with ``workspace_id`` and continues with exactly the
order :func:`nvadmin.query.paging.order_columns` pages by: the value (``coalesce(x, '')`` for
a column that may be empty), then ``occurred_at``, then ``id``. The first page, the next page
and the last page then read only the rows they show, in either direction. Ties in time order
also let each index answer "filter by this value, in time order" within a workspace.

Already indexed: time (0001 ``ix_activity_events_workspace_time``, which also serves the
workspace sort) and category (0002 ``ix_activity_events_workspace_category_time``). The
outcome index answers everything the partial failures index of 0002 did, so that one goes.

On PostgreSQL the indexes are created on the partitioned table, which creates them on every
monthly partition and on each partition made later.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Index name -> the sort value's expression (followed by occurred_at, id). Kept literally
# equal to paging.SORT_KEYS: the planner uses an expression index only for the same text.
SORT_INDEXES = {
    "ix_activity_events_workspace_member_order": "actor_name",
    "ix_activity_events_workspace_role_order": "coalesce(actor_role, '')",
    "ix_activity_events_workspace_action_order": "action",
    "ix_activity_events_workspace_outcome_order": "outcome",
    "ix_activity_events_workspace_patient_order": "coalesce(patient_id, '')",
    "ix_activity_events_workspace_resource_order": "coalesce(resource_id, '')",
    "ix_activity_events_workspace_ip_order": "coalesce(ip, '')",
}


def upgrade() -> None:
    for name, value in SORT_INDEXES.items():
        op.create_index(
            name, "activity_events", ["workspace_id", sa.text(value), "occurred_at", "id"]
        )
    op.drop_index("ix_activity_events_failures", "activity_events")


def downgrade() -> None:
    failures = sa.text("outcome = 'failure'")
    op.create_index(
        "ix_activity_events_failures",
        "activity_events",
        ["workspace_id", "occurred_at", "id"],
        postgresql_where=failures,
        sqlite_where=failures,
    )
    for name in reversed(SORT_INDEXES):
        op.drop_index(name, "activity_events")
