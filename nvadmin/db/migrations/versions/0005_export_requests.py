"""Export requests: the ticket from receipt to delivery, and the server functions that move it.

Both backends get ``export_requests`` (see :class:`nvadmin.db.models.ExportRequest`). On
PostgreSQL no staff group may write it: ``nvadmin_receive_export_request`` and
``nvadmin_move_export_request`` are the only way in. They are SECURITY DEFINER with a fixed
search_path, take the actor from ``session_user`` (a signed-in staff login, or the owner of
the tables for the command line), validate every argument, run the requester check on the
server, allow only the transitions of :data:`nvadmin.db.request_rules.TRANSITIONS`, and seal
the ``activity_log.export_request.*`` event into the workspace's chain in the same
transaction. ``nvadmin_seal`` is redefined with the same body and the new actions.

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-30
"""

import re

import sqlalchemy as sa
from alembic import op

from nvadmin.db.migrations import revision_module
from nvadmin.db.request_rules import (
    ADMIN_ROLES,
    EVENT_PREFIX,
    MAX_RECEIPT_AGE,
    TRANSITIONS,
    Verification,
    verification_note,
)
from nvadmin.db.taxonomy import ACTIONS
from nvadmin.db.types import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _seal_function() -> str:
    """0003's ``nvadmin_seal``, unchanged but for the list of actions it may write."""
    previous = revision_module("0003_server_identity.py")
    body = re.search(
        r"CREATE FUNCTION nvadmin_seal\(.*?END \$\$;",
        previous.SQL,
        re.DOTALL,
    )
    assert body is not None
    written = (*previous._WRITTEN, *(a for a in ACTIONS if a.startswith(EVENT_PREFIX)))
    categories = ", ".join(f"('{action}', '{ACTIONS[action][0]}')" for action in written)
    return (
        body.group(0)
        .replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
        .replace("__CATEGORIES__", categories)
    )


def _transitions() -> str:
    rows = []
    for operation, (sources, target) in TRANSITIONS.items():
        listed = ", ".join(f"'{s.value}'" for s in sources)
        to = f"'{target.value}'" if target is not None else "NULL::text"
        rows.append(f"('{operation.value}', ARRAY[{listed}], {to})")
    return ", ".join(rows)


def _note(outcome: Verification) -> str:
    """The words of verification_note as a SQL expression over ``member.role``."""
    words = verification_note(outcome, "\x00").replace("'", "''")
    return "'" + words.replace("\x00", "' || member.role || '") + "'"


FUNCTIONS = r"""
CREATE FUNCTION nvadmin_request_actor() RETURNS staff LANGUAGE plpgsql STABLE AS $$
DECLARE
    account staff;
BEGIN
    SELECT * INTO account FROM staff WHERE email = session_user;
    IF FOUND THEN
        IF account.disabled OR nvadmin_current_session() IS NULL THEN
            RAISE EXCEPTION 'nvadmin: sign in first' USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN account;
    END IF;
    IF NOT pg_has_role(session_user,
            (SELECT relowner FROM pg_class WHERE oid = 'export_requests'::regclass), 'MEMBER') THEN
        RAISE EXCEPTION 'nvadmin: sign in first' USING ERRCODE = 'insufficient_privilege';
    END IF;
    account.display_name := format('database owner (%s)', session_user);
    account.email := session_user;
    account.role := 'admin';
    RETURN account;
END $$;

CREATE FUNCTION nvadmin_export_request_event(
    request export_requests, actor staff, action_name text, details jsonb, user_agent text
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nvadmin_seal(request.workspace_id, action_name, 'success', NULL, actor.id,
        actor.email, actor.display_name, actor.role, 'export_request', request.id::text,
        left(user_agent, 300), nvadmin_current_session()::text, details::text);
END $$;

CREATE FUNCTION nvadmin_receive_export_request(
    p_workspace integer, p_ticket text, p_first_day date, p_last_day date, p_zone text,
    p_filters text, p_requester_email text, p_requester_name text, p_purpose text,
    p_recipient text, p_received_at timestamptz, p_due_at timestamptz, p_assign_to text,
    p_user_agent text
) RETURNS integer LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    actor staff := nvadmin_request_actor();
    member team_members;
    outcome text;
    note text;
    existing integer;
    filters jsonb;
    request export_requests;
    slug text;
BEGIN
    SELECT w.slug INTO slug FROM workspaces w WHERE w.id = p_workspace AND NOT w.is_system;
    IF slug IS NULL THEN
        RAISE EXCEPTION 'nvadmin: no workspace %', p_workspace
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    p_ticket := btrim(p_ticket);
    IF p_ticket IS NULL OR p_ticket = '' OR length(p_ticket) > 100
       OR p_ticket ~ '[\x01-\x1f\x7f]' THEN
        RAISE EXCEPTION 'nvadmin: a ticket id is needed (at most 100 characters, one line)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_first_day IS NULL OR p_last_day IS NULL OR p_first_day > p_last_day THEN
        RAISE EXCEPTION 'nvadmin: impossible range: % is after %', p_first_day, p_last_day
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_first_day < '1900-01-01' OR p_last_day > '2999-12-31' THEN
        RAISE EXCEPTION 'nvadmin: % is outside the days nvadmin covers', p_first_day
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_zone IS NULL OR NOT EXISTS (SELECT 1 FROM pg_timezone_names z WHERE z.name = p_zone) THEN
        RAISE EXCEPTION 'nvadmin: unknown time zone %', left(p_zone, 64)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_filters IS NOT NULL THEN
        BEGIN
            filters := p_filters::jsonb;
        EXCEPTION WHEN invalid_text_representation THEN
            filters := NULL;
        END;
        IF filters IS NULL OR jsonb_typeof(filters) <> 'object' OR length(p_filters) > 10000
           OR EXISTS (SELECT 1 FROM jsonb_each(filters) e
                      WHERE e.key NOT IN ('user', 'category')
                         OR jsonb_typeof(e.value) <> 'array') THEN
            RAISE EXCEPTION 'nvadmin: filters must be {"user": [...], "category": [...]}'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END IF;
    p_requester_email := lower(btrim(p_requester_email));
    IF p_requester_email IS NULL OR p_requester_email !~ '^[^@\s]+@[^@\s]+\.[^@\s]+$'
       OR length(p_requester_email) > 320 THEN
        RAISE EXCEPTION 'nvadmin: not an e-mail address: %', left(p_requester_email, 320)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    p_purpose := coalesce(btrim(p_purpose), '');
    p_recipient := coalesce(btrim(p_recipient), '');
    IF length(p_purpose) > 2000 OR length(p_recipient) > 300
       OR length(coalesce(p_requester_name, '')) > 200 THEN
        RAISE EXCEPTION 'nvadmin: purpose (2000) or recipient (300 characters) too long'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_received_at IS NULL OR p_received_at > now() + interval '5 minutes'
       OR p_received_at < now() - interval '__RECEIPT_AGE__' THEN
        RAISE EXCEPTION 'nvadmin: the receipt time must be within the past year, not in the future'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_due_at IS NULL OR p_due_at < p_received_at
       OR p_due_at > p_received_at + interval '60 days' THEN
        RAISE EXCEPTION 'nvadmin: the due time must be after receipt and within 60 days'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    p_assign_to := lower(btrim(p_assign_to));
    IF p_assign_to IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM staff s WHERE s.email = p_assign_to AND NOT s.disabled) THEN
        RAISE EXCEPTION 'nvadmin: no active staff account % to assign to', p_assign_to
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT r.id INTO existing FROM export_requests r
        WHERE r.workspace_id = p_workspace AND r.ticket = p_ticket;
    IF existing IS NOT NULL THEN
        RAISE EXCEPTION 'nvadmin: ticket % already has request % in %', p_ticket, existing, slug
            USING ERRCODE = 'unique_violation';
    END IF;
    -- The requester rule, on the server: staff cannot declare a requester verified.
    SELECT * INTO member FROM team_members m
        WHERE m.workspace_id = p_workspace AND lower(m.email) = p_requester_email;
    IF NOT FOUND THEN
        outcome := '__NOT_MEMBER__';
        note := __NOTE_NOT_MEMBER__;
    ELSIF NOT member.active THEN
        outcome := '__INACTIVE__';
        note := __NOTE_INACTIVE__;
    ELSIF member.role NOT IN (__ADMIN_ROLES__) THEN
        outcome := '__NOT_ADMIN__';
        note := __NOTE_NOT_ADMIN__;
    ELSIF member.created_at > p_received_at THEN
        outcome := '__JOINED_LATER__';
        note := __NOTE_JOINED_LATER__;
    ELSE
        outcome := '__ADMIN__';
        note := __NOTE_ADMIN__;
    END IF;
    INSERT INTO export_requests (
        workspace_id, ticket, first_day, last_day, zone, filters, requester_email,
        requester_name, purpose, recipient, received_at, due_at, status, verification,
        verification_note, assigned_to, received_by, updated_at)
    VALUES (
        p_workspace, p_ticket, p_first_day, p_last_day, p_zone, p_filters, p_requester_email,
        left(coalesce(nullif(btrim(p_requester_name), ''), member.display_name,
                      p_requester_email), 200),
        p_purpose, p_recipient, p_received_at, p_due_at, 'new', outcome, note, p_assign_to,
        actor.email, now())
    RETURNING * INTO request;
    PERFORM nvadmin_export_request_event(request, actor, '__PREFIX__received',
        jsonb_build_object('request_id', request.id, 'ticket', request.ticket,
            'status', 'new', 'from', request.first_day::text, 'to', request.last_day::text,
            'zone', request.zone, 'requester', request.requester_email,
            'purpose', request.purpose, 'recipient', request.recipient,
            'due_at', to_char(request.due_at AT TIME ZONE 'UTC',
                              'YYYY-MM-DD"T"HH24:MI:SS.US+00:00'),
            'verification', outcome),
        p_user_agent);
    IF outcome = '__ADMIN__' THEN
        UPDATE export_requests SET status = 'verified', updated_at = now()
            WHERE id = request.id;
        PERFORM nvadmin_export_request_event(request, actor, '__PREFIX__verified',
            jsonb_build_object('request_id', request.id, 'ticket', request.ticket,
                'previous_status', 'new', 'status', 'verified', 'check', note),
            p_user_agent);
    END IF;
    RETURN request.id;
END $$;

CREATE FUNCTION nvadmin_move_export_request(
    p_request integer, p_operation text, p_reason text, p_evidence text, p_user_agent text
) RETURNS text LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    actor staff := nvadmin_request_actor();
    request export_requests;
    sources text[];
    target text;
    details jsonb;
    proof jsonb;
BEGIN
    SELECT t.sources, t.target INTO sources, target
        FROM (VALUES __TRANSITIONS__) AS t(operation, sources, target)
        WHERE t.operation = p_operation AND t.operation <> 'verified';
    IF sources IS NULL THEN
        RAISE EXCEPTION 'nvadmin: % is not a request operation', left(p_operation, 40)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    p_reason := nullif(btrim(p_reason), '');
    IF length(p_reason) > 2000 THEN
        RAISE EXCEPTION 'nvadmin: the reason is too long (at most 2000 characters)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_operation IN ('overridden', 'rejected') AND p_reason IS NULL THEN
        RAISE EXCEPTION 'nvadmin: a reason is needed to % a request',
            CASE p_operation WHEN 'overridden' THEN 'override' ELSE 'reject' END
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_operation = 'overridden' AND actor.role <> 'admin' THEN
        RAISE EXCEPTION 'nvadmin: only a staff admin may override the requester check'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT * INTO request FROM export_requests r WHERE r.id = p_request FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'nvadmin: no export request %', p_request
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT request.status = ANY (sources) THEN
        RAISE EXCEPTION 'nvadmin: request % is %: it cannot be % (only from %)', request.id,
            request.status, p_operation, array_to_string(sources, ' or ')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    details := jsonb_build_object('request_id', request.id, 'ticket', request.ticket,
        'previous_status', request.status, 'status', coalesce(target, request.status));
    IF p_operation = 'overridden' THEN
        UPDATE export_requests SET status = target, override_reason = p_reason,
            override_by = actor.email, updated_at = now() WHERE id = request.id;
        details := details || jsonb_build_object('reason', p_reason);
    ELSIF p_operation = 'rejected' THEN
        UPDATE export_requests SET status = target, rejection_reason = p_reason,
            updated_at = now() WHERE id = request.id;
        details := details || jsonb_build_object('reason', p_reason);
    ELSIF p_operation = 'assigned' THEN
        p_reason := lower(p_reason);
        IF p_reason IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM staff s WHERE s.email = p_reason AND NOT s.disabled) THEN
            RAISE EXCEPTION 'nvadmin: no active staff account % to assign to', p_reason
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        UPDATE export_requests SET assigned_to = p_reason, updated_at = now()
            WHERE id = request.id;
        details := details || jsonb_build_object('assigned_to', p_reason);
    ELSIF p_operation = 'exported' THEN
        BEGIN
            proof := p_evidence::jsonb;
        EXCEPTION WHEN invalid_text_representation THEN
            proof := NULL;
        END;
        IF proof IS NULL OR jsonb_typeof(proof) <> 'object' OR length(p_evidence) > 20000
           OR coalesce(proof ->> 'export_sha256', '') !~ '^[0-9a-f]{64}$'
           OR coalesce(proof ->> 'manifest_sha256', '') !~ '^[0-9a-f]{64}$'
           OR coalesce(proof ->> 'export_path', '') = ''
           OR coalesce(proof ->> 'manifest_path', '') = ''
           OR jsonb_typeof(proof -> 'rows') IS DISTINCT FROM 'number'
           OR (proof ->> 'rows')::numeric < 0 THEN
            RAISE EXCEPTION 'nvadmin: evidence needs the file, its manifest, their SHA-256 '
                'and the row count'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        -- The evidence must be an export this ticket really made: recorded in the log.
        IF NOT EXISTS (
            SELECT 1 FROM activity_events e
            WHERE e.workspace_id = request.workspace_id
              AND e.category = 'activity_log_access' AND e.occurred_at >= request.received_at
              AND e.action = 'activity_log.export'
              AND e.details::jsonb ->> 'sha256' = proof ->> 'export_sha256'
              AND e.details::jsonb ->> 'ticket' = request.ticket
              AND (e.details::jsonb ->> 'rows')::numeric = (proof ->> 'rows')::numeric) THEN
            RAISE EXCEPTION
                'nvadmin: no recorded export of ticket % has that SHA-256 and row count',
                request.ticket USING ERRCODE = 'invalid_parameter_value';
        END IF;
        UPDATE export_requests SET status = target,
            export_path = left(proof ->> 'export_path', 4000),
            export_sha256 = proof ->> 'export_sha256',
            manifest_path = left(proof ->> 'manifest_path', 4000),
            manifest_sha256 = proof ->> 'manifest_sha256',
            export_rows = (proof ->> 'rows')::bigint,
            description = left(proof ->> 'description', 4000),
            exported_at = now(), updated_at = now()
            WHERE id = request.id;
        details := details || proof;
    ELSIF p_operation = 'delivered' THEN
        -- Optional: the encrypted package that was sent, as {"package_path", "package_sha256"}.
        IF p_evidence IS NOT NULL THEN
            BEGIN
                proof := p_evidence::jsonb;
            EXCEPTION WHEN invalid_text_representation THEN
                proof := NULL;
            END;
            IF proof IS NULL OR jsonb_typeof(proof) <> 'object' OR length(p_evidence) > 5000
               OR EXISTS (SELECT 1 FROM jsonb_object_keys(proof) k
                          WHERE k NOT IN ('package_path', 'package_sha256'))
               OR coalesce(proof ->> 'package_sha256', '') !~ '^[0-9a-f]{64}$'
               OR coalesce(proof ->> 'package_path', '') = ''
               OR length(proof ->> 'package_path') > 4000 THEN
                RAISE EXCEPTION 'nvadmin: a delivery package needs its file and its SHA-256 '
                    '(64 hexadecimal characters)'
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            details := details || proof;
        END IF;
        UPDATE export_requests SET status = target, delivered_at = now(), updated_at = now(),
            package_path = proof ->> 'package_path',
            package_sha256 = proof ->> 'package_sha256'
            WHERE id = request.id;
    END IF;
    PERFORM nvadmin_export_request_event(request, actor, '__PREFIX__' || p_operation, details,
        p_user_agent);
    RETURN coalesce(target, request.status);
END $$;
"""


def _functions() -> str:
    sql = FUNCTIONS.replace("__TRANSITIONS__", _transitions())
    sql = sql.replace("__ADMIN_ROLES__", ", ".join(f"'{r}'" for r in sorted(ADMIN_ROLES)))
    sql = sql.replace("__RECEIPT_AGE__", f"{MAX_RECEIPT_AGE.days} days")
    sql = sql.replace("__PREFIX__", EVENT_PREFIX)
    for outcome in Verification:
        sql = sql.replace(f"__NOTE_{outcome.name}__", _note(outcome))
        sql = sql.replace(f"__{outcome.name}__", outcome.value)
    return sql


def upgrade() -> None:
    op.create_table(
        "export_requests",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("workspace_id", sa.Integer, nullable=False),
        sa.Column("ticket", sa.String(100), nullable=False),
        sa.Column("first_day", sa.Date, nullable=False),
        sa.Column("last_day", sa.Date, nullable=False),
        sa.Column("zone", sa.String(64), nullable=False),
        sa.Column("filters", sa.Text),
        sa.Column("requester_email", sa.String(320), nullable=False),
        sa.Column("requester_name", sa.String(200), nullable=False),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("recipient", sa.String(300), nullable=False),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.Column("due_at", UTCDateTime, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("verification", sa.String(32), nullable=False),
        sa.Column("verification_note", sa.Text, nullable=False),
        sa.Column("override_reason", sa.Text),
        sa.Column("override_by", sa.String(320)),
        sa.Column("rejection_reason", sa.Text),
        sa.Column("assigned_to", sa.String(320)),
        sa.Column("received_by", sa.String(320), nullable=False),
        sa.Column("export_path", sa.Text),
        sa.Column("export_sha256", sa.String(64)),
        sa.Column("manifest_path", sa.Text),
        sa.Column("manifest_sha256", sa.String(64)),
        sa.Column("export_rows", sa.BigInteger),
        sa.Column("description", sa.Text),
        sa.Column("exported_at", UTCDateTime),
        sa.Column("delivered_at", UTCDateTime),
        sa.Column("package_path", sa.Text),
        sa.Column("package_sha256", sa.String(64)),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_export_requests"),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name="fk_export_requests_workspace_id_workspaces"
        ),
        sa.UniqueConstraint("workspace_id", "ticket", name="uq_export_requests_workspace_id"),
    )
    op.create_index("ix_export_requests_status_due", "export_requests", ["status", "due_at"])
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_seal_function())
    op.execute(_functions())
    for name in (
        "nvadmin_request_actor()",
        "nvadmin_export_request_event(export_requests, staff, text, jsonb, text)",
        "nvadmin_receive_export_request(integer, text, date, date, text, text, text, text, "
        "text, text, timestamptz, timestamptz, text, text)",
        "nvadmin_move_export_request(integer, text, text, text, text)",
    ):
        # Until `nvadmin db roles` grants them, nobody but the owner runs these.
        op.execute(f"REVOKE ALL ON FUNCTION {name} FROM PUBLIC")
    # As 0003: every nvadmin function resolves names in this schema only.
    op.execute(revision_module("0003_server_identity.py").SEARCH_PATH)


def downgrade() -> None:  # pragma: no cover - nvadmin never downgrades an audit database
    raise NotImplementedError
