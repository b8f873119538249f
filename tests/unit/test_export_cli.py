"""``nvadmin export`` end to end: sign-in from stdin, the same engine, one-line failures."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from nvadmin.__main__ import main
from nvadmin.auth.accounts import add_staff, command_line_operator
from nvadmin.export.manifest import file_sha256
from tests.factories import add_workspace, draft, write

PASSWORD = "Correct horse battery staple 42!"


@pytest.fixture
def workspace(engine: Engine) -> int:
    add_staff(engine, command_line_operator(), "sam@nvadmin.example", PASSWORD, "support")
    ws = add_workspace(engine)  # America/Chicago
    write(
        engine,
        ws,
        [
            # 2025-03-01 00:30 in Chicago is 06:30 UTC; 2025-03-02 23:59:59 is 2025-03-03 05:59:59Z.
            draft(occurred_at=datetime(2025, 3, 1, 6, 30, tzinfo=UTC)),
            draft(occurred_at=datetime(2025, 3, 3, 5, 59, 59, tzinfo=UTC), email="ben@x.example"),
            draft(occurred_at=datetime(2025, 3, 3, 6, 0, 0, tzinfo=UTC)),  # Mar 3 00:00: excluded
            draft(occurred_at=datetime(2025, 3, 1, 7, 0, tzinfo=UTC), action="auth.sign_in_failed"),
        ],
    )
    return ws


def run(monkeypatch: pytest.MonkeyPatch, db_url: str, stdin: str, *arguments: str) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(["--database", db_url, "export", *arguments])


def test_exports_whole_days_in_the_workspace_zone(
    workspace: int,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "ticket.csv"
    code = run(
        monkeypatch, db_url, PASSWORD + "\n",
        "--workspace", "riverside", "--from", "2025-03-01", "--to", "2025-03-02",
        "--ticket", "SUP-77", "--output", str(out), "--staff", "sam@nvadmin.example",
        "--password-stdin", "--bom",
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    with out.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3
    # --bom is the excel profile (the default): a spreadsheet's date-time, the offset apart.
    assert (rows[-1]["occurred_at_local"], rows[-1]["utc_offset"]) == (
        "2025-03-02 23:59:59",
        "UTC-06:00",
    )
    assert out.read_bytes().startswith(b"\xef\xbb\xbfoccurred_at_local,utc_offset,")
    manifest = json.loads((tmp_path / "ticket.csv.manifest.json").read_text())
    assert manifest["sha256"] == file_sha256(out)
    assert manifest["start"] == "2025-03-01T00:00:00-06:00"
    assert manifest["end"] == "2025-03-02T23:59:59-06:00"
    assert manifest["ticket"] == "SUP-77"
    printed = capsys.readouterr().out
    assert "3 rows written" in printed and manifest["sha256"] in printed


def test_user_and_category_filters(
    workspace: int, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "f.csv"
    code = run(
        monkeypatch, db_url, PASSWORD,
        "--workspace", "riverside", "--from", "2025-03-01", "--to", "2025-03-02",
        "--user", "ana@riverside.example", "--category", "chart", "--ticket", "T-1",
        "--output", str(out), "--staff", "sam@nvadmin.example", "--password-stdin",
        "--tz", "UTC", "--profile", "data",
    )  # fmt: skip
    assert code == 0
    assert not out.read_bytes().startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    assert [r["occurred_at_local"] for r in rows] == ["2025-03-01T06:30:00.000000+00:00"]
    assert [r["occurred_at_utc"] for r in rows] == ["2025-03-01T06:30:00.000000Z"]


@pytest.mark.parametrize(
    ("stdin", "extra", "message"),
    [
        ("wrong password", ["--ticket", "T-1"], "nvadmin: "),
        (PASSWORD, [], "ticket id"),
        (PASSWORD, ["--ticket", "T-1", "--category", "gossip"], "unknown category"),
        ("", ["--ticket", "T-1"], "no password"),
    ],
)
def test_failures_are_one_line_and_leave_no_file(
    workspace: int,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    stdin: str,
    extra: list[str],
    message: str,
) -> None:
    out = tmp_path / "out" / "f.csv"
    out.parent.mkdir()
    code = run(
        monkeypatch, db_url, stdin,
        "--workspace", "riverside", "--from", "2025-03-01", "--to", "2025-03-02",
        "--output", str(out), "--staff", "sam@nvadmin.example", "--password-stdin", *extra,
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert list(out.parent.iterdir()) == []


def test_unknown_workspace(
    workspace: int,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = run(
        monkeypatch, db_url, PASSWORD,
        "--workspace", "nowhere", "--from", "2025-03-01", "--to", "2025-03-02", "--ticket", "T",
        "--output", str(tmp_path / "x.csv"), "--staff", "sam@nvadmin.example", "--password-stdin",
    )  # fmt: skip
    assert code == 1
    assert "no workspace 'nowhere' in this database (workspaces: " in capsys.readouterr().err


@pytest.mark.parametrize("database", ["missing", "empty"])
def test_a_database_without_the_schema_is_named(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    database: str,
) -> None:
    """It said "no such table: staff", where every other command says what to do."""
    path = tmp_path / f"{database}.sqlite3"
    if database == "empty":
        path.touch()
    code = run(
        monkeypatch, f"sqlite:///{path}", PASSWORD + "\n",
        "--workspace", "riverside", "--from", "2025-03-01", "--to", "2025-03-02",
        "--ticket", "T", "--output", str(tmp_path / "x.csv"), "--staff", "sam@nvadmin.example",
        "--password-stdin",
    )  # fmt: skip
    assert code == 1
    assert capsys.readouterr().err == (
        "nvadmin: the database is empty: run `nvadmin db upgrade` first\n"
    )
    assert not (tmp_path / "x.csv").exists()


def test_a_password_that_is_not_utf8_text_is_one_line(
    workspace: int,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Read strictly (a UTF-8 locale), such a password was Python's "'utf-8' codec can't
    decode byte 0xff"; read with surrogates (the C locale), see test_auth_signin."""
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"\xff\xfe\n"), encoding="utf-8"))
    code = main(
        ["--database", db_url, "export", "--workspace", "riverside", "--from", "2025-03-01",
         "--to", "2025-03-02", "--ticket", "T", "--output", str(tmp_path / "x.csv"),
         "--staff", "sam@nvadmin.example", "--password-stdin"]
    )  # fmt: skip
    assert code == 1
    assert capsys.readouterr().err == "nvadmin: standard input is not UTF-8 text\n"
    assert not (tmp_path / "x.csv").exists()
