"""Files nvadmin creates that name staff or patients are readable by their owner only.

Each test runs under the common 022 umask, which would otherwise leave them 0644.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from nvadmin import log as logsetup
from nvadmin.__main__ import main
from nvadmin.db import migrate
from nvadmin.db.engine import make_engine, sqlite_url


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def mode(path: Path) -> str:
    return oct(path.stat().st_mode & 0o777)


def test_the_log_file_and_its_rotations_are_private(tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "nvadmin.log"
    logsetup.configure(log_file)
    logging.getLogger("nvadmin.test").info("a sign-in by someone")
    assert mode(log_file) == "0o600"
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.handlers.RotatingFileHandler)
    handler.doRollover()
    logging.getLogger("nvadmin.test").info("after rotation")
    assert mode(log_file) == "0o600"
    assert mode(log_file.with_name("nvadmin.log.1")) == "0o600"


def test_an_older_readable_log_is_restricted_when_opened(tmp_path: Path) -> None:
    log_file = tmp_path / "nvadmin.log"
    log_file.write_text("written by an older version\n")
    log_file.chmod(0o644)
    logsetup.configure(log_file)
    assert mode(log_file) == "0o600"
    assert log_file.read_text().startswith("written by an older version")


def test_a_new_sqlite_database_and_its_wal_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"
    engine = make_engine(sqlite_url(path))
    try:
        migrate.upgrade(engine)
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT count(*) FROM workspaces").scalar()
            for suffix in ("", "-wal", "-shm"):
                companion = path.with_name(path.name + suffix)
                assert mode(companion) == "0o600", companion
    finally:
        engine.dispose()


def test_an_existing_database_keeps_its_content(tmp_path: Path, sqlite_template: Path) -> None:
    path = tmp_path / "copy.sqlite3"
    path.write_bytes(sqlite_template.read_bytes())
    engine = make_engine(sqlite_url(path))
    try:
        assert migrate.current_revision(engine) is not None
    finally:
        engine.dispose()


def test_seeding_a_new_database_file_from_the_command_line_leaves_it_private(
    tmp_path: Path, nvadmin_home: Path
) -> None:
    path = tmp_path / "seeded.sqlite3"
    url = sqlite_url(path)
    assert main(["--database", url, "seed", "--workspaces", "1", "--events", "50"]) == 0
    assert mode(path) == "0o600"
    assert mode(nvadmin_home / "logs" / "nvadmin.log") == "0o600"
