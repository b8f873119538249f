"""Keyset pagination over activity events: pages at any depth in constant time.

``OFFSET`` costs about a second per two million rows skipped, so the browser never uses it.
Every page is fetched relative to a *cursor*, the sort value, time and id of a row already on
screen, with a row-value comparison. Every sort orders by ``(value, occurred_at, id)``: rows
with the same value appear in time order, the id breaks the remaining ties, so the order is
total and stable (no row is skipped or shown twice between pages). Sorting by time orders by
``(occurred_at, id)`` alone.

Each order is answered by an index of migration 0004 (or 0001/0002 for time, workspace and
category) that starts with ``workspace_id`` followed by exactly these expressions, so a
workspace's first page, next page and last page read only the rows they show. The same index
serves "filter by this value, in time order".

Sort keys come from an allow-list (:data:`SORT_KEYS`); nothing the user types reaches SQL
except as a bound value. Nullable columns are sorted through ``coalesce(column, '')`` in both
the ``ORDER BY`` and the keyset predicate, so "no value" sorts first on both backends and the
predicate agrees with the order (PostgreSQL would otherwise put NULLs last, SQLite first, and a
row comparison with a NULL is never true). The ``''`` is written into the SQL, not bound: the
planner matches an expression index only against the same expression, and a bound parameter
is not the constant the index was built with.

Access is checked here, not only in the window: browsing all workspaces at once needs
:attr:`Permission.ALL_WORKSPACES`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple
from weakref import WeakKeyDictionary

from sqlalchemy import (
    Connection,
    Engine,
    func,
    literal,
    literal_column,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.pool import SingletonThreadPool, StaticPool

from nvadmin.db.models import ActivityEvent as E
from nvadmin.db.models import Workspace
from nvadmin.db.planner import planned_rows
from nvadmin.db.types import UTCDateTime
from nvadmin.identity import Permission, StaffIdentity
from nvadmin.query.fields import nullable
from nvadmin.query.filters import EventFilter, where_clause
from nvadmin.workers.cancel import CancelToken

log = logging.getLogger(__name__)

PAGE_SIZE = 200
# A browse query that needs longer than this is scanning far too much: the user is told to
# narrow the filters rather than being left with a spinner.
BROWSE_TIMEOUT_MS = 5_000
COUNT_TIMEOUT_MS = 60_000
# Up to this many matches are counted exactly before anything is shown (a few ms at most);
# beyond it an estimate is shown first and the exact count follows.
QUICK_COUNT_LIMIT = 10_000


# Sort key -> SQL expression. The only way a sort reaches SQL.
SORT_KEYS: dict[str, Any] = {
    "time": E.occurred_at,
    "workspace": E.workspace_id,
    "member": E.actor_name,
    "user": nullable(E.actor_email),
    "role": nullable(E.actor_role),
    "action": E.action,
    "category": E.category,
    "outcome": E.outcome,
    "patient": nullable(E.patient_id),
    "resource": nullable(E.resource_id),
    "ip": nullable(E.ip),
}


def order_columns(key: str) -> tuple[Any, ...]:
    """The full order of a sort key, ties broken by time then id (see the module docstring)."""
    if key == "time":
        return (E.occurred_at, E.id)
    return (SORT_KEYS[key], E.occurred_at, E.id)


@dataclass(frozen=True, slots=True)
class Sort:
    key: str = "time"
    descending: bool = True

    def __post_init__(self) -> None:
        if self.key not in SORT_KEYS:
            raise ValueError(f"cannot sort by {self.key!r}")


class EventRow(NamedTuple):
    """One event as shown in the browser; ``sort_value`` is this row's cursor value."""

    id: int
    workspace_id: int
    seq: int
    occurred_at: datetime
    actor_type: str
    actor_id: int | None
    actor_email: str | None
    actor_name: str
    actor_role: str | None
    action: str
    category: str
    outcome: str
    failure_reason: str | None
    resource_type: str | None
    resource_id: str | None
    patient_id: str | None
    ip: str | None
    user_agent: str | None
    session_id: str | None
    request_id: str | None
    details: str | None
    hash: bytes
    sort_value: Any

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.sort_value, self.occurred_at, self.id)


# The columns a browser row carries, named as the row's fields: everything a person reads,
# plus the chain link.
ROW_COLUMNS = tuple(getattr(E, name) for name in EventRow._fields if name != "sort_value")


class Cursor(NamedTuple):
    """Where a row sits in the order: its sort value, time and id (the value is the time
    when sorting by time)."""

    value: Any
    occurred_at: datetime
    id: int


@dataclass(frozen=True, slots=True)
class Page:
    """Consecutive rows in display order. ``at_start``/``at_end``: nothing exists before the
    first / after the last row. ``anchor`` is the index of the row a jump aimed at."""

    rows: tuple[EventRow, ...]
    at_start: bool
    at_end: bool
    anchor: int = 0
    elapsed: float = 0.0


@dataclass(frozen=True, slots=True)
class EventCount:
    """How many events match: ``exact``, or an approximation shown while the exact count
    runs, either the planner's estimate or (``more_than``) a lower bound."""

    value: int
    exact: bool
    more_than: bool = False

    def label(self) -> str:
        if self.exact:
            return f"{self.value:,} event{'s' if self.value != 1 else ''}"
        if self.more_than:
            return f"more than {self.value:,} events (counting…)"
        return f"about {_rounded(self.value)} events (estimate; counting…)"


def _rounded(value: int) -> str:
    """An estimate to two or three significant figures: 5.0M, 12k, 480."""
    if value >= 999_500:
        return f"{value / 1_000_000:.1f}M"
    if value >= 10_000:
        return f"{value / 1_000:.0f}k"
    return f"{value:,}"


def authorize(identity: StaffIdentity, event_filter: EventFilter) -> None:
    """Raise AccessDenied unless ``identity`` may browse what the filter covers."""
    identity.require(Permission.BROWSE)
    if not event_filter.workspace_ids:
        identity.require(Permission.ALL_WORKSPACES)


# In-memory SQLite (offline case files) has one shared connection: workers take turns on it.
_shared_connection_locks: WeakKeyDictionary[Engine, threading.Lock] = WeakKeyDictionary()
_locks_guard = threading.Lock()


def _serialise(engine: Engine) -> contextlib.AbstractContextManager[Any]:
    if not isinstance(engine.pool, StaticPool | SingletonThreadPool):
        return contextlib.nullcontext()
    with _locks_guard:
        lock = _shared_connection_locks.get(engine)
        if lock is None:
            lock = _shared_connection_locks[engine] = threading.Lock()
    return lock


@contextlib.contextmanager
def browse_connection(
    engine: Engine, timeout_ms: int, token: CancelToken | None = None
) -> Iterator[Connection]:
    """A read connection whose statements stop after ``timeout_ms`` (PostgreSQL) and that the
    cancel token interrupts on either backend."""
    with _serialise(engine), engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # SET LOCAL: ends with this transaction, never leaks to the pooled connection.
            connection.exec_driver_sql(f"SET LOCAL statement_timeout = {int(timeout_ms)}")
        if token is not None:
            raw: Any = connection.connection.driver_connection
            stop = raw.cancel if connection.dialect.name == "postgresql" else raw.interrupt

            def _stop() -> None:
                with contextlib.suppress(Exception):
                    stop()

            token.on_cancel(_stop)
            token.check()
        try:
            yield connection
        finally:
            connection.rollback()


class EventPager:
    """Pages of one filtered, sorted result. Plain data in, plain data out: safe to use from
    a worker thread (each call opens its own connection)."""

    def __init__(
        self,
        engine: Engine,
        identity: StaffIdentity,
        event_filter: EventFilter,
        sort: Sort = Sort(),
        *,
        page_size: int = PAGE_SIZE,
        timeout_ms: int = BROWSE_TIMEOUT_MS,
    ) -> None:
        authorize(identity, event_filter)
        self.engine = engine
        self.identity = identity
        self.filter = event_filter
        self.sort = sort
        self.page_size = page_size
        self.timeout_ms = timeout_ms
        self._key = SORT_KEYS[sort.key]
        self._order = order_columns(sort.key)
        self._workspaces: tuple[int, ...] | None = None

    # -- queries -------------------------------------------------------------------------

    def _query(
        self, forward: bool, limit: int, cursor: Cursor | None = None, inclusive: bool = False
    ) -> Any:
        """``limit`` rows in display order (``forward``) or reverse display order, after
        ``cursor`` in that direction if given.

        The sort indexes start with the workspace, so a sort over several workspaces (or all
        of them) reads each workspace's first ``limit`` rows from its index and keeps the
        first ``limit`` of those, instead of sorting every event. See :meth:`_beyond` for
        the two parts of a page after a cursor."""
        descending = self.sort.descending != (not forward)
        columns = (*ROW_COLUMNS, self._key.label("sort_value"))
        parts = [((), self._order)] if cursor is None else self._beyond(cursor, forward, inclusive)

        def ordered(statement: Any, order: tuple[Any, ...]) -> Any:
            if descending:
                return statement.order_by(*(column.desc() for column in order))
            return statement.order_by(*(column.asc() for column in order))

        workspaces: tuple[int | None, ...] = self._workspaces_apart() or (None,)
        branches = []
        for workspace in workspaces:
            only = () if workspace is None else (E.workspace_id == workspace,)
            for part, order in parts:
                statement = select(*columns).where(where_clause(self.filter), *only, *part)
                branches.append(ordered(statement, order).limit(limit))
        if len(branches) == 1:
            return branches[0]
        rows = union_all(*(select(*b.subquery().c) for b in branches)).subquery("pages")
        order = (rows.c.sort_value, rows.c.occurred_at, rows.c.id)
        return ordered(select(*rows.c), order).limit(limit)

    def _workspaces_apart(self) -> tuple[int, ...] | None:
        """The workspaces to read one by one, or None when one query follows an index: one
        workspace, or an order that starts with time or the workspace itself."""
        if self.sort.key in ("time", "workspace") or len(self.filter.workspace_ids) == 1:
            return None
        if self._workspaces is None:
            if self.filter.workspace_ids:
                self._workspaces = tuple(sorted(set(self.filter.workspace_ids)))
            else:
                with browse_connection(self.engine, self.timeout_ms) as connection:
                    found = connection.execute(select(Workspace.id).order_by(Workspace.id))
                    self._workspaces = tuple(found.scalars())
        return self._workspaces if self._workspaces else None

    def _beyond(
        self, cursor: Cursor, forward: bool, inclusive: bool = False
    ) -> list[tuple[tuple[Any, ...], tuple[Any, ...]]]:
        """Rows after ``cursor`` in display order (``forward``) or before it, as parts
        ``(conditions, order)`` whose matches, taken together, are those rows.

        Sorting by a value, that is two parts: the same value later in time, and the values
        beyond it. One row comparison ``(value, time, id) > (...)`` would say the same, but
        PostgreSQL estimates such a comparison from its first column alone: after the last
        row of "success", it expects only the few values beyond "success" and sorts them,
        when nearly every event is a later "success" (13 s over 5M events). Each part is
        estimated right and read in order from the same index. The first part is ordered by
        time alone (its value is one): SQLite does not see that an equality on an expression
        (``coalesce(actor_role, '')``) leaves an index on it in time order, and would sort
        every earlier event of that value (a role's: 0.5 s at 5M events, 1.3 s in a case file)."""
        descending = self.sort.descending != (not forward)
        time, row_id = literal(cursor.occurred_at, UTCDateTime()), literal(cursor.id)
        left, right = tuple_(E.occurred_at, E.id), tuple_(time, row_id)
        if descending:
            later = left <= right if inclusive else left < right
        else:
            later = left >= right if inclusive else left > right
        if self.sort.key == "time":
            return [((later,), self._order)]
        value = literal(cursor.value)
        beyond = self._key < value if descending else self._key > value
        return [((self._key == value, later), self._order[1:]), ((beyond,), self._order)]

    def _fetch(self, statement: Any, token: CancelToken | None) -> list[EventRow]:
        with browse_connection(self.engine, self.timeout_ms, token) as connection:
            result = connection.execute(statement)
            return [EventRow(*row) for row in result]

    # -- pages ---------------------------------------------------------------------------

    def statement(self, page: str, cursor: Cursor | None = None) -> Any:
        """The query of one page, ``LIMIT`` included: ``first``, ``last``, or the page
        ``after``/``before`` ``cursor`` (display order; ``last`` and ``before`` read backwards).
        """
        forward = page in ("first", "after")
        if page in ("after", "before"):
            assert cursor is not None
            return self._query(forward, self.page_size + 1, cursor)
        return self._query(forward, self.page_size + 1)

    def first(self, token: CancelToken | None = None) -> Page:
        started = time.perf_counter()
        rows = self._fetch(self.statement("first"), token)
        more = len(rows) > self.page_size
        return Page(tuple(rows[: self.page_size]), True, not more, 0, _since(started))

    def last(self, token: CancelToken | None = None) -> Page:
        started = time.perf_counter()
        rows = self._fetch(self.statement("last"), token)
        more = len(rows) > self.page_size
        rows = rows[: self.page_size]
        rows.reverse()
        return Page(tuple(rows), not more, True, len(rows) - 1, _since(started))

    def after(self, cursor: Cursor, token: CancelToken | None = None) -> Page:
        """The page that follows the row at ``cursor`` in display order."""
        started = time.perf_counter()
        rows = self._fetch(self.statement("after", cursor), token)
        more = len(rows) > self.page_size
        return Page(tuple(rows[: self.page_size]), False, not more, 0, _since(started))

    def before(self, cursor: Cursor, token: CancelToken | None = None) -> Page:
        """The page that precedes the row at ``cursor`` in display order."""
        started = time.perf_counter()
        rows = self._fetch(self.statement("before", cursor), token)
        more = len(rows) > self.page_size
        rows = rows[: self.page_size]
        rows.reverse()
        return Page(tuple(rows), not more, False, len(rows) - 1, _since(started))

    def around(self, cursor: Cursor, token: CancelToken | None = None) -> Page:
        """Rows on both sides of ``cursor``; the anchor is the row at or just after it."""
        started = time.perf_counter()
        half = max(1, self.page_size // 2)
        after_rows = self._fetch(
            self._query(True, self.page_size + 1, cursor, inclusive=True), token
        )
        before_rows = self._fetch(self._query(False, half + 1, cursor), token)
        at_start = len(before_rows) <= half
        before_rows = before_rows[:half]
        before_rows.reverse()
        at_end = len(after_rows) <= self.page_size
        rows = before_rows + after_rows[: self.page_size]
        anchor = len(before_rows) if after_rows else max(0, len(rows) - 1)
        return Page(tuple(rows), at_start, at_end, anchor, _since(started))

    def at_time(self, instant: datetime, token: CancelToken | None = None) -> Page:
        """Go to time: rows around the first event at or after ``instant`` (time order only).

        In descending order the first event at or after the instant is the oldest of the
        newer ones, so the anchor is the row whose time is >= instant with the smallest
        (time, id): the same event in both directions.
        """
        if self.sort.key != "time":
            raise ValueError("go to time needs the table sorted by time")
        started = time.perf_counter()
        if instant.tzinfo is None:
            raise ValueError("the time to go to must be timezone-aware")
        anchor_statement: Any = (
            select(E.occurred_at, E.id)
            .where(where_clause(self.filter), E.occurred_at >= literal(instant, UTCDateTime()))
            .order_by(E.occurred_at.asc(), E.id.asc())
            .limit(1)
        )
        with browse_connection(self.engine, self.timeout_ms, token) as connection:
            found = connection.execute(anchor_statement).first()
        if found is None:
            # Nothing that late: the nearest event is the newest one.
            page = self.first(token) if self.sort.descending else self.last(token)
            return Page(page.rows, page.at_start, page.at_end, page.anchor, _since(started))
        page = self.around(Cursor(found[0], found[0], found[1]), token)
        return Page(page.rows, page.at_start, page.at_end, page.anchor, _since(started))

    def count(self, token: CancelToken | None = None) -> int:
        statement = select(func.count()).select_from(E).where(where_clause(self.filter))
        with browse_connection(self.engine, COUNT_TIMEOUT_MS, token) as connection:
            return int(connection.execute(statement).scalar_one())

    def quick_count(
        self, limit: int = QUICK_COUNT_LIMIT, token: CancelToken | None = None
    ) -> EventCount:
        """What can be said at once about the number of matches: the exact number when there
        are at most ``limit`` (counting that many is quick), else PostgreSQL's planner
        estimate (never below ``limit``), or on SQLite, which has none, "more than
        ``limit``". :meth:`count` gives the exact number for the rest."""
        matches: Any = select(literal_column("1")).select_from(E).where(where_clause(self.filter))
        first = select(func.count()).select_from(matches.limit(limit + 1).subquery())
        with browse_connection(self.engine, self.timeout_ms, token) as connection:
            seen = int(connection.execute(first).scalar_one())
            if seen <= limit:
                return EventCount(seen, exact=True)
            if connection.dialect.name != "postgresql":
                return EventCount(limit, exact=False, more_than=True)
            estimate = planned_rows(connection, matches)
        return EventCount(max(estimate, limit + 1), exact=False)

    def fetch_event(self, event_id: int) -> EventRow | None:
        statement = select(*ROW_COLUMNS, E.id.label("sort_value")).where(E.id == event_id)
        with browse_connection(self.engine, self.timeout_ms) as connection:
            row = connection.execute(statement).first()
        return EventRow(*row) if row is not None else None  # type: ignore[call-arg]


def offset_page(
    engine: Engine, event_filter: EventFilter, sort: Sort, offset: int, limit: int = PAGE_SIZE
) -> Sequence[Any]:
    """The naive ``OFFSET`` page, kept only as the benchmark's baseline."""
    columns = order_columns(sort.key)
    order = [column.desc() if sort.descending else column.asc() for column in columns]
    statement = (
        select(*ROW_COLUMNS)
        .where(where_clause(event_filter))
        .order_by(*order)
        .offset(offset)
        .limit(limit)
    )
    with engine.connect() as connection:
        return connection.execute(statement).fetchall()


def _since(started: float) -> float:
    return time.perf_counter() - started
