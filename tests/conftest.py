"""Shared fixtures: real SQLite files and a real, throwaway PostgreSQL server.

PostgreSQL tests are marked ``pg``. Without a server they are skipped locally, but with
``NVADMIN_REQUIRE_PG=1`` (set by .ci/run) a server that cannot start fails the run instead.
``NVADMIN_TEST_PG_URL`` points the tests at an existing server instead of starting one.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before anything imports Qt

import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import keyring
import keyring.backend
import keyring.backends.fail
import keyring.errors
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError

from nvadmin.auth import db_roles
from nvadmin.db import migrate
from nvadmin.db.engine import make_engine, sqlite_url
from tests import pgcluster, replicas
from tests.waiting import HANG_GUARD_MS


@pytest.fixture(autouse=True)
def nvadmin_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own data, config and log folders and no database override."""
    home = tmp_path / "nvadmin-home"
    monkeypatch.setenv("NVADMIN_HOME", str(home))
    monkeypatch.delenv("NVADMIN_DATABASE_URL", raising=False)
    return home


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A keyring that lives in the test's memory; ``secrets`` shows what was stored."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.secrets: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.secrets.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.secrets[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.secrets.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError(username)


@pytest.fixture(autouse=True)
def memory_keyring() -> Iterator[MemoryKeyring]:
    """No test ever reads or writes the real keyring of the machine running it (afterwards
    the "no keyring" backend is left in place, never the machine's default)."""
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(keyring.backends.fail.Keyring())


@pytest.fixture(autouse=True)
def owasp_minimum_password_hashing(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests hash passwords at OWASP's Argon2id minimum (19 MiB, t=2, p=1) instead of the
    production profile (64 MiB, t=3, p=4): still compliant, several times faster. The
    production profile itself is checked in test_auth_passwords."""
    import dataclasses

    from nvadmin.auth import passwords

    monkeypatch.setattr(
        passwords,
        "PARAMETERS",
        dataclasses.replace(passwords.PARAMETERS, time_cost=2, memory_cost=19 * 1024,
                            parallelism=1),
    )  # fmt: skip
    passwords.hasher.cache_clear()
    passwords._dummy_hash.cache_clear()
    yield
    passwords.hasher.cache_clear()
    passwords._dummy_hash.cache_clear()


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto`` (the default, see pyproject.toml): one worker more than there are CPUs,
    as GUI and database tests spend part of their time waiting (measured in
    benchmarks/RESULTS.md). With ``NVADMIN_TEST_PG_URL`` all tests share that one server,
    whose staff logins are cluster-wide: they run in this process, one after another."""
    if os.environ.get("NVADMIN_TEST_PG_URL"):
        return 0
    return (os.cpu_count() or 1) + 1


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """Each pytest-xdist worker starts its own server: staff logins and the staff roles are
    cluster-wide, so two workers on one cluster would create and drop each other's."""
    existing = os.environ.get("NVADMIN_TEST_PG_URL")
    if existing:
        if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
            pytest.fail("NVADMIN_TEST_PG_URL is one shared server: run with -n 0 (or -n auto)")
        yield existing
        return
    try:
        with pgcluster.cluster() as url:
            yield url
    except RuntimeError as error:
        if os.environ.get("NVADMIN_REQUIRE_PG") == "1":
            pytest.fail(f"PostgreSQL is required here but could not start: {error}")
        pytest.skip(f"PostgreSQL not available: {error}")


@pytest.fixture(scope="session")
def pg_template(pg_server_url: str) -> str:
    """A migrated database used as the template for each test's fresh database."""
    name = f"nvadmin_tpl_{uuid.uuid4().hex[:8]}"
    _pg_admin(pg_server_url, f'CREATE DATABASE "{name}"')
    url = make_url(pg_server_url).set(database=name)
    engine = make_engine(url)
    migrate.upgrade(engine)
    # Staff identity enforced by the server, as `nvadmin db roles` leaves a real database.
    db_roles.create_roles(engine)
    engine.dispose()
    return name


@pytest.fixture
def pg_url(pg_server_url: str, pg_template: str) -> Iterator[str]:
    name = f"nvadmin_t_{uuid.uuid4().hex[:10]}"
    _pg_admin(pg_server_url, f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    url = make_url(pg_server_url).set(database=name)
    yield url.render_as_string(hide_password=False)
    _drop_staff_logins(url)
    _pg_admin(pg_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _drop_staff_logins(url: URL) -> None:
    """Staff logins are cluster-wide: a test's accounts go with its database."""
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            logins = [r[0] for r in connection.execute(text("SELECT email FROM staff"))]
            connection.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ))  # fmt: skip
            for login in logins:
                connection.exec_driver_sql(f'DROP ROLE IF EXISTS "{login}"')
    except DBAPIError:
        pass  # a database the test dropped or damaged itself
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def pg_pair() -> Iterator[pgcluster.Pair]:
    """A primary and its streaming hot standby, started once per xdist worker (each worker
    its own pair, as with ``pg_server_url``). A pair that cannot start fails under
    ``NVADMIN_REQUIRE_PG=1``, as the single server does."""
    try:
        with pgcluster.primary_and_standby() as pair:
            yield pair
    except RuntimeError as error:
        if os.environ.get("NVADMIN_REQUIRE_PG") == "1":
            pytest.fail(f"PostgreSQL primary + standby required here but did not start: {error}")
        pytest.skip(f"PostgreSQL primary + standby not available: {error}")


@pytest.fixture(scope="session")
def pg_pair_template(pg_pair: pgcluster.Pair) -> str:
    name = f"nvadmin_tpl_{uuid.uuid4().hex[:8]}"
    _pg_admin(pg_pair.primary.url, f'CREATE DATABASE "{name}"')
    engine = make_engine(make_url(pg_pair.primary.url).set(database=name))
    migrate.upgrade(engine)
    db_roles.create_roles(engine)
    engine.dispose()
    return name


@pytest.fixture
def replica_urls(pg_pair: pgcluster.Pair, pg_pair_template: str) -> Iterator[tuple[str, str]]:
    """``(primary URL, standby URL)`` of a fresh migrated database, already on the standby.
    A test that stops either server gets it started again afterwards."""
    from nvadmin.db import routing

    name = f"nvadmin_r_{uuid.uuid4().hex[:10]}"
    _pg_admin(pg_pair.primary.url, f'CREATE DATABASE "{name}" TEMPLATE "{pg_pair_template}"')
    primary = make_url(pg_pair.primary.url).set(database=name)
    standby = make_url(pg_pair.standby.url).set(database=name)
    # Waited for on the standby's "postgres" database: the new one is not there until then.
    primary_engine = make_engine(primary)
    standby_engine = make_engine(standby.set(database="postgres"))
    try:
        routing.wait_for_replay(standby_engine, routing.current_lsn(primary_engine), timeout=60)
    finally:
        standby_engine.dispose()
    yield (primary.render_as_string(hide_password=False),
           standby.render_as_string(hide_password=False))  # fmt: skip
    for server in (pg_pair.primary, pg_pair.standby):
        if not _accepts_connections(server.url):
            server.start()
    _resume_replay(pg_pair.standby.url)
    primary_engine.dispose()
    _drop_staff_logins(primary)
    _pg_admin(pg_pair.primary.url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def replica_clinic(replica_urls: tuple[str, str]) -> Iterator[tuple[str, str, int]]:
    """A workspace with replicas.EVENTS events and a staff login, replayed on the standby."""
    from nvadmin.auth.accounts import add_staff, command_line_operator
    from nvadmin.identity import Role
    from tests.factories import add_workspace, draft, write

    primary_url, standby_url = replica_urls
    owner = make_engine(primary_url)
    add_staff(owner, command_line_operator(), replicas.EMAIL, replicas.PASSWORD, Role.COMPLIANCE)
    workspace = add_workspace(owner)
    start = datetime(2025, 3, 1, 12, tzinfo=UTC)
    write(
        owner,
        workspace,
        [draft(occurred_at=start + timedelta(minutes=i)) for i in range(replicas.EVENTS)],
    )
    owner.dispose()
    replicas.caught_up(primary_url, standby_url)
    yield primary_url, standby_url, workspace


@pytest.fixture
def replica_session(replica_clinic: tuple[str, str, int]) -> Iterator[tuple[Any, Any]]:
    """A desktop's context: signed in on the primary, reading from the standby."""
    from nvadmin.auth.signin import Authenticator
    from nvadmin.context import Context

    primary_url, standby_url, _workspace = replica_clinic
    context = Context.create(primary_url, read_databases=(standby_url,))
    result = Authenticator(context.engine).sign_in(replicas.EMAIL, replicas.PASSWORD)
    context.signed_in(result.engine, result.session_key)
    replicas.caught_up(primary_url, standby_url)  # the session row, as a real desktop soon has it
    yield context, result.identity
    context.dispose()


def _accepts_connections(server_url: str) -> bool:
    engine = make_engine(make_url(server_url).set(database="postgres"))
    try:
        with engine.connect():
            return True
    except DBAPIError:
        return False
    finally:
        engine.dispose()


def _resume_replay(standby_url: str) -> None:
    admin = make_engine(make_url(standby_url).set(database="postgres"))
    try:
        with admin.connect() as connection:
            connection.execute(text("SELECT pg_wal_replay_resume()"))
    finally:
        admin.dispose()


@pytest.fixture
def empty_pg_url(pg_server_url: str) -> Iterator[str]:
    """A PostgreSQL database with no schema at all."""
    name = f"nvadmin_e_{uuid.uuid4().hex[:10]}"
    _pg_admin(pg_server_url, f'CREATE DATABASE "{name}"')
    yield make_url(pg_server_url).set(database=name).render_as_string(hide_password=False)
    _pg_admin(pg_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite3"
    engine = make_engine(sqlite_url(path))
    migrate.upgrade(engine)
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture
def sqlite_db_url(tmp_path: Path, sqlite_template: Path) -> str:
    path = tmp_path / "audit.sqlite3"
    shutil.copyfile(sqlite_template, path)
    return sqlite_url(path)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def db_url(request: pytest.FixtureRequest) -> str:
    """A migrated, empty audit database on each backend."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_db_url"))
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def _pg_admin(server_url: str, statement: str) -> None:
    admin = make_engine(make_url(server_url).set(database="postgres"))
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text(statement))
    finally:
        admin.dispose()


# -- Waiting in GUI tests -----------------------------------------------------------------------


@pytest.fixture
def qtbot(qapp: Any, request: pytest.FixtureRequest) -> Any:
    """pytest-qt's ``qtbot`` whose waits default to ``HANG_GUARD_MS`` instead of 5 s."""
    from pytestqt.qtbot import QtBot

    class PatientQtBot(QtBot):
        def waitUntil(self, callback: Any, *, timeout: int = HANG_GUARD_MS) -> None:
            super().waitUntil(callback, timeout=timeout)

        def waitSignal(self, signal: Any = None, *, timeout: int = HANG_GUARD_MS,
                       **kwargs: Any) -> Any:  # fmt: skip
            return super().waitSignal(signal, timeout=timeout, **kwargs)

        def waitSignals(self, signals: Any = None, *, timeout: int = HANG_GUARD_MS,
                        **kwargs: Any) -> Any:  # fmt: skip
            return super().waitSignals(signals, timeout=timeout, **kwargs)

        def waitCallback(self, *, timeout: int = HANG_GUARD_MS, raising: Any = None) -> Any:
            return super().waitCallback(timeout=timeout, raising=raising)

        def waitActive(self, widget: Any, *, timeout: int = HANG_GUARD_MS) -> Any:
            return super().waitActive(widget, timeout=timeout)

        def waitExposed(self, widget: Any, *, timeout: int = HANG_GUARD_MS) -> Any:
            return super().waitExposed(widget, timeout=timeout)

    return PatientQtBot(request)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    """Before pytest-qt closes a test's widgets: cancel the background jobs the test left
    running and wait until each has reported back on the GUI thread. A job that outlived
    its test would otherwise emit into widgets already closed and deleted (a crash in the
    Qt event loop), or into the next test."""
    left = _finish_background_jobs() if "nvadmin.workers.jobs" in sys.modules else []
    yield
    if left:
        pytest.fail(f"background jobs still running after the test: {left}")


def _finish_background_jobs() -> list[str]:
    """The names of the jobs still running after ``HANG_GUARD_MS`` (none, normally)."""
    from PySide6.QtCore import QCoreApplication, QThreadPool
    from PySide6.QtTest import QTest

    from nvadmin.workers.jobs import running_jobs

    app = QCoreApplication.instance()
    if app is None:  # no event loop to report back on: wait for the threads only
        QThreadPool.globalInstance().waitForDone(HANG_GUARD_MS)
        return []
    for job in running_jobs():
        job.cancel()
    deadline = time.monotonic() + HANG_GUARD_MS / 1000
    while running_jobs() and time.monotonic() < deadline:
        QTest.qWait(10)  # delivers what the jobs report, including that they finished
    return [job.name for job in running_jobs()]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tests first (otherwise in order): spread over several workers, a long test that
    starts last would keep the whole run waiting for it."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say how many PostgreSQL tests ran, so a CI log shows they were not skipped."""
    counts: dict[str, int] = {}
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            if "pg" in getattr(report, "keywords", {}) and report.when in ("call", "setup"):
                if outcome == "passed" and report.when != "call":
                    continue
                counts[outcome] = counts.get(outcome, 0) + 1
    summary = ", ".join(f"{n} {outcome}" for outcome, n in counts.items()) or "none collected"
    terminalreporter.write_line(f"PostgreSQL tests: {summary}")
