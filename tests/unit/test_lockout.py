"""S2: the lockout holds for ever and exactly, on both backends.

Found on an earlier version: once a first lock had expired, every later failure started the
count again at 1 (unlimited guessing), and concurrent guesses were checked against a row read
without a lock (8 processes x 4 wrong guesses checked 8-12 passwords with a limit of 5).
"""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from nvadmin.auth import accounts
from nvadmin.auth.accounts import command_line_operator
from nvadmin.auth.policy import SecurityPolicy
from nvadmin.auth.signin import Authenticator, SignInRefused
from nvadmin.db.engine import make_engine
from nvadmin.db.models import ActivityEvent, Staff
from nvadmin.identity import Role

EMAIL = "ana@nvadmin.example"
PASSWORD = "blue-harbour-lantern"
WRONG = "not-the-password"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def failure_reasons(engine: Engine) -> list[str | None]:
    with Session(engine) as session:
        return list(
            session.execute(
                select(ActivityEvent.failure_reason)
                .where(ActivityEvent.action == "staff.sign_in_failed")
                .order_by(ActivityEvent.seq)
            ).scalars()
        )


def state(engine: Engine) -> tuple[int, datetime | None]:
    with Session(engine) as session:
        row = session.execute(select(Staff).where(Staff.email == EMAIL)).scalar_one()
        return row.failed_attempts, row.locked_until


def refuse(auth: Authenticator, password: str) -> None:
    with pytest.raises(SignInRefused):
        auth.sign_in(EMAIL, password)


# An injected clock: SQLite's own accounts (the server's lockout: tests/pg/test_server_signin.py).
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_lock_rearms_after_it_expires(engine: Engine) -> None:
    clock = Clock()
    auth = Authenticator(engine, SecurityPolicy(lockout_minutes=1), clock=clock)
    accounts.add_staff(engine, command_line_operator(), EMAIL, PASSWORD, Role.SUPPORT)
    for round_ in range(3):
        for _ in range(5):
            refuse(auth, WRONG)
        failures, locked_until = state(engine)
        assert failures == 5 and locked_until == clock.now + timedelta(minutes=1), round_
        refuse(auth, PASSWORD)  # the right password during the lock
        clock.now += timedelta(seconds=65)  # the lock expires
    # After three expired locks: four failures do not lock, the fifth does.
    for _ in range(4):
        refuse(auth, WRONG)
    assert state(engine) == (4, None)
    refuse(auth, WRONG)
    assert state(engine)[1] is not None
    refuse(auth, PASSWORD)
    reasons = failure_reasons(engine)
    assert reasons.count("wrong_password") == 20
    assert reasons.count("account_locked") == 4


def test_four_failures_then_right_password_signs_in(engine: Engine) -> None:
    auth = Authenticator(engine, SecurityPolicy(), clock=Clock())
    accounts.add_staff(engine, command_line_operator(), EMAIL, PASSWORD, Role.SUPPORT)
    for _ in range(4):
        refuse(auth, WRONG)
    assert auth.sign_in(EMAIL, PASSWORD).identity.email == EMAIL
    assert state(engine) == (0, None)


def _guess(url: str, password: str, tries: int, barrier: Any, results: Any) -> None:
    import dataclasses

    from nvadmin.auth import passwords

    # The same (OWASP minimum) hashing cost as the rest of the suite.
    passwords.PARAMETERS = dataclasses.replace(
        passwords.PARAMETERS, time_cost=2, memory_cost=19 * 1024, parallelism=1
    )
    engine = make_engine(url)
    auth = Authenticator(engine, SecurityPolicy())
    barrier.wait()
    for _ in range(tries):
        try:
            auth.sign_in(EMAIL, password)
            results.put("in")
        except SignInRefused:
            results.put("refused")
    engine.dispose()


def _race(db_url: str, passwords: list[tuple[str, int]]) -> list[str]:
    # Fresh processes (this one runs Qt and pool threads, which a plain fork would copy
    # half-way), forked from one server that has imported this module once instead of
    # eight interpreters each importing it.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    barrier = context.Barrier(len(passwords))
    results = context.Queue()
    workers = [
        context.Process(target=_guess, args=(db_url, password, tries, barrier, results))
        for password, tries in passwords
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=240) for _ in range(sum(t for _, t in passwords))]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    return outcomes


@pytest.mark.slow
def test_eight_processes_check_exactly_five_passwords(db_url: str, engine: Engine) -> None:
    accounts.add_staff(engine, command_line_operator(), EMAIL, PASSWORD, Role.SUPPORT)
    outcomes = _race(db_url, [(WRONG, 4)] * 8)
    assert outcomes == ["refused"] * 32
    reasons = failure_reasons(engine)
    assert reasons.count("wrong_password") == 5  # exactly five passwords were checked
    assert reasons.count("account_locked") == 27
    assert state(engine)[0] == 5
    # and the right password is refused once locked
    refuse(Authenticator(engine, SecurityPolicy()), PASSWORD)


@pytest.mark.slow
def test_right_password_racing_wrong_ones_never_gets_in_after_the_lock(
    db_url: str, engine: Engine
) -> None:
    accounts.add_staff(engine, command_line_operator(), EMAIL, PASSWORD, Role.SUPPORT)
    outcomes = _race(db_url, [(WRONG, 2)] * 7 + [(PASSWORD, 1)])
    with Session(engine) as session:
        events = session.execute(
            select(ActivityEvent.action, ActivityEvent.failure_reason)
            .where(ActivityEvent.action.in_(["staff.sign_in", "staff.sign_in_failed"]))
            .order_by(ActivityEvent.seq)
        ).all()
    reasons = [e.failure_reason for e in events]
    assert outcomes.count("in") <= 1
    if "in" not in outcomes:
        # Refused only because the account was locked, after exactly five failures.
        assert reasons.count("wrong_password") == 5
        assert reasons.count("account_locked") == 15 - 5
    else:
        # It got in while fewer than five failures stood; the count started again after it,
        # so the wrong guesses left could lock the account again only with five more.
        assert reasons.count("wrong_password") + reasons.count("account_locked") == 14
