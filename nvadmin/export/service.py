"""The export of activity events: one engine for the window, the command line and tests.

CSV for people and spreadsheets; JSON Lines (:mod:`nvadmin.export.jsonl`) for SIEM and BI
imports, through the same snapshot, file handling, manifest and log event.

How an export stays honest:

- **One snapshot.** On PostgreSQL the row count and the rows come from one ``REPEATABLE READ,
  READ ONLY`` transaction; on SQLite from one read transaction (WAL keeps its snapshot). The
  rows streamed must equal the count, or no file is kept.
- **Streamed, never held.** PostgreSQL sends the formatted CSV itself (``COPY (SELECT ...) TO
  STDOUT``) straight into the file; SQLite returns finished CSV lines, written in batches
  (:mod:`nvadmin.export.sqlite_csv`).
- **Two halves at once, one snapshot.** From HALVES_FROM rows PostgreSQL formats the earlier
  and the later half of the range on two connections (two server processes) at once: the
  second imports the first one's snapshot (``pg_export_snapshot``) and proves it did, and its
  rows go to a part file (mode 0600, swept like any temporary file) appended after the first
  half's. The file is the one a single ``COPY`` writes, byte for byte. A half that fails
  stops the other; the user is told why it failed, never that the export stopped the other.
- **Atomic.** The file and its manifest are written under temporary names (mode 0600), fsynced,
  the export is recorded in the workspace's log, and only then are both renamed into place.
  Cancel, error or crash: nothing under the final names. On SQLite the export fails instead
  when the database file it read was removed or replaced meanwhile: its record would not be
  in the database at that path.
- **Cancellable on the server.** Cancel stops the query on the server too (a cancel request on
  PostgreSQL, ``interrupt()`` on SQLite), not only the reading loop.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, literal_column, select
from sqlalchemy.exc import SQLAlchemyError

from nvadmin import __version__
from nvadmin.audit import access_log, server_events
from nvadmin.db import routing
from nvadmin.db.engine import file_identity, translate
from nvadmin.db.models import ActivityEvent
from nvadmin.db.types import sqlite_parameters
from nvadmin.errors import DatabaseUnavailable, UserError
from nvadmin.export import jsonl, plain, profiles, sqlite_csv
from nvadmin.export import manifest as manifests
from nvadmin.export.columns import (
    DEFAULT_COLUMNS,
    Column,
    Kind,
    Plain,
    ZoneClock,
    cells_sql,
    python_cell,
    resolve,
    sqlite_pieces,
)
from nvadmin.export.formats import FileFormat
from nvadmin.export.profiles import Profile
from nvadmin.files import cells
from nvadmin.files.atomic import AtomicFile, not_a_regular_file, sweep_stale
from nvadmin.identity import Permission, Role, StaffIdentity
from nvadmin.query import workspaces as workspace_repository
from nvadmin.query.fields import SEARCHED, Match
from nvadmin.query.filters import EventFilter, where_clause
from nvadmin.query.localtime import zone_info
from nvadmin.workers.cancel import Cancelled, CancelToken

log = logging.getLogger(__name__)

Progress = Callable[[int, "int | None", str], None]
BOM = "\ufeff".encode()
# Rows between cancel checks and progress reports while streaming.
CHECK_EVERY = 4096
# From this many rows a PostgreSQL export reads its two halves at once (see the module docs):
# about 0.75x the time of one stream from 105,000 rows to 5M (benchmarks/RESULTS.md); at
# 30,000 rows both took the same time.
HALVES_FROM = 100_000
SQLITE_BATCH = 5000
EVENTS = ActivityEvent.__table__


def _no_progress(done: int, total: int | None = None, message: str = "") -> None:
    pass


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """What to export and where. Plain data: safe to hand to a worker thread."""

    event_filter: EventFilter
    output: Path
    time_zone: str  # zone of the local timestamp column
    range_zone: str | None = None  # zone the date range was chosen in (default: time_zone)
    columns: tuple[str, ...] = DEFAULT_COLUMNS
    profile: Profile = profiles.DEFAULT  # CSV: BOM, line ends and the forms of the times
    ticket: str = ""
    overwrite: bool = False
    file_format: FileFormat = FileFormat.CSV

    @property
    def manifest_path(self) -> Path:
        return manifests.manifest_path_for(self.output)


@dataclass(frozen=True, slots=True)
class ExportResult:
    path: Path
    manifest_path: Path
    rows: int
    sha256: str
    size: int
    seconds: float
    manifest: dict[str, Any] = field(repr=False)


def authorize(identity: StaffIdentity, request: ExportRequest) -> None:
    """Who may export what; checked here, whatever the window or command line allowed."""
    identity.require(Permission.EXPORT)
    if not request.event_filter.workspace_ids:
        identity.require(Permission.ALL_WORKSPACES)
    if identity.role is Role.SUPPORT and not request.ticket.strip():
        raise UserError("support staff must give the ticket id of the export request")


def profile_problem(profile: Profile, columns: Sequence[Column]) -> str | None:
    """Why ``columns`` cannot be written in ``profile`` (None: they can)."""
    hashed = [c.label for c in columns if c.kind is Kind.HEX]
    if hashed and not profile.microseconds:
        return (
            f"{' and '.join(hashed)} need the data profile: an event's hash covers its time "
            f"to the microsecond, and the {profile.key} profile writes whole seconds"
        )
    return None


def validate(request: ExportRequest) -> tuple[Column, ...]:
    zone_info(request.time_zone)
    if request.range_zone:
        zone_info(request.range_zone)
    try:
        columns = resolve(request.columns)
    except ValueError as error:
        raise UserError(str(error)) from None
    if request.file_format is FileFormat.JSONL:
        if len(set(request.columns)) != len(request.columns):
            raise UserError("each column can be chosen once in a JSON Lines export")
    elif problem := profile_problem(request.profile, columns):
        raise UserError(problem)
    output = request.output
    if output.name in ("", ".", ".."):
        raise UserError("choose a file name for the export")
    if output.is_dir():
        raise UserError(f"{output} is a folder; choose a file name")
    for path in (output, request.manifest_path):
        if problem := not_a_regular_file(path):
            raise UserError(problem)
    if not output.parent.is_dir():
        raise UserError(f"folder {output.parent} does not exist")
    if not request.overwrite:
        for path in (output, request.manifest_path):
            if path.exists():
                raise UserError(f"{path} already exists (choose another name or allow replacing)")
    return columns


def count_matching(
    engine: Engine,
    identity: StaffIdentity,
    event_filter: EventFilter,
    token: CancelToken | None = None,
    *,
    write_engine: Engine | None = None,
) -> int:
    """How many events an export of ``event_filter`` would hold right now (for the form).
    ``write_engine`` (default ``engine``) records the view that opens the workspace's log
    for counting when the session has not opened it yet (:func:`access_log.opened_for`)."""
    identity.require(Permission.EXPORT)
    if not event_filter.workspace_ids:
        identity.require(Permission.ALL_WORKSPACES)
    started = time.monotonic()
    engine = access_log.opened_for(write_engine or engine, engine, identity, event_filter, "count")
    statement = select(func.count()).select_from(EVENTS).where(where_clause(event_filter))
    try:
        with engine.connect() as connection:
            stop = _interrupter(connection.connection.driver_connection, engine.dialect.name)
            if token is not None:
                token.on_cancel(stop.fire)
                token.check()
            try:
                return int(connection.execute(statement).scalar_one())
            finally:
                stop.disarm()
    except SQLAlchemyError as error:
        if token is not None and token.cancelled:
            raise Cancelled() from error
        raise _failure(error, engine, started) from error


def export_csv(
    engine: Engine,
    identity: StaffIdentity,
    request: ExportRequest,
    *,
    progress: Progress = _no_progress,
    token: CancelToken | None = None,
    signing_key: Any = None,
    write_engine: Engine | None = None,
) -> ExportResult:
    """Write the export (CSV or JSON Lines, ``request.file_format``) and its manifest, record
    the export in the log; see the module docs.

    The manifest is signed with ``signing_key`` (a checkpoint :class:`SigningKey`), by default
    this computer's checkpoint signing key; without one it says it is unsigned and why.

    ``engine`` reads the rows; ``write_engine`` (default: ``engine``) records the export. With
    a hot standby as ``engine`` and its primary as ``write_engine``, the manifest's
    ``read_from`` names the server that answered, whether it was in recovery, and its replay
    position, taken inside the export's snapshot."""
    token = token or CancelToken()
    writer = write_engine or engine
    authorize(identity, request)
    columns = validate(request)
    token.check()
    started = time.monotonic()
    engine = access_log.opened_for(writer, engine, identity, request.event_filter, "export")
    created_at = datetime.now(UTC)
    workspaces = _workspaces(engine, request.event_filter, started)
    # SQLite: the database files as the export opens them, to be found at their paths still
    # when the export is recorded (see _still_in_place).
    files = _sqlite_files(engine, writer)
    removed = sweep_stale(request.output.parent)
    if removed:
        log.info("swept %d stale export file(s) in %s", len(removed), request.output.parent)
    progress(0, None, "counting rows")
    backend = engine.dialect.name
    stream: Callable[..., tuple[int, int]] = _stream_sqlite
    if backend == "postgresql":
        # Two halves at once only on one server: a read route's second connection could
        # reach another one, where the first one's snapshot does not exist.
        stream = functools.partial(
            _stream_pg,
            halves=writer is engine,
            since=started,
            must_be_open=server_events.is_staff_login(writer),
        )
    with AtomicFile(request.output) as out:
        if request.file_format is FileFormat.CSV and request.profile.bom:
            out.write(BOM)
        pins: dict[str, Any] = {}
        if writer is not engine and backend == "postgresql":
            try:  # the primary must be there to record the export: else nothing is read
                pins["primary_lsn"] = routing.current_lsn(writer)
            except SQLAlchemyError as error:
                raise DatabaseUnavailable(
                    "the export could not be recorded in the Activity Log "
                    f"({_failure(error, writer, started)}); nothing was exported"
                ) from error
        rows, counted = stream(engine, request, columns, out, progress, token, pins)
        read_from = pins.pop("read_from", None)
        if rows != counted:
            raise UserError(
                f"the export read {rows} rows but {counted} match in the same snapshot; "
                "the file was not kept"
            )
        out.finish()
        token.check()
        facts = _facts(request, columns, workspaces, rows, out.sha256, out.size, backend)
        manifest = {
            "format": manifests.FORMAT,
            **facts,
            "exported_by": identity.email,
            "exported_by_name": identity.display_name,
            "exported_by_role": str(identity.role),
            "app_version": __version__,
            "created_at": created_at.isoformat(),
            "chain": _chain_evidence(engine, pins, started),
        }
        if read_from is not None:
            manifest["read_from"] = read_from.manifest()
        manifest = _signed(manifest, signing_key)
        with AtomicFile(request.manifest_path) as manifest_out:
            manifest_out.write(manifests.render(manifest))
            manifest_out.finish()
            token.check()
            # A SQLite file removed or replaced since the export opened it is checked for both
            # before and after the record. Before: the record would go into the file the
            # export still has open, which no one can open again, or into a new empty file
            # SQLite makes at the path; nothing is written. After: a file replaced between
            # that check and the record may have taken the record with it. Either way the
            # export is not on record, so its file is not kept.
            _still_in_place(files)
            try:
                # Logged before the files get their names: every delivered export is in the log.
                access_log.record_export(writer, identity, request.event_filter, facts)
            except SQLAlchemyError as error:
                log.warning("recording the export failed", exc_info=True)
                raise DatabaseUnavailable(
                    f"could not record the export in the Activity Log "
                    f"({_failure(error, writer, started)}); the file was not kept"
                ) from error
            _still_in_place(files)
            # Manifest first: whenever the CSV exists under its name, so does its manifest.
            manifest_out.publish()
            out.publish()
    seconds = time.monotonic() - started
    progress(rows, rows, "done")
    log.info("exported %d rows to %s in %.1f s", rows, request.output, seconds)
    return ExportResult(
        path=request.output,
        manifest_path=request.manifest_path,
        rows=rows,
        sha256=out.sha256,
        size=out.size,
        seconds=seconds,
        manifest=manifest,
    )


# -- the facts shared by the manifest and the log event ---------------------------------------


def _workspaces(engine: Engine, event_filter: EventFilter, since: float) -> list[dict[str, Any]]:
    """The manifest's entry for each workspace the filter names (by id)."""
    try:
        found = workspace_repository.by_ids(engine, event_filter.workspace_ids)
    except SQLAlchemyError as error:
        raise _failure(error, engine, since) from error
    return [
        {"id": w.id, "slug": w.slug, "name": w.name, "timezone": w.timezone}
        for w in sorted(found, key=lambda w: w.id)
    ]


def _facts(
    request: ExportRequest,
    columns: Sequence[Column],
    workspaces: list[dict[str, Any]],
    rows: int,
    sha256: str,
    size: int,
    backend: str,
) -> dict[str, Any]:
    f = request.event_filter
    range_zone = request.range_zone or request.time_zone
    options: dict[str, Any]
    if request.file_format is FileFormat.JSONL:
        options = {"jsonl": jsonl.OPTIONS}
    else:
        options = {"csv": _csv_options(request)}
    return {
        "file": request.output.name,
        "manifest": request.manifest_path.name,
        "rows": rows,
        "sha256": sha256,
        "bytes": size,
        "ticket": request.ticket.strip() or None,
        "workspaces": workspaces if f.workspace_ids else "all",
        "filter": f.to_dict(),
        "time_zone": request.time_zone,
        **manifests.inclusive_bounds(f.start, f.end, range_zone),
        "columns": [c.key for c in columns],
        "file_format": str(request.file_format),
        **options,
        "snapshot": (
            "PostgreSQL REPEATABLE READ, READ ONLY"
            if backend == "postgresql"
            else "SQLite read transaction"
        ),
    }


def _csv_options(request: ExportRequest) -> dict[str, Any]:
    return {
        "encoding": "utf-8",
        **request.profile.describe(),
        "header": True,
        "delimiter": ",",
        "quoting": "RFC 4180",
        "order": "occurred_at, event id",
        "formula_neutralising": cells.NEUTRALISING,
    }


# -- what a failed query means to the user ----------------------------------------------------

# What PostgreSQL says of a statement it stopped at ``statement_timeout`` (SQLSTATE 57014, as
# for any cancel), which db.engine.translate words for the user.
_STATEMENT_TIMEOUT = "canceling statement due to statement timeout"


def _failure(error: BaseException, engine: Engine, since: float) -> UserError:
    """The user's one line for a failed query (:func:`translate`), also when PostgreSQL
    cancelled it though nobody here asked it to. The export's own stops and the user's cancel
    never get here (see :func:`_two_halves`), so such a cancel is either someone stopping it
    on the server or a statement timeout: PostgreSQL reports a timeout that fires just as a
    statement ends as "canceling statement due to user request" on the session's next
    statement (PostgreSQL 15 at ``statement_timeout`` 1 ms on a busy machine: 3 in 12,000
    statements, with no cancel request sent at all). So with the session's timeout already
    past since ``since`` (the work's start) it is that timeout, and otherwise the server's
    doing."""
    if (
        _cancelled_by_server(error)
        and not _timed_out(error)
        and _past_statement_timeout(engine, since)
    ):
        return translate(Exception(_STATEMENT_TIMEOUT))
    return translate(error)


def _cancelled_by_server(error: BaseException) -> bool:
    """Whether PostgreSQL cancelled the statement (timeout or cancel request: SQLSTATE 57014)."""
    return getattr(getattr(error, "orig", None) or error, "sqlstate", None) == "57014"


def _timed_out(error: BaseException) -> bool:
    return _STATEMENT_TIMEOUT in str(getattr(error, "orig", None) or error)


def _past_statement_timeout(engine: Engine, since: float) -> bool:
    """Whether the session's ``statement_timeout`` is set and has passed since ``since``."""
    try:
        with engine.connect() as connection:
            limit = connection.exec_driver_sql(
                "SELECT setting::bigint FROM pg_settings WHERE name = 'statement_timeout'"
            ).scalar_one()
    except SQLAlchemyError as error:
        # Stopped too: by a limit that short (which PostgreSQL may again call a cancel).
        return _cancelled_by_server(error)
    return 0 < int(limit) <= (time.monotonic() - since) * 1000


# -- a SQLite file removed or replaced during the export ---------------------------------------


@dataclass(frozen=True, slots=True)
class _DatabaseFile:
    """A SQLite database file and its identity (device, inode) when the export opened it."""

    path: Path
    identity: tuple[int, int] | None  # None: there was no file at the path


def _sqlite_files(*engines: Engine) -> list[_DatabaseFile]:
    """The files of the SQLite ``engines`` (read and write), as they are now. The file stays
    open in SQLite's connections when it is removed or replaced (on Linux its rows can still
    be read, and written), so only the path shows it is no longer the database."""
    paths = {
        Path(e.url.database).expanduser()
        for e in engines
        if e.dialect.name == "sqlite"
        and e.url.database not in (None, "", ":memory:")
        and not e.url.database.startswith("file:")
    }
    return [_DatabaseFile(path, file_identity(path)) for path in sorted(paths)]


def _still_in_place(files: Sequence[_DatabaseFile]) -> None:
    """Fail when a database file the export opened is no longer the one at its path."""
    for file in files:
        if file.identity is None or file_identity(file.path) != file.identity:
            raise DatabaseUnavailable(
                f"the database file {file.path} was removed or replaced during the export; "
                "the export could not be recorded, so the file was not kept"
            )


# -- cancelling the running statement ---------------------------------------------------------


class _Interrupter:
    """Stops the statement running on one connection, but only while the export owns it:
    after :meth:`disarm` a late cancel must not hit whoever uses the pooled connection next."""

    def __init__(self, stop: Callable[[], None]) -> None:
        self._stop = stop
        self._armed = True
        self._lock = threading.Lock()

    def fire(self) -> None:
        # Called on the cancelling (GUI) thread: never block it on the network.
        threading.Thread(target=self._fire, name="export-cancel", daemon=True).start()

    def _fire(self) -> None:
        with self._lock:
            if not self._armed:
                return
            try:
                self._stop()
            except Exception:
                log.info("cancel request failed", exc_info=True)

    def disarm(self) -> None:
        with self._lock:
            self._armed = False


def _interrupter(driver_connection: Any, backend: str) -> _Interrupter:
    if backend == "postgresql":
        return _Interrupter(lambda: driver_connection.cancel_safe(timeout=5))
    return _Interrupter(driver_connection.interrupt)


def _header(columns: Sequence[Column], terminator: str) -> bytes:
    return (",".join(c.key for c in columns) + terminator).encode("utf-8")


# -- PostgreSQL: COPY straight into the file ---------------------------------------------------


def _rows_statement(
    request: ExportRequest, cells: Sequence[tuple[str, str]], dialect: Any, half: Any = None
) -> Any:
    """The rows (``cells``: key and SQL expression per column) in file order, compiled for
    ``dialect``; only those ``half`` (a condition on the time) keeps, when given."""
    rows: Any = (
        select(*[literal_column(sql).label(key) for key, sql in cells])
        .select_from(EVENTS)
        .where(where_clause(request.event_filter))
        .order_by(EVENTS.c.occurred_at, EVENTS.c.id)
    )
    if half is not None:
        rows = rows.where(half)
    return rows.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})


def _range_statement(request: ExportRequest, dialect: Any) -> Any:
    """How many rows match, and the first and last time among them (the zone's offsets are
    worked out over that span), from the same filter as the rows."""
    statement = (
        select(func.count(), func.min(EVENTS.c.occurred_at), func.max(EVENTS.c.occurred_at))
        .select_from(EVENTS)
        .where(where_clause(request.event_filter))
    )
    return statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})


def _clock(
    columns: Sequence[Column], request: ExportRequest, first: datetime | None, last: Any
) -> ZoneClock | None:
    """The zone's offsets over the rows, when a column needs them and there are rows."""
    if first is None or last is None or not any(c.zoned for c in columns):
        return None
    return ZoneClock(zone_info(request.time_zone), first, last)


def _pg_copy(
    request: ExportRequest,
    columns: Sequence[Column],
    dialect: Any,
    clock: ZoneClock | None,
    as_stored: Plain,
    half: Any = None,
) -> tuple[str, dict[str, Any]]:
    if request.file_format is FileFormat.JSONL:
        line = [("line", jsonl.pg_line_sql(columns, "activity_events", clock))]
        compiled = _rows_statement(request, line, dialect, half)
        return jsonl.pg_copy(str(compiled)), dict(compiled.params)
    profile = request.profile
    cells = cells_sql(columns, "postgresql", "activity_events", profile, clock, as_stored)
    if len(cells) == 1:
        # The csv module's rule: a row of one empty cell is written "" (an empty line would
        # be no row at all to a reader); COPY writes a lone missing value as an empty line.
        cells = [f"coalesce(({cells[0]})::text, '')"]
    keyed = [(c.key, sql) for c, sql in zip(columns, cells, strict=True)]
    rows = _rows_statement(request, keyed, dialect, half)
    return f"COPY ({rows}) TO STDOUT (FORMAT csv)", dict(rows.params)


def _middle_statement(request: ExportRequest, counted: int, dialect: Any) -> Any:
    """The time of the middle row in file order: where the later half starts. An index-only
    scan to the middle where the filter has the workspace's time index (37 ms at 1M rows),
    a small part of formatting the rows."""
    statement = (
        select(EVENTS.c.occurred_at)
        .where(where_clause(request.event_filter))
        .order_by(EVENTS.c.occurred_at, EVENTS.c.id)
        .offset(counted // 2)
        .limit(1)
    )
    return statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})


# Fixed for the export's transaction: times are written from UTC (see columns.ZoneClock) and
# the text of a timestamp also depends on DateStyle. The JIT compiler is off: the cell
# expressions make the COPY costly enough to be compiled, which took about 0.5 s before the
# first row and made the rows no faster (measured in benchmarks/RESULTS.md).
_PG_SETTINGS = (
    "SELECT set_config('TimeZone', 'UTC', true),"
    " set_config('DateStyle', 'ISO, YMD', true),"
    " set_config('jit', 'off', true)"
)
# Read in halves, each half is one server process: a parallel plan sorts what the time index
# gives in order, and its workers take the cores the other half needs (both halves of 500k
# rows: 0.54 s without, 1.05 s with, against 1.15 s for one stream).
_ONE_PROCESS_EACH = "set_config('max_parallel_workers_per_gather', '0', true)"


def _copy_rows(
    pg: Any,
    cursor: Any,
    copy: tuple[str, dict[str, Any]],
    crlf: bool,
    write: Callable[[bytes | bytearray], None],
    each: Callable[[int], None],
) -> int:
    """Run one ``COPY``, ``write`` its rows as they come, call ``each`` with the rows so far
    after every chunk; the number of rows, checked against the server's count."""
    rows = 0
    with cursor.copy(*copy) as running:
        reader = _CopyReader(pg, running, crlf=crlf)
        for chunk, count in reader:
            write(chunk)
            rows += count
            each(rows)
    copied = reader.server_rows
    if copied >= 0 and copied != rows:
        raise UserError(f"the server sent {copied} rows but {rows} arrived; the file was not kept")
    return rows


# SET TRANSACTION SNAPSHOT refused because the snapshot's transaction has ended: "could not
# import the requested snapshot" (the source process is gone), "invalid snapshot identifier".
_SNAPSHOT_GONE = ("55000", "22023")


class _LaterHalf(threading.Thread):
    """The later half of the rows, read on a second connection in the snapshot the first one
    exported, into a part file, while the first connection reads the earlier half.

    ``halt`` stops it (the main token's cancel reaches it through the caller, and so does
    the first half's failure); its own failure is kept in :attr:`failure` for the caller to
    raise, and stops the earlier half at once (``stop_earlier``), whatever it is doing. A
    failure that follows from the earlier half's is marked :attr:`follows_earlier` instead:
    a snapshot that is gone when imported, its transaction having failed. Before reading,
    it checks that it sees the very snapshot the first connection sees
    (``pg_current_snapshot`` of both): the import could only succeed elsewhere on another
    server holding a snapshot of the same name."""

    def __init__(
        self,
        pg: Any,
        snapshot: tuple[str, str],
        copy: tuple[str, dict[str, Any]],
        crlf: bool,
        part: AtomicFile,
        halt: CancelToken,
        stop_earlier: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(name="export-later-half", daemon=True)
        self._pg, self._snapshot, self._copy = pg, snapshot, copy
        self._crlf, self._part, self._halt = crlf, part, halt
        self._stop_earlier = stop_earlier
        self.rows = 0
        self.failure: BaseException | None = None
        self.follows_earlier = False
        self.grew = threading.Event()  # set at every chunk written, and at the end

    def run(self) -> None:
        import psycopg
        from psycopg import sql

        pg = self._pg
        stop = _interrupter(pg, "postgresql")
        try:
            self._halt.on_cancel(stop.fire)
            pg.rollback()  # the pool's liveness ping may have opened a transaction
            name, seen = self._snapshot
            with pg.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                try:
                    cursor.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(name)))
                except psycopg.Error as error:
                    self.follows_earlier = error.sqlstate in _SNAPSHOT_GONE
                    raise
                cursor.execute(f"{_PG_SETTINGS}, {_ONE_PROCESS_EACH}, pg_current_snapshot()::text")
                if cursor.fetchone()[-1] != seen:  # type: ignore[index]
                    raise UserError(
                        "the export's second connection did not see the first one's snapshot; "
                        "the file was not kept"
                    )
                self._halt.check()
                _copy_rows(pg, cursor, self._copy, self._crlf, self._part.write, self._took)
                self._part.flush()
            pg.rollback()
        except BaseException as error:  # raised by the caller, on its thread
            self.failure = error
            # Its own failure, not its being stopped: the earlier half need not go on (a
            # stop the caller tells from a failure of the earlier half's own).
            if not self._halt.cancelled and not self.follows_earlier:
                self._stop_earlier()
        finally:
            stop.disarm()
            self.grew.set()

    def _took(self, rows: int) -> None:
        self._part.flush()  # written whole chunks only: the caller appends as they come
        self.rows = rows
        self.grew.set()
        self._halt.check()

    def raise_failure(self) -> None:
        if self.failure is not None:
            raise self.failure


def _stream_pg(
    engine: Engine,
    request: ExportRequest,
    columns: Sequence[Column],
    out: AtomicFile,
    progress: Progress,
    token: CancelToken,
    pins: dict[str, Any] | None = None,
    halves: bool = False,
    since: float | None = None,
    must_be_open: bool = False,
) -> tuple[int, int]:
    """The rows through ``COPY`` into ``out``; with ``halves`` (one server, not a read route)
    a range from HALVES_FROM rows is read as two halves at once (see the module docs).
    ``since``: when the export started (see :func:`_failure`). ``must_be_open``: a staff
    session, which the events' policy shows only the workspaces it has opened."""
    import psycopg
    from psycopg import errors as pg_errors

    since = time.monotonic() if since is None else since
    range_sql = _range_statement(request, engine.dialect)
    try:
        raw = engine.raw_connection()
    except SQLAlchemyError as error:
        raise _failure(error, engine, since) from error
    pg: Any = raw.driver_connection
    stop = _interrupter(pg, "postgresql")
    second = None  # the later half's connection, while it may be used
    try:
        token.on_cancel(stop.fire)
        token.check()
        if halves:
            # Taken before the snapshot: joining the signed-in session is a row the snapshot
            # must hold for row-level security to show this connection any event.
            second = engine.raw_connection()
        pg.rollback()  # the pool's liveness ping may have opened a transaction
        with pg.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cursor.execute(_PG_SETTINGS)
            if must_be_open and not server_events.all_opened(
                cursor, request.event_filter.workspace_ids
            ):
                raise UserError(
                    "the workspaces to export were not opened to this session (no view of "
                    "them is on record), so their events would be missing: nothing was exported"
                )
            cursor.execute(str(range_sql), range_sql.params)
            counted, first, last = cursor.fetchone()  # type: ignore[misc]
            counted = int(counted)
            if pins is not None and "primary_lsn" in pins:  # read from a standby
                cursor.execute(routing.POSITION_SQL)
                pins["read_from"] = routing.position_from_row(
                    cursor.fetchone() or (), pins.pop("primary_lsn")
                )
            if pins is not None:  # the chain evidence, from the same snapshot
                pins.update(_snapshot_pins(request, engine.dialect, _pg_runner(cursor)))
            as_stored: Plain = {}
            if request.file_format is FileFormat.CSV:
                as_stored = plain.plain_columns(
                    cursor,
                    "postgresql",
                    columns,
                    "activity_events",
                    request.event_filter.workspace_ids,
                    counted,
                )
            clock = _clock(columns, request, first, last)
            parts: list[Any] = [None]
            if halves and counted >= HALVES_FROM:
                middle = _middle_statement(request, counted, engine.dialect)
                cursor.execute(str(middle), middle.params)
                (at,) = cursor.fetchone()  # type: ignore[misc]
                if at > first:  # else every row is in the later half: one stream
                    parts = [EVENTS.c.occurred_at < at, EVENTS.c.occurred_at >= at]
            if len(parts) == 1 and second is not None:
                second.close()  # unused: back to the pool
                second = None
            copies = [
                _pg_copy(request, columns, engine.dialect, clock, as_stored, part) for part in parts
            ]
            progress(0, counted, "exporting")
            token.check()
            line_end = "\n"
            if request.file_format is FileFormat.CSV:
                line_end = request.profile.line_end
                out.write(_header(columns, line_end))
            crlf = line_end == "\r\n"
            if second is None:

                def each(rows: int) -> None:
                    token.check()
                    progress(rows, counted, "exporting")

                rows = _copy_rows(pg, cursor, copies[0], crlf, out.write, each)
            else:
                cursor.execute(
                    f"SELECT {_ONE_PROCESS_EACH}, pg_export_snapshot(), pg_current_snapshot()::text"
                )
                _, name, seen = cursor.fetchone()  # type: ignore[misc]
                rows = _two_halves(
                    second.driver_connection,
                    pg,
                    cursor,
                    (name, seen),
                    copies,
                    crlf,
                    out,
                    lambda rows: progress(rows, counted, "exporting"),
                    token,
                )
        pg.rollback()
        return rows, counted
    except pg_errors.QueryCanceled as error:
        if token.cancelled:
            raise Cancelled() from error
        raise _failure(error, engine, since) from error
    except pg_errors.InvalidParameterValue as error:
        raise UserError(
            f"the database does not know the time zone {request.time_zone!r}"
        ) from error
    except psycopg.OperationalError as error:
        if token.cancelled:
            raise Cancelled() from error
        log.warning("database connection lost during export", exc_info=True)
        raise DatabaseUnavailable(
            "the connection to the database was lost during the export; no file was written"
        ) from error
    except (psycopg.Error, SQLAlchemyError) as error:
        if token.cancelled:
            raise Cancelled() from error
        raise _failure(error, engine, since) from error
    finally:
        stop.disarm()
        # The connections may be mid-COPY, cancelled or dead; a fresh one costs milliseconds,
        # a poisoned one in the pool would fail someone else's query.
        for used in (raw, second):
            if used is not None:
                used.invalidate()
                used.close()


def _two_halves(
    second: Any,
    pg: Any,
    cursor: Any,
    snapshot: tuple[str, str],
    copies: Sequence[tuple[str, dict[str, Any]]],
    crlf: bool,
    out: AtomicFile,
    report: Callable[[int], None],
    token: CancelToken,
) -> int:
    """The earlier half read here (``pg``) into ``out`` while :class:`_LaterHalf` reads the
    later one on ``second`` into a part file; once the earlier half is whole, the part is
    appended as it grows. The rows of both.

    Whichever half fails first stops the other (the export's own stop: a cancel request to
    its server process); the user is told the failure, never the stop. Only the user's
    cancel (``token``) outranks it. An earlier half stopped this way ends with a cancel
    that is dropped for the later half's failure; one that ends with any other failure
    failed on its own, before the stop, and that is raised instead, as it is when the
    later half's failure follows from it."""
    from psycopg import errors as pg_errors

    halt = CancelToken()  # the export stopping the later half (and the user's cancel)
    token.on_cancel(halt.cancel)
    stop_earlier = _interrupter(pg, "postgresql")  # the later half's failure stopping this one
    with AtomicFile(out.destination, hashed=False) as part:
        later = _LaterHalf(second, snapshot, copies[1], crlf, part, halt, stop_earlier.fire)
        later.start()

        def each(rows: int) -> None:
            token.check()
            report(rows + later.rows)

        def growing() -> bool:
            later.grew.wait(0.25)
            later.grew.clear()
            token.check()
            later.raise_failure()
            report(earlier + later.rows)
            return later.is_alive()

        try:
            try:
                earlier = _copy_rows(pg, cursor, copies[0], crlf, out.write, each)
            except pg_errors.QueryCanceled as error:
                stopped = later.failure is not None and not later.follows_earlier
                if token.cancelled or not stopped or _timed_out(error):
                    raise
                later.raise_failure()  # why the export stopped this half
                raise
            later.raise_failure()  # failed as this half ended, too late to stop it
            out.append(part, growing)
        finally:
            stop_earlier.disarm()  # before the connection is used again or given back
            halt.cancel()  # a no-op once the later half is whole
            later.join()
        later.raise_failure()
        log.info("exported in two halves: %d + %d rows", earlier, later.rows)
    return earlier + later.rows


def _crlf_rows(chunk: bytes | bytearray, rows: int) -> bytes | bytearray:
    """``rows`` whole CSV rows ended by LF, ended by CRLF instead. A line break inside a
    quoted cell stays as it is: when the chunk has more LFs than rows, an LF ends a row only
    where the quotes before it are balanced (a doubled quote counts twice). Usually the chunk
    has none, and one ``replace`` at C speed does it (it added one byte per LF: as many LFs
    as rows)."""
    ended = chunk.replace(b"\n", b"\r\n")
    if len(ended) - len(chunk) == rows:
        return ended
    out: list[bytes] = []
    inside = False
    for piece in bytes(chunk).split(b"\n")[:-1]:
        out.append(piece)
        if piece.count(b'"') % 2:
            inside = not inside
        out.append(b"\n" if inside else b"\r\n")
    return b"".join(out)


class _CopyReader:
    """The rows of a running ``COPY ... TO STDOUT``, in chunks of up to CHECK_EVERY rows.

    libpq hands over one row per call, whatever newlines it contains. psycopg's ``Copy.read``
    costs a few microseconds per row in Python (a generator and a wait per row), more than
    the server spends formatting it; so rows already received are taken straight from libpq
    (``PQgetCopyData`` without blocking), and only when none is waiting does ``Copy.read``
    wait for the next one. An end of the COPY met directly is finished as psycopg finishes
    it: the command's result collected, an error raised as psycopg raises it.

    COPY ends every row with LF; with ``crlf`` the chunk's row ends become CRLF
    (:func:`_crlf_rows`)."""

    def __init__(self, pg: Any, copy: Any, crlf: bool = False) -> None:
        self._pg = pg
        self._copy = copy
        self._crlf = crlf
        self.server_rows = -1  # the row count in the server's command tag

    def __iter__(self) -> Iterator[tuple[bytes | bytearray, int]]:
        take = self._pg.pgconn.get_copy_data
        pending = bytearray()  # one write per CHECK_EVERY rows, not one per row
        count = 0
        while True:
            size, data = take(1)
            if size > 0:
                pending += data
            elif size == 0:  # nothing received yet: psycopg waits for the next row
                row = self._copy.read()
                if not row:
                    self.server_rows = self._copy.cursor.rowcount
                    break
                pending += row
            else:  # -1: the end of the COPY
                self.server_rows = self._finish()
                break
            count += 1
            if count == CHECK_EVERY:
                yield self._ended(pending, count), count
                pending = bytearray()  # the chunk given out is not reused
                count = 0
        if count:
            yield self._ended(pending, count), count

    def _ended(self, pending: bytearray, rows: int) -> bytes | bytearray:
        return _crlf_rows(pending, rows) if self._crlf else pending

    def _finish(self) -> int:
        import select

        from psycopg import errors as pg_errors
        from psycopg.pq import ExecStatus

        pgconn = self._pg.pgconn
        results = []
        while True:
            while pgconn.is_busy():
                select.select([pgconn.socket], [], [], 1.0)
                pgconn.consume_input()
            result = pgconn.get_result()
            if result is None:
                break
            results.append(result)
        if not results:
            raise pg_errors.OperationalError("the server ended the COPY without a result")
        if results[0].status != ExecStatus.COMMAND_OK:
            raise pg_errors.error_from_result(results[0], encoding=self._pg.info.encoding)
        tuples = results[0].command_tuples
        return int(tuples) if tuples is not None else -1


# -- SQLite: finished CSV lines, in batches ---------------------------------------------------


def _sqlite_lines_statements(
    request: ExportRequest,
    columns: Sequence[Column],
    dialect: Any,
    clock: ZoneClock | None,
    plain: Plain,
    hourly: bool = False,
) -> tuple[str, list[Any], str]:
    """The rows as ``(id, probe, line)`` in order, and the careful line of one row by id (see
    :mod:`nvadmin.export.sqlite_csv`). ``hourly``: each event joined to its hour in the table
    of :func:`sqlite_csv.create_hours` (which covers exactly the exported events' range, so
    the filter's own time bounds are left to it: SQLite seeks an index by one range only)."""
    table = "activity_events"
    profile = request.profile
    line_end = profile.line_end
    hours = sqlite_csv.HOURS if hourly else None
    pieces = sqlite_pieces(columns, table, profile, clock, hours)
    selected = ", ".join(sqlite_csv.fast_row_sql(columns, pieces, table, line_end, plain))
    event_filter = request.event_filter
    if hourly:
        event_filter = dataclasses.replace(event_filter, start=None, end=None)
    where = where_clause(event_filter).compile(
        dialect=dialect, compile_kwargs={"render_postcompile": True}
    )
    source, condition = table, str(where)
    order = f"{table}.occurred_at, {table}.id"
    if hourly:
        source, condition = sqlite_csv.hourly_from(condition, table)
        order = f"{sqlite_csv.HOURS}.n, {order}"
    sql = f"SELECT {selected} FROM {source} WHERE {condition} ORDER BY {order}"
    cells = cells_sql(columns, "sqlite", table, profile, clock)
    named, line = sqlite_csv.careful_line_sql(cells, line_end)
    inner = ", ".join(f"{sql} AS {name}" for name, sql in named)
    one = f"SELECT {line} FROM (SELECT {inner} FROM {table} WHERE id = ? LIMIT -1 OFFSET 0)"
    return sql, sqlite_parameters(where), one


def _sqlite_lines(
    db: Any,
    request: ExportRequest,
    columns: Sequence[Column],
    dialect: Any,
    clock: ZoneClock | None,
    rows: int,
) -> tuple[Any, Iterator[tuple[bytes, int]], bool]:
    """The cursor and batches of finished CSV lines (``rows`` of them), and whether the hours
    table was made (the caller drops it when the rows are read)."""
    import sqlite3

    ids = request.event_filter.workspace_ids
    as_stored = plain.plain_columns(db, "sqlite", columns, "activity_events", ids, rows)

    # A weekday or hour term's SQL is made for the filter's range, which the hours replace.
    clocked = any(SEARCHED[t.field].match is Match.CLOCK for t in request.event_filter.terms)
    hours = None if clock is None or clocked else clock.hours(request.profile)
    if hours:
        try:
            sqlite_csv.create_hours(db, hours)
        except sqlite3.OperationalError as error:  # a read-only connection makes no table
            log.info("SQLite export formats local times per row: %s", error)
            hours = None
    if hours:
        sql, params, one = _sqlite_lines_statements(
            request, columns, dialect, clock, as_stored, True
        )
        plan = [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
        if sqlite_csv.hourly_plan_ok(plan, "activity_events"):
            cursor = db.execute(sql, params)
            return cursor, _finished_lines(db, cursor, one), True
        sqlite_csv.drop_hours(db)
    sql, params, one = _sqlite_lines_statements(request, columns, dialect, clock, as_stored)
    cursor = db.execute(sql, params)
    return cursor, _finished_lines(db, cursor, one), False


@contextmanager
def _read_transaction(engine: Engine) -> Iterator[Any]:
    with engine.connect() as connection, connection.begin():
        yield connection.connection.driver_connection


def _stream_sqlite(
    engine: Engine,
    request: ExportRequest,
    columns: Sequence[Column],
    out: AtomicFile,
    progress: Progress,
    token: CancelToken,
    pins: dict[str, Any] | None = None,
) -> tuple[int, int]:
    import sqlite3

    compiled_range = _range_statement(request, engine.dialect)
    range_sql, range_params = str(compiled_range), sqlite_parameters(compiled_range)
    try:
        with _read_transaction(engine) as db:
            stop = _interrupter(db, "sqlite")
            token.on_cancel(stop.fire)
            cursor = None
            hourly = False
            try:
                token.check()
                counted, first, last = db.execute(range_sql, range_params).fetchone()
                counted = int(counted)
                if pins is not None:  # the chain evidence, from the same snapshot
                    pins.update(_snapshot_pins(request, engine.dialect, _sqlite_runner(db)))
                progress(0, counted, "exporting")
                low, high = sqlite_csv.stored_instant(first), sqlite_csv.stored_instant(last)
                # A stored time SQL cannot read: Python formats (and names the problem).
                in_python = (low is None or high is None) and first is not None
                clock = None if in_python else _clock(columns, request, low, high)
                if request.file_format is FileFormat.JSONL:
                    cursor, batches = _jsonl_lines(db, request, columns, clock, in_python, engine)
                else:
                    out.write(_header(columns, request.profile.line_end))
                    if in_python:
                        batches = _python_formatted(db, request, columns, engine.dialect)
                    else:
                        cursor, batches, hourly = _sqlite_lines(
                            db, request, columns, engine.dialect, clock, counted
                        )
                rows = 0
                for lines, size in batches:
                    out.write(lines)
                    rows += size
                    token.check()
                    progress(rows, counted, "exporting")
            finally:
                stop.disarm()
                # An unfinished statement keeps SQLite's interrupt flag raised, which would
                # make the rollback fail too; finishing it first clears the flag.
                if cursor is not None:
                    cursor.close()
                if hourly:  # (a failed drop: the next export drops it before making its own)
                    with contextlib.suppress(sqlite3.Error):
                        sqlite_csv.drop_hours(db)
        return rows, counted
    except sqlite3.OperationalError as error:
        if token.cancelled:
            raise Cancelled() from error
        raise translate(error) from error
    except SQLAlchemyError as error:
        if token.cancelled:
            raise Cancelled() from error
        raise translate(error) from error


def _jsonl_lines(
    db: Any,
    request: ExportRequest,
    columns: Sequence[Column],
    clock: ZoneClock | None,
    in_python: bool,
    engine: Engine,
) -> tuple[Any, Iterator[tuple[bytes, int]]]:
    """The cursor and batches of finished JSON lines (see :mod:`nvadmin.export.jsonl`);
    ``in_python``: the stored times are given to Python to format."""
    table = "activity_events"
    if in_python:
        selected = [jsonl.value_sql(c, "sqlite", table, None) for c in columns]
    else:
        selected = [jsonl.sqlite_line_sql(columns, table, clock)]
    rows: Any = (
        select(*[literal_column(sql) for sql in selected])
        .select_from(EVENTS)
        .where(where_clause(request.event_filter))
        .order_by(EVENTS.c.occurred_at, EVENTS.c.id)
    )
    compiled = rows.compile(dialect=engine.dialect, compile_kwargs={"render_postcompile": True})
    cursor = db.execute(str(compiled), sqlite_parameters(compiled))
    if in_python:
        zone = zone_info(request.time_zone)
        return cursor, jsonl.python_lines(cursor, columns, zone, SQLITE_BATCH)
    return cursor, _joined(cursor)


def _joined(cursor: Any) -> Iterator[tuple[bytes, int]]:
    while batch := cursor.fetchmany(SQLITE_BATCH):
        yield b"".join(line for (line,) in batch), len(batch)


def _finished_lines(db: Any, cursor: Any, one: str) -> Iterator[tuple[bytes, int]]:
    """Batches of finished lines; the few rows with a comma, quote, CR or LF in a cell are
    read again, every cell tested (a second cursor in the same read transaction)."""
    probe, line = itemgetter(1), itemgetter(2)
    while batch := cursor.fetchmany(SQLITE_BATCH):
        if sqlite_csv.needs_quotes(b"".join(map(probe, batch))):
            yield (
                b"".join(
                    db.execute(one, (event_id,)).fetchone()[0]
                    if sqlite_csv.needs_quotes(probed)
                    else finished
                    for event_id, probed, finished in batch
                ),
                len(batch),
            )
        else:
            yield b"".join(map(line, batch)), len(batch)


class _Lines:
    """What a csv writer writes, one line at a time."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, line: str) -> None:
        self.lines.append(line)


def _python_formatted(
    db: Any, request: ExportRequest, columns: Sequence[Column], dialect: Any
) -> Iterator[tuple[bytes, int]]:
    """Rows formatted by the csv module, zoned cells in Python: the reference the SQL-made
    lines are tested against, and the path for stored times SQL cannot read."""
    profile = request.profile
    zone = zone_info(request.time_zone)
    raw = [(c.key, c.sqlite_sql("activity_events", profile)) for c in columns]
    compiled = _rows_statement(request, raw, dialect)
    zoned = [(i, c) for i, c in enumerate(columns) if c.zoned]
    # The csv module quotes the characters of its line terminator only: with CRLF it quotes a
    # lone CR inside a cell, as COPY and the SQL lines do, so it writes CRLF and each line
    # gets the profile's end.
    lines = _Lines()
    writer = csv.writer(lines, lineterminator="\r\n")
    cursor = db.execute(str(compiled), sqlite_parameters(compiled))
    try:
        while batch := cursor.fetchmany(SQLITE_BATCH):
            for fetched in batch:
                row = list(fetched)
                for i, column in zoned:
                    row[i] = python_cell(column, row[i], zone, profile)
                writer.writerow(row)
            text = "".join(line[:-2] + profile.line_end for line in lines.lines)
            lines.lines.clear()
            yield text.encode("utf-8"), len(batch)
    finally:
        cursor.close()


# -- chain evidence and signature for the manifest ---------------------------------------------


def _snapshot_pins(
    request: ExportRequest, dialect: Any, run: Callable[[Any], list[Any]]
) -> dict[str, Any]:
    """The first and last exported events (the file's first and last rows), the chain head and
    the newest checkpoint's id, read by ``run`` inside the export's snapshot. One workspace
    only: the chain is per workspace."""
    from nvadmin.db.models import ChainCheckpoint, ChainHead

    ids = request.event_filter.workspace_ids
    if len(ids) != 1:
        return {}
    workspace_id = ids[0]
    kwargs = {"render_postcompile": True}

    def compiled(statement: Any) -> Any:
        return statement.compile(dialect=dialect, compile_kwargs=kwargs)

    # The file's first and last rows (its order: time, then event id): each read through the
    # filter's time index and stopped at the first match, so the cost does not grow with the
    # range or with the chain before it (min/max of seq would read one or the other).
    where = where_clause(request.event_filter)
    ends: list[tuple[int, bytes] | None] = []
    for order in (
        (EVENTS.c.occurred_at, EVENTS.c.id),
        (EVENTS.c.occurred_at.desc(), EVENTS.c.id.desc()),
    ):
        found = run(
            compiled(select(EVENTS.c.seq, EVENTS.c.hash).where(where).order_by(*order).limit(1))
        )
        ends.append((int(found[0][0]), bytes(found[0][1])) if found else None)
    head = run(
        compiled(
            select(ChainHead.last_seq, ChainHead.last_hash).where(
                ChainHead.workspace_id == workspace_id
            )
        )
    )
    checkpoint = run(
        compiled(
            select(ChainCheckpoint.id)
            .where(ChainCheckpoint.workspace_id == workspace_id)
            .order_by(ChainCheckpoint.seq.desc(), ChainCheckpoint.id.desc())
            .limit(1)
        )
    )
    return {
        "workspace_id": workspace_id,
        "first": ends[0],
        "last": ends[1],
        "head": (int(head[0][0]), bytes(head[0][1])) if head else (0, bytes(32)),
        "checkpoint_id": int(checkpoint[0][0]) if checkpoint else None,
    }


def _pg_runner(cursor: Any) -> Callable[[Any], list[Any]]:
    def run(compiled: Any) -> list[Any]:
        cursor.execute(str(compiled), compiled.params)
        return list(cursor.fetchall())

    return run


def _sqlite_runner(db: Any) -> Callable[[Any], list[Any]]:
    def run(compiled: Any) -> list[Any]:
        return list(db.execute(str(compiled), sqlite_parameters(compiled)).fetchall())

    return run


def _chain_evidence(engine: Engine, pins: dict[str, Any], since: float) -> dict[str, Any] | None:
    """The manifest's ``chain`` field: the exported events' ends, the chain head when the
    snapshot was taken, and the newest signed checkpoint then (with its signature, so a
    recipient can check it offline)."""
    from nvadmin.audit import checkpoints
    from nvadmin.audit.chain import utc_text

    if not pins:
        return None
    workspace_id = pins["workspace_id"]
    head_seq, head_hash = pins["head"]

    def end(pin: tuple[int, bytes] | None) -> dict[str, Any] | None:
        return None if pin is None else {"seq": pin[0], "hash": pin[1].hex()}

    checkpoint = None
    if pins["checkpoint_id"] is not None:
        try:
            with engine.connect() as connection:
                found = [
                    c
                    for c in checkpoints.load(connection, workspace_id)
                    if c.id == pins["checkpoint_id"]
                ]
        except SQLAlchemyError as error:
            raise _failure(error, engine, since) from error
        if found:
            c = found[0]
            checkpoint = {
                "seq": c.seq,
                "hash": c.hash.hex(),
                "signed_at": utc_text(c.signed_at),
                "key_id": c.key_id,
                "signature": c.signature.hex(),
            }
    return {
        "workspace_id": workspace_id,
        "first_event": end(pins["first"]),
        "last_event": end(pins["last"]),
        "head_at_snapshot": {"seq": head_seq, "hash": head_hash.hex()},
        "newest_checkpoint": checkpoint,
    }


def _signed(manifest: dict[str, Any], signing_key: Any) -> dict[str, Any]:
    """The manifest signed with ``signing_key``, else this computer's checkpoint key."""
    from nvadmin.audit.checkpoints import KeyStore
    from nvadmin.paths import Paths

    reason = "this computer has no checkpoint signing key"
    if signing_key is None:
        try:
            signing_key = KeyStore(Paths.from_environment().config_dir).signing_key()
        except UserError as error:
            reason = str(error)
    return manifests.sign(manifest, signing_key, reason)
