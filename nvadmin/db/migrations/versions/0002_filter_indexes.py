"""Indexes for the browser's most common narrow filters: failures, and one category.

Without them, "outcome:failure" or "Failed sign-ins" over a 1.6M-event workspace walks the
time index until it has found a page of matches (a few hundred ms at 10M events). The failure
index is partial (about 1% of events), so it costs little to keep.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    failures = sa.text("outcome = 'failure'")
    op.create_index(
        "ix_activity_events_failures",
        "activity_events",
        ["workspace_id", "occurred_at", "id"],
        postgresql_where=failures,
        sqlite_where=failures,
    )
    op.create_index(
        "ix_activity_events_workspace_category_time",
        "activity_events",
        ["workspace_id", "category", "occurred_at", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_activity_events_workspace_category_time", "activity_events")
    op.drop_index("ix_activity_events_failures", "activity_events")
