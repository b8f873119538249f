"""Creating a case file from any event filter."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlcipher3
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import (
    ClauseElement,
    Column,
    ColumnElement,
    Connection,
    Engine,
    Executable,
    Select,
    String,
    Table,
    create_engine,
    event,
    func,
    insert,
    select,
    type_coerce,
)
from sqlalchemy import column as column_clause
from sqlalchemy import table as table_clause
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.visitors import replacement_traverse

from nvadmin import __version__
from nvadmin.audit import access_log
from nvadmin.audit.checkpoints import fingerprint, public_pem
from nvadmin.casefile import container, copier, encrypted, schema
from nvadmin.db import migrate
from nvadmin.db.models import (
    ActivityEvent,
    ApiClient,
    ChainCheckpoint,
    ChainHead,
    TeamMember,
    Workspace,
)
from nvadmin.db.types import sqlite_parameters, sqlite_timestamp
from nvadmin.errors import UserError
from nvadmin.files.atomic import AtomicFile, ExportWriteError, describe_os_error, sweep_stale
from nvadmin.identity import Permission, StaffIdentity
from nvadmin.query.filters import EventFilter, where_clause
from nvadmin.workers import helper
from nvadmin.workers.cancel import CancelToken

log = logging.getLogger(__name__)

SUFFIX = ".nvcase"
MANIFEST_FORMAT = "nvadmin-case-manifest/1"
# A segment is stretched to the next signed checkpoint only when that is reasonably near.
MAX_EXTENSION = 2_000_000
_BATCH = 5_000
# SQLite's page cache while building, in KiB: memory stays at this whatever the case's size.
# The indexes are kept up to date row by row, not built after the copy: CREATE INDEX sorts
# every key, and with temporary storage in memory (SQLCipher does not encrypt temporary
# files) that sort would hold them all, growing with the case. The events arrive in chain
# order, so most indexes grow at a few places that stay in the cache; those by patient and
# resource take their rows anywhere, and each page they miss is decrypted, then encrypted
# again, so a larger cache saves a fifth of the build's CPU at 1M events; the build then peaks
# at about 290 MB, with the process copying a SQLite source's events (:mod:`copier`), whatever
# the size (benchmarks/RESULTS.md, "Case files" and the top section).
CACHE_KIB = 128 * 1024
# The cache of this process once the copying process has filled the case database: what is
# left reads the chain index once and adds rows in chain order. With CACHE_KIB it grew by
# the index's size (5M events in the main window: 153 MB browsing, 259 MB after the build).
AFTER_COPY_KIB = 16 * 1024
# Rows read by the source's driver: the stretch the copying process moves on at once from
# the staging database (see copier.follow).
STAGING_WINDOW = 200_000
# Staged rows between two restarts of the staging database's write-ahead log (about 80 MB).
STAGING_LOG_RESTART = 250_000
# The copying process's page cache when following a staging database: this process holds the
# driver's rows and the staging database meanwhile, and the two stay under 300 MB with a
# quarter less (1M events from PostgreSQL: 285-287 MB and 20.0-22.3 s; 327 MB and 18.6 s
# with CACHE_KIB; 28.1-29.4 s without staging, on one core).
STAGED_CACHE_KIB = 96 * 1024
EVENT_COLUMNS: tuple[str, ...] = tuple(c.name for c in ActivityEvent.__table__.columns)
_COLUMNS = ", ".join(EVENT_COLUMNS)
_PLACEHOLDERS = ", ".join("?" for _ in EVENT_COLUMNS)
_ID = EVENT_COLUMNS.index("id")
CASE_TABLES = (
    "CREATE TABLE case_chain_context AS SELECT * FROM activity_events WHERE 0",
    "CREATE INDEX ix_case_chain_context_workspace_seq ON case_chain_context (workspace_id, seq)",
    "CREATE TABLE case_manifest (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE case_public_keys (key_id TEXT PRIMARY KEY, pem TEXT NOT NULL)",
)

Progress = Callable[[int, int | None, str], None]


@dataclass(frozen=True)
class CaseFileSummary:
    path: Path
    events: int
    context_events: int
    checkpoints: int
    bytes: int
    sha256: str
    seconds: float
    manifest: dict[str, Any]


class SharedConnection(sqlite3.Connection):
    """An in-memory database's only connection: the database lives exactly as long as it.

    Engines built on it (:func:`connection_engine`) may be disposed without losing the data;
    :meth:`discard` really closes it.
    """

    def close(self) -> None:
        """Kept open: see :meth:`discard`."""

    def discard(self) -> None:
        sqlite3.Connection.close(self)


def connection_engine(connection: Any, module: Any = None) -> Engine:
    """An engine over one existing SQLite connection (the only one: memory is per connection,
    and the case database under construction has one writer); ``module`` is the connection's
    DB-API module when it is not the standard library's."""
    options = {"module": module} if module is not None else {}
    engine = create_engine("sqlite://", creator=lambda: connection, poolclass=StaticPool, **options)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    return engine


def _progress_none(done: int, total: int | None = None, message: str = "") -> None:
    """No progress wanted."""


def create_case_file(
    engine: Engine,
    identity: StaffIdentity,
    event_filter: EventFilter,
    destination: Path,
    passphrase: str,
    *,
    source: str,
    public_keys: Mapping[str, Ed25519PublicKey] | None = None,
    progress: Progress = _progress_none,
    cancel: CancelToken | None = None,
    write_engine: Engine | None = None,
) -> CaseFileSummary:
    """Write the events matching ``event_filter`` and what is needed to verify them into an
    encrypted case file at ``destination``. Logged as an export in each workspace's log.

    ``engine`` reads the events (a hot standby when there is one); the export is recorded
    through ``write_engine`` (default: ``engine``), the primary."""
    identity.require(Permission.CASE_FILES)
    if not event_filter.workspace_ids:
        identity.require(Permission.ALL_WORKSPACES)
    container.check_passphrase(passphrase)
    if destination.suffix != SUFFIX:
        destination = destination.with_name(destination.name + SUFFIX)
    began = time.perf_counter()
    token = cancel or CancelToken()
    engine = access_log.opened_for(
        write_engine or engine, engine, identity, event_filter, "case file"
    )
    sweep_stale(destination.parent)  # what a build killed outright left there
    keys, header = encrypted.new_header(passphrase)
    with AtomicFile(destination) as out:
        # SQLite writes the encrypted pages straight into the hidden temporary file.
        database = encrypted.create(out.temp_path, keys.encryption, cache_kib=CACHE_KIB)
        try:
            manifest = _build(
                database,
                keys.encryption,
                engine,
                identity,
                event_filter,
                source,
                public_keys,
                progress,
                token,
            )
        except encrypted.DatabaseError as error:
            raise ExportWriteError(_write_failure(error, destination)) from error
        except helper.Failed as error:
            raise _copy_failure(error, destination) from error
        finally:
            database.discard()
        progress(0, None, "sealing")
        size, sha256 = _seal(out.temp_path, header)
        facts = {
            "file": destination.name,
            "kind": "case file",
            "format": encrypted.FORMAT,
            "encryption": f"{encrypted.CIPHER}, key from passphrase by scrypt",
            "rows": manifest["events"],
            "chain_context_rows": manifest["context_events"],
            "bytes": size,
            "sha256": sha256,
        }
        # Logged before the file gets its name: a case file never exists unrecorded.
        access_log.record_export(write_engine or engine, identity, event_filter, facts)
        out.publish()
    seconds = time.perf_counter() - began
    log.info("case file %s written: %s", destination, facts)
    return CaseFileSummary(
        destination,
        manifest["events"],
        manifest["context_events"],
        manifest["checkpoints"],
        size,
        sha256,
        seconds,
        manifest,
    )


def _build(
    database: encrypted.EncryptedConnection,
    key: bytes,
    engine: Engine,
    identity: StaffIdentity,
    event_filter: EventFilter,
    source: str,
    public_keys: Mapping[str, Ed25519PublicKey] | None,
    progress: Progress,
    token: CancelToken,
) -> dict[str, Any]:
    """Fill the (empty, encrypted) case database, whose key is ``key``; returns its
    manifest."""
    case_engine = connection_engine(database, sqlcipher3)
    try:
        migrate.upgrade(case_engine)
    finally:
        case_engine.dispose()  # the schema is in; from here on the raw connection writes
    for statement in CASE_TABLES:
        database.execute(statement)
    one_workspace = len(set(event_filter.workspace_ids)) == 1
    if one_workspace:
        schema.use_one_workspace_indexes(database)
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection = connection.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        with connection.begin():
            manifest = _copy(
                connection,
                database,
                key,
                identity,
                event_filter,
                source,
                public_keys or {},
                progress,
                token,
            )
    manifest["case_schema"] = schema.ONE_WORKSPACE if one_workspace else schema.SEVERAL_WORKSPACES
    database.execute(
        "INSERT INTO case_manifest (key, value) VALUES ('manifest', ?)",
        (json.dumps(manifest, ensure_ascii=False, sort_keys=True),),
    )
    token.check()
    return manifest


class CaseSourceError(UserError):
    """The events could not be read from the database the case file is made from."""


def _disk_full(destination: Path) -> str:
    return f"the disk is full: no space left in {destination.parent}; no file was written"


def _write_failure(error: Exception, destination: Path) -> str:
    """A one-line message for SQLite failing to write the case database (what SQLite said
    goes to the log)."""
    log.warning("writing the case file %s failed: %s", destination, error)
    if (getattr(error, "sqlite_errorcode", None) or 0) & 0xFF == 13:  # SQLITE_FULL
        return _disk_full(destination)
    return f"the case file {destination.name} could not be written; no file was written"


def _copy_failure(error: helper.Failed, destination: Path) -> UserError:
    """The plain cause of the copying process's failure (:mod:`copier` names it by its exit
    status); what it said goes to the log."""
    log.warning(
        "the process copying the events into %s failed (exit status %s): %s",
        destination,
        error.status,
        error,
    )
    if error.status == copier.DISK_FULL:
        return ExportWriteError(_disk_full(destination))
    if error.status == copier.SOURCE_UNREADABLE:
        return CaseSourceError(
            "the events could not be read from the source database (it may be damaged); "
            "no case file was written"
        )
    return ExportWriteError(
        f"the case file {destination.name} could not be written; no file was written"
    )


def _seal(path: Path, header: dict[str, Any]) -> tuple[int, str]:
    """Append the trailer to the finished database at ``path`` and fsync it; returns the
    file's size and SHA-256."""
    digest = hashlib.sha256()
    try:
        with path.open("r+b") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
            database_bytes = handle.tell()
            tail = encrypted.trailer(header, database_bytes)
            handle.write(tail)
            digest.update(tail)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        raise ExportWriteError(describe_os_error(error, path)) from error
    return database_bytes + len(tail), digest.hexdigest()


def _copy(
    source_connection: Connection,
    database: encrypted.EncryptedConnection,
    key: bytes,
    identity: StaffIdentity,
    event_filter: EventFilter,
    source: str,
    public_keys: Mapping[str, Ed25519PublicKey],
    progress: Progress,
    token: CancelToken,
) -> dict[str, Any]:
    e = ActivityEvent
    table = ActivityEvent.__table__
    where = where_clause(event_filter)
    stored = _stored_columns(source_connection.dialect.name)
    total = int(
        source_connection.execute(select(func.count()).select_from(table).where(where)).scalar_one()
    )
    # The segment's other events: those not already copied as matching ones (looked up in
    # the case database by id, so memory does not grow with the number of events).
    insert_context = (
        f"INSERT INTO case_chain_context ({_COLUMNS}) "
        f"SELECT {_PLACEHOLDERS} WHERE NOT EXISTS (SELECT 1 FROM activity_events WHERE id = ?)"
    )
    # A SQLite file is copied by SQLite itself, in a process of its own (see
    # :mod:`nvadmin.casefile.copier`); anything else (PostgreSQL, a database in memory, a
    # file that cannot be attached) comes through this process, read by the source's driver.
    source_file = _sqlite_file(source_connection)
    copied = None
    if source_file is not None:
        copied = _copy_in_child(database, key, source_file, where, total, progress, token)
    matching = select(*stored).where(where).order_by(e.workspace_id, e.seq, e.id)
    if copied is None and source_file is None:
        copied = _copy_staged(source_connection, database, key, matching, total, progress, token)
    if copied is not None:
        done = copied
        database.execute(f"PRAGMA main.cache_size = -{AFTER_COPY_KIB}")
        database.execute("BEGIN")
    else:
        # Each batch goes into a table of its own (temporary: in memory, with no index), and
        # from there into the event table in one statement, which keeps the table's and its
        # indexes' cursors where the last row went: a statement per row starts each of its
        # twelve inserts from the top of a tree (1M events from PostgreSQL: 27 s, now 25 s).
        database.execute(
            f"CREATE TEMP TABLE case_batch AS SELECT {_COLUMNS} FROM activity_events WHERE 0"
        )
        database.execute("BEGIN")
        done = 0
        for batch in _batches(source_connection, matching):
            token.check()
            database.executemany(
                f"INSERT INTO temp.case_batch ({_COLUMNS}) VALUES ({_PLACEHOLDERS})", batch
            )
            database.execute(
                f"INSERT INTO main.activity_events ({_COLUMNS}) "
                f"SELECT {_COLUMNS} FROM temp.case_batch ORDER BY rowid"
            )
            database.execute("DELETE FROM temp.case_batch")
            done += len(batch)
            progress(done, total, f"{done:,} of {total:,} events copied")
        database.execute("DROP TABLE temp.case_batch")
    # workspace -> [first seq, last seq, matching count], read back from the chain index, one
    # workspace at a time (a GROUP BY without an index that starts with the workspace would
    # sort every event in memory)
    candidates = event_filter.workspace_ids or tuple(
        source_connection.execute(select(Workspace.id).order_by(Workspace.id)).scalars()
    )
    spans: dict[int, list[int]] = {}
    for candidate in sorted(set(candidates)):
        first_seq, last_seq, count = database.execute(
            "SELECT min(seq), max(seq), count(*) FROM activity_events WHERE workspace_id = ?",
            (candidate,),
        ).fetchone()
        if count:
            spans[int(candidate)] = [int(first_seq), int(last_seq), int(count)]
    workspace_ids = sorted(set(spans) | set(event_filter.workspace_ids))
    segments: list[dict[str, Any]] = []
    context_total = 0
    checkpoint_total = 0
    used_keys: set[str] = set()
    for workspace_id in sorted(spans):
        first, last, count = spans[workspace_id]
        next_checkpoint = source_connection.execute(
            select(func.min(ChainCheckpoint.seq)).where(
                ChainCheckpoint.workspace_id == workspace_id, ChainCheckpoint.seq >= last
            )
        ).scalar()
        end = last
        if next_checkpoint is not None and next_checkpoint - last <= MAX_EXTENSION:
            end = int(next_checkpoint)
        context = 0
        # When the matching events already form the whole segment (a workspace, a time
        # range), there is nothing to add; otherwise add the events between them.
        if count != end - first + 1:
            segment = (
                select(*stored)
                .where(e.workspace_id == workspace_id, e.seq.between(first, end))
                .order_by(e.seq)
            )
            for batch in _batches(source_connection, segment):
                token.check()
                inserted = database.executemany(insert_context, [(*r, r[_ID]) for r in batch])
                context += inserted.rowcount
                progress(context, None, f"{context:,} chain context events copied")
        checkpoints = source_connection.execute(
            select(ChainCheckpoint.__table__).where(
                ChainCheckpoint.workspace_id == workspace_id,
                ChainCheckpoint.seq.between(first, end),
            )
        ).all()
        database.executemany(
            "INSERT INTO chain_checkpoints (id, workspace_id, seq, hash, signed_at, key_id, "
            "signature) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    c.id,
                    c.workspace_id,
                    c.seq,
                    c.hash,
                    sqlite_timestamp(c.signed_at),
                    c.key_id,
                    c.signature,
                )
                for c in checkpoints
            ],
        )
        used_keys |= {c.key_id for c in checkpoints}
        head = source_connection.execute(
            select(ChainHead.last_seq, ChainHead.last_hash).where(
                ChainHead.workspace_id == workspace_id
            )
        ).first()
        segments.append(
            {
                "workspace_id": workspace_id,
                "first_seq": first,
                "last_seq": end,
                "last_matching_seq": last,
                "matching_events": count,
                "context_events": context,
                "checkpoints": len(checkpoints),
                "ends_at_checkpoint": end == next_checkpoint,
                "chain_head_at_creation": (
                    {"seq": int(head[0]), "hash": bytes(head[1]).hex()} if head else None
                ),
            }
        )
        context_total += context
        checkpoint_total += len(checkpoints)
    database.execute("COMMIT")
    workspaces = _copy_context_tables(source_connection, database, workspace_ids)
    keys = {k: public_keys[k] for k in sorted(used_keys) if k in public_keys}
    database.executemany(
        "INSERT INTO case_public_keys (key_id, pem) VALUES (?, ?)",
        [(k, public_pem(v).decode("ascii")) for k, v in keys.items()],
    )
    now = datetime.now(UTC)
    return {
        "format": MANIFEST_FORMAT,
        "created_at": now.isoformat(),
        "created_by": {
            "id": identity.id,
            "email": identity.email,
            "display_name": identity.display_name,
            "role": str(identity.role),
        },
        "nvadmin_version": __version__,
        "source": source,
        "filter": event_filter.to_dict(),
        "workspaces": workspaces,
        "events": done,
        "context_events": context_total,
        "checkpoints": checkpoint_total,
        "segments": segments,
        "public_keys": {k: fingerprint(v) for k, v in keys.items()},
        "unknown_checkpoint_keys": sorted(used_keys - set(keys)),
    }


class _DeclaredCursor(Executable, ClauseElement):
    """``DECLARE name NO SCROLL CURSOR FOR query`` (PostgreSQL), its parameters bound and
    processed by SQLAlchemy like any statement's."""

    inherit_cache = False

    def __init__(self, name: str, query: Select[Any]) -> None:
        self.name = name
        self.query = query


@compiles(_DeclaredCursor, "postgresql")
def _declare(element: _DeclaredCursor, compiler: Any, **kw: Any) -> str:
    return f"DECLARE {element.name} NO SCROLL CURSOR FOR {compiler.process(element.query, **kw)}"


def _batches(connection: Connection, query: Select[Any]) -> Iterator[list[tuple[Any, ...]]]:
    """The rows of ``query`` as plain tuples, ``_BATCH`` at a time (bounded memory), for
    ``executemany`` to take as they are.

    Read by the driver itself, in the connection's transaction: no SQLAlchemy row object
    per event. From PostgreSQL, a cursor declared on the server and fetched in binary: no
    integer or hash parsed from text (reading a million events: 1.2 s of CPU instead of
    3.4 s)."""
    driver: Any = connection.connection.driver_connection
    if connection.dialect.name != "postgresql":
        compiled = query.compile(
            dialect=connection.dialect, compile_kwargs={"render_postcompile": True}
        )
        cursor = driver.cursor()
        try:
            cursor.execute(str(compiled), sqlite_parameters(compiled))
            while rows := cursor.fetchmany(_BATCH):
                yield rows
        finally:
            cursor.close()
        return
    connection.execute(_DeclaredCursor("nvadmin_case_rows", query))
    with driver.cursor(binary=True) as cursor:
        while rows := cursor.execute(f"FETCH FORWARD {_BATCH} FROM nvadmin_case_rows").fetchall():
            yield rows
    # Stopped early (cancelled, failed), the cursor ends with the transaction.
    connection.exec_driver_sql("CLOSE nvadmin_case_rows")


def _sqlite_file(connection: Connection) -> str | None:
    """The file of a SQLite source database (None for PostgreSQL, or a database in memory)."""
    if connection.dialect.name != "sqlite":
        return None
    for _seq, name, file in connection.exec_driver_sql("PRAGMA database_list"):
        if name == "main":
            return str(file) or None
    return None


def _copy_in_child(
    database: encrypted.EncryptedConnection,
    key: bytes,
    source_file: str,
    where: ColumnElement[bool],
    total: int,
    progress: Progress,
    token: CancelToken,
) -> int | None:
    """Copy the matching events of a SQLite source with one ``INSERT ... SELECT`` from the
    source attached read-only, in a child process (:mod:`nvadmin.casefile.copier`): SQLite
    moves the rows itself, in chain order, and the stored values are copied exactly as they
    are. None, having copied nothing, when the source cannot be attached."""
    events = ActivityEvent.__table__
    source, target = (
        table_clause("activity_events", *(column_clause(n) for n in EVENT_COLUMNS), schema=schema)
        for schema in ("src", "main")
    )

    def in_source(element: Any, **_kw: Any) -> Any:
        if isinstance(element, Column) and element.table is events:
            return source.c[element.name]
        return None

    # The child counts the rows as SQLite copies them: the statement's own count comes only
    # at its end.
    query = (
        select(*(source.c[n] for n in EVENT_COLUMNS))
        .where(replacement_traverse(where, {}, in_source), func.nvadmin_copying() == 1)
        .order_by(source.c.workspace_id, source.c.seq, source.c.id)
    )
    statement = insert(target).from_select(EVENT_COLUMNS, query)
    compiled = statement.compile(
        dialect=sqlite.dialect(), compile_kwargs={"render_postcompile": True}
    )
    # The same rows read alone, should the copy fail: see copier.SOURCE_UNREADABLE.
    reading = (
        select(*(source.c[n] for n in EVENT_COLUMNS))
        .where(replacement_traverse(where, {}, in_source))
        .compile(dialect=sqlite.dialect(), compile_kwargs={"render_postcompile": True})
    )
    with _lent(database) as case_file:
        return copier.copy(
            case_file,
            key,
            CACHE_KIB,
            source_file,
            str(compiled),
            sqlite_parameters(compiled),
            _BATCH,
            _child_progress(progress, total),
            token,
            reading=str(reading),
            reading_parameters=sqlite_parameters(reading),
        )


def _child_progress(progress: Progress, total: int) -> Callable[[int], None]:
    """``progress`` for the rows a copying process has read (at most ``total``)."""

    def report(read: int) -> None:
        done = min(read, total)
        progress(done, total, f"{done:,} of {total:,} events copied")

    return report


@contextmanager
def _lent(database: encrypted.EncryptedConnection) -> Iterator[Path]:
    """The case database's file, lent to a child process (:mod:`copier`), which opens it
    itself: the exclusive hold on it is given up meanwhile (an access after the change of
    mode releases it) and taken back after. A child's failure (:class:`helper.Failed`)
    says by its exit status what failed (:mod:`copier`)."""
    (case_file,) = [
        f for _seq, name, f in database.execute("PRAGMA database_list") if name == "main"
    ]
    database.execute("PRAGMA main.locking_mode = NORMAL")
    database.execute("SELECT count(*) FROM main.sqlite_master").fetchone()
    try:
        yield Path(case_file)
    finally:
        database.execute("PRAGMA main.locking_mode = EXCLUSIVE")


def _copy_staged(
    source_connection: Connection,
    database: encrypted.EncryptedConnection,
    key: bytes,
    matching: Select[Any],
    total: int,
    progress: Progress,
    token: CancelToken,
) -> int | None:
    """Copy the rows the source's driver reads (PostgreSQL) through a staging database on
    two cores: this process binds each batch there while a child process moves the rows on
    into the case database and its indexes (:func:`copier.follow`). None, having copied
    nothing, when the child cannot start.

    The staging database sits beside the case database under a temporary name the sweep of
    stale files knows (its write-ahead log and index too), encrypted under a key of its own
    that only the two processes hold, and is deleted with them however the build ends."""
    staging_key = os.urandom(32)
    statement = (
        f"INSERT INTO main.activity_events ({_COLUMNS}) SELECT {_COLUMNS} "
        f"FROM src.{copier.STAGED} WHERE rowid > ? AND rowid <= ? AND nvadmin_copying() = 1 "
        "ORDER BY rowid"
    )

    report = _child_progress(progress, total)
    with _lent(database) as case_file, AtomicFile(case_file, hashed=False) as staging_file:
        staging = sqlcipher3.connect(str(staging_file.temp_path), isolation_level=None)
        try:
            staging.execute(f'PRAGMA key = "{encrypted.raw_key(staging_key)}"')
            # Write-ahead: the child reads committed stretches while batches go on being
            # committed (with a rollback journal each waits for the other: 41.5 s at 1M).
            staging.execute("PRAGMA journal_mode = WAL")
            staging.execute("PRAGMA synchronous = OFF")
            staging.execute("PRAGMA temp_store = MEMORY")
            staging.execute(f"CREATE TABLE {copier.STAGED} ({_COLUMNS})")
            staging.execute(f"CREATE TABLE {copier.STAGED_TOTAL} (total INTEGER NOT NULL)")
            child = copier.start(
                case_file,
                key,
                STAGED_CACHE_KIB,
                str(staging_file.temp_path),
                statement,
                (),
                _BATCH,
                source_key=staging_key,
                window=STAGING_WINDOW,
            )
            if child is None:
                return None
            token.on_cancel(child.kill)
            try:
                staged = 0
                insert_staged = f"INSERT INTO {copier.STAGED} ({_COLUMNS}) VALUES ({_PLACEHOLDERS})"
                for batch in _batches(source_connection, matching):
                    token.check()
                    if child.ended():
                        break  # it failed: finish says why
                    staging.execute("BEGIN")
                    staging.executemany(insert_staged, batch)
                    staging.execute("COMMIT")
                    staged += len(batch)
                    if staged % STAGING_LOG_RESTART < len(batch):
                        # The log starts again from its beginning once the child reads only
                        # what is in the file: without this it grows with the case, and its
                        # index in both processes' memory with it (5M events: 295 MB, 288 MB
                        # with restarts).
                        # This waits while the child reads a stretch; it is ahead meanwhile.
                        staging.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
                    report(child.done)
                else:
                    staging.execute(
                        f"INSERT INTO {copier.STAGED_TOTAL} (total) VALUES (?)", (staged,)
                    )
                copied = copier.finish(child, report, token)
            finally:
                child.close()
        finally:
            staging.close()
    if copied is None:  # the staging database could not be attached
        raise encrypted.DatabaseError("the process copying the events could not read them")
    if copied != staged:
        raise encrypted.DatabaseError(f"{copied:,} of {staged:,} staged events were copied")
    return copied


def _stored_columns(dialect: str) -> list[ColumnElement[Any]]:
    """The event columns as the case database stores them, made by the source database:
    the time as SQLite's text for it (``sqlite_timestamp``), every other column as it is. No
    Python work per row: the rows go into the case database as they come."""
    columns: list[ColumnElement[Any]] = []
    for column in ActivityEvent.__table__.columns:
        if column.name != "occurred_at":
            columns.append(column)
        elif dialect == "postgresql":
            utc = func.timezone("UTC", column)
            text = func.to_char(utc, "YYYY-MM-DD HH24:MI:SS.US")
            columns.append(type_coerce(text, String()).label(column.name))
        else:  # SQLite already holds that text: copied as it is, not parsed and re-made
            columns.append(type_coerce(column, String()).label(column.name))
    return columns


def _copy_context_tables(
    source_connection: Connection, database: encrypted.EncryptedConnection, workspace_ids: list[int]
) -> list[dict[str, Any]]:
    """Workspaces, team members and API clients of the case (never staff accounts)."""
    case_engine = connection_engine(database, sqlcipher3)
    summary: list[dict[str, Any]] = []
    try:
        with case_engine.begin() as target:
            for model in (Workspace, TeamMember, ApiClient):
                table = model.__table__
                assert isinstance(table, Table)
                key = table.c.id if model is Workspace else table.c.workspace_id
                rows = [
                    dict(r._mapping)
                    for r in source_connection.execute(select(table).where(key.in_(workspace_ids)))
                ]
                if model is Workspace:
                    # Only the case's own workspaces: the staff workspace row that comes with
                    # the schema goes unless its events are in the case (the browser reads
                    # each listed workspace's rows apart, and the one-workspace indexes
                    # would look for another workspace's rows through every event).
                    target.execute(table.delete())
                    summary = [
                        {
                            "id": r["id"],
                            "slug": r["slug"],
                            "name": r["name"],
                            "timezone": r["timezone"],
                        }
                        for r in rows
                    ]
                if rows:
                    target.execute(insert(table), rows)
    finally:
        case_engine.dispose()
    if len(summary) != len(workspace_ids):
        raise UserError("a workspace of the filter does not exist")
    return summary
