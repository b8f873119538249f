"""What an export promises when things go wrong (RELIABILITY.md E1-E5, C3, D4).

E1 a killed database connection, E2 cancel at 10/50/99 %, E3 SIGKILL of the exporting process,
E4 disk full and permission denied at every write, E5 completeness (see test_export_csv), C3
files readable only by their owner, D4 a statement timeout; plus concurrent exports, the true
cause of a failure whichever half of the range fails, and a SQLite file removed or replaced
mid-export. On PostgreSQL E1, E2 and E5 hold for a range read as two halves at once too
(``service.HALVES_FROM``).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import errno
import gc
import hashlib
import json
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from nvadmin.db.engine import make_engine, sqlite_url
from nvadmin.db.models import ActivityEvent
from nvadmin.errors import DatabaseUnavailable, UserError
from nvadmin.export import manifest as manifests
from nvadmin.export import profiles, service
from nvadmin.export.evidence import package_export
from nvadmin.export.formats import FileFormat
from nvadmin.export.manifest import file_sha256
from nvadmin.export.service import ExportRequest, export_csv
from nvadmin.files import atomic
from nvadmin.files.atomic import ExportWriteError, sweep_stale
from nvadmin.identity import Role, StaffIdentity
from nvadmin.query.filters import EventFilter
from nvadmin.query.localtime import day_range
from nvadmin.workers.cancel import Cancelled, CancelToken
from tests.disks import tiny_file_system
from tests.factories import add_workspace, draft, sign_in_as, write
from tests.waiting import HANG_GUARD_MS

CLEO = StaffIdentity(8, "cleo@nvadmin.example", "Cleo Compliance", Role.COMPLIANCE)
ROOT = Path(__file__).resolve().parents[2]

CANCELLED_ON_SERVER = (
    "the query was cancelled on the database server (not by you or nvadmin); try again"
)


def march(workspace_id: int) -> EventFilter:
    start, end = day_range(date(2025, 3, 1), date(2025, 3, 31), "UTC")
    return EventFilter(workspace_ids=(workspace_id,), start=start, end=end)


def export_request(path: Path, workspace_id: int) -> ExportRequest:
    return ExportRequest(event_filter=march(workspace_id), output=path, time_zone="UTC")


def seed(engine: Engine, rows: int, workspace: str = "riverside") -> int:
    ws = add_workspace(engine, slug=workspace)
    batch = 5000
    for first in range(0, rows, batch):
        write(
            engine,
            ws,
            [
                draft(i * 0.05, resource_id=f"r{i}", details={"n": i, "pad": "x" * 200})
                for i in range(first, min(rows, first + batch))
            ],
        )
    return ws


def export_events(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count())
                .select_from(ActivityEvent)
                .where(ActivityEvent.action == "activity_log.export")
            ).scalar_one()
        )


# -- a PostgreSQL database with enough rows for the server query to be running ----------------

BIG = 30_000


@pytest.fixture(scope="module")
def big_pg(pg_server_url: str, pg_template: str) -> Iterator[tuple[Engine, int]]:
    name = f"nvadmin_x_{uuid.uuid4().hex[:10]}"
    admin = make_engine(make_url(pg_server_url).set(database="postgres"))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"'))
    engine = make_engine(make_url(pg_server_url).set(database=name))
    try:
        yield engine, seed(engine, BIG)
    finally:
        engine.dispose()
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def running_copies(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                text(
                    # Client backends only: a parallel worker of the same COPY shows its text.
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND query LIKE 'COPY (SELECT%' AND state <> 'idle' "
                    "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
        )


@pytest.fixture(params=["one stream", "two halves"])
def halves(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Whether big_pg's range is read as two halves at once or as one stream."""
    two = request.param == "two halves"
    monkeypatch.setattr(service, "HALVES_FROM", 1000 if two else BIG * 10)
    return two


def halves_read(caplog: pytest.LogCaptureFixture) -> list[tuple[int, int]]:
    """The row counts of each export read in two halves, from the export's log."""
    found = []
    for record in caplog.records:
        if record.msg == "exported in two halves: %d + %d rows":
            found.append(record.args)
    return found  # type: ignore[return-value]


def wait_until(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.mark.pg
@pytest.mark.parametrize("at", [0.10, 0.50, 0.99])
def test_cancel_is_prompt_and_stops_the_server_query(
    big_pg: tuple[Engine, int],
    tmp_path: Path,
    at: float,
    halves: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine, ws = big_pg
    monkeypatch.setattr(service, "CHECK_EVERY", 250)
    token = CancelToken()
    copies_running: list[int] = []
    after_cancel: list[int] = []

    def progress(done: int, total: int | None, message: str = "") -> None:
        if token.cancelled:
            after_cancel.append(done)
        elif total and done >= at * total:
            copies_running.append(running_copies(engine))
            token.cancel()
        time.sleep(0.01)  # a slow reader: the server is still sending when cancel comes

    out = tmp_path / "big.csv"
    with pytest.raises(Cancelled):
        export_csv(engine, CLEO, export_request(out, ws), progress=progress, token=token)
    # Prompt in rows, not seconds (a busy machine slows both): the export stops at its next
    # check, with no further progress report, instead of reading on to the end.
    assert after_cancel == []
    if at < 0.5 and not halves:
        assert copies_running == [1]  # the query really was running on the server
    elif at < 0.5:  # the earlier half's at least (the later one may be done)
        assert copies_running and copies_running[0] in (1, 2)
    # Both halves' queries stop, and neither the file nor the later half's part is left.
    assert wait_until(lambda: running_copies(engine) == 0, HANG_GUARD_MS / 1000)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.pg
def test_killed_connection_is_a_clear_error_and_leaves_nothing(
    big_pg: tuple[Engine, int], tmp_path: Path, halves: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, ws = big_pg
    monkeypatch.setattr(service, "CHECK_EVERY", 250)
    before = export_events(engine)
    terminated: list[bool] = []

    def progress(done: int, total: int | None, message: str = "") -> None:
        if done > 0 and not terminated:
            with engine.connect() as connection:
                killed = (
                    connection.execute(
                        text(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE query LIKE 'COPY (SELECT%' AND pid <> pg_backend_pid()"
                        )
                    )
                    .scalars()
                    .all()
                )
            terminated.append(bool(killed))
        time.sleep(0.01)

    out = tmp_path / "big.csv"
    with pytest.raises(DatabaseUnavailable, match="connection to the database was lost"):
        export_csv(engine, CLEO, export_request(out, ws), progress=progress)
    assert terminated == [True]
    assert list(tmp_path.iterdir()) == []
    assert export_events(engine) == before  # nothing claimed in the log
    # The pool is still usable: the next export works.
    export_csv(engine, CLEO, export_request(out, ws))
    assert out.exists()


TIMED_OUT = "the query took too long and was stopped: narrow your filters"


@pytest.mark.pg
def test_statement_timeout_is_a_plain_message(big_pg: tuple[Engine, int], tmp_path: Path) -> None:
    """Whichever statement the 1 ms limit stops, also when PostgreSQL calls that a cancel "due
    to user request" (a timeout firing as a statement ends is reported so by the next one)."""
    engine, ws = big_pg
    impatient = make_engine(engine.url, statement_timeout_ms=1)
    try:
        with pytest.raises(UserError) as caught:
            export_csv(impatient, CLEO, export_request(tmp_path / "t.csv", ws))
    finally:
        impatient.dispose()
    assert str(caught.value) == TIMED_OUT
    assert list(tmp_path.iterdir()) == []


# Statements run instead of the rows by the tests below. Each ends only when stopped: by the
# export, by a statement timeout, or by its own server process. (A set-returning function in
# the select list streams its rows; in FROM it would make them all before sending the first.)
ENDLESS_ROWS = "COPY (SELECT generate_series(1, 1000000000000)) TO STDOUT"
WAITING = "COPY (SELECT pg_sleep(3600)) TO STDOUT"
# Cancelled on the server, by no client: the session's process is sent a cancel by itself.
CANCELLING_ITSELF = "COPY (SELECT pg_cancel_backend(pg_backend_pid()), pg_sleep(3600)) TO STDOUT"


def failing_copies(
    monkeypatch: pytest.MonkeyPatch, failing: str, cause: str
) -> dict[str, BaseException]:
    """The export's COPY statements replaced: the ``failing`` half's ("earlier", also the one
    stream, or "later") fails of ``cause``, the other streams rows until the export stops it.
    What ended each half's COPY is filled in, by half."""
    real_copy_rows = service._copy_rows
    ended: dict[str, BaseException] = {}

    def copy_rows(pg: object, cursor: object, copy: object, *rest: object) -> int:
        half = "later" if threading.current_thread().name == "export-later-half" else "earlier"
        statement = ENDLESS_ROWS
        if half == failing and cause == "statement timeout":
            cursor.execute("SELECT set_config('statement_timeout', '1', true)")  # type: ignore[attr-defined]
            statement = WAITING
        elif half == failing:
            statement = CANCELLING_ITSELF
        try:
            return real_copy_rows(pg, cursor, (statement, {}), *rest)  # type: ignore[arg-type]
        except BaseException as error:
            ended[half] = error
            raise

    monkeypatch.setattr(service, "_copy_rows", copy_rows)
    return ended


@pytest.mark.pg
def test_a_query_cancelled_on_the_server_is_a_plain_message(
    big_pg: tuple[Engine, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelled neither by the user nor by the export: not PostgreSQL's "canceling statement
    due to user request", which names a request nobody made here."""
    engine, ws = big_pg
    monkeypatch.setattr(service, "HALVES_FROM", BIG * 10)  # one stream
    ended = failing_copies(monkeypatch, "earlier", "cancelled on the server")
    with pytest.raises(UserError) as caught:
        export_csv(engine, CLEO, export_request(tmp_path / "c.csv", ws))
    assert "due to user request" in str(ended["earlier"])
    assert str(caught.value) == CANCELLED_ON_SERVER
    assert list(tmp_path.iterdir()) == []


@pytest.mark.pg
@pytest.mark.parametrize(
    ("failing", "cause", "told"),
    [
        ("later", "statement timeout", TIMED_OUT),
        ("earlier", "statement timeout", TIMED_OUT),
        ("later", "cancelled on the server", CANCELLED_ON_SERVER),
        ("earlier", "cancelled on the server", CANCELLED_ON_SERVER),
        ("earlier, before the later half's import", "cancelled on the server",
         CANCELLED_ON_SERVER),
    ],
)  # fmt: skip
def test_the_true_cause_wins_whichever_half_fails(
    big_pg: tuple[Engine, int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    failing: str,
    cause: str,
    told: str,
) -> None:
    """One half fails and the export stops the other (a cancel request to its server
    process): the user is told the failure, never the stop, and no file is left. The last
    case: the later half's snapshot is refused because the earlier half's transaction has
    failed; that refusal follows from the failure and is not it either."""
    engine, ws = big_pg
    monkeypatch.setattr(service, "HALVES_FROM", 1000)
    monkeypatch.setattr(service, "CHECK_EVERY", 250)
    before_import = failing.endswith("import")
    ended = failing_copies(monkeypatch, failing.split(",")[0], cause)
    later_halves: list[service._LaterHalf] = []
    if before_import:
        # The later half starts only once the earlier half's COPY has failed, and the earlier
        # half's failure is acted on only once the later half has failed too.
        earlier_failed, later_failed = threading.Event(), threading.Event()
        real_run, with_ended = service._LaterHalf.run, service._copy_rows

        def late_run(self: service._LaterHalf) -> None:
            later_halves.append(self)
            assert earlier_failed.wait(HANG_GUARD_MS / 1000)
            try:
                real_run(self)
            finally:
                later_failed.set()

        def earlier_copy(*args: object) -> int:
            try:
                return with_ended(*args)  # type: ignore[arg-type]
            except BaseException:
                earlier_failed.set()
                assert later_failed.wait(HANG_GUARD_MS / 1000)
                raise

        monkeypatch.setattr(service._LaterHalf, "run", late_run)
        monkeypatch.setattr(service, "_copy_rows", earlier_copy)
    before = export_events(engine)
    with pytest.raises(UserError) as caught:
        export_csv(engine, CLEO, export_request(tmp_path / "h.csv", ws))
    assert str(caught.value) == told
    if before_import:  # the scenario happened: the import was refused
        [later] = later_halves
        assert later.follows_earlier and "snapshot" in str(later.failure)
    elif failing == "later":  # the earlier half was stopped by the export, not by the user
        assert "due to user request" in str(ended["earlier"])
    assert list(tmp_path.iterdir()) == []
    assert export_events(engine) == before


@pytest.mark.pg
def test_a_cancel_nobody_here_sent_is_the_statement_timeout_once_that_has_passed(
    big_pg: tuple[Engine, int],
) -> None:
    """PostgreSQL reports a statement timeout that fires just as a statement ends as a cancel
    "due to user request" of the next one (seen at 1 ms on a busy machine, no cancel sent):
    such a cancel is the timeout when the session has one and it has passed since the work
    began, else a cancel on the server."""
    engine, _ws = big_pg
    with engine.connect() as connection, pytest.raises(DBAPIError) as caught:
        connection.execute(text("SELECT pg_cancel_backend(pg_backend_pid()), pg_sleep(3600)"))
    error = caught.value
    assert "canceling statement due to user request" in str(error)
    hour = make_engine(engine.url, statement_timeout_ms=3_600_000)
    now = time.monotonic()
    try:
        assert str(service._failure(error, hour, since=now - 7200)) == TIMED_OUT
        assert str(service._failure(error, hour, since=now)) == CANCELLED_ON_SERVER
        # No timeout at all: a cancel on the server, however long the work has run.
        assert str(service._failure(error, engine, since=now - 7200)) == (CANCELLED_ON_SERVER)
    finally:
        hour.dispose()


@pytest.mark.pg
@pytest.mark.parametrize("arriving", ["early, while rows stream", "late, once counted"])
def test_one_snapshot_while_events_keep_arriving(
    big_pg: tuple[Engine, int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    halves: bool,
    arriving: str,
) -> None:
    """Events written during the export are not in the file, and the count still matches;
    read in two halves, the later half's connection reads the first one's snapshot, not a
    newer one of its own (the late events fall in the later half, and arrive before it
    starts)."""
    engine, ws = big_pg
    monkeypatch.setattr(service, "CHECK_EVERY", 2000)
    early = arriving.startswith("early")
    minutes = (5.5, 6.5) if early else (BIG * 0.05 - 1.5, BIG * 0.05 - 0.5)
    written: list[int] = []

    def progress(done: int, total: int | None, message: str = "") -> None:
        if (done > 0 if early else message == "exporting") and not written:
            written.extend(write(engine, ws, [draft(m) for m in minutes]))

    out = tmp_path / "snap.csv"
    with caplog.at_level("INFO", logger="nvadmin.export.service"):
        result = export_csv(engine, CLEO, export_request(out, ws), progress=progress)
    with out.open(encoding="utf-8-sig", newline="") as handle:
        seqs = [int(r["seq"]) for r in csv.DictReader(handle)]
    assert written and len(seqs) == result.rows
    assert not set(seqs) & set(written)
    if halves:
        [(earlier, later)] = halves_read(caplog)
        assert earlier > 0 and later > 0 and earlier + later == result.rows
    else:
        assert halves_read(caplog) == []


@pytest.mark.pg
def test_a_later_half_that_cannot_be_written_fails_the_export_and_leaves_nothing(
    big_pg: tuple[Engine, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, ws = big_pg
    monkeypatch.setattr(service, "HALVES_FROM", 1000)
    monkeypatch.setattr(service, "CHECK_EVERY", 250)
    real_write = atomic._write

    def full_for_the_later_half(fd: int, data: object) -> int:
        if threading.current_thread().name == "export-later-half":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)  # type: ignore[arg-type]

    monkeypatch.setattr(atomic, "_write", full_for_the_later_half)
    before = export_events(engine)
    with pytest.raises(ExportWriteError, match="disk is full"):
        export_csv(engine, CLEO, export_request(tmp_path / "full.csv", ws))
    assert wait_until(lambda: running_copies(engine) == 0, HANG_GUARD_MS / 1000)
    assert list(tmp_path.iterdir()) == []
    assert export_events(engine) == before


@pytest.mark.pg
def test_a_second_connection_that_sees_another_snapshot_is_refused(
    big_pg: tuple[Engine, int], tmp_path: Path
) -> None:
    """The guard for a second connection that reached another server holding a snapshot of
    the same name: what it sees is compared with what the first connection saw."""
    engine, _ws = big_pg
    second = engine.raw_connection()
    with engine.connect() as connection:
        connection.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
        name, seen = connection.execute(
            text("SELECT pg_export_snapshot(), pg_current_snapshot()::text")
        ).one()
        copy = ("COPY (SELECT 1) TO STDOUT", {})
        for snapshot, refused in (((name, seen), False), ((name, "1:1:"), True)):
            with atomic.AtomicFile(tmp_path / "x.csv", hashed=False) as part:
                later = service._LaterHalf(
                    second.driver_connection, snapshot, copy, False, part, CancelToken()
                )
                later.start()
                later.join(HANG_GUARD_MS / 1000)
                if refused:
                    assert isinstance(later.failure, UserError)
                    assert "did not see the first one's snapshot" in str(later.failure)
                else:
                    assert later.failure is None and later.rows == 1
                    assert part.temp_path.read_bytes() == b"1\n"
    second.invalidate()
    second.close()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.pg
def test_a_staff_login_reads_both_halves_through_its_session(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A staff login sees events only through its signed-in session (row-level security):
    the later half's connection joins that session as the first one did."""
    from nvadmin.context import Context

    context = Context.create(pg_url)
    ws = seed(context.engine, 2000)
    identity = sign_in_as(context, CLEO)
    monkeypatch.setattr(service, "HALVES_FROM", 1000)
    out = tmp_path / "staff.csv"
    try:
        with caplog.at_level("INFO", logger="nvadmin.export.service"):
            result = export_csv(context.read_engine, identity, export_request(out, ws))
    finally:
        context.dispose()
    assert result.rows == 2000
    assert halves_read(caplog) == [(1000, 1000)]


@pytest.mark.pg
@pytest.mark.parametrize(
    ("file_format", "profile"),
    [
        (FileFormat.CSV, profiles.EXCEL),
        (FileFormat.CSV, profiles.DATA),
        (FileFormat.JSONL, profiles.DEFAULT),
    ],
)
def test_two_halves_write_the_file_one_stream_writes(
    pg_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    file_format: FileFormat,
    profile: profiles.Profile,
) -> None:
    """Byte for byte, with events sharing the middle row's time, cells holding line breaks,
    quotes and commas, and the rows in time order across the seam."""
    engine = make_engine(pg_url)
    ws = add_workspace(engine, slug="seam")
    awkward = 'line one\nline "two", \r\nthree'
    drafts = [draft(i * 0.5, resource_id=f"r{i}") for i in range(1000)]
    drafts += [draft(250, resource_id=awkward, details={"k": awkward}) for _ in range(40)]
    write(engine, ws, sorted(drafts, key=lambda d: d.occurred_at))
    request = export_request(tmp_path / "x", ws)
    files = {}
    for name, halves_from in (("one", 10**9), ("two", 1000)):
        monkeypatch.setattr(service, "HALVES_FROM", halves_from)
        out = tmp_path / f"{name}.{file_format}"
        with caplog.at_level("INFO", logger="nvadmin.export.service"):
            result = export_csv(
                engine,
                CLEO,
                dataclasses.replace(request, output=out, file_format=file_format, profile=profile),
            )
        assert result.sha256 == file_sha256(out)
        files[name] = out.read_bytes()
    engine.dispose()
    [(earlier, later)] = halves_read(caplog)
    # The middle row is at minute 250: the 41 rows of that minute all open the later half.
    assert (earlier, later) == (500, 540)
    assert files["two"] == files["one"]
    assert files["one"].count(b"line one") == 80  # two cells in each of the 40


@pytest.mark.pg
def test_concurrent_exports(big_pg: tuple[Engine, int], tmp_path: Path) -> None:
    engine, ws = big_pg
    results: dict[int, object] = {}

    def run(i: int) -> None:
        try:
            results[i] = export_csv(engine, CLEO, export_request(tmp_path / f"c{i}.csv", ws))
        except Exception as error:  # reported below
            results[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    hashes = set()
    for i in range(3):
        result = results[i]
        assert isinstance(result, service.ExportResult), result
        assert result.rows >= BIG
        hashes.add(file_sha256(tmp_path / f"c{i}.csv"))
    assert len(hashes) == 1  # the same rows, byte for byte


# -- E4: disk full, permission denied ---------------------------------------------------------


class FailAt:
    """Counts calls to a system call and fails the Nth with ``errno``."""

    def __init__(self, real: Callable[..., object], n: int, code: int) -> None:
        self.real, self.n, self.code, self.calls = real, n, code, 0

    def __call__(self, *args: object) -> object:
        self.calls += 1
        if self.calls == self.n:
            raise OSError(self.code, os.strerror(self.code))
        return self.real(*args)


def test_disk_full_at_every_write_and_fsync(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = seed(engine, 300)
    monkeypatch.setattr(atomic, "BUFFER_SIZE", 4096)
    monkeypatch.setattr(service, "CHECK_EVERY", 10)
    monkeypatch.setattr(service, "SQLITE_BATCH", 10)
    counter = FailAt(atomic._write, 0, errno.ENOSPC)
    monkeypatch.setattr(atomic, "_write", counter)
    folder = tmp_path / "exports"
    folder.mkdir()
    export_csv(engine, CLEO, export_request(folder / "count.csv", ws))
    writes = counter.calls
    assert writes > 10
    for path in list(folder.iterdir()):
        path.unlink()
    before = export_events(engine)
    failures = [("_write", n) for n in range(1, writes + 1)] + [("_fsync", 1), ("_fsync", 2)]
    for name, n in failures:
        monkeypatch.setattr(atomic, name, FailAt(getattr(os, name[1:]), n, errno.ENOSPC))
        with pytest.raises(ExportWriteError, match="disk is full"):
            export_csv(engine, CLEO, export_request(folder / "full.csv", ws))
        monkeypatch.setattr(atomic, name, getattr(os, name[1:]))
        assert list(folder.iterdir()) == [], (name, n)
    assert export_events(engine) == before


def refuse_kernel_copy(code: int) -> Callable[..., int]:
    def copy_file_range(*args: object) -> int:
        raise OSError(code, os.strerror(code))

    return copy_file_range


@pytest.mark.parametrize("kernel_copy", ["copied by the kernel", "refused: EXDEV", "absent"])
def test_a_part_appended_while_it_grows_ends_up_whole_and_hashed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kernel_copy: str
) -> None:
    monkeypatch.setattr(atomic, "BUFFER_SIZE", 1000)  # many blocks, some cut mid-write
    if kernel_copy == "absent":
        monkeypatch.setattr(atomic, "_copy_file_range", None)
    elif kernel_copy.startswith("refused"):
        monkeypatch.setattr(atomic, "_copy_file_range", refuse_kernel_copy(errno.EXDEV))
    pieces = [f"row {i},{'x' * (i % 97)}\r\n".encode() for i in range(3000)]
    wrote_some = threading.Event()
    with atomic.AtomicFile(tmp_path / "out.csv") as out:
        out.write(b"header\r\n")
        with atomic.AtomicFile(tmp_path / "out.csv", hashed=False) as part:

            def writer() -> None:
                for i, piece in enumerate(pieces):
                    part.write(piece)
                    if i % 50 == 0:
                        part.flush()
                        wrote_some.set()
                part.flush()

            thread = threading.Thread(target=writer)
            thread.start()
            assert wrote_some.wait(HANG_GUARD_MS / 1000)
            out.append(part, thread.is_alive)
            thread.join()
        out.publish()
    expected = b"header\r\n" + b"".join(pieces)
    assert (tmp_path / "out.csv").read_bytes() == expected
    assert out.sha256 == hashlib.sha256(expected).hexdigest() and out.size == len(expected)
    assert [path.name for path in tmp_path.iterdir()] == ["out.csv"]


@pytest.mark.parametrize("failing", ["_copy_file_range", "_write"])
def test_disk_full_while_appending_a_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    if failing == "_write":
        monkeypatch.setattr(atomic, "_copy_file_range", None)
    with atomic.AtomicFile(tmp_path / "out.csv") as out:
        out.write(b"header\n")
        with atomic.AtomicFile(tmp_path / "out.csv", hashed=False) as part:
            part.write(b"row\n" * 1000)
            part.flush()
            if failing == "_write":
                monkeypatch.setattr(atomic, "_write", FailAt(os.write, 1, errno.ENOSPC))
            else:
                monkeypatch.setattr(atomic, failing, refuse_kernel_copy(errno.ENOSPC))
            with pytest.raises(ExportWriteError, match="disk is full"):
                out.append(part)
    assert list(tmp_path.iterdir()) == []


def test_permission_denied(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = seed(engine, 3)
    monkeypatch.setattr(atomic, "_open", FailAt(os.open, 1, errno.EACCES))
    with pytest.raises(ExportWriteError, match="permission denied: cannot write to"):
        export_csv(engine, CLEO, export_request(tmp_path / "p.csv", ws))
    assert not (tmp_path / "p.csv").exists()


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 64 KiB file system (tmpfs), when this machine lets us mount one."""
    with tiny_file_system(tmp_path / "tiny", "64k") as mount_point:
        yield mount_point


def test_real_full_disk(engine: Engine, tiny_disk: Path) -> None:
    ws = seed(engine, 600)  # ~200 KB of CSV on a 64 KiB disk
    with pytest.raises(ExportWriteError, match="disk is full"):
        export_csv(engine, CLEO, export_request(tiny_disk / "full.csv", ws))
    assert list(tiny_disk.iterdir()) == []


def delivered_export(folder: Path, size: int) -> Path:
    """An export as package-export finds it: a file and its manifest (unsigned), the file
    random enough that its package is about ``size`` bytes too."""
    path = folder / "t.csv"
    path.write_text(
        "\n".join(f"{i},{random.randbytes(48).hex()}" for i in range(size // 100)),
        encoding="utf-8",
    )
    manifest = {"format": manifests.FORMAT, "sha256": file_sha256(path), "rows": size // 100}
    manifests.manifest_path_for(path).write_text(json.dumps(manifest), encoding="utf-8")
    return path


def test_a_package_on_a_full_disk_fails_in_one_line_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The package was written through its own temporary file: a full disk showed Python's
    OSError, then "Exception ignored in ZipFile.__del__" and a traceback."""
    exported = delivered_export(tmp_path, 64 * 1024)
    folder = tmp_path / "packages"
    folder.mkdir()
    counter = FailAt(atomic._write, 0, errno.ENOSPC)
    monkeypatch.setattr(atomic, "_write", counter)
    package_export(exported, folder / "count.zip", {})
    writes = counter.calls
    assert writes > 5
    (folder / "count.zip").unlink()
    collected_failures: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", collected_failures.append)
    failures = [("_write", n) for n in range(1, writes + 1)] + [("_fsync", 1)]
    for name, n in failures:
        monkeypatch.setattr(atomic, name, FailAt(getattr(os, name[1:]), n, errno.ENOSPC))
        with pytest.raises(ExportWriteError) as caught:
            package_export(exported, folder / "full.zip", {})
        monkeypatch.setattr(atomic, name, getattr(os, name[1:]))
        assert (
            str(caught.value) == f"the disk is full: no space left in {folder}; no file was written"
        )
        gc.collect()
        assert list(folder.iterdir()) == [], (name, n)
    assert collected_failures == []


def test_a_package_on_a_real_full_disk(tmp_path: Path, tiny_disk: Path) -> None:
    exported = delivered_export(tmp_path, 200 * 1024)  # on a 64 KiB disk
    done = subprocess.run(
        [sys.executable, "-m", "nvadmin", "package-export", str(exported),
         "--output", str(tiny_disk / "p.zip")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr == (
        f"nvadmin: the disk is full: no space left in {tiny_disk}; no file was written\n"
    )
    assert list(tiny_disk.iterdir()) == []


# -- C3: owner-only files, also while being written --------------------------------------------


def test_temporary_file_is_owner_only_while_written(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = seed(engine, 50)
    monkeypatch.setattr(service, "CHECK_EVERY", 10)
    monkeypatch.setattr(service, "SQLITE_BATCH", 10)
    old_umask = os.umask(0)  # even a permissive umask must not open the file up
    modes: list[int] = []

    def progress(done: int, total: int | None, message: str = "") -> None:
        for path in tmp_path.glob(".p.csv.*" + atomic.TEMP_SUFFIX):
            modes.append(stat.S_IMODE(path.stat().st_mode))

    try:
        export_csv(engine, CLEO, export_request(tmp_path / "p.csv", ws), progress=progress)
    finally:
        os.umask(old_umask)
    assert modes and set(modes) == {0o600}
    assert stat.S_IMODE((tmp_path / "p.csv").stat().st_mode) == 0o600


# -- a SQLite database removed or replaced mid-export -----------------------------------------


@pytest.mark.parametrize("how", ["removed", "replaced"])
def test_a_sqlite_file_removed_or_replaced_mid_export_fails_and_leaves_nothing(
    sqlite_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """On Linux the export read on from the file it had open, recorded itself in it, where
    no one will find the record (or in its copy now at the path), and reported success:
    a file delivered whose export is not on record."""
    path = Path(make_url(sqlite_db_url).database or "")
    engine = make_engine(sqlite_db_url)
    ws = seed(engine, 200)
    monkeypatch.setattr(service, "SQLITE_BATCH", 20)
    copy = tmp_path / "copy.sqlite3"
    if how == "replaced":  # by the same database, byte for byte: only the file is another
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        shutil.copyfile(path, copy)
    before = export_events(engine)
    folder = tmp_path / "exports"
    folder.mkdir()
    at: list[int] = []

    def progress(done: int, total: int | None, message: str = "") -> None:
        if done > 0 and not at:
            if how == "removed":
                path.unlink()
            else:
                os.replace(copy, path)
            at.append(done)

    try:
        with pytest.raises(DatabaseUnavailable) as caught:
            export_csv(engine, CLEO, export_request(folder / "gone.csv", ws), progress=progress)
    finally:
        engine.dispose()
    assert at and at[0] < 200  # while the rows were being read
    assert str(caught.value) == (
        f"the database file {path} was removed or replaced during the export; "
        "the export could not be recorded, so the file was not kept"
    )
    assert list(folder.iterdir()) == []
    if how == "removed":
        assert not path.exists()  # nor was an empty database made in its place
    else:
        now_there = make_engine(sqlite_url(path))
        try:
            assert export_events(now_there) == before
        finally:
            now_there.dispose()


# -- E3: SIGKILL at random points --------------------------------------------------------------


@pytest.mark.slow
def test_sigkill_leaves_nothing_or_a_complete_file(tmp_path: Path, db_url: str) -> None:
    """Killed at random points (PostgreSQL: mid-COPY), an export leaves no partial file:
    either nothing, or the whole file with its manifest."""
    engine = make_engine(db_url)
    ws = seed(engine, 4000)
    engine.dispose()
    folder = tmp_path / "exports"
    folder.mkdir()
    target = folder / "killed.csv"
    # One interpreter imports the export code once and forks a fresh exporting process per
    # round (with its own database connections), instead of ten interpreters each starting
    # and importing it: the kills land in the export, not in Python's start-up.
    script = (
        "import os, sys, time\n"
        "from pathlib import Path\n"
        "from nvadmin.identity import Role, StaffIdentity\n"
        "from nvadmin.query.filters import EventFilter\n"
        "from nvadmin.db.engine import make_engine\n"
        "from nvadmin.export import service\n"
        "from nvadmin.export.service import ExportRequest, export_csv\n"
        "service.SQLITE_BATCH = 100\n"
        "service.CHECK_EVERY = 100\n"
        # Without the log's own access events: a run that completes records its export there,
        # and the next run would have one more row to write.
        "ef = EventFilter.from_dict({'workspace_ids': [int(sys.argv[2])],"
        " 'include_log_access': False})\n"
        "who = StaffIdentity(8, 'cleo@nvadmin.example', 'Cleo', Role.COMPLIANCE)\n"
        "request = ExportRequest(event_filter=ef, output=Path(sys.argv[3]), time_zone='UTC',"
        " overwrite=True)\n"
        "for _ in sys.stdin:\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        engine = make_engine(sys.argv[1])\n"
        "        print('ready', os.getpid(), flush=True)\n"
        "        export_csv(engine, who, request,"
        " progress=lambda d, t=None, m='': time.sleep(0.01))\n"
        "        print('done', flush=True)\n"
        "        os._exit(0)\n"
        "    os.waitpid(pid, 0)\n"
        "    print('gone', flush=True)\n"
    )
    dice = random.Random(20251127)
    outcomes = {"absent": 0, "complete": 0}
    forker = subprocess.Popen(
        [sys.executable, "-c", script, db_url, str(ws), str(target)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert forker.stdin is not None and forker.stdout is not None
    for _ in range(10):
        forker.stdin.write(b"export\n")
        forker.stdin.flush()
        ready, pid = forker.stdout.readline().split()
        assert ready == b"ready"
        time.sleep(dice.uniform(0.0, 0.6))
        with contextlib.suppress(ProcessLookupError):  # it may have finished already
            os.kill(int(pid), signal.SIGKILL)
        while (line := forker.stdout.readline().strip()) != b"gone":
            assert line == b"done"
        if target.exists():
            manifest = json.loads((folder / "killed.csv.manifest.json").read_text())
            assert manifest["sha256"] == file_sha256(target)
            with target.open(encoding="utf-8", newline="") as handle:
                assert sum(1 for _ in csv.DictReader(handle)) == manifest["rows"] == 4000
            outcomes["complete"] += 1
            target.unlink()
            (folder / "killed.csv.manifest.json").unlink()
        else:
            outcomes["absent"] += 1
        sweep_stale(folder)
        leftovers = [p.name for p in folder.iterdir() if p.name != "killed.csv.manifest.json"]
        assert leftovers == []
        (folder / "killed.csv.manifest.json").unlink(missing_ok=True)
    forker.stdin.close()
    assert forker.wait(timeout=60) == 0
    forker.stdout.close()
    assert outcomes["absent"] > 0


def test_a_discarded_database_goes_with_its_log_and_index(tmp_path: Path) -> None:
    """A database written under a temporary name (a case file's staging database, in
    write-ahead mode) leaves nothing when it is discarded, even when SQLite could not remove
    its log and index on closing."""
    with atomic.AtomicFile(tmp_path / "c.nvcase", hashed=False) as staging:
        for suffix in ("-wal", "-shm"):
            staging.temp_path.with_name(staging.temp_path.name + suffix).write_bytes(b"x")
        assert len(list(tmp_path.iterdir())) == 3
    assert list(tmp_path.iterdir()) == []


def test_stale_temporary_files_are_swept_at_the_next_export(engine: Engine, tmp_path: Path) -> None:
    ws = seed(engine, 3)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".old.csv.{dead.pid}.0badcafe{atomic.TEMP_SUFFIX}"
    stale.write_bytes(b"half an export")
    alive = tmp_path / f".live.csv.{os.getppid()}.0badcafe{atomic.TEMP_SUFFIX}"
    alive.write_bytes(b"another process is still writing this")
    export_csv(engine, CLEO, export_request(tmp_path / "new.csv", ws))
    assert not stale.exists()
    assert alive.exists()  # its writer still runs
