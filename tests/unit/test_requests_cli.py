"""``nvadmin requests`` on both backends: add (one, or a JSON/CSV batch), list, fulfil,
deliver, reject, override, disclosures; bad input named, nothing half-added."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from nvadmin.__main__ import main
from nvadmin.db.engine import make_engine
from nvadmin.db.models import TeamMember
from tests.factories import add_member, add_workspace, draft, write


@pytest.fixture
def clinic(db_url: str) -> Engine:
    engine = make_engine(db_url)
    ws = add_workspace(engine)
    add_member(engine, ws, "olga@riverside.example", "Olga Owens", "practice_admin")
    add_member(engine, ws, "phil@riverside.example", "Phil Park", "physician")
    with engine.begin() as connection:
        connection.execute(
            TeamMember.__table__.update().values(created_at=datetime(2024, 1, 1, tzinfo=UTC))
        )
    write(engine, ws, [draft(i) for i in range(4)])
    return engine


def run(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    db_url: str,
    *arguments: str,
    stdin: str = "",
) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(["--database", db_url, "requests", *arguments])
    out, err = capsys.readouterr()
    return code, out, err


ADD = ("add", "--workspace", "riverside", "--from", "2025-03-01", "--to", "2025-03-31")


def count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM export_requests")).scalar_one())


def test_from_email_to_delivery_on_the_command_line(
    clinic: Engine,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(
        monkeypatch, capsys, db_url, *ADD, "--requester", "olga@riverside.example",
        "--ticket", "SUP-100", "--purpose", "complaint review", "--recipient", "Olga Owens",
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert "request 1 (SUP-100, riverside): verified" in out
    assert "due in 1 d" in out or "due in 2 d" in out or "due in 3 d" in out or "due in 4 d" in out
    code, out, _ = run(monkeypatch, capsys, db_url, "list")
    assert code == 0 and "SUP-100" in out and "verified" in out
    code, out, err = run(
        monkeypatch, capsys, db_url, "fulfil", "SUP-100", "--output", str(tmp_path)
    )
    assert (code, err) == (0, "")
    assert "request 1 exported: 4 rows" in out
    csv_files = list(tmp_path.glob("riverside_2025-03-01_2025-03-31_SUP-100.csv"))
    assert len(csv_files) == 1
    code, out, _ = run(monkeypatch, capsys, db_url, "deliver", "1")
    assert (code, out.strip()) == (0, "request 1 (SUP-100): delivered")
    code, out, _ = run(monkeypatch, capsys, db_url, "show", "1")
    assert "Manifest SHA-256" in out and "Delivered" in out
    report = tmp_path / "disclosures.csv"
    code, out, err = run(
        monkeypatch, capsys, db_url, "disclosures", "--workspace", "riverside", "--csv", str(report)
    )
    assert (code, err) == (0, "")
    body = report.read_text(encoding="utf-8-sig")
    assert "complaint review" in body and "Olga Owens" in body and "SUP-100" in body
    # The accounting read the workspace's log: on record, as from the app, on both databases.
    with clinic.connect() as connection:
        viewed = connection.execute(
            text("SELECT details FROM activity_events WHERE action = 'activity_log.view'")
        ).scalars()
        assert [json.loads(d)["purpose"] for d in viewed] == ["disclosures"]


def test_bad_input_gets_a_clear_message(
    clinic: Engine,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cases = [
        (("add", "--workspace", "nowhere", "--from", "2025-03-01", "--to", "2025-03-02",
          "--requester", "olga@riverside.example", "--ticket", "T"),
         "nvadmin: no workspace with the slug 'nowhere'"),
        (("add", "--workspace", "riverside", "--from", "2025-03-09", "--to", "2025-03-02",
          "--requester", "olga@riverside.example", "--ticket", "T"),
         "nvadmin: impossible range: 2025-03-09 is after 2025-03-02"),
        (("add", "--workspace", "riverside", "--from", "2025-03-01"),
         "nvadmin: missing --to, --requester, --ticket"),
        (("reject", "42", "--reason", "spam"), "nvadmin: no export request '42'"),
        (("fulfil", "42", "--output", str(tmp_path / "missing")), "is not an existing folder"),
    ]  # fmt: skip
    for arguments, message in cases:
        code, out, err = run(monkeypatch, capsys, db_url, *arguments)
        assert code != 0 and message in err, (arguments, err)
    assert count(clinic) == 0
    # an illegal transition is named
    run(
        monkeypatch, capsys, db_url, *ADD, "--requester", "phil@riverside.example", "--ticket", "T2"
    )
    code, _, err = run(monkeypatch, capsys, db_url, "deliver", "T2")
    assert code == 1
    assert "nvadmin: request 1 is new: it cannot be delivered (only from exported)" in err
    code, _, err = run(monkeypatch, capsys, db_url, "fulfil", "T2", "--output", str(tmp_path))
    assert "only a verified request is exported (an admin may override" in err
    code, out, _ = run(monkeypatch, capsys, db_url, "override", "T2", "--reason", "phoned owner")
    assert (code, out.strip()) == (0, "request 1 (T2): verified")
    code, out, _ = run(monkeypatch, capsys, db_url, "reject", "T2", "--reason", "duplicate")
    assert (code, out.strip()) == (0, "request 1 (T2): rejected")
    code, out, _ = run(monkeypatch, capsys, db_url, "list", "--status", "rejected")
    assert "T2" in out


def test_a_batch_is_checked_row_by_row_and_added_whole_or_not_at_all(
    clinic: Engine,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = [
        {"workspace": "riverside", "from": "2025-03-01", "to": "2025-03-02",
         "requester": "olga@riverside.example", "ticket": "B-1"},
        {"workspace": "riverside", "from": "2025-13-01", "to": "2025-03-02",
         "requester": "olga@riverside.example", "ticket": "B-2"},
        {"workspace": "riverside", "from": "2025-03-01", "to": "2025-03-02",
         "requester": "not-an-address", "ticket": "B-3"},
        {"workspace": "riverside", "from": "2025-03-01", "to": "2025-03-02",
         "requester": "olga@riverside.example", "ticket": "B-4", "colour": "red"},
    ]  # fmt: skip
    code, _, err = run(monkeypatch, capsys, db_url, "add", "--batch", "json", stdin=json.dumps(bad))
    assert code == 1
    assert "3 of 4 rows are wrong; nothing was added" in err
    assert "row 2: from:" in err and "row 3: not an e-mail address" in err
    assert "row 4: unknown field 'colour'" in err
    # a row only the database can refuse (unknown workspace) also leaves nothing behind
    late = [bad[0], {**bad[0], "ticket": "B-5", "workspace": "nowhere"}]
    code, _, err = run(
        monkeypatch, capsys, db_url, "add", "--batch", "json", stdin=json.dumps(late)
    )
    assert "row 2: no workspace with the slug 'nowhere'" in err
    assert count(clinic) == 0
    rows = (
        "workspace,from,to,requester,ticket,purpose,recipient,categories\n"
        "riverside,2025-03-01,2025-03-02,olga@riverside.example,C-1,audit,Olga,chart;api\n"
        "riverside,2025-03-03,2025-03-04,phil@riverside.example,C-2,,,\n"
    )
    code, out, err = run(monkeypatch, capsys, db_url, "add", "--batch", "csv", stdin=rows)
    assert (code, err) == (0, "")
    assert "C-1, riverside): verified" in out and "C-2, riverside): new" in out
    code, out, _ = run(monkeypatch, capsys, db_url, "list", "--json")
    listed = {r["ticket"]: r for r in json.loads(out)}
    assert listed["C-1"]["filters"] == {"category": ["chart_views", "api_usage"]}
    assert listed["C-2"]["verification"] == "not_admin"


def test_due_days_policy_and_overdue_list(
    clinic: Engine,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(monkeypatch, capsys, db_url, "policy", "--due-days", "3")
    assert "due 3 business days after receipt" in out
    ten_days_ago = (datetime.now(UTC) - timedelta(days=10)).isoformat(timespec="seconds")
    old = ("--requester", "olga@riverside.example", "--ticket", "OLD", "--received", ten_days_ago)
    code, out, err = run(monkeypatch, capsys, db_url, *ADD, *old)
    assert (code, err) == (0, "") and "overdue by" in out
    run(monkeypatch, capsys, db_url, *ADD, "--requester", "olga@riverside.example",
        "--ticket", "NEW")  # fmt: skip
    code, out, _ = run(monkeypatch, capsys, db_url, "list", "--overdue")
    assert "OLD" in out and "NEW" not in out
    code, out, _ = run(monkeypatch, capsys, db_url, "list")
    assert out.index("OLD") < out.index("NEW")  # overdue first
    code, _, err = run(monkeypatch, capsys, db_url, *ADD, "--requester", "olga@riverside.example",
                       "--ticket", "ANCIENT", "--received", "2001-01-01T09:00-06:00")  # fmt: skip
    assert "receipt time must be within the past year" in err


def test_fulfil_and_deliver_with_a_package_print_the_passphrase_once_and_record_the_hash(
    clinic: Engine,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from nvadmin.export.manifest import file_sha256

    for ticket in ("SUP-300", "SUP-301"):
        code, _, err = run(monkeypatch, capsys, db_url, *ADD, "--requester",
                           "olga@riverside.example", "--ticket", ticket)  # fmt: skip
        assert (code, err) == (0, "")
    code, out, err = run(
        monkeypatch, capsys, db_url, "fulfil", "SUP-300", "--output", str(tmp_path), "--package"
    )
    assert (code, err) == (0, "")
    wanted = ("package ", "sha256 ", "passphrase ")
    printed = dict(line.split(" ", 1) for line in out.splitlines() if line.startswith(wanted))
    package = Path(printed["package"])
    assert package == tmp_path / "riverside_2025-03-01_2025-03-31_SUP-300.zip"
    assert "another channel" in out and "delivered; package SHA-256 recorded" in out
    digest = file_sha256(package)
    code, out, _ = run(monkeypatch, capsys, db_url, "show", "SUP-300")
    assert f"Package SHA-256:   {digest}" in out
    assert printed["passphrase"] not in out
    # deliver --package ZIP: an export already made, packaged under a chosen name
    code, out, err = run(
        monkeypatch, capsys, db_url, "fulfil", "SUP-301", "--output", str(tmp_path)
    )
    assert (code, err) == (0, "")
    chosen = tmp_path / "for-olga.zip"
    code, out, err = run(
        monkeypatch, capsys, db_url, "deliver", "SUP-301", "--package", str(chosen)
    )
    assert (code, err) == (0, "")
    assert f"sha256 {file_sha256(chosen)}" in out
    code, out, err = run(monkeypatch, capsys, db_url, "deliver", "SUP-301", "--package")
    assert code == 1 and "only an exported request is packaged" in err
    report = tmp_path / "disclosures.csv"
    assert run(monkeypatch, capsys, db_url, "disclosures", "--workspace", "riverside",
               "--csv", str(report))[0] == 0  # fmt: skip
    body = report.read_text(encoding="utf-8-sig")
    assert digest in body and file_sha256(chosen) in body


def test_disclosures_replace_a_file_only_with_force(
    clinic: Engine,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The report was written over an existing file without a word."""
    report = tmp_path / "disclosures.csv"
    report.write_text("keep me\n", encoding="utf-8")
    argv = ("disclosures", "--workspace", "riverside", "--csv", str(report))
    code, out, err = run(monkeypatch, capsys, db_url, *argv)
    assert code == 1 and out == ""
    assert err == f"nvadmin: --csv: {report} already exists (give --force to replace it)\n"
    assert report.read_text(encoding="utf-8") == "keep me\n"
    code, out, err = run(monkeypatch, capsys, db_url, *argv, "--force")
    assert (code, err) == (0, "")
    assert report.read_text(encoding="utf-8-sig") != "keep me\n"
    assert (report.stat().st_mode & 0o777) == 0o600  # written as every report is


@pytest.mark.parametrize("arguments", [("list",), ("policy",), ("show", "1")])
def test_a_database_without_the_schema_is_named(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    arguments: tuple[str, ...],
) -> None:
    """It said "no such table: export_requests", where other commands say what to do."""
    url = f"sqlite:///{tmp_path / 'missing.sqlite3'}"
    code, _, err = run(monkeypatch, capsys, url, *arguments)
    assert code == 1
    assert err == "nvadmin: the database is empty: run `nvadmin db upgrade` first\n"
