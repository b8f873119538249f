"""Signing in on PostgreSQL: the staff member connects as their own login.

The server checks the password (SCRAM-SHA-256, or whatever ``pg_hba.conf`` asks: LDAP, PAM,
RADIUS, certificates); nvadmin's functions then check the account (enabled, not locked), the
TOTP code, and open a server-side session (migration 0003). Before the password is tried,
the ``nvadmin_gate`` login reserves an attempt, so nvadmin's own sign-in path checks at most
``max_failed_sign_ins`` passwords before the lock, whatever the concurrency.

The engine returned belongs to the signed-in staff member: every pooled connection joins the
session with its key when it connects, and everything nvadmin reads or writes afterwards is
done as that login, under the server's privileges and row-level security.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, event, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from nvadmin.audit import server_events
from nvadmin.audit.server_events import user_agent
from nvadmin.auth import db_roles
from nvadmin.auth.signin import SecondFactorRequired, SignInRefused
from nvadmin.db.engine import make_engine, translate
from nvadmin.errors import UserError
from nvadmin.identity import Role, StaffIdentity

log = logging.getLogger(__name__)


def uses_server_identity(engine: Engine) -> bool:
    """True when this PostgreSQL database enforces staff identity (``nvadmin db roles`` was
    run: its tables have row-level security)."""
    if engine.dialect.name != "postgresql":
        return False
    with engine.connect() as connection:
        return bool(
            connection.execute(
                text("SELECT relrowsecurity FROM pg_class WHERE oid = to_regclass('staff')")
            ).scalar()
        )


def require_operator_login(engine: Engine, command: str) -> None:
    """Operator commands (verify, checkpoint, flags) act as the connection's own login: the
    table owner or a service login. A staff login that has not signed in sees no rows (row-
    level security), so it would verify or flag nothing: say so instead."""
    if engine.dialect.name != "postgresql" or server_events.is_staff_login(engine):
        return
    with engine.connect() as connection:
        # Direct membership of a staff group (pg_has_role is true for superusers of anything).
        staff = connection.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM pg_auth_members m "
                "JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member "
                "WHERE u.rolname = current_user AND g.rolname = ANY(:groups))"
            ),
            {"groups": list(db_roles.GROUPS.values())},
        ).scalar()
    if staff:
        raise UserError(
            f"`nvadmin {command}` runs as the database owner or a service login; this is a "
            "staff login, which reads nothing before it signs in (use the app instead)"
        )


@dataclass(frozen=True, slots=True)
class ServerSession:
    identity: StaffIdentity
    engine: Engine  # connected as the staff login, every connection in the session
    remember_token: str | None
    session_key: str  # in memory only: joins new connections, unlocks an idle-locked window


# What the server says when it will not let a login in (password, LDAP, PAM, RADIUS and
# certificate methods all say "authentication failed"; a disabled account's login is
# NOLOGIN): each gets the one uniform refusal.
_REFUSALS = ("authentication failed", "is not permitted to log in")


def _is_refused_password(error: OperationalError) -> bool:
    message = str(error.orig or error)
    return any(sign in message for sign in _REFUSALS)


class ServerAuthenticator:
    """Signs a staff member in to one PostgreSQL audit database (``server`` has no user)."""

    def __init__(self, server: URL, **engine_options: Any) -> None:
        self._server = server._replace(username=None, password=None)
        self._options = engine_options

    def _gate(self) -> Engine:
        return make_engine(
            self._server.set(username=db_roles.GATE, password=db_roles.GATE_PASSWORD)
        )

    def sign_in(
        self,
        email: str,
        password: str,
        code: str | None = None,
        *,
        remember: bool = False,
        proof: str | None = None,
        purpose: str = "sign_in",
    ) -> ServerSession:
        """Connect as the staff login and open (or, to unlock, rejoin) a server session.

        ``proof`` stands in for the TOTP code: a remember-me token, or for ``purpose="unlock"``
        the key of the session being unlocked."""
        address = email.strip().lower()
        agent = user_agent()
        gate = self._gate()
        try:
            with gate.begin() as connection:
                attempt = connection.execute(
                    text("SELECT nvadmin_sign_in_attempt(:e, :a)"), {"e": address, "a": agent}
                ).scalar()
            if attempt is None:
                raise SignInRefused()
            staff = make_engine(
                self._server.set(username=address, password=password), **self._options
            )
            try:
                with staff.begin() as connection:
                    row = connection.execute(
                        text(
                            "SELECT * FROM nvadmin_sign_in(:attempt, :code, :purpose, "
                            ":remember, :proof, :agent)"
                        ),
                        {
                            "attempt": attempt,
                            "code": code,
                            "purpose": purpose,
                            "remember": remember,
                            "proof": proof,
                            "agent": agent,
                        },
                    ).one()
            except OperationalError as error:
                staff.dispose()
                if not _is_refused_password(error):
                    raise translate(error) from error
                with gate.begin() as connection:
                    connection.execute(
                        text("SELECT nvadmin_sign_in_failed(:t, :a)"), {"t": attempt, "a": agent}
                    )
                raise SignInRefused() from None
        except SQLAlchemyError as error:
            raise translate(error) from error
        finally:
            gate.dispose()
        if row.status == "code_required":
            staff.dispose()
            raise SecondFactorRequired()
        if row.status != "ok":
            staff.dispose()
            raise SignInRefused()
        _join_on_connect(staff, row.session_key)
        server_events.mark_staff_login(staff)
        identity = StaffIdentity(row.staff_id, row.email, row.display_name, Role(row.role))
        return ServerSession(identity, staff, row.new_remember_token, row.session_key)


def _join_on_connect(engine: Engine, key: str) -> None:
    """Every new connection of the pool joins the session (the first already has)."""

    @event.listens_for(engine, "connect")
    def _join(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT nvadmin_resume_session(%s)", (key,))
            joined = cursor.fetchone()[0]
        dbapi_connection.commit()
        if not joined:
            log.info("session ended on the server: this connection reads nothing")


def read_connection_joiner(key: str) -> Callable[[Any, bool], bool]:
    """How a read connection joins the session (see :mod:`nvadmin.db.routing`): on the
    primary as every pooled connection does; on a hot standby, which takes no writes, by
    carrying the key in its own setting (migration 0008). False when this standby has not
    replayed the sign-in yet: the read goes to the next server."""

    def join(dbapi_connection: Any, in_recovery: bool) -> bool:
        with dbapi_connection.cursor() as cursor:
            if in_recovery:
                cursor.execute("SELECT set_config('nvadmin.session_key', %s, false)", (key,))
                cursor.execute("SELECT nvadmin_session_verified()")
            else:
                cursor.execute("SELECT nvadmin_resume_session(%s)", (key,))
            return bool(cursor.fetchone()[0])

    return join
