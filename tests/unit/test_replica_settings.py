"""Naming read replicas: saved with a connection (no password), or for one run; never for
SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from nvadmin.__main__ import main
from nvadmin.context import Context
from nvadmin.errors import UserError
from tests.conftest import MemoryKeyring

PRIMARY = "postgresql://auditor:long-secret-1@db1.example/audit"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_profile_keeps_its_replicas_without_any_password(
    capsys: pytest.CaptureFixture[str], nvadmin_home: Path, memory_keyring: MemoryKeyring
) -> None:
    second, third = (
        "postgresql://db2.example/audit",
        "postgresql://auditor:long-secret-1@db3.example:6432/audit",
    )
    code, out, err = run(
        capsys, "profile", "add", "prod", PRIMARY, "--replica", second, "--replica", third
    )
    assert code == 0, err
    assert "replica postgresql+psycopg://db2.example/audit" in out
    stored = (nvadmin_home / "config" / "connections.ini").read_text()
    assert "long-secret-1" not in stored
    assert "db2.example/audit" in stored and "auditor@db3.example:6432/audit" in stored
    assert list(memory_keyring.secrets.values()) == ["long-secret-1"]
    listed = run(capsys, "profile", "list")[1]
    assert "\treplica postgresql+psycopg://db2.example/audit" in listed


def test_a_replica_with_another_password_is_refused(
    capsys: pytest.CaptureFixture[str], nvadmin_home: Path
) -> None:
    other = "postgresql://auditor:other-secret@db2.example/audit"
    code, _, err = run(capsys, "profile", "add", "prod", PRIMARY, "--replica", other)
    assert code == 1
    assert "primary's login and password" in err
    assert not (nvadmin_home / "config" / "connections.ini").exists()


def test_one_off_replicas_from_the_option_or_the_environment() -> None:
    context = Context.create(PRIMARY, {"NVADMIN_READ_DATABASE_URL": "postgresql://db2/audit"})
    assert context.read_database_urls == ("postgresql://db2/audit",)
    assert context.has_replicas
    chosen = Context.create(PRIMARY, {}, read_databases=("postgresql://db3/audit",))
    assert chosen.read_database_urls == ("postgresql://db3/audit",)


def test_sqlite_has_no_replicas(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    sqlite = f"sqlite:///{tmp_path / 'audit.sqlite3'}"
    with pytest.raises(UserError, match="SQLite has none"):
        Context.create(sqlite, {}, read_databases=("postgresql://db2/audit",))
    code, _, err = run(capsys, "--database", sqlite, "--read-database", "postgresql://db2/x",
                       "db", "upgrade")  # fmt: skip
    assert code == 2 and "SQLite has none" in err
    context = Context.create(sqlite, {})
    try:
        assert context.read_engine is context.write_engine is context.engine
        assert context.read_position() is None
    finally:
        context.dispose()
