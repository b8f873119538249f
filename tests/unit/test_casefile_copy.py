"""How a case file gets its events: from a SQLite file, SQLite copies them itself in a process of
its own (``INSERT ... SELECT`` from the source attached read-only); from PostgreSQL, or a
SQLite file that cannot be attached, in batches read through the source's own driver. Either
way the rows are the source's, byte for byte, cancelling stops the copy, and the source stays
usable by everyone else, this program's other connections included."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from nvadmin.casefile import builder, copier
from nvadmin.casefile.builder import EVENT_COLUMNS, create_case_file
from nvadmin.casefile.reader import open_case_file, verify_case
from nvadmin.db.engine import make_engine
from nvadmin.db.types import sqlite_timestamp
from nvadmin.errors import UserError
from nvadmin.files.atomic import TEMP_SUFFIX, ExportWriteError
from nvadmin.identity import Role, StaffIdentity
from nvadmin.query.filters import EventFilter, Term
from nvadmin.workers import helper
from nvadmin.workers.cancel import Cancelled, CancelToken
from tests.disks import tiny_file_system
from tests.factories import T0, add_workspace, draft, write

REVIEWER = StaffIdentity(7, "casey@nvadmin.example", "Casey Reviewer", Role.COMPLIANCE)
PASSPHRASE = "correct horse battery staple"
ROWS = f"SELECT {', '.join(EVENT_COLUMNS)} FROM activity_events WHERE {{where}} ORDER BY id"


def _stored(value: Any) -> Any:
    """A value as the case database stores it (PostgreSQL's driver gives the time as a
    datetime; the case database holds SQLite's text for it)."""
    return sqlite_timestamp(value) if isinstance(value, datetime) else value


def _events(engine: Engine, where: str) -> list[tuple[Any, ...]]:
    with engine.connect() as c:
        return [tuple(map(_stored, r)) for r in c.execute(text(ROWS.format(where=where)))]


def _build(engine: Engine, path: Path, event_filter: EventFilter, **kwargs: Any) -> Any:
    return create_case_file(
        engine, REVIEWER, event_filter, path, PASSPHRASE, source="test", **kwargs
    )


def _holds_exactly(summary: Any, expected: list[tuple[Any, ...]]) -> None:
    """The case file holds exactly ``expected``, and its chain verifies."""
    case = open_case_file(summary.path, PASSPHRASE)
    try:
        assert _events(case.engine, "1 = 1") == expected
        (result,) = verify_case(case, REVIEWER)
        assert result.intact
    finally:
        case.close()


def _unattachable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A SQLite source the copying process cannot attach: its rows come in batches."""
    monkeypatch.setattr(builder, "_sqlite_file", lambda _c: "/nonexistent/none.sqlite3")


@pytest.mark.parametrize("attachable", [True, False])
def test_the_case_holds_exactly_the_matching_rows(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, attachable: bool
) -> None:
    """Same rows as the source, values and types as stored, filtered and in chain order; with
    a SQLite source that cannot be attached, the copy in batches gives the same."""
    ws = add_workspace(engine)
    other = add_workspace(engine, "lakeside")
    write(engine, ws, [draft(i, patient_id=f"P-{i % 4}", details={"i": i}) for i in range(60)])
    write(engine, other, [draft(i, patient_id="P-1") for i in range(5)])
    if not attachable:
        _unattachable(monkeypatch)
    wanted = EventFilter(workspace_ids=(ws,), terms=(Term("patient", "P-1"),))
    summary = _build(engine, tmp_path / "c", wanted)
    expected = _events(engine, f"workspace_id = {ws} AND patient_id = 'P-1'")
    assert summary.events == len(expected) == 15
    _holds_exactly(summary, expected)


# Texts any encoding of the rows would have to escape, and the empty text.
TRICKY = ['"', "\\", '\\"', "\x01\x1f", "\t\r\n", "\u2028\u2029", "😀", "שלום", "'; --", ""]


@pytest.mark.parametrize("attachable", [True, False])
def test_any_text_is_copied_exactly(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, attachable: bool
) -> None:
    """Quotes, backslashes, control characters, line and paragraph separators, emoji,
    right-to-left text, the empty text and missing values: the case holds each exactly as
    the source stores it, and its chain verifies, whichever way the rows came."""
    if not attachable:
        _unattachable(monkeypatch)
    ws = add_workspace(engine)
    drafts = [
        draft(i, name=t, user_agent=t or None, failure_reason=t, details={"t": t})
        for i, t in enumerate(TRICKY)
    ]
    write(engine, ws, drafts)
    expected = _events(engine, f"workspace_id = {ws}")  # before the case file is logged
    summary = _build(engine, tmp_path / "c", EventFilter(workspace_ids=(ws,)))
    assert summary.events == len(expected) == len(TRICKY)
    _holds_exactly(summary, expected)


def test_a_time_range_over_every_workspace_holds_each_workspace_s_rows(
    engine: Engine, tmp_path: Path
) -> None:
    """A filter with times (bound through the event time's own type, also in the cursor
    declared on PostgreSQL) and no workspace (an admin's): each workspace with matching
    events gets its segment, and only those workspaces are listed in the case."""
    ws, other = add_workspace(engine), add_workspace(engine, "lakeside")
    add_workspace(engine, "hillside")  # no events: not in the case
    write(engine, ws, [draft(i * 10) for i in range(30)])
    write(engine, other, [draft(i * 10) for i in range(20)])
    start, end = T0 + timedelta(minutes=50), T0 + timedelta(minutes=150)
    admin = StaffIdentity(1, "dana@nvadmin.example", "Dana", Role.ADMIN)
    summary = create_case_file(
        engine, admin, EventFilter(start=start, end=end), tmp_path / "c", PASSPHRASE, source="t"
    )
    expected = _events(
        engine,
        f"occurred_at >= '{sqlite_timestamp(start)}' AND occurred_at < '{sqlite_timestamp(end)}'"
        if engine.dialect.name == "sqlite"
        else f"occurred_at >= '{start.isoformat()}' AND occurred_at < '{end.isoformat()}'",
    )
    assert summary.events == len(expected) == 20
    case = open_case_file(summary.path, PASSPHRASE)
    try:
        assert _events(case.engine, "1 = 1") == expected
        assert case.manifest["case_schema"] == 1  # several workspaces: the main indexes
        spans = [(s["workspace_id"], s["matching_events"]) for s in case.manifest["segments"]]
        assert spans == [(ws, 10), (other, 10)]
        with case.engine.connect() as c:
            listed = c.execute(text("SELECT id FROM workspaces ORDER BY id")).scalars().all()
        assert listed == [ws, other]
        assert all(r.intact for r in verify_case(case, admin))
    finally:
        case.close()


def test_cancelling_stops_the_copy_and_leaves_no_file(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = add_workspace(engine)
    write(engine, ws, [draft(i) for i in range(3_000)])
    monkeypatch.setattr(builder, "_BATCH", 500)
    token = CancelToken()
    copied: list[int] = []

    def watch(done: int, _total: int | None, message: str) -> None:
        if "events copied" in message:
            copied.append(done)
            token.cancel()

    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(Cancelled):
        _build(engine, out / "c", EventFilter(workspace_ids=(ws,)), progress=watch, cancel=token)
    # Cancelled at the copy's first report. (A copying process may have copied everything by
    # then, its reports arriving together; the build is cancelled all the same.)
    assert copied
    assert list(out.iterdir()) == []  # nor the staging database, its log or its index


def test_the_source_stays_writable_during_and_after_the_copy(
    engine: Engine, tmp_path: Path
) -> None:
    """The source is attached read-only and in normal locking mode (the case database alone
    is held exclusively): events can be written to it while the case file is being built."""
    ws = add_workspace(engine)
    write(engine, ws, [draft(i) for i in range(50)])
    written: list[int] = []

    def write_meanwhile(_done: int, _total: int | None, message: str) -> None:
        if "events copied" in message and not written:
            write(engine, ws, [draft(100)])
            written.append(1)

    _build(engine, tmp_path / "c", EventFilter(workspace_ids=(ws,)), progress=write_meanwhile)
    assert written
    write(engine, ws, [draft(101)])
    with engine.connect() as c:
        count = c.execute(
            text(f"SELECT count(*) FROM activity_events WHERE workspace_id = {ws}")
        ).scalar_one()
    assert count == 50 + 1 + 1 + 1  # the case file's own export event


@pytest.fixture
def sqlite_source(sqlite_db_url: str) -> Iterator[tuple[Engine, int]]:
    """A SQLite file with a workspace of 30 events, and the workspace's id."""
    engine = make_engine(sqlite_db_url)
    ws = add_workspace(engine)
    write(engine, ws, [draft(i) for i in range(30)])
    yield engine, ws
    engine.dispose()


def _checkpoint_elsewhere(path: str) -> int:
    """Another program writes to the database, then asks for its write-ahead log to be
    checkpointed and emptied without waiting: 1 (busy) while a reader still needs the log."""
    program = (
        f"import sqlite3; c = sqlite3.connect({path!r}, timeout=0, isolation_level=None); "
        "c.execute('INSERT INTO scratch VALUES (1)'); "
        "print(c.execute('PRAGMA wal_checkpoint(TRUNCATE)').fetchone()[0])"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


def test_building_from_the_embedded_database_keeps_this_program_s_readers_safe(
    sqlite_source: tuple[Engine, int], tmp_path: Path
) -> None:
    """While a case file is built from the embedded database, a reader elsewhere in this
    program (the browser, a report) keeps its snapshot: another program cannot empty the
    write-ahead log under it. SQLCipher is a second copy of SQLite; had it opened the database
    file in this process, closing it would have dropped every lock this process holds on that
    file (POSIX advisory locks belong to the process), the readers' with them."""
    engine, ws = sqlite_source
    with engine.begin() as c:
        c.execute(text("CREATE TABLE scratch (x)"))
    path = str(engine.url.database)
    reader = sqlite3.connect(path, isolation_level=None)
    try:
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM activity_events").fetchone()[0] >= 30
        assert _checkpoint_elsewhere(path) == 1  # the reader holds the log
        _build(engine, tmp_path / "c", EventFilter(workspace_ids=(ws,)))
        assert _checkpoint_elsewhere(path) == 1  # and still does
        reader.execute("COMMIT")
    finally:
        reader.close()


# A SQLite file is copied by the copying process itself; PostgreSQL's rows are staged for it.
SOURCES = ["sqlite_source", pytest.param("pg_source", marks=pytest.mark.pg)]


@pytest.mark.parametrize("source", SOURCES)
def test_a_copying_process_that_cannot_start_leaves_the_copy_to_this_one(
    source: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, ws = request.getfixturevalue(source)
    expected = _events(engine, f"workspace_id = {ws}")
    monkeypatch.setattr(helper, "command", lambda: [str(tmp_path / "no-such-program")])
    summary = _build(engine, tmp_path / "c", EventFilter(workspace_ids=(ws,)))
    assert summary.events == len(expected)
    _holds_exactly(summary, expected)


@pytest.mark.parametrize("source", SOURCES)
def test_a_failed_copy_says_why_and_leaves_no_file(
    source: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, ws = request.getfixturevalue(source)
    monkeypatch.setattr(builder, "_BATCH", 500)
    failing = "import sys; sys.stderr.write('database or disk is full\\n'); sys.exit(1)"
    monkeypatch.setattr(helper, "command", lambda: [sys.executable, "-c", failing])
    out = tmp_path / "out"
    out.mkdir()
    # What the process said is for the log; the person reads what could not be done.
    with pytest.raises(ExportWriteError, match=r"^the case file c\.nvcase could not be written"):
        _build(engine, out / "c", EventFilter(workspace_ids=(ws,)))
    assert list(out.iterdir()) == []


def _damage_the_events_table(engine: Engine) -> None:
    """A page in the middle of the event table's rows overwritten in the file (its indexes
    intact, so the source can still count the rows it is asked for)."""
    path = str(engine.url.database)
    with engine.connect() as c:
        c.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    reader = sqlite3.connect(path)
    try:
        size = reader.execute("PRAGMA page_size").fetchone()[0]
        leaves = [
            page
            for (page,) in reader.execute(
                "SELECT pageno FROM dbstat WHERE name = 'activity_events' AND pagetype = 'leaf'"
            )
        ]
    except sqlite3.OperationalError:
        pytest.skip("this SQLite has no dbstat table to find the event table's pages")
    finally:
        reader.close()
    with open(path, "r+b") as handle:
        handle.seek((leaves[len(leaves) // 2] - 1) * size)
        handle.write(b"\xff" * size)


def test_a_source_that_cannot_be_read_is_named_not_the_case_file(
    tmp_path: Path, sqlite_db_url: str
) -> None:
    """A damaged source fails the copying process as it reads: the message says the events
    could not be read, not that the case file could not be written."""
    engine = make_engine(sqlite_db_url)
    ws = add_workspace(engine)
    write(engine, ws, [draft(i, details={"note": "x" * 300}) for i in range(600)])
    _damage_the_events_table(engine)
    out = tmp_path / "out"
    out.mkdir()
    try:
        with pytest.raises(UserError) as raised:
            _build(engine, out / "c", EventFilter(workspace_ids=(ws,)))
    finally:
        engine.dispose()
    message = str(raised.value)
    assert message.startswith("the events could not be read from the source database"), message
    assert "write" not in message and "malformed" not in message, message
    assert list(out.iterdir()) == []


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 256 KiB file system (tmpfs), when this machine lets us mount one."""
    with tiny_file_system(tmp_path / "tiny", "256k") as mount_point:
        yield mount_point


@pytest.mark.parametrize("source", SOURCES)
def test_a_full_disk_is_named(source: str, request: pytest.FixtureRequest, tiny_disk: Path) -> None:
    """The copying process fills the disk: the message says so in one sentence."""
    engine, ws = request.getfixturevalue(source)
    write(engine, ws, [draft(i, details={"note": "x" * 300}) for i in range(30, 1_500)])
    with pytest.raises(ExportWriteError) as raised:
        _build(engine, tiny_disk / "c", EventFilter(workspace_ids=(ws,)))
    assert str(raised.value) == (
        f"the disk is full: no space left in {tiny_disk}; no file was written"
    )
    assert list(tiny_disk.iterdir()) == []


@pytest.fixture
def pg_source(pg_url: str) -> Iterator[tuple[Engine, int]]:
    """A PostgreSQL database with a workspace of 3,000 events, and the workspace's id."""
    engine = make_engine(pg_url)
    ws = add_workspace(engine)
    write(engine, ws, [draft(i, details={"note": "é" * (i % 50)}) for i in range(3_000)])
    yield engine, ws
    engine.dispose()


@pytest.mark.pg
def test_rows_read_by_the_driver_are_staged_and_moved_on_in_stretches(
    pg_source: tuple[Engine, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From PostgreSQL, this process stages the batches while the copying process moves
    stretches on into the case database: several stretches, every row exactly once."""
    engine, ws = pg_source
    monkeypatch.setattr(builder, "_BATCH", 500)
    monkeypatch.setattr(builder, "STAGING_WINDOW", 700)
    windows: list[int] = []
    start = copier.start

    def spied(*args: Any, **kwargs: Any) -> Any:
        windows.append(kwargs["window"])
        return start(*args, **kwargs)

    monkeypatch.setattr(copier, "start", spied)
    expected = _events(engine, f"workspace_id = {ws}")
    summary = _build(engine, tmp_path / "c", EventFilter(workspace_ids=(ws,)))
    assert windows == [700]
    assert summary.events == 3_000
    _holds_exactly(summary, expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.nvcase"]


def test_a_killed_build_s_files_go_when_the_next_case_file_is_saved_there(
    sqlite_source: tuple[Engine, int], tmp_path: Path
) -> None:
    """A build killed outright leaves its hidden case database, and a staging database in
    write-ahead mode with its log and index (the process that wrote them, 999999999, no
    longer runs); saving the next case file in that folder removes them."""
    engine, ws = sqlite_source
    out = tmp_path / "out"
    out.mkdir()
    case_part = out / f".c.nvcase.999999999.00000000{TEMP_SUFFIX}"
    staging = out / f".{case_part.name}.999999999.00000001{TEMP_SUFFIX}"
    left = [case_part, staging, *(staging.with_name(staging.name + e) for e in ("-wal", "-shm"))]
    for path in left:
        path.write_bytes(b"x")
    _build(engine, out / "next", EventFilter(workspace_ids=(ws,)))
    assert sorted(p.name for p in out.iterdir()) == ["next.nvcase"]
