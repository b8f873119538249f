"""PostgreSQL enforces who is connected: one login per staff member, in one group each.

``nvadmin db roles`` (run once by the database owner, again after each upgrade) makes:

* ``nvadmin_support``, ``nvadmin_compliance``, ``nvadmin_admin``: the groups of staff logins
  (``nvadmin staff add`` creates a login named after the e-mail address and puts it in the
  group of its role). All three are members of ``nvadmin_staff``, which holds what every
  staff session needs; only ``nvadmin_admin`` may run the staff-management function.
* ``nvadmin_gate``: a login whose password is public by design (``nvadmin_gate``). It can do
  one thing: ask whether an account may try a password now, and report that the server
  refused one. That is nvadmin's own lockout for its sign-in path; see README.
* ``nvadmin_viewer``: the event-writing service role of the clinic product (the old shared
  staff role, kept under its name so existing writer logins keep working): it appends events
  and nothing else; it reads no events.

No group has INSERT, UPDATE or DELETE on any table. Every write a staff session makes goes
through a SECURITY DEFINER function of migration 0003 that takes the actor from
``session_user``. Row-level security gives staff rows only on a connection that belongs to a
signed-in session (password checked by the server, TOTP by ``nvadmin_sign_in``). Every
privilege is listed in :data:`PRIVILEGES` with the reason for it; ``db roles`` prints them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from nvadmin.errors import UserError
from nvadmin.identity import Role

STAFF = "nvadmin_staff"
GROUPS: dict[Role, str] = {
    Role.SUPPORT: "nvadmin_support",
    Role.COMPLIANCE: "nvadmin_compliance",
    Role.ADMIN: "nvadmin_admin",
}
GATE = "nvadmin_gate"
GATE_PASSWORD = "nvadmin_gate"  # public: the gate's functions are safe for anyone to call
VIEWER = "nvadmin_viewer"

# Tables staff read (through row-level security); staff_directory and secrets are not here.
READ_TABLES = (
    "workspaces",
    "team_members",
    "api_clients",
    "activity_events",
    "chain_heads",
    "chain_checkpoints",
    "nvadmin_meta",
)
STAFF_COLUMNS = (
    "id, email, display_name, role, disabled, failed_attempts, locked_until, created_at, "
    "last_sign_in_at"
)
SIGN_IN = "nvadmin_sign_in(text, text, text, boolean, text, text)"
ATTEMPT = "nvadmin_sign_in_attempt(text, text)"
ATTEMPT_FAILED = "nvadmin_sign_in_failed(text, text)"
RESUME = "nvadmin_resume_session(text)"
RECORD = "nvadmin_record_access(integer, text, text, text, text, text)"
SIGN_OUT = "nvadmin_sign_out(text, text, text)"
MANAGE = "nvadmin_manage_staff(text, text, text, text, text, text)"
HOURS = "nvadmin_set_working_hours(integer, integer, integer)"
VERIFIED = "nvadmin_session_verified()"
# Row-level security of the events (migration 0009): a workspace's log is read only once the
# session has recorded an access to it.
OPENED = ("nvadmin_opened_workspaces()", "nvadmin_opened_every_workspace()")
PARTITION = "nvadmin_ensure_event_partition(date)"
RECEIVE_REQUEST = (
    "nvadmin_receive_export_request(integer, text, date, date, text, text, text, text, text, "
    "text, timestamptz, timestamptz, text, text)"
)
MOVE_REQUEST = "nvadmin_move_export_request(integer, text, text, text, text)"
REQUESTS_TABLE = "export_requests"

# (grantee, statement with {s} for the schema, why)
PRIVILEGES: tuple[tuple[str, str, str], ...] = (
    (STAFF, "GRANT USAGE ON SCHEMA {s} TO nvadmin_staff", "see the schema's objects"),
    (
        STAFF,
        "GRANT SELECT ON " + ", ".join("{s}." + t for t in READ_TABLES) + " TO nvadmin_staff",
        "browse, search, export, verify, report: rows only in a signed-in session (RLS)",
    ),
    (
        STAFF,
        f"GRANT SELECT ({STAFF_COLUMNS}) ON {{s}}.staff TO nvadmin_staff",
        "names and roles of staff; never password material or TOTP secrets",
    ),
    (STAFF, "GRANT SELECT ON {s}.alembic_version TO nvadmin_staff", "check the schema version"),
    (
        STAFF,
        "GRANT EXECUTE ON FUNCTION "
        + ", ".join("{s}." + f for f in (VERIFIED, ATTEMPT, SIGN_IN, RESUME, RECORD, SIGN_OUT))
        + " TO nvadmin_staff",
        "sign in, join the session, record views and exports, lock, sign out",
    ),
    (
        STAFF,
        "GRANT EXECUTE ON FUNCTION " + ", ".join("{s}." + f for f in OPENED) + " TO nvadmin_staff",
        "the events' row-level security: which workspaces' logs the session has opened",
    ),
    (
        STAFF,
        f"GRANT EXECUTE ON FUNCTION {{s}}.{PARTITION} TO nvadmin_staff",
        "create the coming months' partitions (bounded window)",
    ),
    (GROUPS[Role.ADMIN], f"GRANT EXECUTE ON FUNCTION {{s}}.{MANAGE} TO nvadmin_admin",
     "add, disable, enable, unlock staff, reset passwords, change roles and second factors"),
    *(
        (group, f"GRANT EXECUTE ON FUNCTION {{s}}.{HOURS} TO {group}",
         "change a workspace's working hours (after-hours flags)")
        for group in (GROUPS[Role.COMPLIANCE], GROUPS[Role.ADMIN])
    ),
    *(
        (group, f"GRANT SELECT ON {{s}}.{REQUESTS_TABLE} TO {group}",
         "the Requests queue and the Disclosures report: rows only in a signed-in session (RLS)")
        for group in GROUPS.values()
    ),
    *(
        (group, f"GRANT EXECUTE ON FUNCTION {{s}}.{RECEIVE_REQUEST}, {{s}}.{MOVE_REQUEST} "
                f"TO {group}",
         "receive, fulfil, deliver, reject and assign export requests (only through these "
         "functions; overriding the requester check is refused there unless the login is an "
         "admin)")
        for group in GROUPS.values()
    ),
    (GROUPS[Role.ADMIN], "GRANT SELECT ON {s}.staff_directory TO nvadmin_admin",
     "the Staff dialog's list (whether TOTP is on, not the secret)"),
    (GATE, "GRANT USAGE ON SCHEMA {s} TO nvadmin_gate", "see the gate functions"),
    (GATE, "GRANT SELECT ON {s}.alembic_version TO nvadmin_gate",
     "check the schema version before anyone signs in"),
    (
        GATE,
        f"GRANT EXECUTE ON FUNCTION {{s}}.{ATTEMPT}, {{s}}.{ATTEMPT_FAILED} TO nvadmin_gate",
        "reserve a sign-in attempt; report a refused password (lockout counting)",
    ),
    (VIEWER, "GRANT USAGE ON SCHEMA {s} TO nvadmin_viewer", "see the tables it writes"),
    (VIEWER, "GRANT SELECT ON {s}.workspaces TO nvadmin_viewer", "find a workspace's id"),
    (VIEWER, "GRANT INSERT ON {s}.activity_events TO nvadmin_viewer", "append events"),
    (VIEWER, "GRANT USAGE ON SEQUENCE {s}.activity_events_id_seq TO nvadmin_viewer",
     "event ids"),
    (
        VIEWER,
        "GRANT SELECT, INSERT, UPDATE (last_seq, last_hash) ON {s}.chain_heads TO nvadmin_viewer",
        "lock, create and advance a workspace's chain head",
    ),
    (VIEWER, f"GRANT EXECUTE ON FUNCTION {{s}}.{PARTITION} TO nvadmin_viewer",
     "create the month it writes into (bounded window)"),
)  # fmt: skip

# Row-level security: (table, grantee, command, expression)
_VERIFIED = f"(SELECT {{s}}.{VERIFIED})"
# An event is read in a signed-in session that has recorded (and committed) an access to its
# workspace, or to every workspace; the events of any other workspace are not there for it.
# Not an error naming the workspace, as migration 0009 had it: PostgreSQL applies a query's
# own simple conditions first (leakproof ones, and in index lookups), so a failure on the
# first row that passed them answered a yes/no question about a closed log, on no record
# ("does patient X have events at clinic W?"). Each function is evaluated once per query;
# per row only the comparison runs.
_OPENED = (
    f"CASE WHEN NOT {_VERIFIED} THEN false "
    f"WHEN (SELECT {{s}}.{OPENED[1]}) THEN true "
    f"ELSE workspace_id = ANY ((SELECT {{s}}.{OPENED[0]})::integer[]) END"
)
POLICIES: tuple[tuple[str, str, str, str], ...] = (
    ("activity_events", STAFF, "SELECT", f"USING ({_OPENED})"),
    *(
        (t, STAFF, "SELECT", f"USING ({_VERIFIED})")
        for t in (*READ_TABLES, "staff", REQUESTS_TABLE)
        if t != "activity_events"
    ),
    ("workspaces", VIEWER, "SELECT", "USING (true)"),
    ("activity_events", VIEWER, "INSERT", "WITH CHECK (true)"),
    ("chain_heads", VIEWER, "ALL", "USING (true)"),
)
RLS_TABLES = (*READ_TABLES, "staff", "remember_tokens", REQUESTS_TABLE)
# Built-in roles the owner of the tables (whose SECURITY DEFINER functions act) needs, and what
# goes wrong without each.
OWNER_NEEDS = {
    # The sign-in functions tell a connection from an earlier one with the same process id by
    # its start time, which the server shows a non-superuser only with pg_read_all_stats.
    "pg_read_all_stats": "cannot see when a connection started, so nobody can sign in",
    # A writer ends a staff session that sits on a workspace's log (migration 0010).
    "pg_signal_backend": (
        "cannot end a session that holds a workspace's log open, so such a session stops "
        "everyone else's views of that workspace until it ends"
    ),
}


def _quote(connection: Connection, name: str) -> str:
    return connection.dialect.identifier_preparer.quote(name)


def role_statements(connection: Connection, schema: str) -> list[str]:
    """The SQL ``nvadmin db roles`` runs after making the roles (also printed by ``--print``)."""
    s = _quote(connection, schema)
    everyone = ", ".join((STAFF, *GROUPS.values(), GATE, VIEWER))
    statements = [
        # Nobody but the owner creates objects here: a function or table planted in the
        # schema could otherwise be picked up by the SECURITY DEFINER functions.
        f"REVOKE CREATE ON SCHEMA {s} FROM PUBLIC, {everyone}",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM PUBLIC, {everyone}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {s} FROM PUBLIC, {everyone}",
        f"REVOKE ALL ON ALL FUNCTIONS IN SCHEMA {s} FROM PUBLIC, {everyone}",
        f"ALTER FUNCTION {s}.{PARTITION} SECURITY DEFINER",
        *(f"GRANT {STAFF} TO {group}" for group in GROUPS.values()),
        *(statement.format(s=s) for _, statement, _ in PRIVILEGES),
    ]
    for table in RLS_TABLES:
        statements.append(f"ALTER TABLE {s}.{table} ENABLE ROW LEVEL SECURITY")
    for table, grantee, command, expression in POLICIES:
        name = f"{grantee}_{command.lower()}"
        statements.append(f"DROP POLICY IF EXISTS {name} ON {s}.{table}")
        statements.append(
            f"CREATE POLICY {name} ON {s}.{table} FOR {command} TO {grantee} "
            + expression.format(s=s)
        )
    return statements


def privileges_by_role() -> dict[str, list[str]]:
    """What each role may do, in words, for ``db roles`` to print: the staff groups with what
    they inherit from ``nvadmin_staff``, then the gate and the service role."""
    own: dict[str, list[str]] = {}
    for grantee, _, why in PRIVILEGES:
        own.setdefault(grantee, []).append(why)
    listed = {group: [*own[STAFF], *own.get(group, [])] for group in GROUPS.values()}
    listed[GATE] = own[GATE]
    listed[VIEWER] = own[VIEWER]
    return listed


def _role_exists(connection: Connection, name: str) -> bool:
    return bool(
        connection.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name}).first()
    )


@dataclass(frozen=True, slots=True)
class RolesReport:
    statements: list[str]
    converted: list[str]  # staff accounts given a login that still needs a password
    too_long: list[str]  # addresses longer than a PostgreSQL role name allows
    warnings: list[str]


def create_roles(
    engine: Engine, login: str | None = None, password: str | None = None
) -> RolesReport:
    """Create (or refresh) the roles, grants and policies; turn staff rows into logins.

    ``login`` (with ``password``) is a service login made a member of ``nvadmin_viewer``."""
    if engine.dialect.name != "postgresql":
        raise UserError(
            "database roles exist only on PostgreSQL; protect a SQLite file with "
            "file permissions instead"
        )
    done: list[str] = []
    converted: list[str] = []
    too_long: list[str] = []
    warnings: list[str] = []
    with engine.begin() as connection:
        schema = connection.execute(text("SELECT current_schema()")).scalar_one()
        for role in (STAFF, *GROUPS.values(), VIEWER):
            if not _role_exists(connection, role):
                statement = f"CREATE ROLE {role} NOLOGIN"
                connection.exec_driver_sql(statement)
                done.append(statement)
        if not _role_exists(connection, GATE):
            connection.exec_driver_sql(f"CREATE ROLE {GATE} LOGIN")
            done.append(f"CREATE ROLE {GATE} LOGIN")
        verifier = _password_verifier(connection, GATE, GATE_PASSWORD)
        connection.exec_driver_sql(f"ALTER ROLE {GATE} PASSWORD '{verifier}'")
        for statement in role_statements(connection, schema):
            connection.exec_driver_sql(statement)
            done.append(statement)
        for email, role in connection.execute(text("SELECT email, role FROM staff ORDER BY id")):
            if len(email.encode()) > 63:
                too_long.append(email)
                continue
            q = _quote(connection, email)
            if not _role_exists(connection, email):
                connection.exec_driver_sql(f"CREATE ROLE {q} LOGIN")
                converted.append(email)
            connection.exec_driver_sql(f"GRANT {GROUPS[Role(role)]} TO {q}")
        owner_creates_roles = connection.execute(
            text(
                "SELECT r.rolsuper OR r.rolcreaterole FROM pg_class c "
                "JOIN pg_roles r ON r.oid = c.relowner WHERE c.oid = 'staff'::regclass"
            )
        ).scalar()
        owner = connection.execute(
            text(
                "SELECT r.rolname FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
                "WHERE c.oid = 'staff'::regclass"
            )
        ).scalar_one()
        for builtin, without_it in OWNER_NEEDS.items():
            has_it = connection.execute(
                text(
                    "SELECT rolsuper OR pg_has_role(oid, :builtin, 'USAGE') FROM pg_roles "
                    "WHERE rolname = :owner"
                ),
                {"builtin": builtin, "owner": owner},
            ).scalar()
            if has_it:
                continue
            statement = f"GRANT {builtin} TO {_quote(connection, owner)}"
            try:
                with connection.begin_nested():
                    connection.exec_driver_sql(statement)
                done.append(statement)
            except DBAPIError:
                warnings.append(
                    f"the owner of the audit tables {without_it}: as a superuser, "
                    f"GRANT {builtin} TO {owner}"
                )
        if not owner_creates_roles:
            warnings.append(
                "the owner of the audit tables cannot create roles, so `staff add` will be "
                "refused: as a superuser, ALTER ROLE <owner> CREATEROLE"
            )
        # Passwords live in the server's logins now: no hash stays in nvadmin's tables.
        connection.execute(text("UPDATE staff SET password_hash = '' WHERE password_hash <> ''"))
        if login:
            q = _quote(connection, login)
            if not _role_exists(connection, login):
                connection.exec_driver_sql(
                    f"CREATE ROLE {q} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE"
                )
                done.append(f"CREATE ROLE {q} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE")
            if password:
                verifier = _password_verifier(connection, login, password)
                connection.exec_driver_sql(f"ALTER ROLE {q} PASSWORD '{verifier}'")
                done.append(f"ALTER ROLE {q} PASSWORD '...'")
            connection.exec_driver_sql(f"GRANT {VIEWER} TO {q}")
            done.append(f"GRANT {VIEWER} TO {q}")
    return RolesReport(done, converted, too_long, warnings)


def _password_verifier(connection: Connection, login: str, password: str) -> str:
    """The role's password as the server stores it (SCRAM-SHA-256, or whatever the server's
    ``password_encryption`` asks for), computed here by libpq: only the verifier is sent, so
    the password itself never reaches the server, its statement log or its activity views."""
    pgconn = connection.connection.driver_connection.pgconn  # type: ignore[union-attr]
    verifier = pgconn.encrypt_password(password.encode(), login.encode(), None).decode()
    if "'" in verifier or "\\" in verifier:  # base64 and $ : only; never quote-breaking
        raise UserError("the server returned an unexpected password format")
    return str(verifier)


@dataclass(frozen=True, slots=True)
class ConnectionPrivileges:
    user: str
    superuser: bool
    owns_tables: bool

    @property
    def warning(self) -> str | None:
        """A visible warning when nvadmin could rewrite history through this connection."""
        if self.superuser:
            return (
                f"Connected as the PostgreSQL superuser {self.user!r}: this login could alter "
                "the audit log. Connect with a role made by `nvadmin db roles` instead."
            )
        if self.owns_tables:
            return (
                f"Connected as {self.user!r}, the owner of the audit tables: this login could "
                "drop the append-only protection. Connect with a role made by "
                "`nvadmin db roles` instead."
            )
        return None


def connection_privileges(engine: Engine) -> ConnectionPrivileges | None:
    """Who this engine connects as (PostgreSQL only; None on SQLite)."""
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as connection:
        row = connection.execute(
            text(
                "SELECT current_user, r.rolsuper, "
                "pg_has_role(current_user, c.relowner, 'USAGE') "
                "FROM pg_roles r, pg_class c "
                "WHERE r.rolname = current_user AND c.oid = to_regclass('activity_events')"
            )
        ).one()
    return ConnectionPrivileges(user=row[0], superuser=bool(row[1]), owns_tables=bool(row[2]))
