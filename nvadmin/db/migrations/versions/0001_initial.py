"""Initial audit schema: workspaces, team members, API clients, append-only events, staff.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

from nvadmin.db.types import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

PG_GUARD = """
CREATE FUNCTION nvadmin_refuse_event_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'activity events are append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER activity_events_append_only
    BEFORE UPDATE OR DELETE ON activity_events
    FOR EACH ROW EXECUTE FUNCTION nvadmin_refuse_event_change();
CREATE TRIGGER activity_events_no_truncate
    BEFORE TRUNCATE ON activity_events
    FOR EACH STATEMENT EXECUTE FUNCTION nvadmin_refuse_event_change();

-- Monthly partitions are created by nvadmin (writer, seeder, `nvadmin db partitions`), never by
-- hand. Row triggers are inherited by new partitions; TRUNCATE triggers are not, so each
-- partition gets its own.
CREATE FUNCTION nvadmin_ensure_event_partition(month_start date) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    first_day date := date_trunc('month', month_start)::date;
    part text := format('activity_events_%s', to_char(first_day, 'YYYY_MM'));
BEGIN
    IF to_regclass(part) IS NULL THEN
        PERFORM pg_advisory_xact_lock(hashtext('nvadmin_event_partitions'));
        BEGIN
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF activity_events FOR VALUES FROM (%L) TO (%L)',
                part,
                first_day::timestamp AT TIME ZONE 'UTC',
                (first_day + interval '1 month')::timestamp AT TIME ZONE 'UTC');
            EXECUTE format(
                'CREATE TRIGGER activity_events_no_truncate BEFORE TRUNCATE ON %I '
                'FOR EACH STATEMENT EXECUTE FUNCTION nvadmin_refuse_event_change()', part);
        EXCEPTION WHEN duplicate_table THEN
            NULL;  -- another writer created it first
        END;
    END IF;
    RETURN part;
END $$;
"""

SQLITE_GUARD = [
    """CREATE TRIGGER activity_events_no_update BEFORE UPDATE ON activity_events
       BEGIN SELECT RAISE(ABORT, 'activity events are append-only: UPDATE refused'); END""",
    # SQLite has no TRUNCATE: "DELETE FROM t" is its truncate, and this trigger refuses it too.
    """CREATE TRIGGER activity_events_no_delete BEFORE DELETE ON activity_events
       BEGIN SELECT RAISE(ABORT, 'activity events are append-only: DELETE refused'); END""",
]


def upgrade() -> None:
    is_pg = op.get_bind().dialect.name == "postgresql"
    now = sa.func.now()

    workspaces = op.create_table(
        "workspaces",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("slug", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("work_day_start", sa.Integer, nullable=False),
        sa.Column("work_day_end", sa.Integer, nullable=False),
        sa.Column("is_system", sa.Boolean, nullable=False),
        sa.Column("created_at", UTCDateTime, server_default=now, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_workspaces"),
        sa.UniqueConstraint("slug", name="uq_workspaces_slug"),
    )
    op.create_table(
        "team_members",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("workspace_id", sa.Integer, nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(40), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", UTCDateTime, server_default=now, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_team_members"),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name="fk_team_members_workspace_id_workspaces"
        ),
        sa.UniqueConstraint("workspace_id", "email", name="uq_team_members_workspace_id"),
    )
    op.create_index("ix_team_members_workspace_id", "team_members", ["workspace_id"])
    op.create_index("ix_team_members_email", "team_members", ["email"])
    op.create_table(
        "api_clients",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("workspace_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("client_key", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime, server_default=now, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_api_clients"),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name="fk_api_clients_workspace_id_workspaces"
        ),
        sa.UniqueConstraint("workspace_id", "name", name="uq_api_clients_workspace_id"),
    )
    op.create_index("ix_api_clients_workspace_id", "api_clients", ["workspace_id"])

    if is_pg:
        op.execute(sa.schema.CreateSequence(sa.Sequence("activity_events_id_seq")))
    event_columns: list[sa.schema.SchemaItem] = [
        sa.Column(
            "id",
            BigId,
            server_default=sa.text("nextval('activity_events_id_seq')") if is_pg else None,
            nullable=False,
        ),
        sa.Column("workspace_id", sa.Integer, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("occurred_at", UTCDateTime, nullable=False),
        sa.Column("actor_type", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.Integer),
        sa.Column("actor_email", sa.String(320)),
        sa.Column("actor_name", sa.String(200), nullable=False),
        sa.Column("actor_role", sa.String(40)),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("failure_reason", sa.String(200)),
        sa.Column("resource_type", sa.String(40)),
        sa.Column("resource_id", sa.String(100)),
        sa.Column("patient_id", sa.String(40)),
        sa.Column("ip", sa.String(45)),
        sa.Column("user_agent", sa.Text),
        sa.Column("session_id", sa.String(64)),
        sa.Column("request_id", sa.String(64)),
        sa.Column("details", sa.Text),
        sa.Column("prev_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name="fk_activity_events_workspace_id_workspaces"
        ),
    ]
    if is_pg:
        op.create_table(
            "activity_events",
            *event_columns,
            sa.PrimaryKeyConstraint("id", "occurred_at", name="pk_activity_events"),
            postgresql_partition_by="RANGE (occurred_at)",
        )
        op.execute("ALTER SEQUENCE activity_events_id_seq OWNED BY activity_events.id")
    else:
        op.create_table(
            "activity_events",
            *event_columns,
            sa.PrimaryKeyConstraint("id", name="pk_activity_events"),
        )
    for name, columns in [
        ("ix_activity_events_workspace_time", ["workspace_id", "occurred_at", "id"]),
        ("ix_activity_events_time", ["occurred_at", "id"]),
        ("ix_activity_events_actor_time", ["actor_email", "occurred_at", "id"]),
        ("ix_activity_events_patient_time", ["patient_id", "occurred_at"]),
        ("ix_activity_events_action_time", ["action", "occurred_at"]),
        ("ix_activity_events_workspace_seq", ["workspace_id", "seq"]),
    ]:
        op.create_index(name, "activity_events", columns)
    if is_pg:
        op.execute(PG_GUARD)
    else:
        for statement in SQLITE_GUARD:
            op.execute(statement)

    op.create_table(
        "chain_heads",
        sa.Column("workspace_id", sa.Integer, nullable=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("last_hash", sa.LargeBinary(32), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", name="pk_chain_heads"),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name="fk_chain_heads_workspace_id_workspaces"
        ),
    )
    op.create_table(
        "chain_checkpoints",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("workspace_id", sa.Integer, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sa.Column("signed_at", UTCDateTime, nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("signature", sa.LargeBinary(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_chain_checkpoints"),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name="fk_chain_checkpoints_workspace_id_workspaces",
        ),
    )
    op.create_index("ix_chain_checkpoints_workspace_id", "chain_checkpoints", ["workspace_id"])

    op.create_table(
        "staff",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("failed_attempts", sa.Integer, nullable=False),
        sa.Column("locked_until", UTCDateTime),
        sa.Column("totp_secret", sa.String(64)),
        sa.Column("totp_last_step", sa.BigInteger),
        sa.Column("created_at", UTCDateTime, server_default=now, nullable=False),
        sa.Column("last_sign_in_at", UTCDateTime),
        sa.PrimaryKeyConstraint("id", name="pk_staff"),
        sa.UniqueConstraint("email", name="uq_staff_email"),
    )
    op.create_table(
        "remember_tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("staff_id", sa.Integer, nullable=False),
        sa.Column("token_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("revoked_at", UTCDateTime),
        sa.PrimaryKeyConstraint("id", name="pk_remember_tokens"),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name="fk_remember_tokens_staff_id_staff"
        ),
        sa.UniqueConstraint("token_hash", name="uq_remember_tokens_token_hash"),
    )
    op.create_index("ix_remember_tokens_staff_id", "remember_tokens", ["staff_id"])
    op.create_table(
        "nvadmin_meta",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_nvadmin_meta"),
    )

    # The staff workspace: nvadmin's own sign-in events are chained here.
    op.bulk_insert(
        workspaces,
        [
            {
                "id": 1,
                "slug": "nvadmin-staff",
                "name": "nvadmin staff",
                "timezone": "UTC",
                "work_day_start": 0,
                "work_day_end": 24,
                "is_system": True,
            }
        ],
    )
    if is_pg:
        op.execute("SELECT setval(pg_get_serial_sequence('workspaces', 'id'), 1)")


def downgrade() -> None:
    raise NotImplementedError("the audit log schema cannot be downgraded: it would lose history")
