"""Case files: round trip, offline verification, wrong passphrase, damage, no plaintext on disk."""

from __future__ import annotations

import base64
import json
import os
import struct
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from nvadmin.analysis.reports import patient_access_report
from nvadmin.audit.checkpoints import KeyStore
from nvadmin.audit.verify import BreakKind, sign_checkpoint
from nvadmin.casefile import container, encrypted
from nvadmin.casefile.builder import create_case_file
from nvadmin.casefile.reader import open_case_file, verify_case
from nvadmin.errors import AccessDenied, UserError
from nvadmin.identity import Role, StaffIdentity
from nvadmin.query.filters import EventFilter, Term
from nvadmin.workers import helper
from nvadmin.workers.cancel import Cancelled, CancelToken
from tests.factories import add_member, add_workspace, draft, write

REVIEWER = StaffIdentity(7, "casey@nvadmin.example", "Casey Reviewer", Role.COMPLIANCE)
SUPPORT = StaffIdentity(8, "sam@nvadmin.example", "Sam Support", Role.SUPPORT)
PASSPHRASE = "correct horse battery staple"
MARKER = "PHI-MARKER-4242"
MEMBER = "ana@riverside.example"
EVENT_SQL = (
    "SELECT id, workspace_id, seq, actor_email, action, patient_id, details, hash "
    "FROM activity_events WHERE workspace_id = :ws AND patient_id = :p ORDER BY seq"
)


@pytest.fixture
def clinic(engine: Engine) -> int:
    ws = add_workspace(engine)
    add_member(engine, ws, "ana@riverside.example", "Ana Ruiz", "physician")
    write(
        engine,
        ws,
        [
            draft(
                i,
                patient_id=MARKER if i % 4 == 0 else f"P-{i}",
                session_id="s1",
                details={"note": f"seen {MARKER}" if i % 4 == 0 else "other"},
            )
            for i in range(40)
        ],
    )
    return ws


def make(engine: Engine, ws: int, path: Path, **kwargs: object):
    f = EventFilter(workspace_ids=(ws,), terms=(Term("patient", MARKER),))
    return create_case_file(
        engine,
        REVIEWER,
        f,
        path,
        PASSPHRASE,
        source="test database",
        **kwargs,  # type: ignore[arg-type]
    )


def test_round_trip_same_rows_and_verifies(engine: Engine, clinic: int, tmp_path: Path) -> None:
    summary = make(engine, clinic, tmp_path / "incident-17")
    assert summary.path == tmp_path / "incident-17.nvcase"
    assert summary.events == 10 and summary.context_events == 27  # seq 1..37 minus the 10
    assert oct(summary.path.stat().st_mode & 0o777) == "0o600"
    case = open_case_file(summary.path, PASSPHRASE)
    try:
        with engine.connect() as a, case.engine.connect() as b:
            params = {"ws": clinic, "p": MARKER}
            original = [tuple(r) for r in a.execute(text(EVENT_SQL), params)]
            carried = [tuple(r) for r in b.execute(text(EVENT_SQL), params)]
            assert carried == original and len(carried) == 10
            # Only the matching events are browsable; the context rows serve verification.
            assert b.execute(text("SELECT count(*) FROM activity_events")).scalar_one() == 10
            members = b.execute(text("SELECT email FROM team_members")).scalars().all()
            assert members == ["ana@riverside.example"]
            assert b.execute(text("SELECT count(*) FROM staff")).scalar_one() == 0
        manifest = case.manifest
        assert manifest["events"] == 10 and manifest["created_by"]["email"] == REVIEWER.email
        assert manifest["filter"]["terms"][0]["value"] == MARKER
        assert manifest["segments"][0]["first_seq"] == 1
        assert manifest["segments"][0]["last_seq"] == 37
        (result,) = verify_case(case, REVIEWER)
        assert result.intact and result.events_verified == 37
        # Reports work offline too (and write nothing: there is no log to write to).
        report = patient_access_report(
            case.engine,
            case.creator,
            workspace_id=clinic,
            patient_id=MARKER,
            start=None,
            end=None,
            record=False,
        )
        assert report.row_count == 10
        with pytest.raises(OperationalError, match="readonly"), case.engine.begin() as c:
            c.execute(text("INSERT INTO nvadmin_meta (key, value) VALUES ('x', 'y')"))
    finally:
        case.close()


@pytest.mark.parametrize(
    ("terms", "text"),
    [
        ((Term("user", "ana"),), ""),  # part of an e-mail address
        ((), "seen"),  # free text, in the details
    ],
)
def test_a_case_of_a_partial_name_or_free_text_is_made(
    engine: Engine, clinic: int, tmp_path: Path, terms: tuple[Term, ...], text: str
) -> None:
    """Both failed with "no such column: activity_events_1.actor_email": their condition kept
    the source table's column when the copy read the source under another name."""
    f = EventFilter(workspace_ids=(clinic,), terms=terms, text=text)
    summary = create_case_file(
        engine, REVIEWER, f, tmp_path / "partial", PASSPHRASE, source="test database"
    )
    assert summary.events == (40 if terms else 10)
    case = open_case_file(summary.path, PASSPHRASE)
    try:
        (result,) = verify_case(case, REVIEWER)
        assert result.intact
    finally:
        case.close()


def test_creating_a_case_file_is_logged_as_an_export(
    engine: Engine, clinic: int, tmp_path: Path
) -> None:
    summary = make(engine, clinic, tmp_path / "c.nvcase")
    with engine.connect() as c:
        details = c.execute(
            text("SELECT details FROM activity_events WHERE action = 'activity_log.export'")
        ).scalar_one()
    facts = json.loads(details)
    assert facts["kind"] == "case file" and facts["rows"] == 10
    assert facts["sha256"] == summary.sha256 and facts["file"] == "c.nvcase"


def test_segment_reaches_the_next_checkpoint(engine: Engine, clinic: int, tmp_path: Path) -> None:
    keys = KeyStore(tmp_path / "config")
    key = keys.create_signing_key()
    sign_checkpoint(engine, REVIEWER, clinic, key)  # at #40
    summary = make(engine, clinic, tmp_path / "c", public_keys=keys.trusted_keys())
    assert summary.manifest["segments"][0]["last_seq"] == 40
    assert summary.checkpoints == 1
    case = open_case_file(summary.path, PASSPHRASE)
    try:
        (trusted,) = verify_case(case, REVIEWER, keys.trusted_keys())
        assert trusted.intact and trusted.checkpoints_valid == 1
        assert any("ends at a signed checkpoint" in n for n in trusted.notes)
        (carried,) = verify_case(case, REVIEWER, {})  # reviewer without the key installed
        assert carried.intact and any("fingerprint" in n for n in carried.notes)
    finally:
        case.close()


def test_a_tampered_source_is_visible_in_the_case_file(
    engine: Engine, clinic: int, tmp_path: Path
) -> None:
    with engine.begin() as c:
        if engine.dialect.name == "postgresql":
            c.execute(text("SET LOCAL session_replication_role = replica"))
        else:
            c.execute(text("DROP TRIGGER activity_events_no_update"))
        c.execute(text("UPDATE activity_events SET actor_name = 'Mallory' WHERE seq = 9"))
    case = open_case_file(make(engine, clinic, tmp_path / "c").path, PASSPHRASE)
    try:
        (result,) = verify_case(case, REVIEWER)
        assert result.broken and (result.broken.kind, result.broken.seq) == (BreakKind.ALTERED, 9)
    finally:
        case.close()


def test_wrong_passphrase_is_said_plainly(engine: Engine, clinic: int, tmp_path: Path) -> None:
    path = make(engine, clinic, tmp_path / "c").path
    with pytest.raises(container.WrongPassphrase, match="wrong passphrase"):
        open_case_file(path, "correct horse battery stapler")


@pytest.mark.parametrize("where", ["header", "first page", "header length"])
def test_a_flipped_byte_opens_nothing(
    engine: Engine, clinic: int, tmp_path: Path, where: str
) -> None:
    path = make(engine, clinic, tmp_path / "c").path
    data = bytearray(path.read_bytes())
    header = encrypted.read_header(path)
    position = {
        "header": header.database_bytes + 20,
        "first page": 100,
        "header length": -len(encrypted.MAGIC) - 1,  # (the last byte is the version number)
    }[where]
    data[position] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(container.CaseFileError) as caught:
        open_case_file(path, PASSPHRASE)
    message = str(caught.value)
    assert "\n" not in message
    assert any(w in message for w in ("altered", "damaged", "truncated"))
    assert not isinstance(caught.value, container.WrongPassphrase)


def test_a_damaged_page_is_said_once_by_nvadmin_not_by_sqlcipher(
    engine: Engine, clinic: int, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """SQLCipher printed its own lines on stderr ("ERROR CORE sqlcipher_page_cipher: hmac
    check failed for pgno=1") beside nvadmin's message."""
    path = make(engine, clinic, tmp_path / "c").path
    data = bytearray(path.read_bytes())
    data[100] ^= 0x01  # in the first page
    path.write_bytes(bytes(data))
    capfd.readouterr()
    with pytest.raises(container.CaseFileError) as caught:
        open_case_file(path, PASSPHRASE)
    assert str(caught.value) == encrypted.PAGE_FAILURE
    assert capfd.readouterr() == ("", "")


# How every page of a case file gets checked: by a helper process (nvadmin started again)
# while the chains are walked, or here when the helper cannot start or fails.
PAGE_CHECKERS = {
    "helper": None,
    "no helper": ["no-such-program"],
    "failing helper": [sys.executable, "-c", "import sys; sys.exit('database is locked')"],
}


@pytest.mark.parametrize("checker", list(PAGE_CHECKERS))
@pytest.mark.parametrize("page", ["a page of events", "the last page"])
def test_a_tampered_page_is_refused_when_read(
    engine: Engine,
    clinic: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    page: str,
    checker: str,
) -> None:
    """The file opens at once (nothing is read whole), but a changed page is never shown:
    reading it, and verification (which reads every page), say the file was altered."""
    started: list[str] = []
    real = helper.start

    def start(kind: str, job: dict[str, object]) -> object:
        started.append(kind)
        return real(kind, job)

    path = make(engine, clinic, tmp_path / "c").path
    monkeypatch.setattr(helper, "start", start)
    command = PAGE_CHECKERS[checker]
    if command is not None:
        monkeypatch.setattr(helper, "command", lambda: command)
    case = open_case_file(path, PASSPHRASE)
    try:
        assert all(r.intact for r in verify_case(case, REVIEWER))
    finally:
        case.close()
    assert started[-1:] == ["case-check"]
    data = bytearray(path.read_bytes())
    pages = encrypted.read_header(path).database_bytes // encrypted.PAGE_SIZE
    number = {"a page of events": pages // 2, "the last page": pages - 1}[page]
    data[number * encrypted.PAGE_SIZE + 1000] ^= 0x40
    path.write_bytes(bytes(data))
    try:
        case = open_case_file(path, PASSPHRASE)
    except container.CaseFileError as error:  # the page held the schema or the manifest
        assert str(error) == encrypted.PAGE_FAILURE
        return
    try:
        with pytest.raises(container.CaseFileError) as caught:
            verify_case(case, REVIEWER)
        assert str(caught.value) == encrypted.PAGE_FAILURE
        assert "altered" in str(caught.value) and "\n" not in str(caught.value)
    finally:
        case.close()


def test_cancelling_while_every_page_is_checked_ends_the_checking_process(
    engine: Engine, clinic: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make(engine, clinic, tmp_path / "c").path
    processes: list[Any] = []
    real = helper.start

    def start(kind: str, job: dict[str, object]) -> Any:
        processes.append(real(kind, job))
        return processes[-1]

    monkeypatch.setattr(helper, "start", start)
    monkeypatch.setattr(
        helper, "command", lambda: [sys.executable, "-c", "import time; time.sleep(600)"]
    )
    token = CancelToken()

    def progress(_done: int, _total: int | None, message: str) -> None:
        if message == "checking every page of the case file":  # the chains are walked
            token.cancel()

    case = open_case_file(path, PASSPHRASE)
    try:
        with pytest.raises(Cancelled):
            verify_case(case, REVIEWER, progress=progress, cancel=token)
    finally:
        case.close()
    assert len(processes) == 1 and processes[0].returncode is not None


def test_truncated_files_open_nothing(engine: Engine, clinic: int, tmp_path: Path) -> None:
    path = make(engine, clinic, tmp_path / "c").path
    whole = path.read_bytes()
    database = encrypted.read_header(path).database_bytes
    for size in (0, 5, 40, len(whole) // 2, len(whole) - 1):
        path.write_bytes(whole[:size])
        with pytest.raises(container.CaseFileError, match=r"short|truncated|damaged|is empty"):
            open_case_file(path, PASSPHRASE)
    path.write_bytes(whole + b"extra")
    with pytest.raises(container.CaseFileError):
        open_case_file(path, PASSPHRASE)
    # A page cut out of the database, its trailer kept: the length no longer matches.
    path.write_bytes(whole[: database - encrypted.PAGE_SIZE] + whole[database:])
    with pytest.raises(container.CaseFileError, match="truncated or was altered"):
        open_case_file(path, PASSPHRASE)
    (tmp_path / "not-a-case.nvcase").write_bytes(b"SQLite format 3\x00" + bytes(100))
    with pytest.raises(container.CaseFileError, match="not an nvadmin case file"):
        open_case_file(tmp_path / "not-a-case.nvcase", PASSPHRASE)
    path.write_bytes(whole[:-1] + b"\x03")  # a later version's trailer
    with pytest.raises(container.CaseFileError, match="made by a newer nvadmin"):
        open_case_file(path, PASSPHRASE)


def test_segments_cannot_be_cut_or_reordered() -> None:
    payload = os.urandom(3 * container.SEGMENT_SIZE)  # incompressible: several segments
    out = bytearray()
    container.encrypt(payload, PASSPHRASE, out.extend)
    assert bytes(container.decrypt(bytes(out), PASSPHRASE)) == payload
    _, body = container.read_header(bytes(out))
    segment = 4 + container.SEGMENT_SIZE + 16
    cut = bytes(out[: body + 3 * segment])  # drop the final segment exactly at a boundary
    with pytest.raises(container.CaseFileError, match="truncated or was altered"):
        container.decrypt(cut, PASSPHRASE)
    swapped = (
        bytes(out[:body])
        + bytes(out[body + segment : body + 2 * segment])
        + bytes(out[body : body + segment])
        + bytes(out[body + 2 * segment :])
    )
    with pytest.raises(container.CaseFileError, match="altered"):
        container.decrypt(swapped, PASSPHRASE)


_watched: list[tuple[str, str]] | None = None
_hooked = False


def _audit(event: str, args: tuple) -> None:
    if _watched is None:
        return
    if event == "open":
        path, _mode, flags = args
        if isinstance(path, int):  # a descriptor already open (a pipe to a child), not a file
            return
        if isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            _watched.append(("write", str(path)))
    elif event == "sqlite3.connect":
        _watched.append(("sqlite", str(args[0])))


@contextmanager
def file_writes() -> Iterator[list[tuple[str, str]]]:
    """Every file opened for writing and every SQLite database opened, in this block."""
    global _watched, _hooked
    if not _hooked:
        sys.addaudithook(_audit)  # audit hooks cannot be removed: it stays idle outside
        _hooked = True
    _watched = []
    try:
        yield _watched
    finally:
        _watched = None


def test_no_plaintext_ever_reaches_the_disk(
    engine: Engine, clinic: int, tmp_path: Path, db_url: str
) -> None:
    started = time.time()
    out = tmp_path / "out"
    out.mkdir()
    plaintext = (MARKER.encode(), MEMBER.encode(), b"SQLite format 3")
    seen: set[str] = set()

    def nothing_readable_next_to_it(*_args: object) -> None:
        """Every file in the destination folder, at each step of the building."""
        for entry in out.iterdir():
            seen.add(entry.name)
            content = entry.read_bytes()
            assert not any(p in content for p in plaintext), entry

    with file_writes() as writes:
        summary = make(engine, clinic, out / "c", progress=nothing_readable_next_to_it)
        case = open_case_file(summary.path, PASSPHRASE)
        (result,) = verify_case(case, REVIEWER)
        with case.engine.connect() as c:  # browsing opens no journal or WAL next to it
            assert c.execute(text("SELECT count(*) FROM team_members")).scalar_one() == 1
            assert os.listdir(out) == ["c.nvcase"]
        case.close()
    assert result.intact
    # The building wrote only hidden temporary files: the case database, and for rows read by
    # the driver a staging database with its write-ahead log and index (read above: nothing
    # readable in them either); no journal or other temporary file.
    staged = {n.removesuffix("-wal").removesuffix("-shm") for n in seen - {"c.nvcase"}}
    assert seen and all(name.endswith(".nvexport-part") for name in staged), seen
    written = {path for kind, path in writes if kind == "write"}
    assert written and all(p.endswith(".nvexport-part") for p in written), written
    assert all(Path(p).parent == out for p in written)
    databases = {path for kind, path in writes if kind == "sqlite"}
    source = db_url.removeprefix("sqlite:///")
    allowed = {":memory:", source, *(p for p in written), summary.path.resolve().as_uri()}
    assert {d.split("?")[0] for d in databases} <= allowed, databases
    assert os.listdir(out) == ["c.nvcase"]
    content = summary.path.read_bytes()
    assert not any(p in content for p in plaintext)
    # Nothing new in the temporary folders holds the patient id either.
    # (The system temp folder's own files; the test database server's data lives below it.)
    candidates = [*Path(tempfile.gettempdir()).glob("*"), *tmp_path.rglob("*")]
    for path in candidates:
        try:
            fresh = path.is_file() and path.stat().st_mtime >= started - 1
            is_source = path.name.startswith(Path(source).name)  # the database itself
            if fresh and not is_source and path.stat().st_size < 50_000_000:
                assert MARKER.encode() not in path.read_bytes(), path
        except OSError:
            continue


def test_only_compliance_and_admin_make_case_files(
    engine: Engine, clinic: int, tmp_path: Path
) -> None:
    f = EventFilter(workspace_ids=(clinic,))
    with pytest.raises(AccessDenied):
        create_case_file(engine, SUPPORT, f, tmp_path / "c", PASSPHRASE, source="x")
    with pytest.raises(AccessDenied):  # every workspace at once: admins only
        create_case_file(engine, REVIEWER, EventFilter(), tmp_path / "c", PASSPHRASE, source="x")
    with pytest.raises(UserError, match="at least 10 characters"):
        create_case_file(engine, REVIEWER, f, tmp_path / "c", "short", source="x")
    assert not list(tmp_path.glob("c*"))


def _with_header(data: bytes, change) -> bytes:  # type: ignore[no-untyped-def]
    """The container with its header JSON edited by ``change`` (length prefix kept right)."""
    start = len(container.MAGIC) + 4
    (length,) = struct.unpack(">I", data[len(container.MAGIC) : start])
    fields = json.loads(data[start : start + length])
    change(fields)
    header = json.dumps(fields, sort_keys=True).encode()
    return container.MAGIC + struct.pack(">I", len(header)) + header + data[start + length :]


def _sealed(payload: bytes = b"case payload") -> bytes:
    out = bytearray()
    container.encrypt(payload, PASSPHRASE, out.extend)
    return bytes(out)


def _count_derivations(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, int]]:
    calls: list[tuple[int, int, int]] = []
    real = container.derive_keys

    def counting(passphrase: str, salt: bytes, n: int, r: int, p: int):  # type: ignore[no-untyped-def]
        calls.append((n, r, p))
        return real(passphrase, salt, n, r, p)

    monkeypatch.setattr(container, "derive_keys", counting)
    return calls


def test_doctored_kdf_settings_are_refused_before_any_key_derivation(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A header asking for scrypt n=2^20, r=16, p=4 (2 GiB, most of a minute) used to be
    honoured and then reported as a wrong passphrase."""

    def expensive(fields: dict) -> None:
        fields["kdf"].update(n=2**20, r=16, p=4)
        fields.pop("header_sha256", None)  # as a forger who knows the format would

    doctored = _with_header(_sealed(), expensive)
    path = tmp_path / "doctored.nvcase"
    path.write_bytes(doctored)
    derivations = _count_derivations(monkeypatch)
    with pytest.raises(container.CaseFileError) as caught:
        open_case_file(path, PASSPHRASE)
    assert not isinstance(caught.value, container.WrongPassphrase)
    assert str(caught.value).startswith("damaged or altered case file")
    assert derivations == []


@pytest.mark.parametrize(
    "field",
    ["salt", "key_check", "nonce_prefix", "segment_size", "kdf settings within old bounds"],
)
def test_an_edited_header_is_called_altered_not_a_wrong_passphrase(
    monkeypatch: pytest.MonkeyPatch, field: str
) -> None:
    def edit(fields: dict) -> None:
        if field == "salt":
            fields["kdf"]["salt"] = base64.b64encode(bytes(16)).decode()
        elif field == "kdf settings within old bounds":
            fields["kdf"]["n"] = 2**14  # accepted (and run) by the old bounds check
        elif field == "segment_size":
            fields["segment_size"] = 4096
        else:
            fields[field] = base64.b64encode(bytes(len(base64.b64decode(fields[field])))).decode()

    edited = _with_header(_sealed(), edit)
    derivations = _count_derivations(monkeypatch)
    with pytest.raises(container.AlteredHeader, match=r"^damaged or altered case file"):
        container.decrypt(edited, PASSPHRASE)
    assert derivations == []


def test_the_right_passphrase_still_opens_and_a_wrong_one_is_still_named() -> None:
    sealed = _sealed(b"x" * 1000)
    assert bytes(container.decrypt(sealed, PASSPHRASE)) == b"x" * 1000
    with pytest.raises(container.WrongPassphrase, match="wrong passphrase"):
        container.decrypt(sealed, PASSPHRASE + "!")


def test_case_files_written_before_the_header_checksum_still_open() -> None:
    old = Path(__file__).parent.parent / "data" / "case-container-without-header-check.bin"
    data = old.read_bytes()
    assert b"header_sha256" not in data
    assert bytes(container.decrypt(data, PASSPHRASE)).startswith(b"a case file written before")
    with pytest.raises(container.WrongPassphrase):
        container.decrypt(data, "not the passphrase at all")


def test_a_version_1_case_file_still_opens() -> None:
    """Written by nvadmin before version 2 (the events of ``clinic`` matching MARKER)."""
    path = Path(__file__).parent.parent / "data" / "case-file-v1.nvcase"
    assert path.read_bytes().startswith(b"NVCASE\x00\x01")
    assert container.version_of(path) == 1
    container.read_header_of(path)  # the header is checked before the passphrase is asked
    with pytest.raises(container.WrongPassphrase, match="wrong passphrase"):
        open_case_file(path, "not the passphrase at all")
    case = open_case_file(path, PASSPHRASE)
    try:
        assert case.manifest["events"] == 10 and case.manifest["context_events"] == 27
        with case.engine.connect() as c:
            patients = c.execute(text("SELECT DISTINCT patient_id FROM activity_events")).all()
            assert patients == [(MARKER,)]
        (result,) = verify_case(case, REVIEWER)
        assert result.intact and result.events_verified == 37
    finally:
        case.close()


def test_new_case_files_are_version_2(engine: Engine, clinic: int, tmp_path: Path) -> None:
    path = make(engine, clinic, tmp_path / "c").path
    assert container.version_of(path) == 2
    data = path.read_bytes()
    assert data.endswith(encrypted.MAGIC)
    header = encrypted.read_header(path)
    assert header.database_bytes % encrypted.PAGE_SIZE == 0
    assert (header.n, header.r, header.p) == (2**17, 8, 1)
    # The trailer names the format and the cipher, and nothing about the case.
    trailer = data[header.database_bytes :]
    assert b"nvadmin-case-file/2" in trailer and encrypted.CIPHER.encode() in trailer
    assert MARKER.encode() not in trailer and REVIEWER.email.encode() not in trailer


def _with_trailer(path: Path, change) -> None:  # type: ignore[no-untyped-def]
    """Edit the v2 trailer's JSON with ``change`` (its length kept right, checksum as is)."""
    data = path.read_bytes()
    database = encrypted.read_header(path).database_bytes
    (length,) = struct.unpack(">I", data[-12:-8])
    fields = json.loads(data[database : database + length])
    change(fields)
    header = json.dumps(fields, sort_keys=True).encode()
    path.write_bytes(data[:database] + header + struct.pack(">I", len(header)) + encrypted.MAGIC)


@pytest.mark.parametrize(
    "field", ["kdf settings", "salt", "key_check", "cipher", "database_bytes", "format"]
)
def test_an_edited_v2_header_is_refused_before_any_key_derivation(
    engine: Engine, clinic: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, field: str
) -> None:
    path = make(engine, clinic, tmp_path / "c").path

    def edit(fields: dict) -> None:
        if field == "kdf settings":
            fields["kdf"].update(n=2**20, r=16, p=4)
            fields.pop("header_sha256")  # as a forger who knows the format would
        elif field == "salt":
            fields["kdf"]["salt"] = base64.b64encode(bytes(16)).decode()
        elif field == "key_check":
            fields["key_check"] = base64.b64encode(bytes(32)).decode()
        elif field == "cipher":
            fields["cipher"] = "SQLCipher 3"
        elif field == "database_bytes":
            fields["database_bytes"] += 4096
        else:
            fields["format"] = "nvadmin-case-file/3"

    _with_trailer(path, edit)
    derivations = _count_derivations(monkeypatch)
    with pytest.raises(container.CaseFileError) as caught:
        open_case_file(path, PASSPHRASE)
    assert not isinstance(caught.value, container.WrongPassphrase)
    message = str(caught.value)
    if field == "format":
        assert "format this nvadmin does not know" in message
    else:
        assert message.startswith("damaged or altered case file"), message
    assert derivations == []


def test_the_case_database_is_built_and_read_in_bounded_memory(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages leave memory for the file (encrypted) while the events are still being copied,
    instead of the whole database being built in memory and encrypted at the end; opening
    reads the file in place instead of decrypting it into memory."""
    from nvadmin.casefile import builder

    ws = add_workspace(engine)
    write(engine, ws, [draft(i, details={"note": "x" * 200}) for i in range(3_000)])
    monkeypatch.setattr(builder, "CACHE_KIB", 256)
    monkeypatch.setattr(builder, "_BATCH", 500)
    on_disk_while_copying: list[int] = []

    def watch(_done: int, _total: int | None, message: str) -> None:
        if "events copied" in message:
            # The case database (rows read by the driver are staged in a file named after it).
            part = min(tmp_path.glob("*.nvexport-part"), key=lambda p: len(p.name))
            on_disk_while_copying.append(part.stat().st_size)

    summary = create_case_file(
        engine,
        REVIEWER,
        EventFilter(workspace_ids=(ws,)),
        tmp_path / "big",
        PASSPHRASE,
        source="test",
        progress=watch,
    )
    assert summary.events == 3_000
    assert on_disk_while_copying[-1] > 1_000_000  # more than the 256 KiB page cache
    assert on_disk_while_copying[0] < on_disk_while_copying[-1]
    case = open_case_file(summary.path, PASSPHRASE)
    try:
        assert case.in_place
        with case.engine.connect() as c:
            (_seq, name, file) = c.exec_driver_sql("PRAGMA database_list").one()
            assert name == "main" and Path(file) == summary.path.resolve()
        (result,) = verify_case(case, REVIEWER)
        assert result.intact and result.events_verified == 3_000
    finally:
        case.close()


def test_a_v2_case_file_is_a_plain_sqlcipher_4_database(
    engine: Engine, clinic: int, tmp_path: Path
) -> None:
    """What docs/compliance.md promises a reviewer without nvadmin: SQLCipher with the raw key
    and ``cipher_compatibility = 4`` reads it (the trailer after the database is ignored)."""
    import sqlcipher3

    path = make(engine, clinic, tmp_path / "c").path
    header = encrypted.read_header(path)
    key = container.derive_keys(PASSPHRASE, header.salt, header.n, header.r, header.p).encryption
    connection = sqlcipher3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        connection.execute(f"PRAGMA key = \"x'{key.hex()}'\"")
        connection.execute("PRAGMA cipher_compatibility = 4")
        count = connection.execute("SELECT count(*) FROM activity_events").fetchone()[0]
        assert count == 10
    finally:
        connection.close()
