"""A2/A3/S2 on PostgreSQL, where the server checks passwords and keeps time.

The lock's expiry is simulated by moving ``locked_until`` into the past as the owner: the
server's own clock cannot be moved.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from nvadmin.auth import accounts, totp
from nvadmin.auth.accounts import command_line_operator
from nvadmin.auth.signin import Authenticator, SecondFactorRequired, SignInRefused
from nvadmin.db.engine import make_engine
from nvadmin.identity import Role

pytestmark = pytest.mark.pg

EMAIL = "ana@nvadmin.example"
PASSWORD = "blue-harbour-lantern"
WRONG = "not-the-password"


@pytest.fixture
def owner(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


def refuse(auth: Authenticator, password: str, code: str | None = None) -> None:
    with pytest.raises(SignInRefused):
        auth.sign_in(EMAIL, password, code)


def state(owner: Engine) -> tuple[int, bool]:
    with owner.connect() as connection:
        failures, locked = connection.execute(
            text("SELECT failed_attempts, locked_until > now() FROM staff WHERE email = :e"),
            {"e": EMAIL},
        ).one()
    return failures, bool(locked)


def expire_lock(owner: Engine) -> None:
    with owner.begin() as connection:
        connection.execute(
            text(
                "UPDATE staff SET locked_until = now() - interval '1 second' "
                "WHERE locked_until IS NOT NULL"
            )
        )


def reasons(owner: Engine) -> list[str]:
    with owner.connect() as connection:
        return [
            r[0]
            for r in connection.execute(
                text(
                    "SELECT failure_reason FROM activity_events "
                    "WHERE action = 'staff.sign_in_failed' ORDER BY seq"
                )
            )
        ]


def test_lock_holds_and_rearms_after_each_expiry(owner: Engine) -> None:
    accounts.add_staff(owner, command_line_operator(), EMAIL, PASSWORD, Role.SUPPORT)
    auth = Authenticator(owner)
    for _round in range(3):
        for _ in range(5):
            refuse(auth, WRONG)
        assert state(owner) == (5, True)
        refuse(auth, PASSWORD)  # the right password during the lock
        expire_lock(owner)
    for _ in range(4):
        refuse(auth, WRONG)
    assert state(owner) == (4, False)
    result = auth.sign_in(EMAIL, PASSWORD)
    assert result.engine is not None and result.identity.email == EMAIL
    result.engine.dispose()
    assert state(owner) == (0, False)
    assert reasons(owner).count("wrong_password") == 19
    assert reasons(owner).count("account_locked") == 3


def test_lockout_policy_comes_from_the_database(owner: Engine) -> None:
    with owner.begin() as connection:
        connection.execute(
            text("INSERT INTO nvadmin_meta VALUES ('security.max_failed_sign_ins', '3')")
        )
    accounts.add_staff(owner, command_line_operator(), EMAIL, PASSWORD, Role.SUPPORT)
    auth = Authenticator(owner)
    for _ in range(3):
        refuse(auth, WRONG)
    assert state(owner) == (3, True)


def test_totp_once_and_unlock_only_with_the_live_session(owner: Engine, pg_url: str) -> None:
    new = accounts.add_staff(
        owner, command_line_operator(), EMAIL, PASSWORD, Role.COMPLIANCE, with_totp=True
    )
    assert new.totp_secret
    auth = Authenticator(owner)
    with pytest.raises(SecondFactorRequired):
        auth.sign_in(EMAIL, PASSWORD)
    refuse(auth, WRONG)  # a wrong password says nothing about the code
    code = totp.code_at(new.totp_secret, datetime.now(UTC).timestamp())
    signed_in = auth.sign_in(EMAIL, PASSWORD, code)
    assert signed_in.session_key and signed_in.engine is not None
    refuse(auth, PASSWORD, code)  # the same code again
    # unlocking the window: the password and the session's key, no code
    again = auth.sign_in(EMAIL, PASSWORD, purpose="unlock", proof=signed_in.session_key)
    assert again.session_key == signed_in.session_key
    assert again.engine is not None
    again.engine.dispose()
    # "unlock" without the session's key does not skip the code (psql could try it)
    with pytest.raises(SignInRefused):
        auth.sign_in(EMAIL, PASSWORD, purpose="unlock", proof="made-up")
    raw = make_engine(make_url(pg_url).set(username=EMAIL, password=PASSWORD))
    with raw.begin() as connection:
        status = connection.execute(
            text("SELECT status FROM nvadmin_sign_in(NULL, NULL, 'unlock', false, NULL, NULL)")
        ).scalar()
    assert status == "refused"
    assert raw.connect().execute(text("SELECT count(*) FROM workspaces")).scalar() == 0
    raw.dispose()
    signed_in.engine.dispose()


def test_remember_token_skips_the_code_until_revoked(owner: Engine) -> None:
    new = accounts.add_staff(
        owner, command_line_operator(), EMAIL, PASSWORD, Role.SUPPORT, with_totp=True
    )
    assert new.totp_secret
    auth = Authenticator(owner)
    code = totp.code_at(new.totp_secret, datetime.now(UTC).timestamp())
    first = auth.sign_in(EMAIL, PASSWORD, code, remember=True)
    token = first.remember_token
    assert token and first.engine is not None
    second = auth.sign_in(EMAIL, PASSWORD, proof=token)  # no code needed
    assert second.identity.email == EMAIL and second.engine is not None
    Authenticator(second.engine).revoke_token(token)  # signing out revokes it
    with pytest.raises(SecondFactorRequired):
        auth.sign_in(EMAIL, PASSWORD, proof=token)
    # the revoked session's connections read nothing any more
    with second.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM workspaces")).scalar() == 0
    for engine in (first.engine, second.engine):
        engine.dispose()


def test_reset_and_disable_end_sessions_and_tokens(owner: Engine) -> None:
    accounts.add_staff(owner, command_line_operator(), EMAIL, PASSWORD, Role.SUPPORT)
    auth = Authenticator(owner)
    session = auth.sign_in(EMAIL, PASSWORD, remember=True)
    assert session.engine is not None
    accounts.reset_password(owner, command_line_operator(), EMAIL, "a-new-long-password")
    with session.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM workspaces")).scalar() == 0
    session.engine.dispose()
    refuse(auth, PASSWORD)
    fresh = auth.sign_in(EMAIL, "a-new-long-password")
    assert fresh.engine is not None
    fresh.engine.dispose()
    accounts.disable_staff(owner, command_line_operator(), EMAIL)
    refuse(auth, "a-new-long-password")  # NOLOGIN: the server refuses the connection
    assert reasons(owner)[-1] == "account_disabled"


def test_database_not_converted_says_what_to_do(empty_pg_url: str) -> None:
    from nvadmin.db import migrate

    engine = make_engine(empty_pg_url)
    migrate.upgrade(engine)
    with pytest.raises(Exception, match="nvadmin db roles"):
        Authenticator(engine).sign_in(EMAIL, PASSWORD)
    engine.dispose()


def test_db_roles_turns_argon2_accounts_into_logins(
    owner: Engine, pg_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An older database: staff rows with Argon2 hashes, made before staff were logins.
    `nvadmin db roles` gives each a login in its group, keeps no hash, and says who needs a
    password; after `staff reset-password` the account signs in as its own login."""
    import io

    from nvadmin.__main__ import main
    from nvadmin.auth import passwords
    from nvadmin.db.models import Staff

    with Session(owner) as session, session.begin():
        session.add(
            Staff(
                email="old@nvadmin.example",
                display_name="Old Account",
                role="compliance",
                password_hash=passwords.hash_password(PASSWORD),
                disabled=False,
                failed_attempts=0,
            )
        )
    assert main(["--database", pg_url, "db", "roles"]) == 0
    out = capsys.readouterr().out
    assert "old@nvadmin.example: has a login now" in out and "reset-password" in out
    with owner.connect() as connection:
        stored = connection.execute(
            text("SELECT password_hash FROM staff WHERE email = 'old@nvadmin.example'")
        ).scalar_one()
        member = connection.execute(
            text("SELECT pg_has_role('old@nvadmin.example', 'nvadmin_compliance', 'MEMBER')")
        ).scalar_one()
    assert stored == "" and member
    with pytest.raises(SignInRefused):  # the old password is gone with the hash
        Authenticator(owner).sign_in("old@nvadmin.example", PASSWORD)
    monkeypatch.setattr("sys.stdin", io.StringIO("a-brand-new-password\n"))
    argv = ["--database", pg_url, "staff", "reset-password", "old@nvadmin.example"]
    assert main([*argv, "--password-stdin"]) == 0
    result = Authenticator(owner).sign_in("old@nvadmin.example", "a-brand-new-password")
    assert result.identity.role is Role.COMPLIANCE and result.engine is not None
    result.engine.dispose()


@pytest.mark.parametrize(
    "argv",
    [
        ["verify", "--workspace", "riverside"],
        ["flags", "--workspace", "riverside", "--last", "24h"],
        ["checkpoint", "--workspace", "riverside"],
    ],
)
def test_operator_commands_refuse_a_staff_login_that_would_read_nothing(
    owner: Engine, pg_url: str, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """With a staff member's own login and no sign-in, row-level security shows no rows: the
    command must say so, not report an empty (or "intact") log."""
    from nvadmin.__main__ import main
    from tests.factories import add_workspace, draft, write

    write(owner, add_workspace(owner), [draft(i) for i in range(3)])
    accounts.add_staff(owner, command_line_operator(), EMAIL, PASSWORD, Role.COMPLIANCE)
    as_staff = make_url(pg_url).set(username=EMAIL, password=PASSWORD)
    assert main(["--database", as_staff.render_as_string(hide_password=False), *argv]) == 1
    assert "this is a staff login" in capsys.readouterr().err
