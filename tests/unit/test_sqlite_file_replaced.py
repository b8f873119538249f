"""A SQLite database file removed or replaced at its path while nvadmin has it open (a backup
restored, a file saved over it): the pooled connections still hold the old file, so the
browser read its rows and the view events went into it, lost with it."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from nvadmin.db.engine import make_engine, sqlite_url
from nvadmin.errors import DatabaseUnavailable


def database(path: Path, value: int) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE t (x INTEGER)")
        connection.execute("INSERT INTO t VALUES (?)", (value,))
    connection.close()


def read(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT x FROM t")).scalar_one())


def test_a_replaced_file_is_read_from_its_path_again(tmp_path: Path) -> None:
    path, restored = tmp_path / "audit.sqlite3", tmp_path / "backup.sqlite3"
    database(path, 1)
    engine = make_engine(sqlite_url(path))
    assert read(engine) == 1  # a connection now pooled, holding the file open
    database(restored, 2)
    os.replace(restored, path)
    assert read(engine) == 2
    engine.dispose()


def test_a_removed_file_is_said_so_not_made_again_empty(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"
    database(path, 1)
    engine = make_engine(sqlite_url(path))
    assert read(engine) == 1
    for leftover in tmp_path.iterdir():
        leftover.unlink()
    with pytest.raises(DatabaseUnavailable, match=f"the database file {path} was removed"):
        read(engine)
    assert not path.exists()
    engine.dispose()
