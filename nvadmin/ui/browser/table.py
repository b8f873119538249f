"""The browser's table: its columns, scrolling over pages, jumps, sorting, copying rows, its
context menus and the message drawn over it when it has no rows."""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import (
    QByteArray,
    QEvent,
    QItemSelectionModel,
    QModelIndex,
    QObject,
    QPoint,
    Qt,
    Signal,
)
from PySide6.QtGui import QAction, QGuiApplication, QKeyEvent, QKeySequence, QPalette
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QLabel, QMenu, QTableView, QWidget

from nvadmin.query import fields
from nvadmin.query.paging import EventRow, Sort
from nvadmin.ui.activity_model import (
    COLUMN_TITLES,
    COLUMNS,
    HIDDEN_BY_DEFAULT,
    SORT_KEY_OF,
    WIDTH_SAMPLES,
    ActivityModel,
    EventRole,
    FilterValueRole,
    column_of,
)
from nvadmin.ui.browser.state import BrowserState

# Rows from the window's edge at which the next page is requested, so scrolling never waits.
PREFETCH_ROWS = 60
# The columns the table had before saved layouts recorded how many they knew.
FIRST_COLUMN_COUNT = 12
# The team member column gives up width first when the table is narrow: its names are cut
# with "…" anyway, and this much of one still tells people apart.
MEMBER_FLOOR_SAMPLE = "Dr. Ingrid Silva <i"


def _order(descending: bool) -> Qt.SortOrder:
    return Qt.SortOrder.DescendingOrder if descending else Qt.SortOrder.AscendingOrder


class BrowserTable(QObject):
    """Drives the table view over the activity model for the window.

    ``filter_by_value(field, value, negate)``, ``user_search(email, name)`` and
    ``patient_search(patient)`` come from the cell menu; ``status(text)`` is a line for the
    status bar.
    """

    filter_by_value = Signal(str, str, bool)
    user_search = Signal(object, str)
    patient_search = Signal(str)
    status = Signal(str)

    def __init__(self, model: ActivityModel, state: BrowserState, parent: QWidget) -> None:
        super().__init__(parent)
        self.model = model
        self.state = state
        self.view = QTableView(parent)
        self.overlay = QLabel(self.view.viewport())
        self.copy_action = QAction("&Copy rows", parent)
        # The width the team member column has when there is room for it (the default, a
        # restored layout's or the user's own); narrower only while the table is narrow.
        self.member_width = 0
        self._fitting = False
        self._build()
        self._connect()

    # -- building --------------------------------------------------------------------------------

    def _build(self) -> None:
        table = self.view
        table.setObjectName("activityTable")
        table.setAccessibleName("Activity events")
        table.setModel(self.model)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        # Per item: the window's keep-your-place arithmetic counts rows, not pixels.
        table.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerItem)
        table.setAlternatingRowColors(True)
        table.setWordWrap(False)
        table.verticalHeader().hide()
        table.verticalHeader().setDefaultSectionSize(24)
        table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header = table.horizontalHeader()
        header.setSectionsMovable(True)
        header.setStretchLastSection(True)
        header.setSortIndicatorShown(True)
        header.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        metrics = table.fontMetrics()
        for column, sample in WIDTH_SAMPLES.items():
            table.setColumnWidth(column, metrics.horizontalAdvance(sample) + metrics.height())
        self.member_width = table.columnWidth(column_of(fields.NAME))
        for column in HIDDEN_BY_DEFAULT:
            table.setColumnHidden(column, True)
        self._fit_time_header()
        header.setSortIndicator(column_of(fields.TIME), Qt.SortOrder.DescendingOrder)

        overlay = self.overlay
        overlay.setAlignment(Qt.AlignmentFlag.AlignCenter)
        overlay.setWordWrap(True)
        # Secondary text from the palette, so it reads on light and dark themes alike.
        overlay.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        font = overlay.font()
        font.setPointSize(14)
        overlay.setFont(font)
        overlay.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        overlay.raise_()

        self.copy_action.setShortcut(QKeySequence.StandardKey.Copy)
        self.copy_action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.copy_action.triggered.connect(self.copy_selection)
        table.addAction(self.copy_action)

    def _fit_time_header(self, *_changed: object) -> None:
        """Widen the time column to its title, which names the zone ("Time (America/Los_
        Angeles)"), and the sort arrow beside it: never narrowed, so a width the user set
        stays when the zone name is shorter."""
        table, column = self.view, column_of(fields.TIME)
        title = str(self.model.headerData(column, Qt.Orientation.Horizontal))
        metrics = table.horizontalHeader().fontMetrics()
        needed = metrics.horizontalAdvance(title) + 3 * metrics.height()  # margins and arrow
        if table.columnWidth(column) < needed:
            table.setColumnWidth(column, needed)
            self.fit_columns()

    def _connect(self) -> None:
        model, table = self.model, self.view
        header = table.horizontalHeader()
        model.headerDataChanged.connect(self._fit_time_header)
        header.customContextMenuRequested.connect(self._column_menu_at)
        header.sortIndicatorChanged.connect(self._on_sort_indicator)
        table.installEventFilter(self)
        # The viewport narrows when the rows' scroll bar appears, not only with the window.
        table.viewport().installEventFilter(self)
        header.sectionResized.connect(self._on_section_resized)
        table.customContextMenuRequested.connect(self._cell_menu_at)
        table.verticalScrollBar().valueChanged.connect(self._on_scrolled)
        model.rows_prepended.connect(self._keep_place_after_prepend)
        model.rows_trimmed_top.connect(self._keep_place_after_trim)
        model.jumped.connect(self.select_row)
        for signal in (model.modelReset, model.rowsInserted):
            signal.connect(self.update_overlay)
            signal.connect(self.ensure_current_row)
        for value_signal in (
            model.loading_changed,
            model.rows_shown,
            model.count_changed,
            model.failed,
        ):
            value_signal.connect(self.update_overlay)

    # -- header state (sort indicator, saved layout) --------------------------------------------

    def show_sort(self, sort: Sort) -> None:
        """The header's indicator on ``sort`` without sorting again."""
        column = next(c for c, k in SORT_KEY_OF.items() if k == sort.key)
        header = self.view.horizontalHeader()
        header.blockSignals(True)
        header.setSortIndicator(column, _order(sort.descending))
        header.blockSignals(False)

    def restore_header(self, saved: QByteArray, saved_columns: int) -> Sort | None:
        """Columns, widths and order as saved (``saved_columns`` is how many columns the
        table had then); the sort the saved indicator shows."""
        header = self.view.horizontalHeader()
        header.blockSignals(True)
        header.restoreState(saved)
        header.blockSignals(False)
        # Columns added since the layout was saved start as new users see them.
        for column in HIDDEN_BY_DEFAULT:
            if column >= saved_columns:
                header.setSectionHidden(column, True)
        self.member_width = header.sectionSize(column_of(fields.NAME))
        self.fit_columns()
        key = SORT_KEY_OF.get(header.sortIndicatorSection())
        if key is None:
            return None
        return Sort(key, header.sortIndicatorOrder() == Qt.SortOrder.DescendingOrder)

    def _on_sort_indicator(self, section: int, order: Qt.SortOrder) -> None:
        if section not in SORT_KEY_OF:
            # E.g. details cannot be sorted: put the indicator back where the data really is.
            self.show_sort(self.state.sort)
            title = str(self.model.headerData(section, Qt.Orientation.Horizontal))
            self.status.emit(f"The {title.lower()} column cannot be sorted.")
            return
        self.model.sort(section, order)
        self.state.sort = self.model.sort_order

    def set_workspace_column(self) -> None:
        workspace_column = column_of(fields.WORKSPACE)
        hidden = self.state.workspace_column(self.view.isColumnHidden(workspace_column))
        if hidden is not None:
            self.view.setColumnHidden(workspace_column, hidden)

    # -- the message over an empty table -------------------------------------------------------

    def update_overlay(self, *_args: object) -> None:
        if self.state.locked:
            self.overlay_text("Locked. Unlock to see the activity log again.")
        elif self.model.rowCount() > 0:
            self.overlay.hide()
        elif self.model.error:
            self.overlay_text("The events could not be loaded. See the message above.")
        elif self.model.loading or self.model.event_filter is None:
            self.overlay_text("Loading…")
        else:
            self.overlay_text("No events match these filters.")

    def overlay_text(self, text: str) -> None:
        if self.model.rowCount() > 0 and not self.state.locked:
            self.overlay.hide()
            return
        self.overlay.setText(text)
        self.overlay.setGeometry(self.view.viewport().rect())
        self.overlay.show()

    # -- current row, scrolling and jumps ------------------------------------------------------

    def focus(self, *_args: object) -> None:
        """Keyboard focus on the table, at its current row (the first row if none)."""
        self.view.setFocus(Qt.FocusReason.OtherFocusReason)
        self.ensure_current_row()

    def ensure_current_row(self, *_args: object) -> None:
        table = self.view
        if table.currentIndex().isValid() or self.model.rowCount() == 0:
            return
        if table.window().focusWidget() is not table:
            return
        table.setCurrentIndex(self._row_index(0))

    def _row_index(self, row: int) -> QModelIndex:
        """``row``'s cell in the leftmost column shown (where the keyboard starts)."""
        column = self.view.horizontalHeader().logicalIndex(0)
        return self.model.index(row, max(0, column))

    def current_event(self) -> EventRow | None:
        index = self.view.currentIndex()
        return self.model.data(index, EventRole) if index.isValid() else None

    def _on_scrolled(self, value: int) -> None:
        bar = self.view.verticalScrollBar()
        if value <= PREFETCH_ROWS:
            self.model.fetch_before()
        if value >= bar.maximum() - PREFETCH_ROWS:
            self.model.fetch_after()

    def _keep_place_after_prepend(self, count: int) -> None:
        bar = self.view.verticalScrollBar()
        top = bar.value()
        # The view lays out inserted rows later: until then the scroll range is the old one
        # and the new value would be clamped, leaving the view mid-way through the rows.
        self.view.executeDelayedItemsLayout()
        bar.setValue(top + count)

    def _keep_place_after_trim(self, count: int) -> None:
        bar = self.view.verticalScrollBar()
        bar.setValue(max(0, bar.value() - count))

    def select_row(self, row: int) -> None:
        """``row`` alone selected and current (the detail pane and Ctrl+C follow it), in view."""
        index = self._row_index(row)
        # Not view.setCurrentIndex: it reads the modifiers held when the page arrives (the
        # Ctrl of Ctrl+End) and would toggle the row into the old selection.
        flags = QItemSelectionModel.SelectionFlag
        self.view.selectionModel().setCurrentIndex(index, flags.ClearAndSelect | flags.Rows)
        self.view.scrollTo(index, QAbstractItemView.ScrollHint.PositionAtCenter)
        self.view.setFocus(Qt.FocusReason.OtherFocusReason)

    def jump_to_end(self) -> None:
        if self.model.at_end and self.model.rowCount():
            self.select_row(self.model.rowCount() - 1)
        else:
            self.model.jump_to_end()

    def jump_to_start(self) -> None:
        if self.model.at_start and self.model.rowCount():
            self.select_row(0)
        else:
            self.model.jump_to_start()

    def go_to_time(self, instant: datetime) -> None:
        """Rows around the first event at or after ``instant``, in time order."""
        if self.state.sort.key != "time":
            self.state.sort = Sort("time", self.state.sort.descending)
            self.show_sort(self.state.sort)
        self.model.go_to_time(instant)

    # -- selection and copy ----------------------------------------------------------------------

    def selected_rows(self) -> list[int]:
        return sorted({index.row() for index in self.view.selectionModel().selectedRows()})

    def visible_columns(self) -> list[int]:
        header = self.view.horizontalHeader()
        logical = [header.logicalIndex(v) for v in range(header.count())]
        return [c for c in logical if not header.isSectionHidden(c)]

    def selection_as_text(self) -> str:
        """The selected rows as tab-separated text with a header line (visible columns, in
        the order shown)."""
        columns = self.visible_columns()
        lines = [
            "\t".join(str(self.model.headerData(c, Qt.Orientation.Horizontal)) for c in columns)
        ]
        for row in self.selected_rows():
            cells = []
            for column in columns:
                value = self.model.data(self.model.index(row, column)) or ""
                cells.append(str(value).replace("\t", " ").replace("\n", " "))
            lines.append("\t".join(cells))
        return "\n".join(lines) + "\n"

    def copy_selection(self) -> None:
        if not self.selected_rows():
            return
        QGuiApplication.clipboard().setText(self.selection_as_text())
        self.status.emit(f"Copied {len(self.selected_rows())} row(s).")

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.view and event.type() == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            if event.matches(QKeySequence.StandardKey.Copy):
                self.copy_selection()
                return True
            ctrl = event.modifiers() & Qt.KeyboardModifier.ControlModifier
            if ctrl and event.key() == Qt.Key.Key_End:
                self.jump_to_end()
                return True
            if ctrl and event.key() == Qt.Key.Key_Home:
                self.jump_to_start()
                return True
        if event.type() == QEvent.Type.Resize and watched is self.view:
            self.fit_overlay()
        if event.type() == QEvent.Type.Resize and watched is self.view.viewport():
            self.fit_columns()
        return super().eventFilter(watched, event)

    # -- columns whole on screen -----------------------------------------------------------------

    def fit_columns(self) -> None:
        """Every column but the stretched last one whole on screen, never under the rows'
        scroll bar. The team member column gives up width (down to a floor) when the
        viewport is too narrow for them, and gets it back when it is not. When the last
        column has too little room left to be read it is left wholly past the edge (scroll
        sideways to it) rather than shown as a sliver of cut-off text against the scroll
        bar: the team member column takes that room. Columns the user adds may still need
        scrolling sideways."""
        header = self.view.horizontalHeader()
        member = column_of(fields.NAME)
        if header.isSectionHidden(member) or not self.member_width:
            return
        shown = [header.logicalIndex(v) for v in range(header.count())]
        shown = [c for c in shown if not header.isSectionHidden(c)]
        if len(shown) < 2 or member == shown[-1] or not header.stretchLastSection():
            return
        last = shown[-1]
        others = sum(header.sectionSize(c) for c in shown[:-1] if c != member)
        room = self.view.viewport().width() - others
        width = self.member_width
        if room - width < self.readable_width(last):
            metrics = self.view.fontMetrics()
            floor = metrics.horizontalAdvance(MEMBER_FLOOR_SAMPLE) + metrics.height()
            width = max(room, min(floor, self.member_width))
        if width != header.sectionSize(member):
            self._fitting = True
            try:
                header.resizeSection(member, width)
            finally:
                self._fitting = False

    def readable_width(self, column: int) -> int:
        """The least width at which ``column`` shows something worth reading: its sample
        text, or else its title beside the sort arrow."""
        metrics = self.view.fontMetrics()
        sample = WIDTH_SAMPLES.get(column)
        if sample is not None:
            return metrics.horizontalAdvance(sample) + metrics.height()
        title = str(self.model.headerData(column, Qt.Orientation.Horizontal))
        return metrics.horizontalAdvance(title) + 3 * metrics.height()

    def _on_section_resized(self, section: int, old: int, new: int) -> None:
        if self._fitting:
            return
        if section == column_of(fields.NAME):
            if new > 0:
                self.member_width = new  # the user's own width, or the column shown again
        elif old == 0 or new == 0:
            self.fit_columns()  # a column shown or hidden

    def fit_overlay(self) -> None:
        self.overlay.setGeometry(self.view.viewport().rect())

    # -- context menus ------------------------------------------------------------------------

    def _cell_menu_at(self, position: QPoint) -> None:
        index = self.view.indexAt(position)
        if not index.isValid():
            return
        menu = self.cell_menu(index)
        menu.exec(self.view.viewport().mapToGlobal(position))

    def cell_menu(self, index: QModelIndex) -> QMenu:
        menu = QMenu(self.view)
        pair = self.model.data(index, FilterValueRole)
        filter_action = menu.addAction("Filter by this value")
        exclude_action = menu.addAction("Exclude this value")
        if pair is None:
            filter_action.setEnabled(False)
            exclude_action.setEnabled(False)
        else:
            field, value = pair
            filter_action.triggered.connect(lambda: self.filter_by_value.emit(field, value, False))
            exclude_action.triggered.connect(lambda: self.filter_by_value.emit(field, value, True))
        copy_cell = menu.addAction("Copy")
        text = str(self.model.data(index) or "")
        copy_cell.triggered.connect(lambda: QGuiApplication.clipboard().setText(text))
        menu.addAction(self.copy_action)
        menu.addSeparator()
        event = self.model.data(index, EventRole)
        if event is not None:
            user = menu.addAction("Everything this user did")
            user.triggered.connect(
                lambda: self.user_search.emit(event.actor_email, event.actor_name)
            )
            if event.patient_id:
                patient = menu.addAction("Who accessed this patient")
                patient.triggered.connect(lambda: self.patient_search.emit(event.patient_id))
        return menu

    def _column_menu_at(self, position: QPoint) -> None:
        menu = QMenu(self.view)
        self.fill_column_menu(menu)
        menu.exec(self.view.horizontalHeader().mapToGlobal(position))

    def fill_column_menu(self, menu: QMenu) -> None:
        menu.clear()
        for column in range(len(COLUMNS)):
            title = str(self.model.headerData(column, Qt.Orientation.Horizontal))
            act = menu.addAction(title or COLUMN_TITLES[column])
            act.setCheckable(True)
            act.setChecked(not self.view.isColumnHidden(column))
            act.toggled.connect(lambda checked, c=column: self.view.setColumnHidden(c, not checked))
