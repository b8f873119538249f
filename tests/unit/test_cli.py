"""The command line's promises: one-line errors, non-zero exits, data never damaged."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from nvadmin import __version__
from nvadmin.__main__ import main
from nvadmin.db.engine import make_engine, sqlite_url
from nvadmin.db.models import ActivityEvent


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("nvadmin: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


def test_version_from_the_installed_entry_point() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nvadmin", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == f"nvadmin {__version__}"


def test_db_upgrade_is_safe_to_run_twice(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, db_url: str
) -> None:
    url = sqlite_url(tmp_path / "fresh.sqlite3")
    assert run(capsys, "--database", url, "db", "upgrade")[1].startswith("database upgraded")
    assert run(capsys, "--database", url, "db", "upgrade")[1].startswith("database already at")
    # the fixture's database is already at head
    assert run(capsys, "--database", db_url, "db", "upgrade")[0] == 0


@pytest.mark.pg
def test_db_upgrade_on_an_empty_postgres_database(
    capsys: pytest.CaptureFixture[str], empty_pg_url: str
) -> None:
    code, out, _ = run(capsys, "--database", empty_pg_url, "db", "upgrade")
    assert code == 0 and "upgraded" in out
    code, out, _ = run(
        capsys, "--database", empty_pg_url, "db", "partitions", "--months-ahead", "2"
    )
    assert code == 0 and "3 months" in out


def test_database_from_environment_variable(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "env.sqlite3"
    monkeypatch.setenv("NVADMIN_DATABASE_URL", sqlite_url(path))
    assert run(capsys, "db", "upgrade")[0] == 0
    assert path.exists()


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("postgresql://nobody@127.0.0.1:1/nothing", "cannot reach the database server"),
        ("postgresql://nobody@no-such-host.invalid/x", "cannot reach the database server"),
        ("mysql://x@y/z", "unsupported database"),
        ("not a url", "not a database URL"),
        ("sqlite:////no/such/folder/x.sqlite3", "does not exist"),
    ],
)
def test_unusable_database_urls_give_one_clear_line(
    capsys: pytest.CaptureFixture[str], url: str, fragment: str
) -> None:
    code, _, err = run(capsys, "--database", url, "db", "upgrade")
    assert code != 0
    assert_one_line_error(err, fragment)


def test_corrupt_sqlite_file_is_reported_and_left_untouched(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "broken.sqlite3"
    garbage = b"this is not a database at all\n" * 200
    path.write_bytes(garbage)
    for args in (["db", "upgrade"], ["seed", "--events", "10"]):
        code, _, err = run(capsys, "--database", sqlite_url(path), *args)
        assert code != 0
        assert_one_line_error(err, "damaged or is not an nvadmin database")
    assert path.read_bytes() == garbage


def test_database_at_a_newer_schema_is_refused(
    capsys: pytest.CaptureFixture[str], db_url: str
) -> None:
    engine = make_engine(db_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    code, _, err = run(capsys, "--database", db_url, "db", "upgrade")
    assert code != 0
    assert_one_line_error(err, "newer than this nvadmin")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == (
            "9999"
        )
    engine.dispose()


def test_seed_into_a_non_empty_database_is_refused_without_changes(
    capsys: pytest.CaptureFixture[str], db_url: str
) -> None:
    code, out, _ = run(
        capsys, "--database", db_url, "seed", "--workspaces", "1", "--events", "500", "--seed", "2"
    )
    assert code == 0 and "seeded 500 events" in out
    engine = make_engine(db_url)

    def count() -> int:
        with engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(ActivityEvent)).scalar())

    before = count()
    code, _, err = run(capsys, "--database", db_url, "seed", "--events", "100")
    assert code == 1
    assert_one_line_error(err, "seed only into an empty database")
    assert count() == before
    engine.dispose()


def test_database_with_foreign_tables_is_not_taken_over(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = sqlite_url(tmp_path / "other.sqlite3")
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE invoices (id INTEGER PRIMARY KEY)"))
    engine.dispose()
    code, _, err = run(capsys, "--database", url, "db", "upgrade")
    assert code != 0
    assert_one_line_error(err, "not an nvadmin database")
    with make_engine(url).connect() as connection:
        tables = connection.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))
        assert [name for (name,) in tables] == ["invoices"]


def test_commands_work_in_a_brand_new_home(
    capsys: pytest.CaptureFixture[str], nvadmin_home: Path
) -> None:
    assert not nvadmin_home.exists()
    code, out, err = run(capsys, "seed", "--workspaces", "1", "--events", "50")
    assert code == 0, err
    assert "seeded 50 events" in out
    assert (nvadmin_home / "data" / "nvadmin.sqlite3").exists()


@pytest.mark.pg
def test_saved_connection_keeps_its_password_in_the_keyring_only(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    memory_keyring,  # type: ignore[no-untyped-def]
    nvadmin_home: Path,
    pg_url: str,
) -> None:
    import io

    from sqlalchemy.engine import make_url

    # A real password-protected login on the test server.
    admin = make_engine(pg_url)
    with admin.begin() as connection:
        connection.execute(text("CREATE ROLE profile_user LOGIN PASSWORD 's3cret-pass' SUPERUSER"))
    admin.dispose()
    url = make_url(pg_url).set(username="profile_user", password="s3cret-pass")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, out, err = run(capsys, "profile", "add", "audit",
                         url.render_as_string(hide_password=False))  # fmt: skip
    assert code == 0, err
    assert "password in the keyring" in out
    stored = (nvadmin_home / "config" / "connections.ini").read_text()
    assert "s3cret-pass" not in stored and "profile_user@" in stored
    assert "s3cret-pass" in memory_keyring.secrets.values()
    assert run(capsys, "profile", "list")[1].startswith("audit\t")
    code, out, err = run(capsys, "--profile", "audit", "db", "upgrade")
    assert code == 0, err
    code, _, err = run(capsys, "--profile", "nothing", "db", "upgrade")
    assert code != 0
    assert_one_line_error(err, "no saved connection named 'nothing'")
    assert run(capsys, "profile", "remove", "audit")[0] == 0
    assert "s3cret-pass" not in memory_keyring.secrets.values()


def test_without_a_keyring_a_connection_password_is_not_kept_anywhere(
    capsys: pytest.CaptureFixture[str], nvadmin_home: Path
) -> None:
    import keyring
    import keyring.backends.fail

    keyring.set_keyring(keyring.backends.fail.Keyring())
    code, out, _ = run(capsys, "profile", "add", "prod",
                       "postgresql://auditor:hunter2-long@db.example/audit")  # fmt: skip
    assert code == 0
    assert "password was NOT kept" in out
    for path in nvadmin_home.rglob("*"):
        if path.is_file():
            assert b"hunter2-long" not in path.read_bytes(), path
