"""A hostile insider with a staff login, or anyone with the public gate login, tried with psql.

Found on migration 0010 (fixed by 0011): an idle connection of the gate login
holding a workspace's writer lock *outside* a transaction stopped every sign-in; a gate
transaction left open after ``nvadmin_sign_in_attempt('victim@…')`` kept the victim's
account locked (no sign-in, no admin unlock); a transaction holding the clean-up of day-old
attempts or ended connections open stopped every sign-in. And a query with a leakproof
condition told whether an unopened workspace held matching events (fixed in the events'
policy, :data:`nvadmin.auth.db_roles.POLICIES`).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from nvadmin.auth import db_roles
from nvadmin.db.engine import make_engine
from nvadmin.identity import Role
from tests.pg.test_held_logs import Background, begun, ended, policy
from tests.pg.test_security_boundary import Site, scalar, site

__all__ = ["site"]  # the fixture, shared with the other boundary tests

pytestmark = pytest.mark.pg

CHAIN_LOCK = 0x6E764348  # migration 0010's writer lock of a workspace's chain
SIGN_IN = "SELECT status FROM nvadmin_sign_in(NULL, NULL, 'sign_in', false, NULL, 'psql')"
# Only a guard against a hang when the hole is open: a refused or stuck call fails the test.
GUARD = "SET LOCAL statement_timeout = '20s'"


def gate(site: Site) -> Engine:
    url = make_url(site.url).set(username=db_roles.GATE, password=db_roles.GATE_PASSWORD)
    return make_engine(url)


def staff_workspace(site: Site) -> int:
    return int(scalar(site.owner, "SELECT nvadmin_staff_workspace()"))  # type: ignore[call-overload]


def sign_ins(site: Site, role: Role) -> int:
    return int(
        scalar(  # type: ignore[call-overload]
            site.owner,
            "SELECT count(*) FROM activity_events WHERE action = 'staff.sign_in' "
            "AND actor_email = :e",
            e=site.emails[role],
        )
    )


def signs_in(site: Site, role: Role) -> str:
    """``role``'s login signs in with psql, guarded against a hang."""
    with site.login(site.emails[role]).begin() as connection:
        connection.exec_driver_sql(GUARD)
        return str(connection.execute(text(SIGN_IN)).scalar())


# -- 1. a writer lock held by a session, outside any transaction -----------------------------


@contextmanager
def holding_outside_a_transaction(engine: Engine, workspace: int, how: str) -> Iterator[int]:
    """A connection that holds ``workspace``'s writer lock as a session-level advisory lock:
    idle, or running one short statement after another (its transaction never gets old)."""
    holder = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    stop = threading.Event()
    pinging: Background | None = None
    try:
        pid = begun(holder)
        holder.exec_driver_sql(f"SELECT pg_advisory_lock({CHAIN_LOCK}, {workspace})")
        if how == "pinging":

            def ping() -> None:
                while not stop.is_set():
                    holder.exec_driver_sql("SELECT pg_sleep(0.2)")

            pinging = Background(ping)
        yield pid
    finally:
        stop.set()
        if pinging is not None:
            pinging.result()
        holder.invalidate()


@pytest.mark.parametrize(
    ("who", "how"), [("gate", "idle"), ("support", "idle"), ("support", "pinging")]
)
def test_a_writer_lock_held_outside_a_transaction_stops_no_sign_in(
    site: Site, who: str, how: str
) -> None:
    policy(site, writer_hold_seconds=1, writer_wait_seconds=5)
    holder = gate(site) if who == "gate" else site.sign_in(Role.SUPPORT)
    with holding_outside_a_transaction(holder, staff_workspace(site), how) as pid:
        # before (idle): "… is held by nvadmin_gate"; pinging is caught by 0011's own rule now
        assert signs_in(site, Role.COMPLIANCE) == "ok"
        assert ended(site, pid)
    assert sign_ins(site, Role.COMPLIANCE) == 1


# -- 2. an account held shut by an attempt left open ------------------------------------------


@contextmanager
def attempt_left_open(site: Site, email: str) -> Iterator[int]:
    """The gate reserves a sign-in attempt for ``email`` and leaves its transaction open."""
    sitter = gate(site).connect()
    try:
        pid = begun(sitter)
        token = sitter.execute(text("SELECT nvadmin_sign_in_attempt(:e, 'psql')"), {"e": email})
        assert token.scalar()
        yield pid
    finally:
        sitter.invalidate()


def unlocks(site: Site, email: str) -> None:
    with site.sign_in(Role.ADMIN).begin() as connection:
        connection.exec_driver_sql(GUARD)
        connection.execute(
            text("SELECT nvadmin_manage_staff('unlock', :e, NULL, NULL, NULL, NULL)"), {"e": email}
        )


def test_an_attempt_left_open_by_the_gate_does_not_hold_the_account(site: Site) -> None:
    policy(site, writer_hold_seconds=1)
    victim = site.emails[Role.COMPLIANCE]
    with attempt_left_open(site, victim) as sitter:
        assert signs_in(site, Role.COMPLIANCE) == "ok"  # before: waited until the gate let go
        assert ended(site, sitter)
    with attempt_left_open(site, victim) as sitter:
        unlocks(site, victim)  # an admin's unlock of the account too
        assert ended(site, sitter)
    assert sign_ins(site, Role.COMPLIANCE) == 1
    assert scalar(site.owner, "SELECT count(*) FROM activity_events WHERE "
                  "action = 'staff.account_unlocked'") == 1  # fmt: skip


# -- 3. housekeeping held open ------------------------------------------------------------------


def stale_attempt(site: Site) -> None:
    with site.owner.begin() as connection:
        connection.execute(
            text("INSERT INTO staff_sign_in_attempts VALUES (sha256(:t), NULL, 'old@n.example', "
                 "now() - interval '2 days', NULL)"),
            {"t": uuid.uuid4().bytes},
        )  # fmt: skip


def stale_connection(site: Site) -> None:
    """A connection of an ended session that the server no longer has."""
    with site.owner.begin() as connection:
        connection.execute(
            text(
                "WITH s AS (INSERT INTO staff_sessions (staff_id, key_hash, second_factor, "
                "started_at, expires_at, ended_at) SELECT id, sha256(:k), false, now(), now(), "
                "now() FROM staff WHERE email = :e RETURNING id) "
                "INSERT INTO staff_session_backends SELECT -1, now() - interval '1 day', :e, id "
                "FROM s"
            ),
            {"k": uuid.uuid4().bytes, "e": site.emails[Role.SUPPORT]},
        )


def test_the_gate_s_clean_up_held_open_stops_no_attempt(site: Site) -> None:
    stale_attempt(site)
    sitter = gate(site).connect()
    try:
        begun(sitter)  # an unknown address: no account's lock, only the clean-up is held
        sitter.execute(text("SELECT nvadmin_sign_in_attempt('nobody@n.example', 'psql')"))
        with gate(site).begin() as connection:
            connection.exec_driver_sql(GUARD)
            token = connection.execute(
                text("SELECT nvadmin_sign_in_attempt(:e, 'psql')"),
                {"e": site.emails[Role.COMPLIANCE]},
            ).scalar()
        assert token  # before: waited for the sitter's deletion of the day-old attempt
    finally:
        sitter.invalidate()


def test_the_sessions_clean_up_held_open_stops_no_sign_in(site: Site) -> None:
    policy(site, writer_hold_seconds=1)
    stale_connection(site)
    sitter = site.login(site.emails[Role.SUPPORT]).connect()
    try:
        pid = begun(sitter)
        assert sitter.execute(text(SIGN_IN)).scalar() == "ok"  # and the transaction stays open
        assert signs_in(site, Role.COMPLIANCE) == "ok"  # before: waited on the clean-up
        assert ended(site, pid)  # it sat on the staff log too
    finally:
        sitter.invalidate()
    assert sign_ins(site, Role.COMPLIANCE) == 1


# -- 4. an unopened log answers no question ------------------------------------------------


def test_an_unopened_log_answers_no_question(site: Site) -> None:
    """``WHERE workspace_id = W AND actor_email = X`` (or ``patient_id = …``, or a time range)
    on a workspace the session has not opened. The events' policy refused such a query only
    when a row passed its own conditions (PostgreSQL applies leakproof ones first, and in
    index lookups), else answered 0: the refusal read the log bit by bit, with no event. Now
    a closed log is simply not there: the same answer, whatever it holds."""
    engine = site.sign_in(Role.SUPPORT)
    actor = scalar(site.owner, "SELECT actor_email FROM activity_events WHERE workspace_id = :w "
                   "LIMIT 1", w=site.workspace)  # fmt: skip
    probe = "SELECT count(*) FROM activity_events WHERE workspace_id = :w AND actor_email = :e"
    answers = [scalar(engine, probe, w=site.workspace, e=e) for e in (actor, "nobody@n.example")]
    assert answers == [0, 0]
    assert not scalar(site.owner, "SELECT count(*) FROM activity_events WHERE "
                      "action = 'activity_log.view'")  # fmt: skip
