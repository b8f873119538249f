"""What starting the command line loads: `--help` answers without any database or Qt library,
and a command on an up-to-date database checks the schema without Alembic.

Each case runs in a fresh interpreter (a subprocess), since this test process has long since
imported everything; it lists the modules loaded, never a time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from nvadmin.__main__ import main
from nvadmin.db import migrate
from nvadmin.db.engine import make_engine
from nvadmin.errors import SchemaError

ROOT = Path(__file__).resolve().parents[2]

# Run nvadmin's entry point, then print the names of the loaded modules as the last line.
_LOADED = """
import json, sys
from nvadmin.__main__ import main
try:
    status = main(sys.argv[1:])
except SystemExit as done:  # --help and --version end through argparse
    status = done.code or 0
print(json.dumps({"status": status, "modules": sorted(sys.modules)}))
"""

HEAVY = ("sqlalchemy", "PySide6", "shiboken6", "nvadmin.db", "alembic", "keyring", "psycopg")


def loaded_modules(*argv: str) -> tuple[int, str, set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", _LOADED, *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    *output, last = done.stdout.splitlines()
    report = json.loads(last)
    return int(report["status"]), "\n".join(output), set(report["modules"])


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY or m.startswith(HEAVY))


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["flags", "--help"],
        ["export", "--help"],
        ["verify", "--help"],
        ["profile", "add", "--help"],
        ["--version"],
        ["verify"],  # a usage error: --workspace is missing
    ],
    ids=" ".join,
)
def test_help_loads_no_database_or_qt_library(argv: list[str]) -> None:
    status, output, modules = loaded_modules(*argv)
    assert heavy(modules) == []
    if argv[-1] == "--help":
        assert status == 0 and "usage: nvadmin" in output


def test_help_still_lists_every_command() -> None:
    status, output, _ = loaded_modules("--help")
    assert status == 0
    for command in ("db", "seed", "verify", "flags", "export", "staff", "profile"):
        assert f"    {command} " in output or f"    {command}\n" in output


def test_a_command_on_an_up_to_date_database_does_not_load_alembic(db_url: str) -> None:
    status, output, modules = loaded_modules("--database", db_url, "db", "upgrade")
    assert status == 0
    assert output.startswith(f"database already at {migrate.head_revision()}")
    assert "sqlalchemy" in modules  # it did reach the database
    assert not [m for m in modules if m.split(".")[0] in ("alembic", "mako")]


def test_the_schema_history_read_from_the_files_is_alembics() -> None:
    assert migrate.history() == migrate.history_from_alembic()
    assert migrate.head_revision() in migrate.history().revisions


def test_a_database_recording_two_revisions_is_named(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO alembic_version (version_num) VALUES ('0001')"))
        with pytest.raises(SchemaError, match="several schema revisions"):
            migrate.require_head(engine)
    finally:
        engine.dispose()


def test_an_unknown_flag_rule_is_named_with_the_rules(
    capsys: pytest.CaptureFixture[str], db_url: str
) -> None:
    from nvadmin.analysis.flags.catalog import RULES

    code = main(["--database", db_url, "flags", "--workspace", "any", "--rule", "no_such_rule"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("nvadmin: --rule: unknown rule 'no_such_rule' (the rules are: ")
    assert all(name in err for name in RULES)
    assert len(err.strip().splitlines()) == 1


def test_the_modules_loaded_before_qt_do_not_load_qt() -> None:
    """nvadmin.app imports them ahead of PySide6 (whose import hook reads the source of every
    module imported after it); one that loaded Qt itself would defeat that."""
    from nvadmin.app import BEFORE_QT

    script = (
        "import importlib, json, sys\n"
        f"for name in {list(BEFORE_QT)!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    modules = set(json.loads(done.stdout.splitlines()[-1]))
    assert set(BEFORE_QT) <= modules
    assert not [m for m in modules if m.split(".")[0] in ("PySide6", "shiboken6")]


def test_an_unknown_export_column_is_named_with_the_columns(
    capsys: pytest.CaptureFixture[str], db_url: str, tmp_path: Path
) -> None:
    from nvadmin.export.columns import BY_KEY

    code = main(
        ["--database", db_url, "export", "--workspace", "any", "--from", "2025-03-01",
         "--to", "2025-03-02", "--output", str(tmp_path / "x.csv"), "--staff", "a@b.example",
         "--password-stdin", "--columns", "occurred_at_utc,no_such_column"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("nvadmin: --columns: unknown column 'no_such_column' (the columns are: ")
    assert all(key in err for key in BY_KEY)
    assert not (tmp_path / "x.csv").exists()
