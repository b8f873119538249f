"""Engines for the audit database, with the same behaviour on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from nvadmin.errors import DatabaseUnavailable, SchemaError, UserError

log = logging.getLogger(__name__)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def parse_url(url: str) -> URL:
    """Parse a database URL, accepting ``postgresql://`` as shorthand for psycopg 3."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UserError(f"not a database URL: {url!r}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise UserError(f"unsupported database {parsed.drivername!r}: use sqlite or postgresql")
    return parsed


def make_engine(url: str | URL, *, statement_timeout_ms: int | None = None) -> Engine:
    """Build an engine; nothing connects until first use."""
    parsed = parse_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    connect_args: dict[str, Any] = {
        "application_name": "nvadmin",
        "connect_timeout": 10,
        # Timestamps are converted by Python; UTC keeps server-side text (COPY) unambiguous.
        # psycopg parses timestamps only in ISO style, whatever the server's default.
        "options": "-c TimeZone=UTC -c DateStyle=ISO,YMD"
        + (f" -c statement_timeout={statement_timeout_ms}" if statement_timeout_ms else ""),
    }
    try:
        return create_engine(
            parsed, pool_pre_ping=True, pool_size=5, max_overflow=10, connect_args=connect_args
        )
    except NoSuchModuleError:
        raise UserError(f"unsupported database driver {parsed.drivername!r}") from None


_FILE = "nvadmin_sqlite_file"  # a pooled SQLite connection's file when it connected


def file_identity(path: Path) -> tuple[int, int] | None:
    """The file at ``path`` (device, inode), None when there is none: what tells a database
    file replaced at its path from the one a connection still holds open."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


def _sqlite_engine(url: URL) -> Engine:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        folder = Path(database).expanduser().parent
        if not folder.is_dir():
            raise DatabaseUnavailable(f"folder {folder} does not exist")
    engine = create_engine(url, connect_args={"timeout": 30})

    if database and database != ":memory:" and not database.startswith("file:"):
        path = Path(database).expanduser()
        opened: list[tuple[int, int]] = []  # the file the engine's first connection opened

        @event.listens_for(engine, "do_connect")
        def _create_private(*_args: Any) -> None:
            if opened and file_identity(path) is None:
                # Not a new empty database in its place: every query would fail on a
                # missing table, and every view event would go into it.
                raise DatabaseUnavailable(f"the database file {path} was removed")
            # The file holds staff password hashes and patient activity: a new one is the
            # owner's alone (SQLite's own default is 0644); its -wal and -shm files follow it.
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            except FileExistsError:
                pass
            except OSError as error:  # SQLite itself then reports the folder's problem
                log.debug("could not create %s: %s", path, error)

        @event.listens_for(engine, "connect")
        def _remember_file(_dbapi_connection: Any, record: Any) -> None:
            record.info[_FILE] = file_identity(path)
            if not opened and record.info[_FILE] is not None:
                opened.append(record.info[_FILE])

        @event.listens_for(engine, "checkout")
        def _still_the_file(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
            # A pooled connection keeps the file it opened after that file is removed or
            # replaced at its path (a restored backup, a case file saved over): it would
            # read the old rows and write the view and export events into a file nobody can
            # open again. The pool then opens what is at the path now.
            if record.info.get(_FILE) != file_identity(path):
                raise exc.DisconnectionError(f"{path} is no longer the file this connection opened")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (SQLAlchemy's
        # documented recipe for pysqlite), so BEGIN/COMMIT behave as on PostgreSQL.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA busy_timeout = 30000")
        if database and database != ":memory:":
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")

    return engine


# (signs in the driver's message, what the user is told), first match wins.
_MESSAGES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("file is not a database", "database disk image is malformed"),
     "the SQLite file is damaged or is not an nvadmin database"),
    (("unable to open database file",),
     "cannot open the SQLite database file (check the path and permissions)"),
    (("canceling statement due to statement timeout",),
     "the query took too long and was stopped: narrow your filters"),
    # A cancel request nvadmin did not send (nvadmin's own are told apart where they are
    # sent); PostgreSQL also reports some statement timeouts this way (export.service).
    (("canceling statement due to user request",),
     "the query was cancelled on the database server (not by you or nvadmin); try again"),
    (("password authentication failed",), "the database refused the user name or password"),
    (("not currently accepting connections", "is starting up", "is shutting down",
      "in recovery mode"),
     "the database server is not accepting connections right now; try again shortly"),
    (("terminating connection", "server closed the connection unexpectedly",
      "consuming input failed", "connection already closed", "SSL SYSCALL"),
     "the connection to the database was lost; try again"),
)  # fmt: skip
_UNREACHABLE = ("Connection refused", "could not translate host name", "failed to resolve",
                "timeout expired", "No route to host")  # fmt: skip


def describe(error: BaseException) -> str:
    """A one-line, user-facing description of a database failure."""
    if isinstance(error, UserError):
        return str(error)
    original = getattr(error, "orig", None) or error
    text = str(original).strip().splitlines()[0] if str(original).strip() else type(error).__name__
    text = text.removeprefix("nvadmin: ")  # the server functions' own words, already plain
    for signs, message in _MESSAGES:
        if any(sign in text for sign in signs):
            return message
    if "does not exist" in text and "database" in text:
        return f"database not found: {text}"
    if getattr(error, "connection_invalidated", False):
        return "the connection to the database was lost; try again"
    if any(sign in text for sign in _UNREACHABLE):
        return (
            f"cannot reach the database server (is it running, and is the address right?): {text}"
        )
    return text


def translate(error: BaseException) -> UserError:
    """Wrap a driver error in the matching user-facing error."""
    message = describe(error)
    if "damaged" in message:
        return SchemaError(message)
    return DatabaseUnavailable(message)
