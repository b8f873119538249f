"""A2: lockout, uniform refusal, events for every attempt; A3 through sign-in; remember-me."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from nvadmin.auth import accounts, passwords, signin, totp
from nvadmin.auth.accounts import command_line_operator
from nvadmin.auth.policy import SecurityPolicy, load_policy, save_policy
from nvadmin.auth.signin import (
    SIGN_IN_REFUSED,
    Authenticator,
    SecondFactorRequired,
    SignInRefused,
)
from nvadmin.db.models import ActivityEvent, RememberToken, Staff
from nvadmin.identity import Role

PASSWORD = "blue-harbour-lantern"

# These tests move an injected clock or look at Argon2 hashes, which exist on SQLite only: on
# PostgreSQL the server keeps the time and the passwords (tests/pg/test_server_signin.py).
LOCAL_CLOCK = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def auth(engine: Engine, clock: Clock) -> Authenticator:
    return Authenticator(engine, SecurityPolicy(), clock=clock)


def add(
    engine: Engine, email: str = "ana@nvadmin.example", **kwargs: object
) -> accounts.NewAccount:
    return accounts.add_staff(
        engine,
        command_line_operator(),
        email,
        PASSWORD,
        kwargs.pop("role", Role.SUPPORT),
        "Ana Ruiz",
        **kwargs,  # type: ignore[arg-type]
    )


def staff_events(engine: Engine) -> list[ActivityEvent]:
    with Session(engine) as session:
        rows = session.execute(
            select(ActivityEvent)
            .where(ActivityEvent.action.in_(["staff.sign_in", "staff.sign_in_failed"]))
            .order_by(ActivityEvent.seq)
        ).scalars()
        return list(rows)


def refused(auth: Authenticator, email: str, password: str, code: str | None = None) -> str:
    with pytest.raises(SignInRefused) as caught:
        auth.sign_in(email, password, code)
    return str(caught.value)


def test_success_writes_staff_sign_in_event(engine: Engine, auth: Authenticator) -> None:
    add(engine)
    result = auth.sign_in("  Ana@NVADMIN.example ", PASSWORD)
    assert result.identity.email == "ana@nvadmin.example"
    assert result.identity.role is Role.SUPPORT
    assert result.remember_token is None
    (event,) = staff_events(engine)
    assert event.action == "staff.sign_in" and event.outcome == "success"
    assert event.actor_type == "staff" and event.actor_email == "ana@nvadmin.example"
    assert event.user_agent and "nvadmin/" in event.user_agent  # host and OS user
    assert event.category == "sign_ins"


def test_same_message_for_unknown_wrong_locked_disabled(
    engine: Engine, auth: Authenticator
) -> None:
    add(engine)
    add(engine, "gone@nvadmin.example")
    accounts.disable_staff(engine, command_line_operator(), "gone@nvadmin.example")
    messages = {
        "unknown": refused(auth, "nobody@nvadmin.example", PASSWORD),
        "wrong": refused(auth, "ana@nvadmin.example", "wrong-password-here"),
        "disabled": refused(auth, "gone@nvadmin.example", PASSWORD),
    }
    for _ in range(4):
        refused(auth, "ana@nvadmin.example", "wrong-password-here")
    messages["locked, right password"] = refused(auth, "ana@nvadmin.example", PASSWORD)
    assert set(messages.values()) == {SIGN_IN_REFUSED}
    reasons = [e.failure_reason for e in staff_events(engine)]
    assert reasons[:3] == ["unknown_account", "wrong_password", "account_disabled"]
    assert reasons[-1] == "account_locked"
    unknown = staff_events(engine)[0]
    assert unknown.actor_email == "n…@nvadmin.example" and unknown.actor_id is None
    assert all(e.category == "failed_sign_ins" for e in staff_events(engine))


@LOCAL_CLOCK
def test_a_password_that_is_not_utf8_is_counted_and_recorded(
    engine: Engine, auth: Authenticator
) -> None:
    """Bytes that are not UTF-8 piped in (``printf '\\xff\\xfe' | nvadmin export ...``) reach
    Python as lone surrogates: a wrong password like any other, never an encoding error."""
    add(engine)
    not_utf8 = b"\xff\xfe".decode("utf-8", "surrogateescape")
    assert refused(auth, "ana@nvadmin.example", not_utf8) == SIGN_IN_REFUSED
    assert refused(auth, "nobody@nvadmin.example", not_utf8) == SIGN_IN_REFUSED
    with Session(engine) as session:
        assert session.execute(select(Staff.failed_attempts)).scalar_one() == 1
    reasons = [e.failure_reason for e in staff_events(engine)]
    assert reasons == ["wrong_password", "unknown_account"]


@LOCAL_CLOCK
def test_five_failures_lock_for_fifteen_minutes_then_unlock(
    engine: Engine, auth: Authenticator, clock: Clock
) -> None:
    add(engine)
    for _ in range(5):
        refused(auth, "ana@nvadmin.example", "not-the-password")
    with Session(engine) as session:
        row = session.execute(select(Staff)).scalar_one()
    assert row.failed_attempts == 5
    assert row.locked_until == clock.now + timedelta(minutes=15)
    assert "locked_until" in (staff_events(engine)[-1].details or "")
    clock.now += timedelta(minutes=14)
    refused(auth, "ana@nvadmin.example", PASSWORD)  # still locked, right password or not
    clock.now += timedelta(minutes=1, seconds=1)
    assert auth.sign_in("ana@nvadmin.example", PASSWORD).identity.email == "ana@nvadmin.example"
    with Session(engine) as session:
        row = session.execute(select(Staff)).scalar_one()
    assert row.failed_attempts == 0 and row.locked_until is None


@LOCAL_CLOCK
def test_lock_expiry_gives_a_fresh_count(engine: Engine, auth: Authenticator, clock: Clock) -> None:
    add(engine)
    for _ in range(5):
        refused(auth, "ana@nvadmin.example", "not-the-password")
    clock.now += timedelta(minutes=16)
    refused(auth, "ana@nvadmin.example", "not-the-password")  # 1 of 5, not locked again
    assert auth.sign_in("ana@nvadmin.example", PASSWORD)


def test_admin_unlock_ends_lock_at_once(engine: Engine, auth: Authenticator) -> None:
    add(engine)
    for _ in range(5):
        refused(auth, "ana@nvadmin.example", "not-the-password")
    account = accounts.unlock_staff(engine, command_line_operator(), "ana@nvadmin.example")
    assert account.status == "active"
    assert auth.sign_in("ana@nvadmin.example", PASSWORD)


@LOCAL_CLOCK
def test_lockout_is_configurable_per_database(engine: Engine, clock: Clock) -> None:
    save_policy(engine, SecurityPolicy().with_values(max_failed_sign_ins=3, lockout_minutes=60))
    assert load_policy(engine).max_failed_sign_ins == 3
    auth = Authenticator(engine, clock=clock)
    add(engine)
    for _ in range(3):
        refused(auth, "ana@nvadmin.example", "not-the-password")
    with Session(engine) as session:
        row = session.execute(select(Staff)).scalar_one()
    assert row.locked_until == clock.now + timedelta(minutes=60)


@LOCAL_CLOCK
def test_totp_required_then_accepted_once(
    engine: Engine, auth: Authenticator, clock: Clock
) -> None:
    new = add(engine, with_totp=True)
    assert new.totp_secret and new.totp_uri and new.totp_uri.startswith("otpauth://")
    with pytest.raises(SecondFactorRequired):
        auth.sign_in("ana@nvadmin.example", PASSWORD)
    code = totp.code_at(new.totp_secret, clock.now.timestamp())
    assert auth.sign_in("ana@nvadmin.example", PASSWORD, code)
    # the same code a second time, even seconds later, is refused and logged
    clock.now += timedelta(seconds=5)
    refused(auth, "ana@nvadmin.example", PASSWORD, code)
    assert staff_events(engine)[-1].failure_reason == "wrong_code"
    # a code two steps old is outside the window
    clock.now += timedelta(minutes=2)
    stale = totp.code_at(new.totp_secret, clock.now.timestamp() - 90)
    refused(auth, "ana@nvadmin.example", PASSWORD, stale)
    fresh = totp.code_at(new.totp_secret, clock.now.timestamp())
    assert auth.sign_in("ana@nvadmin.example", PASSWORD, fresh)


def test_wrong_password_with_totp_gives_no_hint(engine: Engine, auth: Authenticator) -> None:
    add(engine, with_totp=True)
    assert refused(auth, "ana@nvadmin.example", "wrong-password-here") == SIGN_IN_REFUSED


@LOCAL_CLOCK
def test_unlock_purpose_needs_password_not_code(engine: Engine, auth: Authenticator) -> None:
    add(engine, with_totp=True)
    result = auth.sign_in("ana@nvadmin.example", PASSWORD, purpose="unlock")
    assert result.identity.email == "ana@nvadmin.example"
    refused(auth, "ana@nvadmin.example", "wrong-password-here")


@LOCAL_CLOCK
def test_remember_token_valid_for_12_hours_and_revocable(
    engine: Engine, auth: Authenticator, clock: Clock
) -> None:
    add(engine)
    result = auth.sign_in("ana@nvadmin.example", PASSWORD, remember=True)
    token = result.remember_token
    assert token
    with Session(engine) as session:
        stored = session.execute(select(RememberToken)).scalar_one()
    assert stored.token_hash == signin.token_hash(token) and token.encode() != stored.token_hash
    assert stored.expires_at - stored.created_at == timedelta(hours=12)
    clock.now += timedelta(hours=11, minutes=59)
    assert auth.sign_in_with_token(token) == result.identity
    clock.now += timedelta(minutes=2)
    assert auth.sign_in_with_token(token) is None
    assert staff_events(engine)[-1].failure_reason == "remember_token_expired"
    assert auth.sign_in_with_token("made-up-token") is None

    second = auth.sign_in("ana@nvadmin.example", PASSWORD, remember=True).remember_token
    assert second and auth.sign_in_with_token(second)
    auth.revoke_token(second)
    assert auth.sign_in_with_token(second) is None


def test_password_reset_and_disable_revoke_remember_tokens(
    engine: Engine, auth: Authenticator
) -> None:
    add(engine)
    token = auth.sign_in("ana@nvadmin.example", PASSWORD, remember=True).remember_token
    assert token
    accounts.reset_password(
        engine, command_line_operator(), "ana@nvadmin.example", "a-new-long-password"
    )
    assert auth.sign_in_with_token(token) is None
    refused(auth, "ana@nvadmin.example", PASSWORD)
    token = auth.sign_in("ana@nvadmin.example", "a-new-long-password", remember=True).remember_token
    assert token
    accounts.disable_staff(engine, command_line_operator(), "ana@nvadmin.example")
    assert auth.sign_in_with_token(token) is None


@LOCAL_CLOCK
def test_weak_stored_hash_upgraded_at_sign_in(engine: Engine, auth: Authenticator) -> None:
    from argon2 import PasswordHasher

    add(engine)
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PASSWORD)
    with Session(engine) as session, session.begin():
        session.execute(Staff.__table__.update().values(password_hash=weak))
    auth.sign_in("ana@nvadmin.example", PASSWORD)
    with Session(engine) as session:
        upgraded = session.execute(select(Staff.password_hash)).scalar_one()
    current = passwords.PARAMETERS
    assert upgraded.startswith(f"$argon2id$v=19$m={current.memory_cost},t={current.time_cost}")


def test_text_that_is_no_address_is_kept_only_masked(
    engine: Engine, auth: Authenticator, caplog: pytest.LogCaptureFixture
) -> None:
    """People type their password into the e-mail field: it must not be kept anywhere."""
    add(engine)
    caplog.set_level("INFO")
    refused(auth, "Hunter2-my-own-password", PASSWORD)
    refused(auth, "someone.else@other-clinic.example", PASSWORD)
    refused(auth, "ana@nvadmin.example", "wrong-password-here")
    shown = [e.actor_email for e in staff_events(engine)]
    assert shown == [
        "(not an e-mail address)",
        "s…@other-clinic.example",
        "ana@nvadmin.example",  # a real account is named
    ]
    assert "Hunter2" not in caplog.text and "someone.else" not in caplog.text
