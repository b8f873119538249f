"""Signed export manifests and ``nvadmin verify-export``: offline checks a recipient can run."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from nvadmin.__main__ import main
from nvadmin.audit import checkpoints
from nvadmin.audit.chain import lock_head
from nvadmin.auth.accounts import add_staff, command_line_operator
from nvadmin.paths import Paths
from tests.factories import add_workspace, draft, write

PASSWORD = "Correct horse battery staple 42!"
EVIDENCE_COLUMNS = (
    "occurred_at_local,seq,occurred_at_utc,actor_type,actor_id,actor_email,actor_name,"
    "actor_role,action,category,outcome,failure_reason,resource_type,resource_id,patient_id,"
    "ip,user_agent,session_id,request_id,details,prev_hash,hash"
)


@pytest.fixture
def signing_key() -> checkpoints.SigningKey:
    return checkpoints.KeyStore(Paths.from_environment().config_dir).create_signing_key()


@pytest.fixture
def workspace(engine: Engine) -> int:
    add_staff(engine, command_line_operator(), "sam@nvadmin.example", PASSWORD, "support")
    ws = add_workspace(engine)  # America/Chicago
    write(
        engine,
        ws,
        [
            draft(occurred_at=datetime(2025, 3, 1, 6, 30, tzinfo=UTC), actor_id=7),
            draft(
                occurred_at=datetime(2025, 3, 1, 7, 0, 0, 120000, tzinfo=UTC),
                action="auth.sign_in_failed",
                resource_id="=HYPERLINK(1)",
                details={"b": [1, "x"], "a": "é"},
            ),
            draft(occurred_at=datetime(2025, 3, 2, 8, 0, tzinfo=UTC), email="ben@x.example"),
            draft(occurred_at=datetime(2025, 3, 3, 6, 0, tzinfo=UTC)),  # Mar 3: excluded
        ],
    )
    return ws


def export(
    db_url: str, out: Path, monkeypatch: pytest.MonkeyPatch, *extra: str, columns: str = ""
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    code = main(
        ["--database", db_url, "export", "--workspace", "riverside", "--from", "2025-03-01",
         "--to", "2025-03-02", "--ticket", "SUP-9", "--output", str(out),
         "--staff", "sam@nvadmin.example", "--password-stdin",
         "--columns", columns or EVIDENCE_COLUMNS, *extra]
    )  # fmt: skip
    assert code == 0


def verify(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, str]:
    capsys.readouterr()
    # No --database: the check needs none.
    code = main(["verify-export", *arguments])
    return code, capsys.readouterr().out.strip()


def public_key_file(key: checkpoints.SigningKey, folder: Path, name: str = "key.pem") -> Path:
    path = folder / name
    path.write_bytes(checkpoints.public_pem(key.public_key))
    return path


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_manifest_is_signed_and_pins_the_chain(
    workspace: int,
    engine: Engine,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    signing_key: checkpoints.SigningKey,
) -> None:
    with engine.begin() as connection:
        head_seq, head_hash = lock_head(connection, workspace)
        checkpoints.store(connection, signing_key, workspace, head_seq, head_hash)
    out = tmp_path / "t.csv"
    export(db_url, out, monkeypatch)
    manifest = json.loads((tmp_path / "t.csv.manifest.json").read_text())
    assert manifest["signature"]["algorithm"] == "Ed25519"
    assert manifest["signature"]["key_id"] == signing_key.key_id
    chain = manifest["chain"]
    assert chain["first_event"]["seq"] == 1 and chain["last_event"]["seq"] == 3
    assert chain["head_at_snapshot"] == {"seq": 4, "hash": head_hash.hex()}
    assert chain["newest_checkpoint"]["seq"] == 4
    # Existing fields are kept.
    assert manifest["rows"] == 3 and manifest["ticket"] == "SUP-9"


def test_good_export_verifies_offline(
    workspace: int,
    engine: Engine,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    signing_key: checkpoints.SigningKey,
) -> None:
    with engine.begin() as connection:
        head_seq, head_hash = lock_head(connection, workspace)
        checkpoints.store(connection, signing_key, workspace, head_seq, head_hash)
    out = tmp_path / "t.csv"
    export(db_url, out, monkeypatch)
    key = public_key_file(signing_key, tmp_path)
    code, line = verify(capsys, str(out), "--key", str(key))
    assert code == 0, line
    assert line.startswith("OK: manifest signed by trusted key")
    assert "3 row hashes match their cells, 2 consecutive links chain" in line
    assert "checkpoint at event 4 verifies" in line
    assert "t.csv has the manifest's SHA-256" in line
    # Without --key: this computer's own key is trusted.
    assert verify(capsys, str(out))[0] == 0


def test_flipped_byte_in_the_csv_names_the_line(
    workspace: int,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    signing_key: checkpoints.SigningKey,
) -> None:
    out = tmp_path / "t.csv"
    export(db_url, out, monkeypatch)
    key = public_key_file(signing_key, tmp_path)
    lines = out.read_bytes().splitlines(keepends=True)
    # A byte of the actor's name on the third line (second event).
    offset = sum(len(x) for x in lines[:2]) + lines[2].index(b"Ana Ruiz") + 1
    flip(out, offset)
    code, line = verify(capsys, str(out), "--key", str(key))
    assert code == 1
    assert "t.csv line 3: the row's hash does not match its cells" in line, line


def test_flipped_byte_in_a_file_without_hashes_fails_on_the_digest(
    workspace: int,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    signing_key: checkpoints.SigningKey,
) -> None:
    out = tmp_path / "plain.csv"
    export(db_url, out, monkeypatch, columns="occurred_at_local,action,actor_email")
    key = public_key_file(signing_key, tmp_path)
    code, line = verify(capsys, str(out), "--key", str(key))
    assert code == 0 and "no hash column" in line, line
    flip(out, out.stat().st_size - 3)
    code, line = verify(capsys, str(out), "--key", str(key))
    assert code == 1 and "plain.csv does not have the manifest's SHA-256" in line, line


def test_flipped_byte_in_the_manifest_names_the_field(
    workspace: int,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    signing_key: checkpoints.SigningKey,
) -> None:
    out = tmp_path / "t.csv"
    export(db_url, out, monkeypatch)
    key = public_key_file(signing_key, tmp_path)
    manifest = tmp_path / "t.csv.manifest.json"
    original = manifest.read_bytes()
    flip(manifest, original.index(b'"ticket": "SUP-9"') + len(b'"ticket": "SUP-'))
    code, line = verify(capsys, str(out), "--key", str(key))
    assert code == 1
    assert "manifest t.csv.manifest.json was changed after signing: field(s) ticket" in line
    # A byte of the signature itself.
    manifest.write_bytes(original)
    at = original.index(b'"value": "') + len(b'"value": "') + 5
    flip(manifest, at)
    code, line = verify(capsys, str(out), "--key", str(key))
    assert code == 1 and "the signature does not verify" in line, line
    # A byte of the JSON's structure.
    manifest.write_bytes(original)
    flip(manifest, original.index(b"{"))
    code, line = verify(capsys, str(out), "--key", str(key))
    assert code == 1 and "is not valid JSON (line 1, column 1" in line, line


def test_wrong_key_is_refused(
    workspace: int,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    signing_key: checkpoints.SigningKey,
) -> None:
    out = tmp_path / "t.csv"
    export(db_url, out, monkeypatch)
    other = checkpoints.KeyStore(tmp_path / "elsewhere").create_signing_key()
    code, line = verify(capsys, str(out), "--key", str(public_key_file(other, tmp_path)))
    assert code == 1
    assert f"signed by key {checkpoints.fingerprint(signing_key.public_key)}" in line
    assert "which is not a trusted key" in line


def test_unsigned_manifest_is_reported(
    workspace: int,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "t.csv"
    export(db_url, out, monkeypatch)  # this computer has no signing key
    manifest = json.loads((tmp_path / "t.csv.manifest.json").read_text())
    assert manifest["signature"] == {
        "algorithm": None,
        "unsigned": "this computer has no checkpoint signing key",
    }
    code, line = verify(capsys, str(out))
    assert code == 1
    assert line.startswith(
        "FAILED: manifest is unsigned (this computer has no checkpoint signing key)"
    )
    assert "t.csv has the manifest's SHA-256" in line
