"""Staff accounts: add, list, disable, enable, unlock, reset passwords, change roles.

Every function takes the acting :class:`StaffIdentity` and checks ``MANAGE_STAFF`` itself, so
the rule holds whether the call comes from the Staff dialog, the command line or a test. Each
change is written to the staff workspace's Activity Log.

The identity is what the account was at sign-in; another admin may have demoted or disabled
it since. So every change also reads the acting admin's own row as it is now, in the
transaction that makes the change, and is refused with :class:`ChangedSinceSignIn` when that
account may no longer manage staff (on PostgreSQL with staff logins the server does this).

The command line acts as :func:`command_line_operator`: whoever runs it already holds database
credentials that can write the staff table, so it is treated as an admin and named after the
operating-system user. That is also how the first admin of a new database is made (there is
no default password anywhere).
"""

from __future__ import annotations

import getpass
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from nvadmin.audit import server_events
from nvadmin.audit.access_log import record_staff_event, staff_draft
from nvadmin.auth import passwords, totp
from nvadmin.db.models import RememberToken, Staff
from nvadmin.errors import AccessDenied, UserError
from nvadmin.identity import Permission, Role, StaffIdentity

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ChangedSinceSignIn(AccessDenied):
    """The acting admin's own account was demoted or disabled after they signed in: nothing
    they ask in this session can change staff any more."""


@dataclass(frozen=True, slots=True)
class StaffAccount:
    """What the Staff dialog and ``staff list`` show (never the hash or TOTP secret)."""

    id: int
    email: str
    display_name: str
    role: Role
    disabled: bool
    failed_attempts: int
    locked_until: datetime | None
    has_totp: bool
    created_at: datetime | None
    last_sign_in_at: datetime | None

    def is_locked(self, now: datetime | None = None) -> bool:
        return self.locked_until is not None and self.locked_until > (now or datetime.now(UTC))

    @property
    def status(self) -> str:
        if self.disabled:
            return "disabled"
        return "locked" if self.is_locked() else "active"

    def identity(self) -> StaffIdentity:
        return StaffIdentity(self.id, self.email, self.display_name, self.role)


@dataclass(frozen=True, slots=True)
class NewAccount:
    account: StaffAccount
    totp_secret: str | None  # shown once, to be entered in an authenticator app

    @property
    def totp_uri(self) -> str | None:
        if self.totp_secret is None:
            return None
        return totp.provisioning_uri(self.totp_secret, self.account.email)


def command_line_operator() -> StaffIdentity:
    user = getpass.getuser()
    return StaffIdentity(
        id=0,
        email=f"{user}@{socket.gethostname()}",
        display_name=f"command line ({user})",
        role=Role.ADMIN,
    )


def normalise_email(email: str) -> str:
    cleaned = email.strip().lower()
    if not _EMAIL.match(cleaned) or len(cleaned) > 320:
        raise UserError(f"not an e-mail address: {email.strip()!r}")
    return cleaned


MAX_NAME_LENGTH = 200  # the staff table's display_name column


def check_name(display_name: str | None) -> str:
    """The name as it will be kept (spaces around it dropped; empty: none given), or the
    reason it cannot be: never cut short without a word."""
    name = (display_name or "").strip()
    if len(name) > MAX_NAME_LENGTH:
        raise UserError(
            f"the name must have at most {MAX_NAME_LENGTH} characters (this one has {len(name)})"
        )
    return name


def parse_role(value: str) -> Role:
    try:
        return Role(value.strip().lower())
    except ValueError:
        choices = ", ".join(r.value for r in Role)
        raise UserError(f"unknown role {value!r}: choose one of {choices}") from None


def _account(row: Any) -> StaffAccount:
    """From a staff row, or a ``staff_directory`` row (which says ``has_totp`` itself)."""
    has_totp = row.has_totp if hasattr(row, "has_totp") else row.totp_secret is not None
    return StaffAccount(
        id=row.id,
        email=row.email,
        display_name=row.display_name,
        role=Role(row.role),
        disabled=row.disabled,
        failed_attempts=row.failed_attempts,
        locked_until=row.locked_until,
        has_totp=bool(has_totp),
        created_at=row.created_at,
        last_sign_in_at=row.last_sign_in_at,
    )


def _record(
    engine: Engine, actor: StaffIdentity, action: str, account: StaffAccount, **details: object
) -> None:
    record_staff_event(
        engine,
        staff_draft(
            actor,
            action,
            {"staff_email": account.email, "staff_role": str(account.role), **details},
            resource_type="staff",
            resource_id=str(account.id),
        ),
    )


def _require_current_admin(session: Session, actor: StaffIdentity) -> None:
    """Refuse unless the acting admin's account, as it is now, may still manage staff.

    A no-op UPDATE reads the row and takes its lock (SQLite: the database's write lock), so
    the account cannot be demoted or disabled between this check and the change's commit.
    An actor with no account in this database (the command line, first-run and demo set-up)
    holds the database's own credentials and has no row to read again."""
    found = (
        session.connection()
        .execute(
            update(Staff)
            .where(Staff.id == actor.id)
            .values(role=Staff.role)
            .returning(Staff.role, Staff.disabled)
        )
        .first()
    )
    if found is None:
        return
    if found.disabled:
        raise ChangedSinceSignIn("your account is disabled")
    now = StaffIdentity(actor.id, actor.email, actor.display_name, Role(found.role))
    if not now.can(Permission.MANAGE_STAFF):
        raise ChangedSinceSignIn("your account is no longer an admin")


def staff_count(engine: Engine) -> int:
    """How many accounts exist (no permission needed: the sign-in dialog asks it to decide
    whether to offer creating the first admin)."""
    with Session(engine) as session:
        return int(session.execute(select(func.count()).select_from(Staff)).scalar_one())


def _directory(engine: Engine, address: str | None = None) -> list[StaffAccount]:
    """Accounts as the Staff dialog shows them. A signed-in PostgreSQL login reads the
    ``staff_directory`` view (it cannot read the secret columns); others read the table."""
    if server_events.is_staff_login(engine):
        query = "SELECT * FROM staff_directory" + (" WHERE email = :e" if address else "")
        try:
            with engine.connect() as connection:
                rows = connection.execute(text(query + " ORDER BY email"), {"e": address}).all()
        except DBAPIError as error:
            # Only the admins' group reads the directory: refused, this login is no longer in
            # it (demoted since it signed in).
            if getattr(error.orig, "sqlstate", None) == "42501":  # insufficient_privilege
                raise ChangedSinceSignIn("your account is no longer an admin") from None
            raise
        return [_account(r) for r in rows]
    with Session(engine) as session:
        statement = select(Staff).order_by(Staff.email)
        if address:
            statement = statement.where(Staff.email == address)
        return [_account(r) for r in session.execute(statement).scalars()]


def list_staff(engine: Engine, actor: StaffIdentity) -> list[StaffAccount]:
    actor.require(Permission.MANAGE_STAFF)
    return _directory(engine)


def find_staff(engine: Engine, actor: StaffIdentity, email: str) -> StaffAccount:
    actor.require(Permission.MANAGE_STAFF)
    found = _directory(engine, normalise_email(email))
    if not found:
        raise UserError(f"no staff account for {email.strip()}")
    return found[0]


# -- PostgreSQL with staff logins: the server keeps login, group and row together ----------

_OPERATIONS = {
    "staff.account_disabled": "disable",
    "staff.account_enabled": "enable",
    "staff.account_unlocked": "unlock",
    "staff.password_reset": "reset_password",
    "staff.role_changed": "set_role",
    "staff.second_factor_changed": "set_totp",
}


_NOT_AN_ADMIN_NOW = "nvadmin: only a signed-in admin manages staff"


def server_identity(engine: Engine) -> bool:
    """Staff accounts are PostgreSQL logins here (``nvadmin db roles`` was run)."""
    from nvadmin.auth.server_signin import uses_server_identity

    return uses_server_identity(engine)


def _manage(
    engine: Engine,
    operation: str,
    address: str,
    *,
    name: str | None = None,
    role: Role | None = None,
    password: str | None = None,
    secret: str | None = None,
) -> None:
    from nvadmin.auth.db_roles import _password_verifier
    from nvadmin.db.engine import translate

    try:
        with engine.begin() as connection:
            verifier = _password_verifier(connection, address, password) if password else None
            connection.execute(
                text("SELECT nvadmin_manage_staff(:op, :address, :name, :role, :verifier, :totp)"),
                {
                    "op": operation,
                    "address": address,
                    "name": name,
                    "role": role.value if role else None,
                    "verifier": verifier,
                    "totp": secret,
                },
            )
    except DBAPIError as error:
        message = str(error.orig).splitlines()[0] if error.orig else str(error)
        if message == _NOT_AN_ADMIN_NOW:  # demoted, disabled or signed out meanwhile
            raise ChangedSinceSignIn(message.removeprefix("nvadmin: ")) from None
        if message.startswith("nvadmin: "):
            raise UserError(message.removeprefix("nvadmin: ")) from None
        raise translate(error) from error


def _server_change(
    engine: Engine, actor: StaffIdentity, address: str, action: str, values: dict[str, object]
) -> StaffAccount:
    """``values`` as the SQLite path would store them, said to the server's function."""
    role = values.get("role")
    _manage(
        engine,
        _OPERATIONS[action],
        address,
        role=Role(str(role)) if role else None,
        password=str(values["password"]) if "password" in values else None,
        secret=str(values["totp_secret"]) if values.get("totp_secret") else None,
    )
    return find_staff(engine, actor, address)


def add_staff(
    engine: Engine,
    actor: StaffIdentity,
    email: str,
    password: str,
    role: Role | str,
    display_name: str | None = None,
    *,
    with_totp: bool = False,
) -> NewAccount:
    actor.require(Permission.MANAGE_STAFF)
    return _insert(engine, actor, email, password, role, display_name, with_totp)


def create_first_admin(
    engine: Engine, email: str, password: str, display_name: str | None = None
) -> NewAccount:
    """The first account of a new database, from the first-run dialog. Refused once any
    account exists, so it cannot be used to add an admin to a database in use."""
    if staff_count(engine):
        raise UserError("this database already has staff accounts: sign in instead")
    identity = StaffIdentity(0, normalise_email(email), "first-run setup", Role.ADMIN)
    return _insert(engine, identity, email, password, Role.ADMIN, display_name, False)


def _insert(
    engine: Engine,
    actor: StaffIdentity,
    email: str,
    password: str,
    role: Role | str,
    display_name: str | None,
    with_totp: bool,
) -> NewAccount:
    address = normalise_email(email)
    chosen_role = role if isinstance(role, Role) else parse_role(role)
    passwords.check_policy(password)
    name = check_name(display_name) or address.split("@")[0][:MAX_NAME_LENGTH]
    secret = totp.new_secret() if with_totp else None
    if server_identity(engine):
        _manage(
            engine, "add", address, name=name, role=chosen_role, password=password, secret=secret
        )
        return NewAccount(find_staff(engine, actor, address), secret)
    row = Staff(
        email=address,
        display_name=name,
        role=chosen_role.value,
        password_hash=passwords.hash_password(password),
        disabled=False,
        failed_attempts=0,
        totp_secret=secret,
        created_at=datetime.now(UTC),
    )
    try:
        with Session(engine, expire_on_commit=False) as session, session.begin():
            _require_current_admin(session, actor)
            session.add(row)
            session.flush()
            account = _account(row)
    except IntegrityError:
        raise UserError(f"a staff account for {address} already exists") from None
    _record(engine, actor, "staff.account_created", account, totp=with_totp)
    return NewAccount(account, secret)


Check = Callable[[Session, StaffAccount], None]
"""A rule about the account to change, as it is, that may refuse the change (UserError)."""


def _change(
    engine: Engine,
    actor: StaffIdentity,
    email: str,
    action: str,
    values: dict[str, object],
    *,
    revoke_tokens: bool = False,
    check: Check | None = None,
    **details: object,
) -> StaffAccount:
    """Change one account, ``check`` first: in the transaction that makes the change, or, where
    the server's function makes it (which keeps the last admin itself, but would record a
    role change to the role held), just before."""
    actor.require(Permission.MANAGE_STAFF)
    address = normalise_email(email)
    if server_identity(engine):
        if check is not None:
            with Session(engine) as session:
                check(session, find_staff(engine, actor, address))
        return _server_change(engine, actor, address, action, values)
    with Session(engine, expire_on_commit=False) as session, session.begin():
        _require_current_admin(session, actor)
        row = session.execute(select(Staff).where(Staff.email == address)).scalar_one_or_none()
        if row is None:
            raise UserError(f"no staff account for {email.strip()}")
        if check is not None:
            check(session, _account(row))
        for name, value in values.items():
            if name == "password":  # this file keeps the Argon2id hash, never the password
                row.password_hash = passwords.hash_password(str(value))
            else:
                setattr(row, name, value)
        if revoke_tokens:
            session.execute(
                update(RememberToken)
                .where(RememberToken.staff_id == row.id, RememberToken.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
        session.flush()
        account = _account(row)
    _record(engine, actor, action, account, **details)
    return account


def _require_other_admin(session: Session, account: StaffAccount) -> None:
    """Refuse to take away the last working admin: nobody could manage staff afterwards."""
    others = session.execute(
        select(func.count())
        .select_from(Staff)
        .where(
            Staff.role == Role.ADMIN.value,
            Staff.disabled.is_(False),
            Staff.email != account.email,
        )
    ).scalar_one()
    if account.role is Role.ADMIN and not others:
        raise UserError(f"{account.email} is the only active admin: add another admin first")


def disable_staff(engine: Engine, actor: StaffIdentity, email: str) -> StaffAccount:
    return _change(
        engine,
        actor,
        email,
        "staff.account_disabled",
        {"disabled": True},
        revoke_tokens=True,
        check=_require_other_admin,
    )


def enable_staff(engine: Engine, actor: StaffIdentity, email: str) -> StaffAccount:
    return _change(engine, actor, email, "staff.account_enabled", {"disabled": False})


def unlock_staff(engine: Engine, actor: StaffIdentity, email: str) -> StaffAccount:
    return _change(
        engine,
        actor,
        email,
        "staff.account_unlocked",
        {"failed_attempts": 0, "locked_until": None},
    )


def reset_password(engine: Engine, actor: StaffIdentity, email: str, password: str) -> StaffAccount:
    actor.require(Permission.MANAGE_STAFF)
    passwords.check_policy(password)
    return _change(
        engine,
        actor,
        email,
        "staff.password_reset",
        {"password": password, "failed_attempts": 0, "locked_until": None},
        revoke_tokens=True,
    )


def change_role(engine: Engine, actor: StaffIdentity, email: str, role: Role | str) -> StaffAccount:
    actor.require(Permission.MANAGE_STAFF)
    new_role = role if isinstance(role, Role) else parse_role(role)

    def check(session: Session, account: StaffAccount) -> None:
        if account.role is new_role:
            # Not a change: recorded, it would claim one and end the remembered sign-ins.
            raise UserError(f"{account.email} is already {new_role.value}: nothing changed")
        if new_role is not Role.ADMIN:
            _require_other_admin(session, account)

    return _change(
        engine,
        actor,
        email,
        "staff.role_changed",
        {"role": new_role.value},
        revoke_tokens=True,
        check=check,
        new_role=new_role.value,
    )


def set_totp(engine: Engine, actor: StaffIdentity, email: str, enabled: bool) -> NewAccount:
    """Turn the second factor on (a fresh secret, returned once) or off."""
    secret = totp.new_secret() if enabled else None
    account = _change(
        engine,
        actor,
        email,
        "staff.second_factor_changed",
        {"totp_secret": secret, "totp_last_step": None},
        totp=enabled,
    )
    return NewAccount(account, secret)
