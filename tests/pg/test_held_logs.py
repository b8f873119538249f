"""A staff login with psql can neither read a log off the record through a rollback nor stop
everyone else's work by holding a transaction open (migration 0010).

Found on the previous version: ``BEGIN; SELECT nvadmin_record_access(…); SELECT … FROM
activity_events; ROLLBACK`` read a workspace's log and left no event; ``BEGIN; SELECT
nvadmin_record_access(…);`` left open stopped every other staff member's views of that
workspace (and, on the staff workspace, every sign-in) for as long as it stayed open; a month's
partition made in an open transaction stopped every read of every log.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from sqlalchemy import Connection, Engine, text

from nvadmin.audit import verify
from nvadmin.audit.access_log import record_view
from nvadmin.auth.accounts import command_line_operator
from nvadmin.db import partitions
from nvadmin.errors import DatabaseUnavailable
from nvadmin.identity import Role, StaffIdentity
from nvadmin.query.filters import EventFilter
from tests.pg.test_security_boundary import Site, scalar, site
from tests.waiting import HANG_GUARD_MS

__all__ = ["site"]  # the fixture, shared with the other boundary tests

pytestmark = pytest.mark.pg

GUARD_S = HANG_GUARD_MS / 1000
RECORD = "SELECT nvadmin_record_access(:w, :a, '{}', 'activity_log', :r, 'psql')"


def policy(site: Site, **seconds: int) -> None:
    with site.owner.begin() as connection:
        for name, value in seconds.items():
            connection.execute(
                text("INSERT INTO nvadmin_meta VALUES (:k, :v)"),
                {"k": f"security.{name}", "v": str(value)},
            )


def views(site: Site, role: Role) -> int:
    return int(
        scalar(  # type: ignore[arg-type]
            site.owner,
            "SELECT count(*) FROM activity_events WHERE workspace_id = :w "
            "AND action = 'activity_log.view' AND actor_email = :e",
            w=site.workspace,
            e=site.emails[role],
        )
    )


def view_of(site: Site, engine: Engine, workspace: int | None = None) -> None:
    identity = StaffIdentity(0, "claimed@n.example", "claimed", Role.SUPPORT)  # server names it
    record_view(engine, identity, EventFilter(workspace_ids=(workspace or site.workspace,)))


class Background:
    """``work`` on a thread of its own; ``result()`` waits for it (a guard against a hang) and
    returns what it raised, if anything."""

    def __init__(self, work: Callable[[], object]) -> None:
        self.error: BaseException | None = None

        def run() -> None:
            try:
                work()
            except BaseException as error:  # handed to the test
                self.error = error

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def result(self) -> BaseException | None:
        self.thread.join(GUARD_S)
        assert not self.thread.is_alive(), "still waiting"
        return self.error


def until(condition: Callable[[], bool]) -> None:
    """Wait for a state of the server (another session's lock wait), guarded."""
    deadline = time.monotonic() + GUARD_S
    while not condition():
        assert time.monotonic() < deadline, "the awaited state never came"
        time.sleep(0.05)


def waiting_for_a_lock(site: Site, login: str) -> Callable[[], bool]:
    return lambda: bool(
        scalar(
            site.owner,
            "SELECT count(*) FROM pg_stat_activity WHERE usename = :u AND wait_event_type = 'Lock'",
            u=login,
        )
    )


def begun(connection: Connection) -> int:
    """Begin a transaction on ``connection``; its server process id."""
    return int(connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


def ended(site: Site, pid: int) -> bool:
    """Whether the server has ended session ``pid`` (asked of the server: the session may be
    in the middle of a statement on another thread)."""
    return not scalar(site.owner, "SELECT count(*) FROM pg_stat_activity WHERE pid = :p", p=pid)


# -- 1. a read is on record only once its access is committed --------------------------------


@pytest.mark.parametrize("savepoint", [False, True], ids=["transaction", "savepoint"])
def test_a_read_in_the_transaction_that_records_its_access_is_refused(
    site: Site, savepoint: bool
) -> None:
    engine = site.sign_in(Role.SUPPORT)
    with engine.connect() as connection:
        transaction = connection.begin()
        if savepoint:
            connection.exec_driver_sql("SAVEPOINT s")
        connection.execute(text(RECORD), {"w": site.workspace, "a": "activity_log.view", "r": "x"})
        if savepoint:
            connection.exec_driver_sql("RELEASE SAVEPOINT s")
        read = connection.execute(
            text("SELECT count(*) FROM activity_events WHERE workspace_id = :w"),
            {"w": site.workspace},
        ).scalar()
        assert read == 0  # in that transaction the log stays closed
        transaction.rollback()
    assert views(site, Role.SUPPORT) == 0  # nothing was read, and nothing is on record
    view_of(site, engine)  # its own transaction, committed: then the log opens
    with engine.connect() as connection:
        statement = "SELECT count(*) FROM activity_events WHERE workspace_id = :w"
        assert connection.execute(text(statement), {"w": site.workspace}).scalar() == 6
    assert views(site, Role.SUPPORT) == 1


# -- 2. a session sitting on a log is ended; the others' work goes on -------------------------


@contextmanager
def sitting(site: Site, workspace: int, action: str, how: str) -> Iterator[int]:
    """A support login's transaction that has written to ``workspace``'s chain and stays
    open: idle, running a long statement, or waiting for a lock an accomplice holds."""
    sitter = site.sign_in(Role.SUPPORT).connect()
    accomplice = site.sign_in(Role.ADMIN).connect()
    try:
        pid = begun(sitter)
        sitter.execute(text(RECORD), {"w": workspace, "a": action, "r": str(workspace)})
        statement: Background | None = None
        if how == "busy":
            statement = Background(lambda: sitter.exec_driver_sql("SELECT pg_sleep(600)"))
            until(lambda: bool(scalar(site.owner, "SELECT count(*) FROM pg_stat_activity "
                                      "WHERE wait_event = 'PgSleep'")))  # fmt: skip
        elif how == "waiting on an accomplice":
            accomplice.exec_driver_sql("SELECT pg_advisory_lock(4242)")
            accomplice.commit()  # the lock is the session's: it outlives the transaction
            statement = Background(lambda: sitter.exec_driver_sql("SELECT pg_advisory_lock(4242)"))
            until(waiting_for_a_lock(site, site.emails[Role.SUPPORT]))
        yield pid
        if statement is not None:
            assert statement.result() is not None  # the statement ended with its session
    finally:
        sitter.invalidate()
        accomplice.close()


HOW = ["idle", "busy", "waiting on an accomplice"]


@pytest.mark.parametrize("how", HOW)
def test_a_session_sitting_on_a_workspace_log_is_ended_and_views_go_on(
    site: Site, how: str
) -> None:
    policy(site, writer_hold_seconds=1)
    viewer = site.sign_in(Role.COMPLIANCE)
    with sitting(site, site.workspace, "activity_log.view", how) as sitter:
        assert Background(lambda: view_of(site, viewer)).result() is None
        assert ended(site, sitter)
    assert views(site, Role.SUPPORT) == 0  # the sitter's event went with its transaction
    assert views(site, Role.COMPLIANCE) == 1
    report = verify.verify_workspace(site.owner, command_line_operator(), "riverside")
    assert report.intact, report


def test_a_session_sitting_on_the_staff_log_does_not_stop_sign_ins(site: Site) -> None:
    policy(site, writer_hold_seconds=1)
    staff_workspace = int(scalar(site.owner, "SELECT nvadmin_staff_workspace()"))  # type: ignore[arg-type]
    with sitting(site, staff_workspace, "staff.session_locked", "idle") as sitter:
        signing_in = Background(lambda: site.sign_in(Role.COMPLIANCE))
        assert signing_in.result() is None
        assert ended(site, sitter)


def test_a_writer_waiting_for_the_product_s_writer_is_left_and_the_next_one_is_told_who(
    site: Site,
) -> None:
    """A staff writer that waits for a lock the owner (or the clinic product's event writer)
    holds is waiting, not sitting: it is not ended. The next staff writer gives up after
    ``writer_wait_seconds``, naming who holds the log, instead of waiting for ever."""
    policy(site, writer_hold_seconds=1, writer_wait_seconds=2)
    first, second = site.sign_in(Role.SUPPORT), site.sign_in(Role.COMPLIANCE)
    with site.owner.connect() as product:
        product.begin()
        product.execute(
            text("UPDATE chain_heads SET last_seq = last_seq WHERE workspace_id = :w"),
            {"w": site.workspace},
        )
        waiting = Background(lambda: view_of(site, first))
        until(waiting_for_a_lock(site, site.emails[Role.SUPPORT]))
        told = Background(lambda: view_of(site, second)).result()
        assert isinstance(told, DatabaseUnavailable)
        holder = f"workspace {site.workspace} is held by {site.emails[Role.SUPPORT]}"
        assert f"(the Activity Log of {holder} (a transaction open since" in str(told)
        assert waiting.thread.is_alive()  # still waiting for the product, not ended
        product.rollback()
    assert waiting.result() is None
    assert views(site, Role.SUPPORT) == 1


# -- 3. a month made in an open transaction stops no read -------------------------------------


def test_a_month_made_in_an_open_transaction_stops_no_read(site: Site) -> None:
    policy(site, writer_hold_seconds=1)
    month = partitions.ensure_ahead(site.owner, datetime.now(UTC), 3)[-1]  # the last one made
    with site.owner.begin() as connection:
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS activity_events_{month:%Y_%m}")
    reader = site.sign_in(Role.COMPLIANCE)
    view_of(site, reader)
    sitter = site.sign_in(Role.SUPPORT).connect()
    try:
        pid = begun(sitter)
        sitter.execute(text("SELECT nvadmin_ensure_event_partition(:m)"), {"m": month})

        def read() -> None:
            with reader.connect() as connection:
                statement = "SELECT count(*) FROM activity_events WHERE workspace_id = :w"
                assert connection.execute(text(statement), {"w": site.workspace}).scalar()

        assert Background(read).result() is None  # before: waited until the sitter ended
        assert not ended(site, pid)
        # the app's start-up makes the same month: it ends the sitter and goes on
        assert Background(lambda: partitions.ensure(reader, [month])).result() is None
        assert ended(site, pid)
    finally:
        sitter.invalidate()
    assert f"activity_events_{month:%Y_%m}" in partitions.existing(site.owner)
