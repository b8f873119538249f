"""Reading a workspace's log needs a recorded access; code guesses count through a rollback.

Found by trying a staff login with psql:

* **Reads off the record.** Row-level security gave a signed-in session every event of every
  workspace; the ``activity_log.view`` and ``activity_log.export`` events were written by the
  client, so ``\\copy (SELECT * FROM activity_events)`` read the whole log and left no trace.
  Now a session reads a workspace's events only once it has recorded an access to that
  workspace (``nvadmin_record_access``, which seals the event with the login as actor): each
  recorded view or export opens that workspace's log to the session until the session ends
  (``staff_read_grants``). Reading every workspace at once takes a recorded view "all", which
  only an admin login may record. A query touching a workspace not opened fails with a
  message naming it, rather than showing fewer rows (``nvadmin_unopened_log``): a client that
  forgot to record would otherwise export an incomplete file without noticing. The policy
  itself lives with the others in :mod:`nvadmin.auth.db_roles` (``db roles`` applies it).
* **Code guesses rolled back.** ``nvadmin_sign_in`` counted a wrong TOTP code in the caller's
  transaction, so a caller holding the password could try codes in a loop, rolling each
  failure back (3,001 tries in 0.9 s, no lockout, no event). Each code checked now first
  takes a number from the account's own sequence (``nvadmin_code_checks_<id>``), which no
  rollback gives back: past ``max_failed_sign_ins`` numbers since the last committed reset (a
  right code, the lock's expiry, an admin's unlock) every code is refused unchecked.
* **Malformed details.** An event's details must be a JSON object (a list broke the
  Disclosures report for good: events are never removed).
* **A second factor turned on later** ends the account's sessions and revokes its
  remember-me tokens, as a password reset does; an admin's unlock also resets the code count.
* **Working hours** (the after-hours flags' notion of "open") are changed with an event in the
  workspace's own chain, naming who changed them and from what.

SQLite is unchanged but for the working-hours event (written by the client there).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

import re

from alembic import op

from nvadmin.db.migrations import revision_module
from nvadmin.db.taxonomy import WORKING_HOURS_CHANGED as WORKING_HOURS

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _edited(sql: str, name: str, edits: tuple[tuple[str, str], ...]) -> str:
    """Function ``name`` as an earlier revision wrote it, each ``(old, new)`` edit applied
    (each must be found: a changed original fails the upgrade rather than half-apply it)."""
    found = re.search(rf"CREATE (?:OR REPLACE )?FUNCTION {name}\(.*?END \$\$;", sql, re.DOTALL)
    assert found is not None, name
    body = found.group(0).replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
    for old, new in edits:
        assert old in body, (name, old)
        body = body.replace(old, new)
    return body


_REFUSED = """RETURN QUERY SELECT 'refused', NULL::text, NULL::text, NULL::integer, NULL::text,
                                NULL::text, NULL::text;
            RETURN;"""


def _sign_in(sql: str) -> str:
    return _edited(
        sql,
        "nvadmin_sign_in",
        (
            (
                "UPDATE staff SET failed_attempts = 0, locked_until = NULL WHERE id = account.id;",
                "UPDATE staff SET failed_attempts = 0, locked_until = NULL,\n"
                "            code_checks_base = nvadmin_code_checks_taken(account.id)\n"
                "            WHERE id = account.id;",
            ),
            (
                "        SELECT step INTO matched",
                """        -- Every code checked takes a number no rollback gives back.
        IF nextval(nvadmin_code_checks(account.id)) - account.code_checks_base
           > nvadmin_policy('max_failed_sign_ins', 5, 1, 100) THEN
            PERFORM nvadmin_count_failure(account.id);
            PERFORM nvadmin_refuse_sign_in(account, session_user, 'account_locked', purpose,
                                           agent);
            """
                + _REFUSED
                + """
        END IF;
        SELECT step INTO matched""",
            ),
            (
                "totp_last_step = coalesce(matched, s.totp_last_step),",
                "totp_last_step = coalesce(matched, s.totp_last_step),\n"
                "        code_checks_base = CASE WHEN matched IS NULL THEN s.code_checks_base\n"
                "                                ELSE nvadmin_code_checks_taken(s.id) END,",
            ),
        ),
    )


def _manage_staff(sql: str) -> str:
    return _edited(
        sql,
        "nvadmin_manage_staff",
        (
            (
                "UPDATE staff SET failed_attempts = 0, locked_until = NULL WHERE id = target.id;",
                "UPDATE staff SET failed_attempts = 0, locked_until = NULL,\n"
                "                code_checks_base = nvadmin_code_checks_taken(target.id)\n"
                "                WHERE id = target.id;",
            ),
            (
                "IF operation IN ('disable', 'reset_password', 'set_role') THEN",
                "IF operation IN ('disable', 'reset_password', 'set_role', 'set_totp') THEN",
            ),
        ),
    )


def _seal() -> str:
    written = revision_module("0005_export_requests.py")._seal_function()
    view = "('activity_log.view', 'activity_log_access')"
    return _edited(
        written,
        "nvadmin_seal",
        (
            (view, f"{view}, ('{WORKING_HOURS}', 'activity_log_access')"),
            (
                "PERFORM details::jsonb;",
                """IF jsonb_typeof(details::jsonb) <> 'object' THEN
                RAISE EXCEPTION 'nvadmin: event details must be a JSON object'
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;""",
            ),
        ),
    )


SQL = r"""
ALTER TABLE staff ADD COLUMN code_checks_base bigint NOT NULL DEFAULT 0;

-- The account's own count of codes checked (a sequence: no rollback gives a number back).
CREATE FUNCTION nvadmin_code_checks(account integer) RETURNS regclass
LANGUAGE sql STABLE AS $$
    SELECT format('nvadmin_code_checks_%s', account)::regclass
$$;

-- How many numbers the account's count has given so far.
CREATE FUNCTION nvadmin_code_checks_taken(account integer) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
    taken bigint;
BEGIN
    EXECUTE format('SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM %s',
                   nvadmin_code_checks(account)) INTO taken;
    RETURN taken;
END $$;

CREATE FUNCTION nvadmin_make_code_checks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE SEQUENCE IF NOT EXISTS %I', 'nvadmin_code_checks_' || NEW.id);
    RETURN NEW;
END $$;
CREATE TRIGGER staff_code_checks AFTER INSERT ON staff
    FOR EACH ROW EXECUTE FUNCTION nvadmin_make_code_checks();
DO $$
DECLARE
    account integer;
BEGIN
    FOR account IN SELECT id FROM staff LOOP
        EXECUTE format('CREATE SEQUENCE IF NOT EXISTS %I', 'nvadmin_code_checks_' || account);
    END LOOP;
END $$;

-- The workspaces whose log a session has opened by recording an access (NULL: all of them).
CREATE TABLE staff_read_grants (
    session_id bigint NOT NULL REFERENCES staff_sessions(id),
    workspace_id integer REFERENCES workspaces(id)
);
CREATE UNIQUE INDEX ux_staff_read_grants
    ON staff_read_grants (session_id, coalesce(workspace_id, 0));

CREATE FUNCTION nvadmin_opened_workspaces() RETURNS integer[]
LANGUAGE sql STABLE PARALLEL RESTRICTED SECURITY DEFINER AS $$
    SELECT coalesce(array_agg(g.workspace_id) FILTER (WHERE g.workspace_id IS NOT NULL), '{}')
    FROM staff_read_grants g
    WHERE g.session_id = nvadmin_current_session()
$$;

CREATE FUNCTION nvadmin_opened_every_workspace() RETURNS boolean
LANGUAGE sql STABLE PARALLEL RESTRICTED SECURITY DEFINER AS $$
    SELECT EXISTS (SELECT 1 FROM staff_read_grants g
                   WHERE g.session_id = nvadmin_current_session() AND g.workspace_id IS NULL)
$$;

-- A row of a workspace the session has not opened: the whole query fails, saying why. COST 1:
-- it runs at most once per query (it ends it), and at PL/pgSQL's default cost the planner
-- priced the policy per row so high that a workspace's export in time order became a parallel
-- scan and a sort (1M events: 2.1 s instead of 1.6 s; benchmarks/RESULTS.md).
CREATE FUNCTION nvadmin_unopened_log(workspace integer) RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE COST 1 AS $$
BEGIN
    RAISE EXCEPTION 'nvadmin: the Activity Log of workspace % is read only after the access '
                    'is recorded (nvadmin_record_access)', workspace
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE OR REPLACE FUNCTION nvadmin_record_access(
    workspace integer, action_name text, details text,
    resource_type text, resource_id text, user_agent text
) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    account staff;
    session bigint := nvadmin_current_session();
    all_of_them boolean := coalesce(resource_id = 'all', false);
    event bigint;
BEGIN
    IF session IS NULL THEN
        RAISE EXCEPTION 'nvadmin: sign in first' USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- Signing out goes through nvadmin_sign_out, which also ends the session.
    IF action_name IS NULL
       OR action_name NOT IN ('activity_log.view', 'activity_log.export', 'staff.session_locked')
    THEN
        RAISE EXCEPTION 'nvadmin: % is not recorded by staff', action_name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(details) > 65536 OR length(resource_type) > 40 OR length(resource_id) > 100 THEN
        RAISE EXCEPTION 'nvadmin: event too large' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO account FROM staff WHERE email = session_user;
    IF all_of_them AND action_name <> 'staff.session_locked'
       AND (account.role <> 'admin' OR workspace <> nvadmin_staff_workspace()) THEN
        RAISE EXCEPTION 'nvadmin: only an admin reads every workspace at once'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- Sealed first: the seal refuses an unknown workspace with its own message.
    event := nvadmin_seal(workspace, action_name, 'success', NULL, account.id, account.email,
        account.display_name, account.role, resource_type, resource_id, left(user_agent, 300),
        session::text, details);
    IF action_name <> 'staff.session_locked' THEN
        INSERT INTO staff_read_grants (session_id, workspace_id)
            VALUES (session, CASE WHEN all_of_them THEN NULL ELSE workspace END)
            ON CONFLICT (session_id, (coalesce(workspace_id, 0))) DO NOTHING;
    END IF;
    RETURN event;
END $$;

CREATE OR REPLACE FUNCTION nvadmin_set_working_hours(
    workspace integer, day_start integer, day_end integer
) RETURNS void LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    account staff;
    session bigint := nvadmin_current_session();
    previous workspaces;
BEGIN
    IF session IS NULL THEN
        RAISE EXCEPTION 'nvadmin: sign in first' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF day_start IS NULL OR day_end IS NULL OR day_start NOT BETWEEN 0 AND 23
       OR day_end NOT BETWEEN 1 AND 24 OR day_start = day_end THEN
        RAISE EXCEPTION 'nvadmin: working hours must be two different hours between 0 and 24'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO previous FROM workspaces w WHERE w.id = workspace AND NOT w.is_system FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'nvadmin: workspace % does not exist in this database', workspace
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE workspaces SET work_day_start = day_start, work_day_end = day_end
        WHERE id = workspace;
    SELECT * INTO account FROM staff WHERE email = session_user;
    PERFORM nvadmin_seal(workspace, '__WORKING_HOURS__', 'success', NULL, account.id,
        account.email, account.display_name, account.role, 'workspace', workspace::text,
        NULL, session::text,
        jsonb_build_object('work_day_start', day_start, 'work_day_end', day_end,
                           'was_work_day_start', previous.work_day_start,
                           'was_work_day_end', previous.work_day_end)::text);
END $$;
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    identity = revision_module("0003_server_identity.py")
    op.execute(SQL.replace("__WORKING_HOURS__", WORKING_HOURS))
    op.execute(_seal())
    op.execute(_sign_in(identity.SQL))
    op.execute(_manage_staff(identity.SQL))
    for name in (
        "nvadmin_code_checks(integer)",
        "nvadmin_code_checks_taken(integer)",
        "nvadmin_make_code_checks()",
        "nvadmin_opened_workspaces()",
        "nvadmin_opened_every_workspace()",
        "nvadmin_unopened_log(integer)",
    ):
        # Until `nvadmin db roles` grants them, nobody but the owner runs these.
        op.execute(f"REVOKE ALL ON FUNCTION {name} FROM PUBLIC")
    # As 0003: every nvadmin function resolves names in this schema only (a replaced
    # function loses its settings, so all are set again).
    op.execute(identity.SEARCH_PATH)


def downgrade() -> None:  # pragma: no cover - nvadmin never downgrades an audit database
    raise NotImplementedError
