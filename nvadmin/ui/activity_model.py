"""The activity table's model: a sliding window of loaded rows over a keyset-paged result.

The model never touches the database in ``data()``: it holds at most :data:`MAX_ROWS` rows
(already formatted for display) and asks :class:`~nvadmin.query.paging.EventPager` for more in
background jobs as the view nears either edge of the window. Rows that scroll far out of sight
are dropped, so memory stays flat however far one scrolls. Jumps (to the end, to a time)
replace the window. Every request carries the generation of the query it belongs to; results
of an older generation are dropped, and starting a new query cancels the running ones
(on PostgreSQL the statement itself is cancelled).

The match count is computed separately and arrives when it arrives; the table is usable
before it does. A small result (up to ``quick_count_limit``) is counted exactly at once; a
larger one first shows an approximation (PostgreSQL's planner estimate, "about 5.0M"; on
SQLite "more than 10,000"), replaced by the exact count when that finishes (a whole 5M-event
workspace takes about a second on PostgreSQL).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

import shiboken6
from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QThreadPool,
    Signal,
)
from PySide6.QtGui import QIcon
from sqlalchemy import Engine

from nvadmin.audit import access_log
from nvadmin.db.taxonomy import Category
from nvadmin.errors import DatabaseUnavailable
from nvadmin.identity import StaffIdentity
from nvadmin.query import fields
from nvadmin.query.fields import EventField, View
from nvadmin.query.filters import EventFilter
from nvadmin.query.localtime import zone_name
from nvadmin.query.paging import (
    QUICK_COUNT_LIMIT,
    Cursor,
    EventCount,
    EventPager,
    EventRow,
    Page,
    Sort,
)
from nvadmin.ui import icons
from nvadmin.ui.palette import error_brush
from nvadmin.workers.jobs import Job, JobControl

log = logging.getLogger(__name__)

# The window never holds more than this many rows; far-away rows are dropped.
MAX_ROWS = 3000
PLACEHOLDER = "…"


# The table's columns, by logical position (the field registry's table columns).
COLUMNS: tuple[EventField, ...] = fields.TABLE
COLUMN_TITLES: dict[int, str] = {i: f.table.title for i, f in enumerate(COLUMNS) if f.table}
# Column -> allow-listed SQL sort key (paging.SORT_KEYS). Details are not sortable.
SORT_KEY_OF: dict[int, str] = {
    i: f.table.sort for i, f in enumerate(COLUMNS) if f.table and f.table.sort
}
# The default columns fit a 1280-pixel window beside the detail pane, outcome (with its
# failure reason) and IP address included; the detail pane shows the hidden ones.
HIDDEN_BY_DEFAULT: tuple[int, ...] = tuple(
    i for i, f in enumerate(COLUMNS) if f.table and f.table.hidden
)
# Column widths as sample text: they follow the font (and its size) rather than pixels.
WIDTH_SAMPLES: dict[int, str] = {
    i: f.table.width for i, f in enumerate(COLUMNS) if f.table and f.table.width
}


def column_of(field: EventField) -> int:
    """The logical column that shows ``field``."""
    return COLUMNS.index(field)


EventRole = Qt.ItemDataRole.UserRole + 1  # the EventRow
FilterValueRole = Qt.ItemDataRole.UserRole + 2  # (filter field, value) for "filter by this"


@dataclass(frozen=True, slots=True)
class TimeLanding:
    """Where Go to time landed: the moment asked for (UTC), the event selected (None: the
    view has no events) and whether that event is the oldest in the view, whichever way the
    table is sorted."""

    asked: datetime
    event: EventRow | None
    oldest: bool


def category_icon(category: str) -> QIcon | None:
    """The category's own symbol, in its colour for the current theme (not colour alone)."""
    try:
        return icons.category_icon(Category(category))
    except ValueError:
        return None


class ActivityModel(QAbstractTableModel):
    """See the module docstring. Signals carry plain values for the window's status bar."""

    loading_changed = Signal(bool)
    rows_shown = Signal(float, float)  # seconds from request to rows shown, SQL seconds
    count_changed = Signal(object)  # EventCount (estimate first, then exact), or None
    failed = Signal(str)
    rows_prepended = Signal(int)  # the view keeps its place by scrolling this many rows down
    rows_trimmed_top = Signal(int)  # ... or up
    jumped = Signal(int)  # row to scroll to and select after a jump
    went_to_time = Signal(object)  # a TimeLanding, once Go to time's rows are shown

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[EventRow] = []
        self._display: list[tuple[str, ...]] = []
        self._engine: Engine | None = None  # the primary: the view events
        self._read_engine: Engine | None = None  # a standby when there is one: the rows
        self._identity: StaffIdentity | None = None
        self._filter: EventFilter | None = None
        self._sort = Sort()
        self._zone: tzinfo = UTC
        self._workspace_names: dict[int, str] = {}
        self._generation = 0
        self._at_start = True
        self._at_end = True
        self._loading_after = False
        self._loading_before = False
        self._loading = False
        self._jobs: list[Job] = []
        self._count_job: Job | None = None
        self._count: int | None = None
        # The generation whose count is running or shown: a sort or a jump keeps the filter,
        # so it keeps its count too.
        self._count_generation = 0
        # Owed by a request that a newer one replaced before its page came (a sort or a jump
        # pressed at once): the view event, recorded before any row of the query is shown,
        # and the count.
        self._view_owed = False
        self._count_owed = False
        self._requested_at = 0.0
        self.error: str | None = None
        self.page_size = 200
        self.max_rows = MAX_ROWS
        self.quick_count_limit = QUICK_COUNT_LIMIT
        # Page loads get their own small pool so a slow count or an export elsewhere never
        # queues in front of the rows the user is waiting for.
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(2)
        self._count_pool = QThreadPool(self)
        self._count_pool.setMaxThreadCount(1)

    # -- configuration -------------------------------------------------------------------

    def set_source(
        self, engine: Engine, identity: StaffIdentity, read_engine: Engine | None = None
    ) -> None:
        """``engine`` records the view events; rows and counts come from ``read_engine``
        (a hot standby; by default ``engine`` itself)."""
        self._engine = engine
        self._read_engine = read_engine or engine
        self._identity = identity

    def set_display(self, zone: tzinfo, workspace_names: dict[int, str]) -> None:
        """Time zone and workspace names used for display; reformats the loaded rows."""
        self._zone = zone
        self._workspace_names = dict(workspace_names)
        self._display = [self._format(row) for row in self._rows]
        if self._rows:
            self.dataChanged.emit(
                self.index(0, 0), self.index(len(self._rows) - 1, len(COLUMNS) - 1)
            )
        time_column = column_of(fields.TIME)
        self.headerDataChanged.emit(Qt.Orientation.Horizontal, time_column, time_column)

    @property
    def zone(self) -> tzinfo:
        return self._zone

    @property
    def event_filter(self) -> EventFilter | None:
        return self._filter

    @property
    def sort_order(self) -> Sort:
        return self._sort

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def count(self) -> int | None:
        return self._count

    @property
    def loading(self) -> bool:
        return self._loading

    @property
    def at_start(self) -> bool:
        return self._at_start

    @property
    def at_end(self) -> bool:
        return self._at_end

    # -- Qt model API (O(1), no database) --------------------------------------------------

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def data(
        self,
        index: QModelIndex | QPersistentModelIndex,
        role: int = Qt.ItemDataRole.DisplayRole,
    ) -> Any:
        if not index.isValid():
            return None
        row, column = index.row(), index.column()
        if row >= len(self._rows) or column >= len(COLUMNS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display[row][column]
        if role == EventRole:
            return self._rows[row]
        event = self._rows[row]
        field = COLUMNS[column]
        if role == Qt.ItemDataRole.DecorationRole and field is fields.CATEGORY:
            return category_icon(event.category)
        if role == Qt.ItemDataRole.ForegroundRole and field is fields.OUTCOME:
            return error_brush() if event.outcome == "failure" else None
        if role == Qt.ItemDataRole.ToolTipRole and field.table and field.table.tooltip:
            return field.table.tooltip(event)
        if role == FilterValueRole:
            return filter_value(event, column)
        return None

    def headerData(
        self,
        section: int,
        orientation: Qt.Orientation,
        role: int = Qt.ItemDataRole.DisplayRole,
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(COLUMNS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMN_TITLES[section].format(zone=zone_name(self._zone))
        if role == Qt.ItemDataRole.ToolTipRole:
            title = self.headerData(section, orientation)
            if section not in SORT_KEY_OF:
                return f"{title}: not sortable"
            return f"{title}: click to sort"
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        key = SORT_KEY_OF.get(column)
        if key is None:
            return
        new = Sort(key, order == Qt.SortOrder.DescendingOrder)
        if new == self._sort:
            return
        self._sort = new
        if self._filter is not None:
            self._start_query(self._filter, log_view=False, count=False)

    def canFetchMore(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> bool:  # noqa: B008
        return not parent.isValid() and bool(self._rows) and not self._at_end

    def fetchMore(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> None:  # noqa: B008
        if not parent.isValid():
            self.fetch_after()

    # -- queries ---------------------------------------------------------------------------

    def run(self, event_filter: EventFilter, *, log_view: bool, sort: Sort | None = None) -> None:
        """Show ``event_filter`` from the top. ``log_view``: write the activity_log.view
        event for it (once per new query, never for pages of the same query)."""
        if sort is not None:
            self._sort = sort
        self._start_query(event_filter, log_view=log_view, count=True)

    def refresh(self) -> None:
        if self._filter is not None:
            self._start_query(self._filter, log_view=False, count=True)

    def jump_to_end(self) -> None:
        self._jump(lambda pager, token: pager.last(token))

    def jump_to_start(self) -> None:
        self._jump(lambda pager, token: pager.first(token))

    def go_to_time(self, instant: datetime) -> None:
        """Rows around the first event at or after ``instant`` (around the newest when none
        is that late); the table must be in time order (the window switches to it first).
        ``went_to_time`` then says where it landed, so the window can say why when that is
        not at or just after ``instant``."""
        if self._sort.key != "time":
            self._sort = Sort("time", self._sort.descending)
        descending = self._sort.descending

        def land(page: Page) -> None:
            self._replace(page)
            rows, anchor = page.rows, page.anchor
            # The oldest event is the first row of the first page in ascending order, the
            # last row of the last page in descending order.
            if descending:
                oldest = page.at_end and anchor == len(rows) - 1
            else:
                oldest = page.at_start and anchor == 0
            event = rows[anchor] if rows else None
            self.went_to_time.emit(TimeLanding(instant, event, bool(rows) and oldest))

        self._jump(lambda pager, token: pager.at_time(instant, token), land)

    def clear(self) -> None:
        """Forget every row and stop every request (used when the session locks)."""
        self._new_generation()
        self._filter = None
        self._count = None
        self._view_owed = self._count_owed = False
        self.error = None
        self.beginResetModel()
        self._rows, self._display = [], []
        self._at_start = self._at_end = True
        self.endResetModel()
        self._set_loading(False)
        self.count_changed.emit(None)

    def _new_generation(self, *, recount: bool = True) -> int:
        """Stop the page requests under way; with ``recount`` (the filter changes), the count
        too."""
        self._generation += 1
        for job in self._jobs:
            job.cancel()
        self._jobs = []
        if recount:
            self._count_generation = -1  # a count already on its way is dropped
            if self._count_job is not None:
                self._count_job.cancel()
                self._count_job = None
        self._loading_after = self._loading_before = False
        return self._generation

    def _pager(self, event_filter: EventFilter) -> EventPager:
        assert self._read_engine is not None and self._identity is not None
        return EventPager(
            self._read_engine, self._identity, event_filter, self._sort, page_size=self.page_size
        )

    def _start_query(self, event_filter: EventFilter, *, log_view: bool, count: bool) -> None:
        self._filter = event_filter
        self.error = None
        if count:
            self._count = None
            self.count_changed.emit(None)
        self._fetch(
            lambda pager, token: pager.first(token),
            self._replace,
            "first page",
            log_view=log_view,
            count=count,
            answers_anew=True,
        )

    def _fetch(
        self,
        fetch: Callable[[EventPager, Any], Page],
        apply: Callable[[Page], None],
        name: str,
        *,
        log_view: bool,
        count: bool,
        answers_anew: bool = False,
    ) -> None:
        """A page of the current filter replacing the rows shown (a new query, a sort, a
        jump). What the request it replaces still owed goes with it: its view event (no row
        of a query is shown before it is on record) and its count. ``answers_anew``: the
        filter or the sort changed, so when the page cannot be had the rows shown go too
        (they answer the question before; a failed jump keeps them: they still answer it)."""
        log_view = log_view or self._view_owed
        count = count or self._count_owed
        generation = self._new_generation(recount=count)
        self._view_owed, self._count_owed = log_view, count
        event_filter = self._filter
        self._requested_at = time.perf_counter()
        engine, identity, sort, size = self._engine, self._identity, self._sort, self.page_size
        read = self._read_engine
        assert event_filter is not None
        assert engine is not None and read is not None and identity is not None

        def work(control: JobControl) -> Page:
            if generation != self._generation:
                control.token.cancel()
            control.token.check()
            if log_view:
                # In the worker, before the page: the view event is committed on the primary
                # first (no event, no rows), and it is part of what is shown.
                try:
                    # Read from a standby once it holds the record: the server shows the
                    # session a workspace's rows only after it (and it is shown itself
                    # with "Show log access").
                    source = access_log.recorded_view(engine, read, identity, event_filter)
                except DatabaseUnavailable:
                    unrecorded.append(True)  # the rows of the query before go too
                    raise
            else:  # the same search again (a sort, a jump): its workspaces are open already
                source = access_log.opened_for(engine, read, identity, event_filter, "browse")
            pager = EventPager(source, identity, event_filter, sort, page_size=size)
            return fetch(pager, control.token)

        def show(page: Page) -> None:
            self._view_owed = False
            apply(page)
            if count:
                # Counted once the view event is written, so the count includes it.
                self._count_owed = False
                self._start_count(event_filter, generation)

        unrecorded: list[bool] = []
        self._submit(
            work,
            generation,
            show,
            name,
            on_failure=lambda: self._clear_rows() if unrecorded or answers_anew else None,
        )

    def _start_count(self, event_filter: EventFilter, generation: int) -> None:
        """What can be said at once (an exact small count, or an estimate), then, for a
        large result, the exact count: both in the background, dropped if the query changes
        (the running count is cancelled)."""
        engine, identity, limit = self._read_engine, self._identity, self.quick_count_limit
        assert engine is not None and identity is not None
        self._count_generation = generation

        def quick(control: JobControl) -> tuple[int, EventCount]:
            pager = EventPager(engine, identity, event_filter)
            return generation, pager.quick_count(limit, control.token)

        def exact(control: JobControl) -> tuple[int, EventCount]:
            pager = EventPager(engine, identity, event_filter)
            return generation, EventCount(pager.count(control.token), exact=True)

        def on_quick(result: tuple[int, EventCount]) -> None:
            self._on_count(result)
            if result[0] == self._count_generation and not result[1].exact:
                self._run_count(exact)

        self._run_count(quick, on_quick)

    def _run_count(
        self,
        work: Callable[[JobControl], tuple[int, EventCount]],
        done: Callable[[tuple[int, EventCount]], None] | None = None,
    ) -> None:
        job = Job(work, name="count events", pool=self._count_pool)
        job.succeeded.connect(done or self._on_count)
        job.failed.connect(lambda message: log.info("count failed: %s", message))
        self._count_job = job
        job.start()

    def _on_count(self, result: tuple[int, EventCount]) -> None:
        generation, count = result
        if generation != self._count_generation:
            return
        self._count = count.value if count.exact else None
        self.count_changed.emit(count)

    def _jump(
        self, fetch: Callable[[EventPager, Any], Page], apply: Callable[[Page], None] | None = None
    ) -> None:
        if self._filter is not None:
            self._fetch(fetch, apply or self._replace, "jump", log_view=False, count=False)

    def fetch_after(self) -> None:
        if self._loading_after or self._at_end or not self._rows or self._filter is None:
            return
        self._loading_after = True
        cursor = self._rows[-1].cursor
        self._extend(lambda pager, token: pager.after(cursor, token), self._append)

    def fetch_before(self) -> None:
        if self._loading_before or self._at_start or not self._rows or self._filter is None:
            return
        self._loading_before = True
        cursor = self._rows[0].cursor
        self._extend(lambda pager, token: pager.before(cursor, token), self._prepend)

    def _extend(
        self, fetch: Callable[[EventPager, Any], Page], apply: Callable[[Page], None]
    ) -> None:
        assert self._filter is not None
        generation = self._generation
        pager = self._pager(self._filter)
        self._submit(lambda control: fetch(pager, control.token), generation, apply, "page")

    def _submit(
        self,
        work: Callable[[JobControl], Page],
        generation: int,
        apply: Callable[[Page], None],
        name: str,
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        # No Qt parent and no deleteLater: the pool's runner keeps the job alive until its
        # last signal is out, then Python frees it (deleting it earlier could race the
        # worker thread still emitting ``finished``).
        job = Job(work, name=f"activity {name}", pool=self._pool)

        # The window deletes its model on sign-out while a page may still be read; what the
        # job reports after that is dropped (a bound method would be disconnected by Qt
        # itself, these lambdas are not).
        def while_alive(slot: Callable[..., None]) -> Callable[..., None]:
            return lambda *args: slot(*args) if shiboken6.isValid(self) else None

        job.succeeded.connect(while_alive(lambda page: self._on_page(generation, page, apply)))
        if on_failure is not None:
            first_failed = on_failure
            job.failed.connect(
                while_alive(lambda _m: first_failed() if generation == self._generation else None)
            )
        job.failed.connect(while_alive(lambda message: self._on_failed(generation, message)))
        job.cancelled.connect(while_alive(lambda: self._on_cancelled(generation)))
        job.finished.connect(while_alive(lambda: self._forget(job)))
        self._jobs.append(job)
        self._set_loading(True)
        job.start()

    def _forget(self, job: Job) -> None:
        if job in self._jobs:
            self._jobs.remove(job)
        if not self._jobs:
            self._set_loading(False)

    def _on_page(self, generation: int, page: Page, apply: Callable[[Page], None]) -> None:
        if generation != self._generation:
            log.debug("dropping a page of an older query")
            return
        apply(page)
        self.rows_shown.emit(time.perf_counter() - self._requested_at, page.elapsed)

    def _on_failed(self, generation: int, message: str) -> None:
        self._loading_after = self._loading_before = False
        if generation != self._generation:
            return
        self.error = message
        self.failed.emit(message)

    def _clear_rows(self) -> None:
        """Nothing on screen: a query that could not be answered (its view not recorded, its
        page not read) shows no rows, not even those of the query before it."""
        self.beginResetModel()
        self._rows, self._display = [], []
        self._at_start = self._at_end = True
        self.endResetModel()

    def _on_cancelled(self, generation: int) -> None:
        if generation == self._generation:
            self._loading_after = self._loading_before = False

    def _set_loading(self, loading: bool) -> None:
        if loading != self._loading:
            self._loading = loading
            self.loading_changed.emit(loading)

    # -- applying pages ----------------------------------------------------------------------

    def _replace(self, page: Page) -> None:
        self.beginResetModel()
        self._rows = list(page.rows)
        self._display = [self._format(row) for row in page.rows]
        self._at_start, self._at_end = page.at_start, page.at_end
        self.endResetModel()
        if page.rows:
            self.jumped.emit(page.anchor)

    def _append(self, page: Page) -> None:
        self._loading_after = False
        self._at_end = page.at_end
        if not page.rows:
            return
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(page.rows) - 1)
        self._rows.extend(page.rows)
        self._display.extend(self._format(row) for row in page.rows)
        self.endInsertRows()
        excess = len(self._rows) - self.max_rows
        if excess > 0:
            self.beginRemoveRows(QModelIndex(), 0, excess - 1)
            del self._rows[:excess]
            del self._display[:excess]
            self._at_start = False
            self.endRemoveRows()
            self.rows_trimmed_top.emit(excess)

    def _prepend(self, page: Page) -> None:
        self._loading_before = False
        self._at_start = page.at_start
        if not page.rows:
            return
        count = len(page.rows)
        self.beginInsertRows(QModelIndex(), 0, count - 1)
        self._rows[:0] = page.rows
        self._display[:0] = [self._format(row) for row in page.rows]
        self.endInsertRows()
        self.rows_prepended.emit(count)
        excess = len(self._rows) - self.max_rows
        if excess > 0:
            start = len(self._rows) - excess
            self.beginRemoveRows(QModelIndex(), start, len(self._rows) - 1)
            del self._rows[start:]
            del self._display[start:]
            self._at_end = False
            self.endRemoveRows()

    def _format(self, row: EventRow) -> tuple[str, ...]:
        view = View(self._zone, self._workspace_names)
        return tuple(f.table.text(row, view) for f in COLUMNS if f.table)

    def rows(self) -> list[EventRow]:
        """The loaded rows, in display order (a copy)."""
        return list(self._rows)

    def row_at(self, row: int) -> EventRow | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def find_row(self, cursor: Cursor) -> int:
        for i, row in enumerate(self._rows):
            if row.id == cursor.id:
                return i
        return -1


def filter_value(event: EventRow, column: int) -> tuple[str, str] | None:
    """The (filter field, value) a cell stands for, for "Filter by / Exclude this value"."""
    shown = COLUMNS[column].table
    if shown is None or shown.filter_by is None:
        return None
    field, value = shown.filter_by(event)
    return (field, value) if value else None
