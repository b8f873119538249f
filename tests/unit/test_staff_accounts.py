"""Staff account management through the service layer."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from nvadmin.auth import accounts
from nvadmin.auth.accounts import command_line_operator
from nvadmin.auth.signin import Authenticator
from nvadmin.db.models import ActivityEvent, Staff
from nvadmin.demo.accounts import create_demo_accounts, demo_accounts, is_demo_database
from nvadmin.errors import UserError
from nvadmin.identity import Role

OP = command_line_operator()


def test_add_list_disable_enable(engine: Engine) -> None:
    new = accounts.add_staff(
        engine, OP, "Bo@Clinic.Example", "long-enough-pass", "compliance", "Bo"
    )
    assert new.account.email == "bo@clinic.example" and new.account.role is Role.COMPLIANCE
    assert new.totp_secret is None
    listed = accounts.list_staff(engine, OP)
    assert [a.email for a in listed] == ["bo@clinic.example"]
    assert listed[0].status == "active"
    with Session(engine) as session:
        stored = session.execute(select(Staff.password_hash)).scalar_one()
    if engine.dialect.name == "postgresql":
        # the account is a login whose SCRAM verifier the server keeps; nothing in the table
        with engine.connect() as connection:
            verifier = connection.execute(
                text("SELECT rolpassword FROM pg_authid WHERE rolname = 'bo@clinic.example'")
            ).scalar_one()
        assert stored == "" and verifier.startswith("SCRAM-SHA-256$")
    else:
        assert stored.startswith("$argon2id$") and "long-enough" not in stored
    accounts.add_staff(engine, OP, "admin@clinic.example", "long-enough-pass", "admin")
    assert accounts.disable_staff(engine, OP, "bo@clinic.example").status == "disabled"
    assert accounts.enable_staff(engine, OP, "bo@clinic.example").status == "active"
    with Session(engine) as session:
        actions = (
            session.execute(
                select(ActivityEvent.action).where(ActivityEvent.category == "staff_accounts")
            )
            .scalars()
            .all()
        )
    assert actions == [
        "staff.account_created",
        "staff.account_created",
        "staff.account_disabled",
        "staff.account_enabled",
    ]


@pytest.mark.parametrize(
    ("email", "password", "role", "message"),
    [
        ("not-an-email", "long-enough-pass", "support", "not an e-mail"),
        ("a@b.example", "short", "support", "at least 12"),
        ("a@b.example", "long-enough-pass", "superuser", "unknown role"),
    ],
)
def test_add_rejects_bad_input(
    engine: Engine, email: str, password: str, role: str, message: str
) -> None:
    with pytest.raises(UserError, match=message):
        accounts.add_staff(engine, OP, email, password, role)


def test_duplicate_email_is_a_plain_error(engine: Engine) -> None:
    accounts.add_staff(engine, OP, "a@b.example", "long-enough-pass", "support")
    with pytest.raises(UserError, match="already exists"):
        accounts.add_staff(engine, OP, "A@B.example", "long-enough-pass", "admin")


def test_last_admin_cannot_be_disabled_or_demoted(engine: Engine) -> None:
    accounts.add_staff(engine, OP, "root@b.example", "long-enough-pass", "admin")
    with pytest.raises(UserError, match="only active admin"):
        accounts.disable_staff(engine, OP, "root@b.example")
    with pytest.raises(UserError, match="only active admin"):
        accounts.change_role(engine, OP, "root@b.example", "support")
    accounts.add_staff(engine, OP, "second@b.example", "long-enough-pass", "admin")
    accounts.change_role(engine, OP, "root@b.example", "support")


def test_first_admin_only_on_empty_database(engine: Engine) -> None:
    assert accounts.staff_count(engine) == 0
    first = accounts.create_first_admin(engine, "boss@b.example", "long-enough-pass", "Boss")
    assert first.account.role is Role.ADMIN
    with pytest.raises(UserError, match="already has staff"):
        accounts.create_first_admin(engine, "intruder@b.example", "long-enough-pass")


def test_unknown_account_is_a_plain_error(engine: Engine) -> None:
    with pytest.raises(UserError, match="no staff account"):
        accounts.unlock_staff(engine, OP, "nobody@b.example")


def test_demo_accounts_only_shown_on_demo_database(engine: Engine) -> None:
    assert not is_demo_database(engine)
    assert demo_accounts(engine) == []
    created = create_demo_accounts(engine)
    assert {role for _, _, role in created} == {"support", "compliance", "admin"}
    assert is_demo_database(engine)
    assert demo_accounts(engine) == created
    auth = Authenticator(engine)
    for email, password, role in created:
        assert auth.sign_in(email, password).identity.role == role
