"""A signed-in staff session can read on a hot standby.

On the primary a pooled connection joins its staff session by writing its backend into
``staff_session_backends`` (``nvadmin_resume_session``). A hot standby takes no writes, so a
standby connection instead carries the session key in its own setting ``nvadmin.session_key``
(set per connection with ``set_config``, a bound parameter, never in the query text); the
session is live there when the key's hash names a live session of this same login, as
replicated from the primary. The second path is taken only in recovery: on the primary nothing
changes, and signing out or disabling an account on the primary ends the standby's access as
soon as the standby replays it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SQL = r"""
CREATE OR REPLACE FUNCTION nvadmin_current_session() RETURNS bigint
LANGUAGE sql STABLE PARALLEL RESTRICTED AS $$
    SELECT s.id
    FROM staff_session_backends b
    JOIN staff_sessions s ON s.id = b.session_id
    JOIN staff st ON st.id = s.staff_id
    WHERE b.pid = pg_backend_pid()
      AND b.backend_start = (SELECT backend_start
                             FROM pg_stat_get_activity(pg_backend_pid()))
      AND b.login = session_user
      AND st.email = session_user
      AND NOT st.disabled
      AND s.ended_at IS NULL
      AND s.expires_at > now()
    UNION ALL
    SELECT s.id
    FROM staff_sessions s
    JOIN staff st ON st.id = s.staff_id
    WHERE pg_is_in_recovery()
      AND s.key_hash = sha256(convert_to(current_setting('nvadmin.session_key', true), 'UTF8'))
      AND st.email = session_user
      AND NOT st.disabled
      AND s.ended_at IS NULL
      AND s.expires_at > now()
    LIMIT 1
$$;
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(SQL)
    # As every nvadmin function (migration 0003): names resolve in this schema only.
    op.execute(
        "DO $$ BEGIN EXECUTE format('ALTER FUNCTION nvadmin_current_session() "
        "SET search_path = %I, pg_temp', current_schema()); END $$"
    )


def downgrade() -> None:  # pragma: no cover - nvadmin never downgrades an audit database
    raise NotImplementedError
