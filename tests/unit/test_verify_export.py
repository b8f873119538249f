"""Signed export manifests and ``nvadmin verify-export``: offline checks a recipient can run."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from nvadmin.__main__ import main
from nvadmin.audit import checkpoints
from nvadmin.audit.chain import CHAINED_FIELDS, digest, lock_head
from nvadmin.auth.accounts import add_staff, command_line_operator
from nvadmin.export.manifest import file_sha256
from nvadmin.export.verify import cell_value
from nvadmin.paths import Paths
from tests.factories import add_workspace, draft, write

PASSWORD = "Correct horse battery staple 42!"
EVIDENCE_COLUMNS = (
    "occurred_at_local,seq,occurred_at_utc,actor_type,actor_id,actor_email,actor_name,"
    "actor_role,action,category,outcome,failure_reason,resource_type,resource_id,patient_id,"
    "ip,user_agent,session_id,request_id,details,prev_hash,hash"
)

SPREADSHEET_COLUMNS = "occurred_at_local,utc_offset,occurred_at_utc,seq,actor_email,patient_id"


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
            # Empty texts, which a CSV writes like missing values.
            draft(
                occurred_at=datetime(2025, 3, 2, 8, 0, tzinfo=UTC),
                email="ben@x.example",
                user_agent="",
                resource_type="",
            ),
            draft(occurred_at=datetime(2025, 3, 3, 6, 0, tzinfo=UTC)),  # Mar 3: excluded
        ],
    )
    return ws


def export(
    db_url: str, out: Path, monkeypatch: pytest.MonkeyPatch, *extra: str, columns: str = ""
) -> None:
    """Export the fixture's days; the data profile unless ``extra`` names one (the hash
    columns need it)."""
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    if "--profile" not in extra and "--bom" not in extra:
        extra = ("--profile", "data", *extra)
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
    # The head when the rows were read: the checkpointed one, or on PostgreSQL the view a
    # staff session records to open the workspace's log before reading it.
    opened = 1 if engine.dialect.name == "postgresql" else 0
    assert chain["head_at_snapshot"]["seq"] == 4 + opened
    if not opened:
        assert chain["head_at_snapshot"]["hash"] == head_hash.hex()
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


@pytest.mark.parametrize("profile", ["excel", "data"])
def test_each_profile_verifies_and_a_flipped_byte_fails(
    workspace: int,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    signing_key: checkpoints.SigningKey,
    profile: str,
) -> None:
    """Both profiles' files verify offline (the manifest names the profile); the data profile
    is checked row by row, and the excel profile (times to the second) refuses the hash
    columns rather than writing rows no one could check."""
    out = tmp_path / f"{profile}.csv"
    columns = EVIDENCE_COLUMNS if profile == "data" else SPREADSHEET_COLUMNS
    export(db_url, out, monkeypatch, "--profile", profile, columns=columns)
    manifest = json.loads((tmp_path / f"{profile}.csv.manifest.json").read_text())
    assert manifest["csv"]["profile"] == profile
    assert manifest["csv"]["bom"] == (profile == "excel")
    assert manifest["csv"]["line_terminator"] == ("CRLF" if profile == "excel" else "LF")
    data = out.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") == (profile == "excel")
    assert data.endswith(b"\r\n" if profile == "excel" else b"\n")
    key = public_key_file(signing_key, tmp_path)
    code, line = verify(capsys, str(out), "--key", str(key))
    assert code == 0, line
    if profile == "data":
        assert "3 row hashes match their cells" in line, line
    else:
        assert "no hash column" in line, line
    flip(out, len(data) - 4)
    code, line = verify(capsys, str(out), "--key", str(key))
    assert code == 1, line
    assert f"{profile}.csv" in line and ("line 4" in line or "SHA-256" in line), line
    if profile == "excel":
        monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
        code = main(
            ["--database", db_url, "export", "--workspace", "riverside", "--from",
             "2025-03-01", "--to", "2025-03-02", "--ticket", "SUP-9",
             "--output", str(tmp_path / "hashes.csv"), "--staff", "sam@nvadmin.example",
             "--password-stdin", "--columns", EVIDENCE_COLUMNS]
        )  # fmt: skip
        assert code == 1
        assert "need the data profile" in capsys.readouterr().err
        assert not (tmp_path / "hashes.csv").exists()


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


def test_a_removed_row_is_named(
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
    out.write_bytes(b"".join(lines[:2] + lines[3:]))  # the second event goes
    code, line = verify(capsys, str(out), "--key", str(key))
    assert code == 1 and "t.csv holds 2 rows, the manifest 3" in line, line


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


def rerun(db_url: str, manifest: Path, out: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    return main(
        ["--database", db_url, "export", "--from-manifest", str(manifest), "--output", str(out),
         "--staff", "sam@nvadmin.example", "--password-stdin"]
    )  # fmt: skip


@pytest.mark.parametrize("profile", ["excel", "data"])
def test_from_manifest_rewrites_a_byte_identical_file(
    profile: str,
    workspace: int,
    engine: Engine,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sent = tmp_path / "sent.csv"
    columns = EVIDENCE_COLUMNS if profile == "data" else SPREADSHEET_COLUMNS
    export(db_url, sent, monkeypatch, "--profile", profile, "--tz", "Europe/Paris", columns=columns)
    manifest = tmp_path / "sent.csv.manifest.json"
    assert json.loads(manifest.read_text())["csv"]["profile"] == profile
    capsys.readouterr()
    again = tmp_path / "again.csv"
    assert rerun(db_url, manifest, again, monkeypatch) == 0
    assert "byte-identical to the delivered sent.csv" in capsys.readouterr().out
    assert again.read_bytes() == sent.read_bytes()
    rerun_manifest = json.loads((tmp_path / "again.csv.manifest.json").read_text())
    sent_manifest = json.loads(manifest.read_text())
    for same in ("filter", "columns", "time_zone", "start", "end", "csv", "sha256", "ticket"):
        assert rerun_manifest[same] == sent_manifest[same]

    # An event added inside the range: the re-run says the file is no longer the one sent.
    write(engine, workspace, [draft(occurred_at=datetime(2025, 3, 1, 12, 0, tzinfo=UTC))])
    later = tmp_path / "later.csv"
    assert rerun(db_url, manifest, later, monkeypatch) == 1
    assert "differs from the delivered sent.csv: 4 rows now, 3 then" in capsys.readouterr().out


def test_from_manifest_refuses_a_second_filter(
    workspace: int,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sent = tmp_path / "sent.csv"
    export(db_url, sent, monkeypatch)
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    manifest = tmp_path / "sent.csv.manifest.json"
    code = main(
        ["--database", db_url, "export", "--from-manifest", str(manifest),
         "--workspace", "riverside", "--output", str(tmp_path / "x.csv"),
         "--staff", "sam@nvadmin.example", "--password-stdin"]
    )  # fmt: skip
    assert code == 1
    assert "leave out --workspace" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


SEVEN_ZIP = shutil.which("7z")


@pytest.mark.skipif(SEVEN_ZIP is None, reason="7z (p7zip-full) is not installed")
def test_package_opens_with_7zip_and_its_files_verify(
    workspace: int,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    signing_key: checkpoints.SigningKey,
) -> None:
    out = tmp_path / "t.csv"
    export(db_url, out, monkeypatch)
    capsys.readouterr()
    package = tmp_path / "delivery.zip"
    assert main(["package-export", str(out), "--output", str(package)]) == 0
    printed = dict(line.split(" ", 1) for line in capsys.readouterr().out.splitlines()[:3])
    passphrase = printed["passphrase"]
    assert len(passphrase.replace("-", "")) >= 20
    assert not set(passphrase) & set("0O1lI")
    assert printed["sha256"] == file_sha256(package)

    wrong = subprocess.run(
        [str(SEVEN_ZIP), "x", "-pnot-the-passphrase", f"-o{tmp_path / 'wrong'}", str(package)],
        capture_output=True,
        check=False,
    )
    assert wrong.returncode != 0
    received = tmp_path / "received"
    opened = subprocess.run(
        [str(SEVEN_ZIP), "x", f"-p{passphrase}", f"-o{received}", str(package)],
        capture_output=True,
        check=False,
        text=True,
    )
    assert opened.returncode == 0, opened.stdout + opened.stderr
    listing = subprocess.run(
        [str(SEVEN_ZIP), "l", "-slt", f"-p{passphrase}", str(package)],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    assert "Method = AES-256 Deflate" in listing
    assert sorted(p.name for p in received.iterdir()) == [
        "README.txt",
        "signing-key.pem",
        "t.csv",
        "t.csv.manifest.json",
    ]
    assert (received / "t.csv").read_bytes() == out.read_bytes()
    assert (
        "nvadmin verify-export t.csv --key signing-key.pem" in (received / "README.txt").read_text()
    )
    # The recipient's check: only the package's files.
    code, line = verify(capsys, str(received / "t.csv"), "--key", str(received / "signing-key.pem"))
    assert code == 0 and line.startswith("OK: manifest signed by trusted key"), line


def test_a_changed_export_is_not_packaged(
    workspace: int,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    signing_key: checkpoints.SigningKey,
) -> None:
    out = tmp_path / "t.csv"
    export(db_url, out, monkeypatch)
    flip(out, 5)
    assert main(["package-export", str(out), "--output", str(tmp_path / "p.zip")]) == 1
    assert "no longer has its manifest's SHA-256; not packaged" in capsys.readouterr().err
    assert list(tmp_path.glob("*p.zip*")) == []


def test_the_offline_commands_load_no_qt_and_open_no_database(tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "from nvadmin.__main__ import main\n"
        "main(['verify-export', sys.argv[1]])\n"
        "import nvadmin.export.evidence, nvadmin.export.verify\n"
        "assert not [m for m in sys.modules if m.startswith('PySide6')], 'Qt loaded'\n"
        "assert 'psycopg' not in sys.modules\n"
    )
    csv_file = tmp_path / "x.csv"
    csv_file.write_text("a\n")
    done = subprocess.run(
        [sys.executable, "-c", probe, str(csv_file)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    home = Path(os.environ["NVADMIN_HOME"])
    assert not (home / "data" / "nvadmin.sqlite3").exists()


def test_a_rehashed_row_breaks_the_link_to_the_next(
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
    # A forger changes the first event's actor and recomputes that row's hash correctly.
    text = out.read_bytes().decode("utf-8")
    newline = "\r\n" if "\r\n" in text else "\n"
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header, first = rows[0], rows[1]
    at = {name: header.index(name) for name in header}
    first[at["actor_name"]] = "Someone Else"
    values = [workspace] + [
        cell_value("occurred_at_utc" if f == "occurred_at" else f, first[at[
            "occurred_at_utc" if f == "occurred_at" else f]])
        for f in CHAINED_FIELDS
        if f != "workspace_id"
    ]  # fmt: skip
    first[at["hash"]] = digest(bytes.fromhex(first[at["prev_hash"]]), values).hex()
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator=newline).writerows(rows)
    out.write_bytes(buffer.getvalue().encode("utf-8"))
    code, line = verify(capsys, str(out), "--key", str(key))
    assert code == 1
    assert "t.csv line 3: event 2 does not link to event 1" in line, line


@pytest.mark.skipif(SEVEN_ZIP is None, reason="7z (p7zip-full) is not installed")
def test_export_with_package_writes_both(
    workspace: int,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    signing_key: checkpoints.SigningKey,
) -> None:
    out = tmp_path / "t.csv"
    package = tmp_path / "SUP-9.zip"
    export(db_url, out, monkeypatch, "--package", str(package))
    printed = dict(
        line.split(" ", 1) for line in capsys.readouterr().out.splitlines() if " " in line
    )
    assert printed["package"] == str(package)
    assert printed["sha256"] == file_sha256(package)
    listing = subprocess.run(
        [str(SEVEN_ZIP), "t", f"-p{printed['passphrase']}", str(package)],
        capture_output=True,
        check=False,
        text=True,
    )
    assert listing.returncode == 0 and "Everything is Ok" in listing.stdout


def test_a_manifest_from_before_the_profiles_is_not_rerun(tmp_path: Path) -> None:
    """Its times had another form: a re-run cannot give its bytes, and says why."""
    from nvadmin.errors import UserError
    from nvadmin.export.evidence import request_from_manifest

    older = {"csv": {"bom": True}, "filter": {}, "time_zone": "UTC", "columns": ["seq"]}
    with pytest.raises(UserError, match="written before CSV profiles"):
        request_from_manifest(older, tmp_path / "again.csv")
    newer = {**older, "csv": {"profile": "data", "bom": False}}
    assert request_from_manifest(newer, tmp_path / "again.csv").profile.key == "data"


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("filter", "garbage", "its 'filter' is not an object"),
        ("filter", {"terms": "garbage"}, "the manifest is damaged: "),
        ("columns", "garbage", "its 'columns' is not a list of column names"),
        ("columns", [1, 2], "its 'columns' are not all column names"),
        ("csv", "garbage", "its 'csv' is not an object"),
        ("time_zone", None, "it has no 'time_zone'"),
    ],
)
def test_a_damaged_manifest_is_named_not_read_as_something_else(
    tmp_path: Path, field: str, value: object, says: str
) -> None:
    """A field of the wrong shape was read anyway: a text filter failed with "'str' object
    has no attribute 'get'", text columns were read letter by letter."""
    from nvadmin.errors import UserError
    from nvadmin.export.evidence import request_from_manifest

    good = {
        "csv": {"profile": "data"},
        "filter": {"workspace_ids": [1]},
        "time_zone": "UTC",
        "columns": ["seq"],
    }
    assert request_from_manifest(good, tmp_path / "again.csv").columns == ("seq",)
    damaged = {**good, field: value}
    if value is None:
        del damaged[field]
    with pytest.raises(UserError) as caught:
        request_from_manifest(damaged, tmp_path / "again.csv")
    message = str(caught.value)
    assert message.startswith("the manifest is damaged: ") and says in message
    assert "\n" not in message


def test_a_stored_apostrophe_is_kept_apart_from_the_neutralising_one(
    engine: Engine,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    signing_key: checkpoints.SigningKey,
) -> None:
    """A stored ``'=1+1`` was written as it is, and verify-export took its apostrophe for the
    one nvadmin adds: a genuine export was called tampered. A value starting with an
    apostrophe now gets one more, so exactly one is nvadmin's; ``=1+1`` is still neutralised."""
    add_staff(engine, command_line_operator(), "sam@nvadmin.example", PASSWORD, "support")
    ws = add_workspace(engine)
    stored = ["'=1+1", "=1+1", "'abc", "'", "it's"]
    write(
        engine,
        ws,
        [
            draft(occurred_at=datetime(2025, 3, 1, 6, minute, tzinfo=UTC), name=name)
            for minute, name in enumerate(stored)
        ],
    )
    written = ["''=1+1", "'=1+1", "''abc", "''", "it's"]
    for profile in ("data", "excel"):
        out = tmp_path / f"{profile}.csv"
        export(db_url, out, monkeypatch, "--profile", profile, columns="seq,actor_name")
        with out.open(encoding="utf-8-sig", newline="") as handle:
            names = [row["actor_name"] for row in csv.DictReader(handle)]
        assert names == written, profile
        assert [cell_value("actor_name", name) for name in names] == stored
    out = tmp_path / "evidence.csv"
    export(db_url, out, monkeypatch)
    key = public_key_file(signing_key, tmp_path)
    code, line = verify(capsys, str(out), "--key", str(key))
    assert code == 0, line
    assert "5 row hashes match their cells" in line, line
