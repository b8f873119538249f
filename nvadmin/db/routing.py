"""Which server answers: every write on the primary, the heavy reads on a hot standby.

A PostgreSQL database can name hot standbys (streaming replicas) beside its primary. The
read engine built here connects to the first standby that answers and, when none does, to the
primary: each new connection tries them in that order, so a standby that stops (at start or in
the middle of browsing: the pool's ping finds its connections dead) is replaced by the next one
or by the primary, and the switch is announced through ``on_notice`` (the status bar, the
command line's stderr, the log). Nothing is ever written through the read engine: it is only
handed to code that reads (:mod:`nvadmin.context` decides which code that is), and each of its
connections is made ``READ ONLY`` once it has joined the staff session, so a write that
reached it by mistake would fail loudly, on a standby or on the primary alike.

The order HIPAA asks for is kept by the callers: a query's access event is committed on the
primary first, and only then are rows read from the standby; a primary that cannot take the
event means nothing is read at all.

Replication is asynchronous, so a standby may be behind. :func:`server_position` says by how
much (replay LSN and timestamp), for the status bar, the export form and the manifest;
:func:`wait_for_replay` lets a read that must include the caller's own write (the access event
just recorded) wait for it, a short while.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.engine import URL

from nvadmin.db.engine import describe, make_engine
from nvadmin.files.sizes import byte_size

log = logging.getLogger(__name__)

# A standby that does not answer within this many seconds is skipped for the next one.
STANDBY_CONNECT_TIMEOUT = 3
# How long a read that must include the caller's own write waits for the standby to replay it.
READ_YOUR_WRITES_TIMEOUT = 3.0

Notice = Callable[[str], None]
# Run on each new read connection (psycopg, in a transaction) with whether its server is in
# recovery, before the connection is made read-only: it joins the signed-in session there.
# False means "this server cannot serve this session yet", and the next one is tried.
Prepare = Callable[[Any, bool], bool]


def address(url: URL) -> str:
    return f"{url.host or 'localhost'}:{url.port or 5432}"


def parse_lsn(lsn: str) -> int:
    """``'16/B374D848'`` as one number, to compare and subtract positions."""
    high, low = lsn.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def current_lsn(engine: Engine) -> str:
    """The primary's WAL position now: every commit so far lies before it (the insert
    position: with asynchronous commit a commit may not be written out yet)."""
    with engine.connect() as connection:
        return str(connection.execute(text("SELECT pg_current_wal_insert_lsn()")).scalar_one())


def replayed(connection: Connection, lsn: str) -> bool:
    """True when this connection's server holds everything up to ``lsn`` (a primary always)."""
    row = connection.execute(
        text("SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text")
    ).one()
    if not row[0]:
        return True
    return row[1] is not None and parse_lsn(row[1]) >= parse_lsn(lsn)


def wait_for_replay(engine: Engine, lsn: str, *, timeout: float) -> bool:
    """Wait until ``engine``'s server has replayed ``lsn``; False when ``timeout`` passed.

    The standby is asked again every few milliseconds (backing off to 50 ms): replay is
    usually done within one or two asks."""
    deadline = time.monotonic() + timeout
    pause = 0.002
    with engine.connect() as connection:
        while True:
            if replayed(connection, lsn):
                return True
            connection.rollback()
            if time.monotonic() >= deadline:
                return False
            threading.Event().wait(pause)
            pause = min(pause * 2, 0.05)


def including_own_writes(
    read: Engine, write: Engine, *, timeout: float = READ_YOUR_WRITES_TIMEOUT
) -> Engine:
    """The engine to read with when the rows must include what was just committed through
    ``write`` (the access event of this very query, shown by "Show log access"): ``read``
    once its server has replayed the primary's position, else, after ``timeout``, the
    primary itself. Read from a lagging standby, one's own access event would be missing;
    showing it as "pending" would show a row nobody can verify yet."""
    if read is write:
        return write
    fence = current_lsn(write)
    if wait_for_replay(read, fence, timeout=timeout):
        return read
    log.warning("the standby has not replayed %s after %.1f s: reading from the primary",
                fence, timeout)  # fmt: skip
    return write


# What a refused connection says, in a few words for the status bar (else describe()).
_REASONS = (
    ("Connection refused", "connection refused"),
    ("timeout expired", "no answer in time"),
    ("could not translate host name", "unknown host"),
    ("failed to resolve", "unknown host"),
    ("starting up", "starting up"),
    ("shutting down", "shutting down"),
    ("authentication failed", "the login was refused"),
)


def _reason(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error)
    return next((short for sign, short in _REASONS if sign in text), describe(error))


def _replayed_raw(connection: Any, lsn: str, timeout: float) -> bool:
    """:func:`wait_for_replay` on a driver connection still being set up."""
    deadline = time.monotonic() + timeout
    pause = 0.002
    while True:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_last_wal_replay_lsn()::text")
            row = cursor.fetchone()
        connection.rollback()
        if row and row[0] and parse_lsn(row[0]) >= parse_lsn(lsn):
            return True
        if time.monotonic() >= deadline:
            return False
        threading.Event().wait(pause)
        pause = min(pause * 2, 0.05)


@dataclass(frozen=True, slots=True)
class ServerPosition:
    """Which server answered a read, and how far behind the primary it is."""

    address: str  # host:port as the server itself reports it
    in_recovery: bool  # True on a standby
    replay_lsn: str | None  # the standby's replayed WAL position
    replayed_at: datetime | None  # commit time of the last transaction it replayed
    paused: bool
    behind_bytes: int | None  # the primary's position minus the replayed one

    @property
    def lag_text(self) -> str:
        """One short line for the status bar and the export form."""
        if not self.in_recovery:
            return f"reading from the primary {self.address}"
        parts = [f"standby {self.address}"]
        if self.behind_bytes is not None:
            parts.append(
                "up to date" if self.behind_bytes <= 0 else f"{byte_size(self.behind_bytes)} behind"
            )
        if self.replayed_at is not None:
            parts.append(f"last replayed {self.replayed_at:%Y-%m-%d %H:%M:%S} UTC")
        if self.replay_lsn:
            parts.append(f"LSN {self.replay_lsn}")
        if self.paused:
            parts.append("replay paused")
        return ", ".join(parts)

    def manifest(self) -> dict[str, Any]:
        return {
            "server": self.address,
            "in_recovery": self.in_recovery,
            "replay_lsn": self.replay_lsn,
            "replayed_at": self.replayed_at.isoformat() if self.replayed_at else None,
            "behind_bytes": self.behind_bytes,
        }


# Where the server answering stands; also run on a raw cursor inside an export's snapshot.
POSITION_SQL = (
    "SELECT coalesce(host(inet_server_addr()), 'localhost') || ':' || "
    "coalesce(inet_server_port(), current_setting('port')::int), "
    "pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, "
    "pg_last_xact_replay_timestamp(), "
    "CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END"
)


def position_of(connection: Connection, primary_lsn: str | None = None) -> ServerPosition:
    """Where ``connection``'s server stands (call it inside the snapshot it describes)."""
    return position_from_row(tuple(connection.execute(text(POSITION_SQL)).one()), primary_lsn)


def position_from_row(row: Sequence[Any], primary_lsn: str | None = None) -> ServerPosition:
    """A :data:`POSITION_SQL` row as a :class:`ServerPosition`."""
    behind = None
    if row[1] and row[2] and primary_lsn:
        behind = max(0, parse_lsn(primary_lsn) - parse_lsn(row[2]))
    elif not row[1]:
        behind = 0
    return ServerPosition(str(row[0]), bool(row[1]), row[2], row[3], bool(row[4]), behind)


def server_position(read: Engine, primary: Engine | None) -> ServerPosition:
    """The read engine's server and its lag behind ``primary`` (None: lag in bytes unknown)."""
    primary_lsn = None
    if primary is not None and primary is not read:
        try:
            primary_lsn = current_lsn(primary)
        except Exception:  # the position is still worth showing without the byte lag
            log.info("could not read the primary's WAL position", exc_info=True)
    with read.connect() as connection:
        return position_of(connection, primary_lsn)


class ReadRoute:
    """The read engine over ``standbys`` (in order) with ``primary`` as the last resort."""

    def __init__(
        self,
        standbys: Sequence[URL],
        primary: URL,
        *,
        on_notice: Notice | None = None,
        prepare: Prepare | None = None,
    ) -> None:
        self.standbys = tuple(standbys)
        self.primary = primary
        self._on_notice = on_notice
        self._prepare = prepare
        self._lock = threading.Lock()
        # The primary's position now (asked only when a standby does not know the session
        # yet, just after signing in): it serves the session once it has replayed this far.
        self.fence: Callable[[], str] | None = None
        self.answering: str | None = None  # address of the server the last connection reached
        self.notice: str | None = None  # the latest fallback notice, None while on a standby
        self.engine = make_engine(self.standbys[0])
        event.listen(self.engine, "do_connect", self._connect)
        # SQLAlchemy ends a ``postgresql_readonly`` transaction by setting the connection back
        # to READ WRITE, which a standby refuses at the next BEGIN: on the read engine "not
        # read-only" means the connection's own default, which is READ ONLY.
        set_readonly = getattr(self.engine.dialect, "set_readonly")  # noqa: B009 (PG only)

        def never_read_write(dbapi_connection: Any, value: bool) -> None:
            set_readonly(dbapi_connection, True if value else None)

        setattr(self.engine.dialect, "set_readonly", never_read_write)  # noqa: B010

    def _connect(self, dialect: Any, _record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        """Each new connection: the first standby that answers, else the primary."""
        failures: list[str] = []
        candidates = [(url, True) for url in self.standbys] + [(self.primary, False)]
        for index, (url, standby) in enumerate(candidates):
            params = {k: v for k, v in cparams.items()
                      if k not in ("host", "port", "user", "password", "dbname")}  # fmt: skip
            params.update(dialect.create_connect_args(url)[1])
            if standby:
                params["connect_timeout"] = STANDBY_CONNECT_TIMEOUT
            try:
                connection = dialect.connect(*cargs, **params)
            except Exception as error:
                if not standby:
                    raise
                failures.append(f"standby {address(url)} unreachable ({_reason(error)})")
                continue
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_is_in_recovery()")
                    in_recovery = bool(cursor.fetchone()[0])
                problem = None
                if standby and not in_recovery and self._prepare is not None:
                    # A signed-in session joins a server that is not in recovery by writing
                    # there: never on a server named as a standby (a promoted or misnamed one).
                    problem = "is not in recovery (not a hot standby)"
                elif not self._joined(connection, in_recovery):
                    problem = "has not replayed this sign-in yet"
                connection.commit()
                if problem is None:
                    with connection.cursor() as cursor:
                        # Whatever reaches this connection, it cannot write (on any server).
                        cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
                    connection.commit()
            except Exception as error:
                connection.close()
                if not standby:
                    raise
                failures.append(f"standby {address(url)} failed ({_reason(error)})")
                continue
            if problem is not None and standby:
                connection.close()
                failures.append(f"standby {address(url)} {problem}")
                continue
            self._answered(url, index, failures)
            return connection
        raise AssertionError("unreachable: the primary either connects or raises")

    def _joined(self, connection: Any, in_recovery: bool) -> bool:
        """The session joined on this connection; a standby that has not replayed the
        sign-in yet gets a moment (up to :data:`READ_YOUR_WRITES_TIMEOUT`) to do so."""
        if self._prepare is None or self._prepare(connection, in_recovery):
            return True
        if not in_recovery or self.fence is None:
            return False
        connection.rollback()
        return _replayed_raw(connection, self.fence(), READ_YOUR_WRITES_TIMEOUT) and bool(
            self._prepare(connection, in_recovery)
        )

    def _answered(self, url: URL, index: int, failures: list[str]) -> None:
        where = address(url)
        with self._lock:
            previous = self.notice
            self.answering = where
            if index == 0:
                message = None if self.notice is None else f"reading from standby {where} again"
                self.notice = None
            else:
                target = "the primary" if url is self.primary else "standby"
                message = f"{'; '.join(failures)}: reading from {target} {where}"
                self.notice = message
        if message and message != previous:
            log.warning("%s", message)
            if self._on_notice is not None:
                self._on_notice(message)

    def dispose(self) -> None:
        self.engine.dispose()
