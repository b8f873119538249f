"""A read is on record only once its access is committed; a session sitting on a log is ended.

Found by trying a staff login with psql:

* **A read rolled back off the record.** ``BEGIN; SELECT nvadmin_record_access(…); COPY
  (SELECT * FROM activity_events …) TO STDOUT; ROLLBACK;`` read a workspace's whole log and
  left no event: the access and the grant that opened the log went with the rollback, the
  rows did not. A grant now opens the log only once the transaction that recorded it has
  committed (``staff_read_grants.granted_in``); in that transaction the log stays closed.
* **A log held open.** ``BEGIN; SELECT nvadmin_record_access(…);`` and then nothing kept that
  workspace's chain head locked, so every other staff member's view of the workspace (which
  is recorded first) waited for as long as the transaction stayed open; on the staff
  workspace, every sign-in did. ``nvadmin_ensure_event_partition`` for a month not yet made,
  held the same way, locked the whole event table: every read of every log waited.
  Timeouts cannot stop this: the session sets its own. Now:

  - Writers through these functions take the workspace's writer lock first
    (:data:`CHAIN_LOCK`, the workspace's id), and the partitions' (:data:`PARTITION_LOCK`)
    the same way. A writer that finds one held by a staff or gate login whose transaction has
    been open longer than ``security.writer_hold_seconds`` (default 5) ends that session
    (``pg_terminate_backend``; its transaction rolls back, its uncommitted event with it) and
    goes on. The server log names the session ended. A holder waiting for a lock held by
    anyone else (the clinic product's event writers, the owner) is left alone: it is waiting,
    not sitting.
  - A writer gives up after ``security.writer_wait_seconds`` (default 30) with a message
    naming who holds the log, rather than waiting for ever.
  - A month's partition is made and then attached: attaching takes a lock on the event table
    that reads and writes do not wait for.
  - ``nvadmin_set_working_hours`` locks the workspace's row without its key
    (``FOR NO KEY UPDATE``), so the events' foreign-key checks do not wait for it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from alembic import op
from sqlalchemy import text

from nvadmin.db.migrations import revision_module
from nvadmin.db.taxonomy import WORKING_HOURS_CHANGED as WORKING_HOURS

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# pg_advisory_xact_lock(class, id) keys: a workspace's chain, and the event partitions.
CHAIN_LOCK = 0x6E764348  # "nvCH"
PARTITION_LOCK = 0x6E765054  # "nvPT"

SQL = r"""
-- The recording transaction's id (an xid8 kept as bigint, a type every client knows).
ALTER TABLE staff_read_grants
    ADD COLUMN granted_in bigint NOT NULL DEFAULT pg_current_xact_id()::text::bigint;

-- A grant opens the log once the transaction that recorded the access has committed. A grant
-- row the session sees was either committed or written by its own open transaction (a rolled
-- back one is seen by nobody), and a status too old to be kept is of a committed one.
CREATE FUNCTION nvadmin_grant_committed(granted_in bigint) RETURNS boolean
LANGUAGE sql STABLE PARALLEL RESTRICTED AS $$
    SELECT coalesce(pg_xact_status(granted_in::text::xid8), 'committed') = 'committed'
$$;

CREATE OR REPLACE FUNCTION nvadmin_opened_workspaces() RETURNS integer[]
LANGUAGE sql STABLE PARALLEL RESTRICTED SECURITY DEFINER AS $$
    SELECT coalesce(array_agg(g.workspace_id) FILTER (WHERE g.workspace_id IS NOT NULL), '{}')
    FROM staff_read_grants g
    WHERE g.session_id = nvadmin_current_session() AND nvadmin_grant_committed(g.granted_in)
$$;

CREATE OR REPLACE FUNCTION nvadmin_opened_every_workspace() RETURNS boolean
LANGUAGE sql STABLE PARALLEL RESTRICTED SECURITY DEFINER AS $$
    SELECT EXISTS (SELECT 1 FROM staff_read_grants g
                   WHERE g.session_id = nvadmin_current_session() AND g.workspace_id IS NULL
                     AND nvadmin_grant_committed(g.granted_in))
$$;

-- A login staff desktops hold (a staff login or the public gate): its sessions may be ended
-- when they sit on a writer lock. Never a superuser, the tables' owner or a service login.
CREATE FUNCTION nvadmin_desktop_login(login name) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1 FROM pg_roles r
        WHERE r.rolname = login AND NOT r.rolsuper
          AND r.oid <> (SELECT relowner FROM pg_class WHERE oid = 'activity_events'::regclass)
          AND (r.rolname = 'nvadmin_gate'
               OR (to_regrole('nvadmin_staff') IS NOT NULL
                   AND pg_has_role(r.oid, 'nvadmin_staff', 'MEMBER'))))
$$;

-- Take writer lock (lock_class, lock_id) for this transaction. lock_timeout bounds each wait,
-- after which the holder is looked at: see the module's docstring.
CREATE FUNCTION nvadmin_take_writer_lock(lock_class integer, lock_id integer, what text)
RETURNS void LANGUAGE plpgsql SET lock_timeout = '500ms' AS $$
DECLARE
    hold interval := make_interval(secs => nvadmin_policy('writer_hold_seconds', 5, 1, 3600));
    gave_up timestamptz := clock_timestamp()
        + make_interval(secs => nvadmin_policy('writer_wait_seconds', 30, 1, 3600));
    holder record;
BEGIN
    LOOP
        BEGIN
            PERFORM pg_advisory_xact_lock(lock_class, lock_id);
            RETURN;
        EXCEPTION WHEN lock_not_available THEN
            NULL;
        END;
        SELECT a.pid, a.usename, a.xact_start INTO holder
        FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND l.classid = lock_class::oid AND l.objid = lock_id::oid
          AND l.pid <> pg_backend_pid();
        IF FOUND AND holder.xact_start < clock_timestamp() - hold
           AND nvadmin_desktop_login(holder.usename)
           AND NOT EXISTS (SELECT 1 FROM unnest(pg_blocking_pids(holder.pid)) b(pid)
                           JOIN pg_stat_activity w ON w.pid = b.pid
                           WHERE NOT nvadmin_desktop_login(w.usename)) THEN
            BEGIN
                IF pg_terminate_backend(holder.pid, 5000) THEN
                    RAISE LOG 'nvadmin: ended session % of % (open since %), which held %',
                        holder.pid, holder.usename, holder.xact_start, what;
                END IF;
            EXCEPTION WHEN insufficient_privilege THEN
                NULL;  -- the owner lacks pg_signal_backend (`nvadmin db roles` says so)
            END;
        END IF;
        IF clock_timestamp() > gave_up THEN
            RAISE EXCEPTION 'nvadmin: % is held by % (a transaction open since %); try again',
                what,
                coalesce(holder.usename, 'another session'),
                coalesce(to_char(holder.xact_start AT TIME ZONE 'UTC', 'HH24:MI:SS "UTC"'), '?')
                USING ERRCODE = 'lock_not_available';
        END IF;
    END LOOP;
END $$;
"""


def _seal() -> str:
    """0009's ``nvadmin_seal``: the workspace's writer lock first, the event's time after it."""
    edited = revision_module("0009_recorded_reads.py")
    ensure = "    PERFORM nvadmin_ensure_event_partition((at AT TIME ZONE 'UTC')::date);\n"
    return edited._edited(
        edited._seal(),
        "nvadmin_seal",
        (
            (
                ensure,
                f"    PERFORM nvadmin_take_writer_lock({CHAIN_LOCK}, workspace,\n"
                "        format('the Activity Log of workspace %s', workspace));\n"
                "    at := clock_timestamp();\n" + ensure,
            ),
        ),
    )


def _partition() -> str:
    """0003's ``nvadmin_ensure_event_partition``: the partitions' writer lock, and the month
    made, then attached."""
    identity = revision_module("0003_server_identity.py")
    return revision_module("0009_recorded_reads.py")._edited(
        identity.SQL,
        "nvadmin_ensure_event_partition",
        (
            (
                "PERFORM pg_advisory_xact_lock(hashtext('nvadmin_event_partitions'));",
                f"PERFORM nvadmin_take_writer_lock({PARTITION_LOCK}, 0, "
                "'the making of the event partitions');",
            ),
            (
                "'CREATE TABLE %I PARTITION OF activity_events FOR VALUES FROM (%L) TO (%L)',\n"
                "                part,",
                "'CREATE TABLE %I (LIKE activity_events INCLUDING DEFAULTS INCLUDING "
                "CONSTRAINTS)', part);\n"
                "            EXECUTE format(\n"
                "                'ALTER TABLE activity_events ATTACH PARTITION %I "
                "FOR VALUES FROM (%L) TO (%L)',\n"
                "                part,",
            ),
        ),
    )


def _working_hours() -> str:
    recorded = revision_module("0009_recorded_reads.py")
    return recorded._edited(
        recorded.SQL.replace("__WORKING_HOURS__", WORKING_HOURS),
        "nvadmin_set_working_hours",
        (("AND NOT w.is_system FOR UPDATE;", "AND NOT w.is_system FOR NO KEY UPDATE;"),),
    )


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    partition = "nvadmin_ensure_event_partition(date)"
    definer = bind.execute(
        text(f"SELECT prosecdef FROM pg_proc WHERE oid = '{partition}'::regprocedure")
    ).scalar()
    op.execute(SQL)
    op.execute(_seal())
    op.execute(_partition())
    op.execute(_working_hours())
    if definer:  # `db roles` made it so; replacing it made it the caller's again
        op.execute(f"ALTER FUNCTION {partition} SECURITY DEFINER")
    for name in (
        "nvadmin_grant_committed(bigint)",
        "nvadmin_desktop_login(name)",
        "nvadmin_take_writer_lock(integer, integer, text)",
    ):
        op.execute(f"REVOKE ALL ON FUNCTION {name} FROM PUBLIC")
    op.execute(revision_module("0003_server_identity.py").SEARCH_PATH)


def downgrade() -> None:  # pragma: no cover - nvadmin never downgrades an audit database
    raise NotImplementedError
