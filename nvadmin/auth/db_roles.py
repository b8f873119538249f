"""Least privilege on PostgreSQL: the roles nvadmin staff connect as, and a check of who we are.

``nvadmin db roles`` (run once by the database owner) creates two group roles:

``nvadmin_viewer`` - what every nvadmin needs, and nothing more:
  * ``SELECT`` on every table: browsing, search, export, verification and reports only read.
  * ``INSERT`` on ``activity_events``: nvadmin's own events (``activity_log.view``,
    ``activity_log.export``, ``staff.sign_in`` ...). Inserting through the partitioned parent
    needs no privilege on the monthly partitions. No UPDATE, DELETE or TRUNCATE on it, ever
    (the append-only triggers refuse those even for the owner; this refuses them earlier).
  * ``USAGE`` on ``activity_events_id_seq``: the event id default calls ``nextval``.
  * ``INSERT`` and column ``UPDATE (last_seq, last_hash)`` on ``chain_heads``: the chain writer
    locks a workspace's chain by updating its head row (``UPDATE ... RETURNING``, which also
    needs SELECT), creates the head of a workspace's first event, and stores the new head.
    It cannot change which workspace a head belongs to. Rewriting a head cannot hide
    anything: verification recomputes the chain from the events themselves.
  * ``EXECUTE`` on ``nvadmin_ensure_event_partition``, which is made ``SECURITY DEFINER``
    (owner's rights, fixed ``search_path``): a writer can create next month's partition of
    the event table, the only DDL it can cause, without holding CREATE itself.
  * Column ``UPDATE (failed_attempts, locked_until, totp_last_step, last_sign_in_at)`` on
    ``staff`` (sign-in counts failures, locks, remembers the last TOTP step; ``SELECT ... FOR
    UPDATE`` is not used), and ``INSERT`` + column ``UPDATE (revoked_at)`` on
    ``remember_tokens`` with its id sequence (remember-me tokens are issued and revoked).

``nvadmin_staff_admin`` - ``nvadmin_viewer`` plus what the Staff dialog writes: ``INSERT`` on
``staff`` (and its id sequence) and ``UPDATE`` of the account columns (name, role, password
hash, disabled, TOTP secret). Grant it only to the database logins of admin staff.

Neither role may UPDATE, DELETE or TRUNCATE events, change the schema, or touch the
``nvadmin_meta`` settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Engine, text

from nvadmin.errors import UserError

VIEWER = "nvadmin_viewer"
STAFF_ADMIN = "nvadmin_staff_admin"


def _quote(connection: Connection, name: str) -> str:
    return connection.dialect.identifier_preparer.quote(name)


def role_statements(connection: Connection, schema: str) -> list[str]:
    """The SQL ``nvadmin db roles`` runs (also printed by ``--print`` for review)."""
    s = _quote(connection, schema)
    v, a = VIEWER, STAFF_ADMIN
    return [
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM {v}, {a}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {s} FROM {v}, {a}",
        f"GRANT USAGE ON SCHEMA {s} TO {v}",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO {v}",
        f"GRANT INSERT ON {s}.activity_events TO {v}",
        f"GRANT USAGE ON SEQUENCE {s}.activity_events_id_seq TO {v}",
        f"GRANT INSERT, UPDATE (last_seq, last_hash) ON {s}.chain_heads TO {v}",
        f"GRANT UPDATE (failed_attempts, locked_until, totp_last_step, last_sign_in_at) "
        f"ON {s}.staff TO {v}",
        f"GRANT INSERT, UPDATE (revoked_at) ON {s}.remember_tokens TO {v}",
        f"GRANT USAGE ON SEQUENCE {s}.remember_tokens_id_seq TO {v}",
        f"ALTER FUNCTION {s}.nvadmin_ensure_event_partition(date) SECURITY DEFINER "
        f"SET search_path = {s}, pg_temp",
        f"REVOKE EXECUTE ON FUNCTION {s}.nvadmin_ensure_event_partition(date) FROM PUBLIC",
        f"GRANT EXECUTE ON FUNCTION {s}.nvadmin_ensure_event_partition(date) TO {v}",
        f"GRANT {v} TO {a}",
        f"GRANT INSERT, UPDATE (display_name, role, password_hash, disabled, failed_attempts, "
        f"locked_until, totp_secret, totp_last_step) ON {s}.staff TO {a}",
        f"GRANT USAGE ON SEQUENCE {s}.staff_id_seq TO {a}",
    ]


def _role_exists(connection: Connection, name: str) -> bool:
    return bool(
        connection.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name}).first()
    )


def create_roles(
    engine: Engine,
    login: str | None = None,
    password: str | None = None,
    *,
    staff_admin: bool = False,
) -> list[str]:
    """Create (or refresh) the group roles and, if ``login`` is given, a login role that is a
    member of one of them. Returns the statements run, passwords left out."""
    if engine.dialect.name != "postgresql":
        raise UserError(
            "database roles exist only on PostgreSQL; protect a SQLite file with "
            "file permissions instead"
        )
    done: list[str] = []
    with engine.begin() as connection:
        schema = connection.execute(text("SELECT current_schema()")).scalar_one()
        for role in (VIEWER, STAFF_ADMIN):
            if not _role_exists(connection, role):
                statement = f"CREATE ROLE {role} NOLOGIN"
                connection.exec_driver_sql(statement)
                done.append(statement)
        for statement in role_statements(connection, schema):
            connection.exec_driver_sql(statement)
            done.append(statement)
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
            group = STAFF_ADMIN if staff_admin else VIEWER
            connection.exec_driver_sql(f"GRANT {group} TO {q}")
            done.append(f"GRANT {group} TO {q}")
    return done


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
