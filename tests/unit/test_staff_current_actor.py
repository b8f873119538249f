"""An admin demoted or disabled by another admin can no longer manage staff from the session
they opened before: each staff change reads the acting admin's own row, in the transaction
that makes the change. Two admins on two desktops, one SQLite file."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from nvadmin.auth import accounts
from nvadmin.auth.accounts import command_line_operator
from nvadmin.auth.signin import Authenticator
from nvadmin.db.engine import make_engine
from nvadmin.db.models import ActivityEvent, RememberToken, Staff
from nvadmin.errors import AccessDenied
from nvadmin.identity import StaffIdentity

PASSWORD = "quiet-river-stones"
NEW_PASSWORD = "another long password"


@pytest.fixture
def desktops(sqlite_db_url: str) -> Iterator[tuple[Engine, Engine]]:
    """Admin A's and admin B's engines over the same file, with one support account."""
    first, second = make_engine(sqlite_db_url), make_engine(sqlite_db_url)
    operator = command_line_operator()
    for email, role in (("a@n.example", "admin"), ("b@n.example", "admin")):
        accounts.add_staff(first, operator, email, PASSWORD, role, email[0].upper())
    accounts.add_staff(first, operator, "s@n.example", PASSWORD, "support", "Sam")
    yield first, second
    first.dispose()
    second.dispose()


def signed_in(engine: Engine, email: str) -> StaffIdentity:
    return Authenticator(engine).sign_in(email, PASSWORD).identity


def on_record(engine: Engine) -> tuple[list[tuple[object, ...]], list[str], int]:
    """Every staff row's columns, the staff events and the remember-me tokens."""
    with Session(engine) as session:
        rows = [
            tuple(getattr(row, column.key) for column in Staff.__table__.columns)
            for row in session.execute(select(Staff).order_by(Staff.id)).scalars()
        ]
        actions = list(
            session.execute(
                select(ActivityEvent.action)
                .where(ActivityEvent.action.like("staff.%"))
                .order_by(ActivityEvent.seq)
            ).scalars()
        )
        tokens = len(session.execute(select(RememberToken)).all())
    return rows, actions, tokens


def changes(engine: Engine, me: StaffIdentity) -> dict[str, Callable[[], object]]:
    return {
        "add": lambda: accounts.add_staff(engine, me, "new@n.example", PASSWORD, "admin"),
        "disable": lambda: accounts.disable_staff(engine, me, "b@n.example"),
        "enable": lambda: accounts.enable_staff(engine, me, "s@n.example"),
        "unlock": lambda: accounts.unlock_staff(engine, me, "s@n.example"),
        "reset": lambda: accounts.reset_password(engine, me, "s@n.example", NEW_PASSWORD),
        "role": lambda: accounts.change_role(engine, me, "a@n.example", "admin"),
        "totp": lambda: accounts.set_totp(engine, me, "s@n.example", True),
    }


def test_a_demoted_admin_changes_nothing(desktops: tuple[Engine, Engine]) -> None:
    first, second = desktops
    a, b = signed_in(first, "a@n.example"), signed_in(second, "b@n.example")
    accounts.change_role(second, b, "a@n.example", "support")
    before = on_record(first)
    for name, call in changes(first, a).items():
        with pytest.raises(AccessDenied, match=r"^your account is no longer an admin$"):
            call()
        assert on_record(first) == before, name


def test_a_disabled_admin_changes_nothing(desktops: tuple[Engine, Engine]) -> None:
    first, second = desktops
    a, b = signed_in(first, "a@n.example"), signed_in(second, "b@n.example")
    accounts.disable_staff(second, b, "a@n.example")
    before = on_record(first)
    for name, call in changes(first, a).items():
        with pytest.raises(AccessDenied, match=r"^your account is disabled$"):
            call()
        assert on_record(first) == before, name


def test_an_admin_still_admin_goes_on(desktops: tuple[Engine, Engine]) -> None:
    first, second = desktops
    a, b = signed_in(first, "a@n.example"), signed_in(second, "b@n.example")
    accounts.change_role(second, b, "s@n.example", "compliance")  # someone else's change
    accounts.reset_password(first, a, "s@n.example", NEW_PASSWORD)
    assert Authenticator(first).sign_in("s@n.example", NEW_PASSWORD)


def test_the_command_line_is_not_a_signed_in_account(desktops: tuple[Engine, Engine]) -> None:
    # Whoever runs `nvadmin staff` holds the database itself: there is no row to re-read.
    first, _second = desktops
    assert accounts.disable_staff(first, command_line_operator(), "b@n.example").disabled
