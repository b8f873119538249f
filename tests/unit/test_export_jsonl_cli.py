"""``nvadmin export --format jsonl`` end to end: the file, ``verify-export`` offline (a flipped
byte found), ``--from-manifest`` byte-identical, ``package-export``, ``requests fulfil``."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pyzipper
from sqlalchemy import Engine

from nvadmin.__main__ import main
from nvadmin.audit import checkpoints
from nvadmin.db.models import TeamMember
from nvadmin.export import requests
from tests.factories import add_member
from tests.unit.test_verify_export import EVIDENCE_COLUMNS, PASSWORD, flip, public_key_file
from tests.unit.test_verify_export import signing_key as signing_key
from tests.unit.test_verify_export import workspace as workspace


def export(db_url: str, monkeypatch: pytest.MonkeyPatch, *arguments: str) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    return main(
        ["--database", db_url, "export", "--staff", "sam@nvadmin.example", "--password-stdin",
         *arguments]
    )  # fmt: skip


def test_jsonl_from_the_command_line(
    workspace: int,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    signing_key: checkpoints.SigningKey,
) -> None:
    out = tmp_path / "t.jsonl"
    code = export(
        db_url, monkeypatch,
        "--workspace", "riverside", "--from", "2025-03-01", "--to", "2025-03-02",
        "--ticket", "SUP-9", "--output", str(out), "--format", "jsonl",
        "--columns", EVIDENCE_COLUMNS,
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["occurred_at_local"] for r in records] == [
        "2025-03-01T00:30:00.000000-06:00",
        "2025-03-01T01:00:00.120000-06:00",
        "2025-03-02T02:00:00.000000-06:00",
    ]
    assert records[0]["actor_id"] == "7" and records[0]["seq"] == 1
    assert records[1]["resource_id"] == "=HYPERLINK(1)"
    assert records[2]["user_agent"] == ""
    manifest = json.loads((tmp_path / "t.jsonl.manifest.json").read_text())
    assert manifest["file_format"] == "jsonl" and manifest["rows"] == 3

    key = public_key_file(signing_key, tmp_path)
    capsys.readouterr()
    assert main(["verify-export", str(out), "--key", str(key)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("OK:") and "3 row hashes match" in line, line

    # The same export again from its manifest: byte-identical.
    again = tmp_path / "again.jsonl"
    code = export(db_url, monkeypatch, "--from-manifest", str(out) + ".manifest.json",
                  "--output", str(again))  # fmt: skip
    assert code == 0
    assert "byte-identical" in capsys.readouterr().out
    assert again.read_bytes() == out.read_bytes()

    # Packaged with its manifest, key and a README naming the format.
    package = tmp_path / "t.zip"
    assert main(["package-export", str(out), "--output", str(package)]) == 0
    passphrase = capsys.readouterr().out.split("passphrase ")[1].split()[0]
    with pyzipper.AESZipFile(package) as archive:
        archive.setpassword(passphrase.encode())
        assert sorted(archive.namelist()) == sorted(
            ["t.jsonl", "t.jsonl.manifest.json", "signing-key.pem", "README.txt"]
        )
        assert archive.read("t.jsonl") == out.read_bytes()
        assert "the export (JSON Lines)" in archive.read("README.txt").decode()

    # One flipped byte inside a value: found, and the line named.
    text = out.read_bytes()
    flip(out, text.index(b"HYPERLINK"))
    assert main(["verify-export", str(out), "--key", str(key)]) == 1
    line = capsys.readouterr().out.strip()
    assert line.startswith("FAILED:") and "line 2" in line, line


def test_bom_with_jsonl_is_refused(
    workspace: int,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = export(
        db_url, monkeypatch,
        "--workspace", "riverside", "--from", "2025-03-01", "--to", "2025-03-02",
        "--ticket", "SUP-9", "--output", str(tmp_path / "t.jsonl"), "--format", "jsonl", "--bom",
    )  # fmt: skip
    assert code != 0
    assert "BOM" in capsys.readouterr().err
    assert not (tmp_path / "t.jsonl").exists()


def test_a_request_fulfilled_as_json_lines_and_packaged(
    workspace: int,
    engine: Engine,
    db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    signing_key: checkpoints.SigningKey,
) -> None:
    add_member(engine, workspace, "olga@riverside.example", "Olga Owens", "practice_admin")
    with engine.begin() as connection:  # a member since long before the request
        connection.execute(
            TeamMember.__table__.update().values(created_at=datetime(2024, 1, 1, tzinfo=UTC))
        )
    base = ["--database", db_url, "requests"]
    assert main([*base, "add", "--workspace", "riverside", "--from", "2025-03-01",
                 "--to", "2025-03-02", "--requester", "olga@riverside.example",
                 "--ticket", "SIEM-1"]) == 0  # fmt: skip
    code = main([*base, "fulfil", "SIEM-1", "--output", str(tmp_path), "--format", "jsonl",
                 "--package"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    exported = next(tmp_path.glob("*.jsonl"))
    assert exported.name.endswith("_SIEM-1.jsonl") and str(exported) in printed
    assert len(exported.read_text(encoding="utf-8").splitlines()) == 3
    view = requests.find_request(engine, "SIEM-1")
    assert view.status.value == "delivered" and view.export_path == str(exported)
    assert f"JSON Lines {exported.name}" in (view.description or "")
    passphrase = printed.split("passphrase ")[1].split()[0]
    with pyzipper.AESZipFile(exported.with_suffix(".zip")) as archive:
        archive.setpassword(passphrase.encode())
        assert archive.read(exported.name) == exported.read_bytes()
