"""The main window: the activity browser over every event of a workspace (or all of them).

Other features (exports, reports, case files, staff management...) add their menus and docks
through :func:`nvadmin.ui.features.install_all`, using only the public methods below.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from PySide6.QtCore import (
    QChildEvent,
    QEvent,
    QModelIndex,
    QObject,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QGuiApplication,
    QKeyEvent,
    QKeySequence,
    QPalette,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from nvadmin.audit import fields
from nvadmin.audit.localtime import parse_moment
from nvadmin.audit.paging import EventCount, Sort, authorize
from nvadmin.audit.query import EventFilter, Term
from nvadmin.audit.search import Search, SearchError, format_search, parse
from nvadmin.audit.taxonomy import Category
from nvadmin.audit.workspaces import (
    MemberInfo,
    WorkspaceInfo,
    list_workspaces,
    member_suggestions,
)
from nvadmin.auth.roles import Permission, StaffIdentity
from nvadmin.context import Context
from nvadmin.errors import AccessDenied
from nvadmin.ui import features
from nvadmin.ui import settings as keys
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
from nvadmin.ui.detail_pane import DetailPane
from nvadmin.ui.filter_bar import FilterBar
from nvadmin.ui.palette import Theme, apply_theme, current_theme, set_tone
from nvadmin.ui.placement import fit_on_screen
from nvadmin.ui.saved_searches import SavedSearch, SavedSearchStore
from nvadmin.ui.settings import UiSettings
from nvadmin.ui.workspace_picker import WorkspacePicker
from nvadmin.workers.jobs import Job

log = logging.getLogger(__name__)

# Rows from the window's edge at which the next page is requested, so scrolling never waits.
PREFETCH_ROWS = 60
SEARCH_NOT_RUN = "Search not run: "
# The columns the table had before saved layouts recorded how many they knew.
_FIRST_COLUMN_COUNT = 12
_FOCUS_BACK = "nvadminFocusBack"  # set on a dialog once its closing gives focus to the table


@dataclass(frozen=True, slots=True)
class RunningWork:
    """Long work a feature runs for the window (an export, a verification, a case file being
    built) that closing the window or signing out would lose."""

    noun: str  # "export", "verification", "case file"
    job: Job


WorkSource = Callable[[], Iterable[RunningWork]]


def describe_work(work: list[RunningWork]) -> str:
    """``2 exports and 1 verification``."""
    counts: dict[str, int] = {}
    for item in work:
        counts[item.noun] = counts.get(item.noun, 0) + 1
    parts = [f"{n} {noun}{'s' if n != 1 else ''}" for noun, n in counts.items()]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


class WindowShortcuts(QObject):
    """Keeps the window's own shortcuts (Ctrl+E, Ctrl+G, Ctrl+F, F5, Ctrl+L...) working
    whatever widget has focus.

    A focused line edit claims some keys for itself before any shortcut sees them (on X11,
    Ctrl+E moves to the end of the line, so Ctrl+E in the workspace picker exported nothing).
    Each widget of the window that takes focus gets this filter, which hands the keys of the
    window's actions back to the window.
    """

    def __init__(self, window: QMainWindow) -> None:
        super().__init__(window)
        self._window = window
        app = QApplication.instance()
        if isinstance(app, QApplication):
            app.focusChanged.connect(self._on_focus_changed)

    def keys(self) -> set[str]:
        found: set[str] = set()
        for act in self._window.findChildren(QAction):
            if act.isEnabled() and act.shortcutContext() in (
                Qt.ShortcutContext.WindowShortcut,
                Qt.ShortcutContext.ApplicationShortcut,
            ):
                found.update(s.toString() for s in act.shortcuts() if not s.isEmpty())
        return found

    def _on_focus_changed(self, _old: QWidget | None, new: QWidget | None) -> None:
        if new is not None and new.window() is self._window:
            new.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent):
            pressed = QKeySequence(event.keyCombination()).toString()
            if pressed and pressed in self.keys():
                event.ignore()  # not the widget's: the shortcut goes to the window's action
                return True
        return False


class MainWindow(QMainWindow):
    signed_out = Signal()
    lock_requested = Signal()

    def __init__(self, context: Context, identity: StaffIdentity, parent: QWidget | None = None):
        super().__init__(parent)
        self.context = context
        self.identity = identity
        self.settings = UiSettings(context.paths.settings_file, account=identity.email)
        self.saved_searches = SavedSearchStore(self.settings)
        self._locked = False
        self._last_logged: tuple[tuple[int, ...], Search] | None = None
        self._pending_filter: EventFilter | None = None
        self._workspaces_loaded = False
        self._member_job: Job | None = None
        self._extra_workspaces: tuple[int, ...] = ()
        self._work_sources: list[WorkSource] = []
        self.stop_work_box: QMessageBox | None = None
        self._docks_before_lock: list[QDockWidget] = []
        self.go_to_time_dialog: GoToTimeDialog | None = None
        self._workspace_column_shown_for_several = False
        self.setWindowTitle(f"nvadmin — {context.display_url}")
        self.setObjectName("mainWindow")

        # Menus first, in the order other features rely on.
        bar = self.menuBar()
        self.file_menu = bar.addMenu("&File")
        self.view_menu = bar.addMenu("&View")
        self.tools_menu = bar.addMenu("&Tools")
        self.account_menu = bar.addMenu("&Account")
        self.help_menu = bar.addMenu("&Help")

        self.model = ActivityModel(self)
        self.model.set_source(context.engine, identity)
        self.picker = WorkspacePicker(self)
        self.filter_bar = FilterBar(self)
        self.table = QTableView(self)
        self.detail = DetailPane(self)
        self.banner = QLabel(self)
        self.banner_retry = QPushButton("Retry", self)
        self.overlay = QLabel(self.table.viewport())
        self._build_layout()
        self._build_table()
        self._build_actions()
        self._build_status_bar()
        self._connect()
        self._restore_layout()
        features.install_all(self)
        self.shortcuts = WindowShortcuts(self)
        # Keyboard work starts in the table (not in the first field of the tab order).
        self.table.setFocus(Qt.FocusReason.OtherFocusReason)
        QTimer.singleShot(0, self._load_workspaces)

    # -- public API --------------------------------------------------------------------------

    def current_filter(self) -> EventFilter:
        """The filter the table shows (workspace ids included)."""
        if self.model.event_filter is not None:
            return self.model.event_filter
        return self.filter_bar.search().to_filter(self._workspace_ids())

    def apply_filter(self, f: EventFilter) -> None:
        """Set the picker, widgets and search bar from ``f`` and run it."""
        if not self._workspaces_loaded:
            self._pending_filter = f
            return
        if not f.workspace_ids:
            if not self.identity.can(Permission.ALL_WORKSPACES):
                self.show_message("Only admins may browse all workspaces at once.", error=True)
                return
            self.picker.select(None)
        else:
            workspace = self.picker.workspace_by_id(f.workspace_ids[0])
            if workspace is None:
                self.show_message(
                    f"Workspace {f.workspace_ids[0]} does not exist in this database.", error=True
                )
                return
            self.picker.select(workspace)
        self._extra_workspaces = tuple(f.workspace_ids)
        self._apply_zone()
        self.filter_bar.set_search(Search.from_filter(f))
        self._run()

    def current_workspace(self) -> WorkspaceInfo | None:
        return self.picker.current()

    def display_zone(self) -> ZoneInfo:
        if self.utc_action.isChecked():
            return ZoneInfo("UTC")
        workspace = self.picker.current()
        if workspace is None:
            return ZoneInfo("UTC")
        try:
            return ZoneInfo(workspace.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("unknown time zone %r for workspace %s", workspace.timezone, workspace.id)
            return ZoneInfo("UTC")

    def show_message(self, text: str, *, error: bool = False) -> None:
        """One line in the banner (errors) or the status bar; never a traceback."""
        text = " ".join(str(text).split())
        if error:
            self.banner.setText(text)
            self.banner.show()
            self.banner_retry.show()
            self.statusBar().showMessage(text, 10_000)
            log.info("shown to user: %s", text)
        else:
            self.statusBar().showMessage(text, 8_000)

    def set_locked(self, locked: bool) -> None:
        self._locked = locked
        if locked:
            self.model.clear()
            self.detail.clear()
            self.filter_bar.hide()
            self.picker.hide()
            self.banner.hide()
            self.banner_retry.hide()
            self.count_label.setText("")
            self.time_label.setText("")
            # Docks (the exports list names files and tickets) leave the screen too.
            if not self._docks_before_lock:
                self._docks_before_lock = [d for d in self._docks() if d.isVisible()]
            for dock in self._docks_before_lock:
                dock.hide()
            self._update_overlay()
        else:
            self.filter_bar.show()
            self.picker.show()
            for dock in self._docks_before_lock:
                dock.show()
            self._docks_before_lock = []
            self.focus_table()
            if self._workspaces_loaded:
                self._run(log_view=True)

    def childEvent(self, event: QChildEvent) -> None:
        super().childEvent(event)
        # Every dialog of this window hands the keyboard back to the table when it closes.
        # Only a polished child is touched: one being added is still under construction and
        # one being removed may be half destroyed.
        if event.type() != QEvent.Type.ChildPolished:
            return
        child = event.child()
        if isinstance(child, QDialog) and not child.property(_FOCUS_BACK):
            child.setProperty(_FOCUS_BACK, True)
            child.finished.connect(self.focus_table)

    def _docks(self) -> list[QDockWidget]:
        return list(self.findChildren(QDockWidget))

    def focus_table(self, *_args: object) -> None:
        """Keyboard focus on the table, at its current row (the first row if none)."""
        self.table.setFocus(Qt.FocusReason.OtherFocusReason)
        self._ensure_current_row()

    def _ensure_current_row(self, *_args: object) -> None:
        if self.table.currentIndex().isValid() or self.model.rowCount() == 0:
            return
        if self.focusWidget() is not self.table:
            return
        column = self.table.horizontalHeader().logicalIndex(0)
        self.table.setCurrentIndex(self.model.index(0, max(0, column)))

    # -- long work that closing would lose ---------------------------------------------------

    def add_work_source(self, source: WorkSource) -> None:
        """``source()`` lists a feature's running work; closing or signing out asks first."""
        self._work_sources.append(source)

    def running_work(self) -> list[RunningWork]:
        return [w for source in self._work_sources for w in source() if w.job.running]

    def stop_work_first(self, verb: str, then: Callable[[], object]) -> bool:
        """True when nothing runs, so the caller may ``verb`` ("quit", "sign out") now.

        Otherwise asks "N exports running — wait / cancel them and quit" and returns False:
        Wait (and Esc) keeps the window open and lets the work finish; cancelling stops the
        work and calls ``then`` once every job has ended, so nothing is cut off half-written.
        """
        work = self.running_work()
        if not work:
            return True
        if self.stop_work_box is not None:
            self.stop_work_box.raise_()
            return False
        running = describe_work(work)
        parent = QApplication.activeModalWidget() or self
        box = QMessageBox(parent)
        box.setObjectName("stopWorkBox")
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Work still running")
        box.setText(f"{running} running")
        box.setInformativeText(
            f"Wait keeps nvadmin open until the work is done. Cancelling leaves no partial "
            f"files behind. If the work is done before you answer, nvadmin goes on to {verb}."
        )
        wait = box.addButton("&Wait", QMessageBox.ButtonRole.RejectRole)
        stop = box.addButton(f"&Cancel them and {verb}", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(wait)
        box.setEscapeButton(wait)
        self.stop_work_box = box

        def answered() -> None:
            self.stop_work_box = None
            box.deleteLater()
            if box.clickedButton() is stop:
                self._cancel_work_then(then)
            else:
                self.show_message(f"{running} still running; nothing was stopped.")

        def one_ended() -> None:
            # Nothing left to lose: do what was asked without waiting for an answer.
            if self.stop_work_box is box and not self.running_work():
                box.finished.disconnect(answered)
                self.stop_work_box = None
                box.done(0)
                box.deleteLater()
                then()

        for item in work:
            # Queued after the job's own bookkeeping, so ``running`` is already False here.
            item.job.finished.connect(one_ended, Qt.ConnectionType.QueuedConnection)
        # A job that ended just before these connections still has its bookkeeping queued.
        QTimer.singleShot(0, one_ended)
        box.finished.connect(answered)
        box.open()
        return False

    def _cancel_work_then(self, then: Callable[[], object]) -> None:
        work = self.running_work()
        if not work:
            then()
            return
        self.show_message(f"Cancelling {describe_work(work)}…")
        pending = [then]  # emptied by the first call that finds nothing running

        def one_ended() -> None:
            if pending and not self.running_work():
                pending.pop()()

        for item in work:
            # Queued after the job's own bookkeeping, so ``running`` is already False here.
            item.job.finished.connect(one_ended, Qt.ConnectionType.QueuedConnection)
            item.job.cancel()
        QTimer.singleShot(0, one_ended)

    def refresh(self) -> None:
        if self._locked:
            return
        if self.model.event_filter is None:
            self._run()
        else:
            self._hide_banner()
            self.model.refresh()

    # -- building ----------------------------------------------------------------------------

    def _build_layout(self) -> None:
        self.banner.setObjectName("banner")
        set_tone(self.banner, "error-box")
        self.banner.setWordWrap(True)
        self.banner.hide()
        self.banner_retry.hide()
        self.banner_retry.clicked.connect(self.refresh)
        self.overlay.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.overlay.setWordWrap(True)
        # Secondary text from the palette, so it reads on light and dark themes alike.
        self.overlay.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        overlay_font = self.overlay.font()
        overlay_font.setPointSize(14)
        self.overlay.setFont(overlay_font)
        self.overlay.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)

        top = QHBoxLayout()
        picker_label = QLabel("&Workspace:", self)
        picker_label.setBuddy(self.picker)  # Alt+W: the keyboard's way to the picker
        top.addWidget(picker_label)
        top.addWidget(self.picker)
        self.presets_button = QPushButton("Presets", self)
        self.saved_button = QPushButton("Saved searches", self)
        top.addWidget(self.presets_button)
        top.addWidget(self.saved_button)
        top.addStretch(1)
        banner_row = QHBoxLayout()
        banner_row.addWidget(self.banner, 1)
        banner_row.addWidget(self.banner_retry)

        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setObjectName("browserSplitter")
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(self.detail)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([1000, 340])

        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 0)
        layout.addLayout(top)
        layout.addWidget(self.filter_bar)
        layout.addLayout(banner_row)
        layout.addWidget(self.splitter, 1)
        self.setCentralWidget(central)
        self.picker.setAccessibleName("Workspace")
        self.table.setAccessibleName("Activity events")
        # Tab follows reading order: the top row, the filters, then the table and its pane.
        bar = self.filter_bar
        order: list[QWidget] = [
            self.picker,
            self.presets_button,
            self.saved_button,
            bar.search_edit,
            bar.range_box,
            bar.members_edit,
            bar.category_button,
            *bar.choice_boxes.values(),
            bar.from_date,
            bar.to_date,
            *bar.line_edits.values(),
            bar.text_edit,
            bar.log_access_box,
            self.banner_retry,
            self.table,
            self.detail.copy_button,
            self.detail.text,
        ]
        for before, after in itertools.pairwise(order):
            QWidget.setTabOrder(before, after)

    def _build_table(self) -> None:
        table = self.table
        table.setObjectName("activityTable")
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
        header.customContextMenuRequested.connect(self._column_menu_at)
        metrics = table.fontMetrics()
        for column, sample in WIDTH_SAMPLES.items():
            table.setColumnWidth(column, metrics.horizontalAdvance(sample) + metrics.height())
        for column in HIDDEN_BY_DEFAULT:
            table.setColumnHidden(column, True)
        header.setSortIndicator(column_of(fields.TIME), Qt.SortOrder.DescendingOrder)
        header.sortIndicatorChanged.connect(self._on_sort_indicator)
        table.installEventFilter(self)
        self.overlay.raise_()

    def _build_actions(self) -> None:
        def action(text: str, slot, shortcut=None, menu: QMenu | None = None) -> QAction:  # type: ignore[no-untyped-def]
            act = QAction(text, self)
            if shortcut is not None:
                act.setShortcut(shortcut)
            act.triggered.connect(slot)
            (menu or self.view_menu).addAction(act)
            return act

        self.find_action = action("&Find…", self.focus_search, QKeySequence.StandardKey.Find)
        self.refresh_action = action("&Refresh", self.refresh, QKeySequence.StandardKey.Refresh)
        self.view_menu.addSeparator()
        self.go_to_time_action = action("&Go to time…", self.ask_go_to_time, "Ctrl+G")
        self.jump_start_action = action("Jump to &newest/first", self.jump_to_start, "Ctrl+Home")
        self.jump_end_action = action("Jump to the &end", self.jump_to_end, "Ctrl+End")
        for act in (self.jump_start_action, self.jump_end_action):
            # The table handles these keys itself (see eventFilter); the menu shows them.
            act.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.view_menu.addSeparator()
        self.utc_action = QAction("Show times in &UTC", self)
        self.utc_action.setCheckable(True)
        self.utc_action.setChecked(self.settings.flag(keys.TIMES_IN_UTC))
        self.utc_action.toggled.connect(self._on_utc_toggled)
        self.view_menu.addAction(self.utc_action)
        self.detail_action = QAction("Show &detail pane", self)
        self.detail_action.setCheckable(True)
        self.detail_action.setChecked(True)
        self.detail_action.toggled.connect(self.detail.setVisible)
        self.view_menu.addAction(self.detail_action)
        self.theme_menu = self.view_menu.addMenu("&Theme")
        self.theme_actions: dict[Theme, QAction] = {}
        themes = QActionGroup(self)
        for theme in Theme:
            act = self.theme_menu.addAction(theme.label)
            act.setCheckable(True)
            act.setChecked(theme is current_theme())
            act.triggered.connect(lambda _checked=False, t=theme: self.set_theme(t))
            themes.addAction(act)
            self.theme_actions[theme] = act
        self.columns_menu = self.view_menu.addMenu("&Columns")
        self.columns_menu.aboutToShow.connect(lambda: self._fill_column_menu(self.columns_menu))
        self.copy_action = QAction("&Copy rows", self)
        self.copy_action.setShortcut(QKeySequence.StandardKey.Copy)
        self.copy_action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.copy_action.triggered.connect(self.copy_selection)
        self.table.addAction(self.copy_action)

        self.presets_menu = QMenu("&Presets", self)
        for text, slot in (
            ("Failed sign-ins, last 24 h", self.preset_failed_sign_ins),
            ("Everything this user did", self.preset_user),
            ("Who accessed this patient", self.preset_patient),
            ("Activity log access", self.preset_log_access),
            ("Clear all filters", self.filter_bar.clear),
        ):
            self.presets_menu.addAction(text).triggered.connect(slot)
        self.presets_button.setMenu(self.presets_menu)
        self.view_menu.addMenu(self.presets_menu)
        self.saved_menu = QMenu("&Saved searches", self)
        self.saved_menu.aboutToShow.connect(self._fill_saved_menu)
        self.saved_button.setMenu(self.saved_menu)
        self.view_menu.addMenu(self.saved_menu)

        self.lock_action = action("&Lock", self.lock_requested.emit, "Ctrl+L", self.account_menu)
        self.sign_out_action = action("Sign &out", self.signed_out.emit, None, self.account_menu)
        self.quit_action = action(
            "&Quit", self.close, QKeySequence.StandardKey.Quit, self.file_menu
        )
        self.about_action = action("&About the activity browser", self._about, None, self.help_menu)

    def _build_status_bar(self) -> None:
        status = self.statusBar()
        self.count_label = QLabel("", self)
        self.time_label = QLabel("", self)
        self.identity_label = QLabel(f"{self.identity.display_name} ({self.identity.role})", self)
        status.addPermanentWidget(self.count_label)
        status.addPermanentWidget(self.time_label)
        status.addPermanentWidget(self.identity_label)

    def _connect(self) -> None:
        self.picker.workspace_changed.connect(self._on_workspace_changed)
        self.filter_bar.search_requested.connect(lambda _search: self._run())
        self.filter_bar.search_failed.connect(
            lambda message: self.statusBar().showMessage(f"{SEARCH_NOT_RUN}{message}", 8000)
        )
        self.filter_bar.members_edit.textEdited.connect(self._suggest_members)
        self.model.loading_changed.connect(self._on_loading)
        self.model.rows_shown.connect(self._on_rows_shown)
        self.model.count_changed.connect(self._on_count)
        self.model.failed.connect(self._on_failed)
        self.model.rows_prepended.connect(self._keep_place_after_prepend)
        self.model.rows_trimmed_top.connect(self._keep_place_after_trim)
        self.model.jumped.connect(self._on_jumped)
        self.model.modelReset.connect(self._update_overlay)
        self.model.rowsInserted.connect(self._update_overlay)
        self.model.modelReset.connect(self._ensure_current_row)
        self.model.rowsInserted.connect(self._ensure_current_row)
        self.table.verticalScrollBar().valueChanged.connect(self._on_scrolled)
        self.table.selectionModel().currentRowChanged.connect(self._on_current_row)
        self.table.customContextMenuRequested.connect(self._cell_menu_at)

    # -- layout persistence --------------------------------------------------------------------

    def _restore_layout(self) -> None:
        geometry = self.settings.bytes(keys.GEOMETRY)
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            fit_on_screen(self, QSize(1500, 900))
        state = self.settings.bytes(keys.WINDOW_STATE)
        if state is not None:
            self.restoreState(state)
        splitter = self.settings.bytes(keys.SPLITTER)
        if splitter is not None:
            self.splitter.restoreState(splitter)
        header = self.settings.bytes(keys.HEADER)
        if header is not None:
            header_view = self.table.horizontalHeader()
            header_view.blockSignals(True)
            header_view.restoreState(header)
            header_view.blockSignals(False)
            # Columns added since the layout was saved start as new users see them.
            for column in HIDDEN_BY_DEFAULT:
                if column >= self._saved_column_count():
                    header_view.setSectionHidden(column, True)
            key = SORT_KEY_OF.get(header_view.sortIndicatorSection())
            if key is not None:
                descending = header_view.sortIndicatorOrder() == Qt.SortOrder.DescendingOrder
                self.model._sort = Sort(key, descending)
        text = self.settings.text(keys.SEARCH_TEXT, "") or ""
        try:
            self.filter_bar.set_search(parse(text, self.filter_bar.zone()))
        except SearchError:
            log.info("ignoring the saved search text %r", text)

    def _saved_column_count(self) -> int:
        try:
            return int(self.settings.text(keys.HEADER_COLUMNS) or _FIRST_COLUMN_COUNT)
        except ValueError:
            return _FIRST_COLUMN_COUNT

    def save_layout(self) -> None:
        self.settings.set_bytes(keys.GEOMETRY, self.saveGeometry())
        self.settings.set_bytes(keys.WINDOW_STATE, self.saveState())
        self.settings.set_bytes(keys.SPLITTER, self.splitter.saveState())
        self.settings.set_bytes(keys.HEADER, self.table.horizontalHeader().saveState())
        self.settings.set_text(keys.HEADER_COLUMNS, str(len(COLUMNS)))
        self.settings.set_text(
            keys.SEARCH_TEXT, format_search(self.filter_bar.search(), self.display_zone())
        )
        if self.picker.has_choice():
            current = self.picker.current()
            self.settings.set_text(keys.WORKSPACE_ID, "" if current is None else str(current.id))
        self.settings.set_flag(keys.TIMES_IN_UTC, self.utc_action.isChecked())
        try:
            self.settings.sync()
        except OSError as error:
            log.warning("could not save the window layout: %s", error)

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.stop_work_first("quit", self.close):
            event.ignore()
            return
        self.save_layout()
        self.model.clear()
        super().closeEvent(event)

    # -- workspaces ------------------------------------------------------------------------------

    def _load_workspaces(self) -> None:
        engine, identity = self.context.engine, self.identity
        job = Job(
            lambda control: list_workspaces(engine, identity), name="list workspaces", parent=self
        )
        job.succeeded.connect(self._on_workspaces)
        job.failed.connect(self._on_workspaces_failed)
        self._overlay_text("Loading workspaces…")
        job.start()

    def _on_workspaces_failed(self, message: str) -> None:
        self.show_message(f"Cannot list the workspaces: {message}", error=True)
        self.banner_retry.clicked.disconnect()
        self.banner_retry.clicked.connect(self._retry_workspaces)
        self._overlay_text("The workspaces could not be loaded.")

    def _retry_workspaces(self) -> None:
        self.banner_retry.clicked.disconnect()
        self.banner_retry.clicked.connect(self.refresh)
        self._hide_banner()
        self._load_workspaces()

    def _on_workspaces(self, workspaces: list[WorkspaceInfo]) -> None:
        allow_all = self.identity.can(Permission.ALL_WORKSPACES)
        self.picker.set_workspaces(workspaces, allow_all=allow_all)
        self._workspaces_loaded = True
        if self._pending_filter is not None:
            pending, self._pending_filter = self._pending_filter, None
            self.apply_filter(pending)
            return
        saved = self.settings.text(keys.WORKSPACE_ID)
        choice: WorkspaceInfo | None = None
        chosen = False
        if saved == "" and allow_all:
            chosen = True
        elif saved:
            try:
                choice = self.picker.workspace_by_id(int(saved))
            except ValueError:
                choice = None
            chosen = choice is not None
        if not chosen:
            clinics = [w for w in workspaces if not w.is_system]
            if clinics:
                choice, chosen = clinics[0], True
            elif allow_all:
                chosen = True
        if not chosen:
            self._overlay_text("There is no workspace you may browse.")
            return
        self.picker.select(choice)
        self._apply_zone()
        if not self._locked:
            self._run()

    def _on_workspace_changed(self, _workspace: WorkspaceInfo | None) -> None:
        self._extra_workspaces = ()
        self._apply_zone()
        self._run()

    def _workspace_ids(self) -> tuple[int, ...]:
        extra = self._extra_workspaces
        current = self.picker.current()
        if len(extra) > 1 and current is not None and current.id in extra:
            return extra
        return () if current is None else (current.id,)

    def _apply_zone(self) -> None:
        zone = self.display_zone()
        names = {w.id: w.name for w in self.picker.workspaces}
        self.model.set_display(zone, names)
        self.filter_bar.set_zone(zone)
        # Several workspaces: show which one each event is from; back to one workspace, the
        # column goes again unless the staff member had shown it themselves.
        several = self.picker.current() is None or len(self._workspace_ids()) > 1
        workspace_column = column_of(fields.WORKSPACE)
        if several and self.table.isColumnHidden(workspace_column):
            self.table.setColumnHidden(workspace_column, False)
            self._workspace_column_shown_for_several = True
        elif not several and self._workspace_column_shown_for_several:
            self.table.setColumnHidden(workspace_column, True)
            self._workspace_column_shown_for_several = False
        self._show_detail()

    def _on_utc_toggled(self, _checked: bool) -> None:
        self._apply_zone()

    def _suggest_members(self, text: str) -> None:
        part = text.split(",")[-1].strip()
        if len(part) < 1:
            return
        engine, ids = self.context.engine, self._workspace_ids()
        if self._member_job is not None:
            self._member_job.cancel()
        job = Job(
            lambda control: member_suggestions(engine, ids, part), name="members", parent=self
        )
        job.succeeded.connect(self._on_members)
        self._member_job = job
        job.start()

    def _on_members(self, members: list[MemberInfo]) -> None:
        self.filter_bar.set_member_suggestions(members)

    # -- running queries ----------------------------------------------------------------------

    def _run(self, *, log_view: bool | None = None) -> None:
        """Run what the picker and filter bar say. The view is logged once per new filter."""
        if self._locked or not self._workspaces_loaded:
            return
        if not self.picker.has_choice():
            return
        search = self.filter_bar.search()
        ids = self._workspace_ids()
        try:
            event_filter = search.to_filter(ids)
            authorize(self.identity, event_filter)
        except AccessDenied as error:
            self.show_message(str(error), error=True)
            return
        except ValueError as error:
            self.show_message(str(error), error=True)
            return
        key = (ids, search)
        if log_view is None:
            log_view = key != self._last_logged
        log_view = log_view and not self.context.read_only  # a case file has no log to write
        self._last_logged = key
        self._hide_banner()
        if self.statusBar().currentMessage().startswith(SEARCH_NOT_RUN):
            self.statusBar().clearMessage()  # this search did run
        self.detail.clear()
        self.model.run(event_filter, log_view=log_view)

    def _hide_banner(self) -> None:
        self.banner.hide()
        self.banner_retry.hide()

    def _on_loading(self, loading: bool) -> None:
        if loading:
            self.time_label.setText("Loading…")
        elif self.time_label.text() == "Loading…":
            self.time_label.setText("")
        self._update_overlay()

    def _on_failed(self, message: str) -> None:
        self.time_label.setText("")
        if self.model.count is None:
            self.count_label.setText("")
        self.show_message(f"Could not load the events: {message}", error=True)
        self._update_overlay()

    def _on_rows_shown(self, shown: float, sql: float) -> None:
        self.time_label.setText(f"query {sql * 1000:.0f} ms, shown in {shown * 1000:.0f} ms")
        self._update_overlay()

    def _on_count(self, count: EventCount | None) -> None:
        if count is None:
            self.count_label.setText("counting…" if self.model.event_filter else "")
        else:
            self.count_label.setText(count.label())
        self._update_overlay()

    def _update_overlay(self, *_args: object) -> None:
        if self._locked:
            self._overlay_text("Locked. Unlock to see the activity log again.")
        elif self.model.rowCount() > 0:
            self.overlay.hide()
        elif self.model.error:
            self._overlay_text("The events could not be loaded. See the message above.")
        elif self.model.loading or self.model.event_filter is None:
            self._overlay_text("Loading…")
        else:
            self._overlay_text("No events match these filters.")

    def _overlay_text(self, text: str) -> None:
        if self.model.rowCount() > 0 and not self._locked:
            self.overlay.hide()
            return
        self.overlay.setText(text)
        self.overlay.setGeometry(self.table.viewport().rect())
        self.overlay.show()

    # -- scrolling and jumps ------------------------------------------------------------------

    def _on_scrolled(self, value: int) -> None:
        bar = self.table.verticalScrollBar()
        if value <= PREFETCH_ROWS:
            self.model.fetch_before()
        if value >= bar.maximum() - PREFETCH_ROWS:
            self.model.fetch_after()

    def _keep_place_after_prepend(self, count: int) -> None:
        bar = self.table.verticalScrollBar()
        bar.setValue(bar.value() + count)

    def _keep_place_after_trim(self, count: int) -> None:
        bar = self.table.verticalScrollBar()
        bar.setValue(max(0, bar.value() - count))

    def _on_jumped(self, row: int) -> None:
        index = self.model.index(row, 0)
        self.table.setCurrentIndex(index)
        self.table.scrollTo(index, QAbstractItemView.ScrollHint.PositionAtCenter)
        self.table.setFocus(Qt.FocusReason.OtherFocusReason)

    def jump_to_end(self) -> None:
        if self.model.at_end and self.model.rowCount():
            self._on_jumped(self.model.rowCount() - 1)
        else:
            self.model.jump_to_end()

    def jump_to_start(self) -> None:
        if self.model.at_start and self.model.rowCount():
            self._on_jumped(0)
        else:
            self.model.jump_to_start()

    def go_to_time(self, instant: datetime) -> None:
        if self.model.sort_order.key != "time":
            header = self.table.horizontalHeader()
            header.blockSignals(True)
            header.setSortIndicator(
                column_of(fields.TIME),
                Qt.SortOrder.DescendingOrder
                if self.model.sort_order.descending
                else Qt.SortOrder.AscendingOrder,
            )
            header.blockSignals(False)
        self.model.go_to_time(instant)

    def ask_go_to_time(self) -> GoToTimeDialog:
        """Ctrl+G: type or paste a moment; the table goes to the first event at or after it."""
        zone = self.display_zone()
        current = self.detail.shown.occurred_at if self.detail.shown else datetime.now(UTC)
        dialog = GoToTimeDialog(current.astimezone(zone), zone, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.chosen.connect(self.go_to_time)
        self.go_to_time_dialog = dialog

        def forget(*_args: object) -> None:
            if self.go_to_time_dialog is dialog:  # not a newer one opened meanwhile
                self.go_to_time_dialog = None

        dialog.destroyed.connect(forget)
        dialog.open()
        return dialog

    # -- sorting -----------------------------------------------------------------------------------

    def _on_sort_indicator(self, section: int, order: Qt.SortOrder) -> None:
        if section not in SORT_KEY_OF:
            # E.g. details cannot be sorted: put the indicator back where the data really is.
            current = self.model.sort_order
            column = next(c for c, k in SORT_KEY_OF.items() if k == current.key)
            header = self.table.horizontalHeader()
            header.blockSignals(True)
            header.setSortIndicator(
                column,
                Qt.SortOrder.DescendingOrder if current.descending else Qt.SortOrder.AscendingOrder,
            )
            header.blockSignals(False)
            title = str(self.model.headerData(section, Qt.Orientation.Horizontal))
            self.statusBar().showMessage(f"The {title.lower()} column cannot be sorted.", 5000)
            return
        self.model.sort(section, order)

    # -- selection, copy, context menu -------------------------------------------------------------

    def _on_current_row(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self._show_detail(current)

    def _show_detail(self, index: QModelIndex | None = None) -> None:
        index = index if index is not None else self.table.currentIndex()
        event = self.model.data(index, EventRole) if index.isValid() else None
        if event is None:
            self.detail.clear()
            return
        workspace = self.picker.workspace_by_id(event.workspace_id)
        self.detail.show_event(event, self.display_zone(), workspace.name if workspace else None)

    def selected_rows(self) -> list[int]:
        return sorted({index.row() for index in self.table.selectionModel().selectedRows()})

    def visible_columns(self) -> list[int]:
        header = self.table.horizontalHeader()
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
        self.statusBar().showMessage(f"Copied {len(self.selected_rows())} row(s).", 4000)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.table and event.type() == QEvent.Type.KeyPress:
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
        if event.type() == QEvent.Type.Resize and watched is self.table:
            self.overlay.setGeometry(self.table.viewport().rect())
        return super().eventFilter(watched, event)

    def resizeEvent(self, event) -> None:  # type: ignore[no-untyped-def]
        super().resizeEvent(event)
        self.overlay.setGeometry(self.table.viewport().rect())

    def _cell_menu_at(self, position) -> None:  # type: ignore[no-untyped-def]
        index = self.table.indexAt(position)
        if not index.isValid():
            return
        menu = self.cell_menu(index)
        menu.exec(self.table.viewport().mapToGlobal(position))

    def cell_menu(self, index: QModelIndex) -> QMenu:
        menu = QMenu(self)
        pair = self.model.data(index, FilterValueRole)
        filter_action = menu.addAction("Filter by this value")
        exclude_action = menu.addAction("Exclude this value")
        if pair is None:
            filter_action.setEnabled(False)
            exclude_action.setEnabled(False)
        else:
            field, value = pair
            filter_action.triggered.connect(lambda: self.filter_by_value(field, value))
            exclude_action.triggered.connect(
                lambda: self.filter_by_value(field, value, negate=True)
            )
        copy_cell = menu.addAction("Copy")
        text = str(self.model.data(index) or "")
        copy_cell.triggered.connect(lambda: QGuiApplication.clipboard().setText(text))
        menu.addAction(self.copy_action)
        menu.addSeparator()
        event = self.model.data(index, EventRole)
        if event is not None:
            user = menu.addAction("Everything this user did")
            user.triggered.connect(lambda: self._user_search(event.actor_email, event.actor_name))
            if event.patient_id:
                patient = menu.addAction("Who accessed this patient")
                patient.triggered.connect(lambda: self._patient_search(event.patient_id))
        return menu

    def filter_by_value(self, field: str, value: str, *, negate: bool = False) -> None:
        search = self.filter_bar.search()
        term = Term(field, value, negate)
        if field == "category" and value == Category.LOG_ACCESS.value and negate:
            search = replace(search, include_log_access=False)
        elif term not in search.terms:
            if not negate:
                # "Filter by" narrows this field to the value (OR-ing would widen it).
                search = replace(
                    search,
                    terms=tuple(t for t in search.terms if t.field != field or t.negate),
                )
            search = search.with_terms(term)
        self.filter_bar.set_search(search)
        self._run()

    # -- presets -------------------------------------------------------------------------------

    def _selected_event(self):  # type: ignore[no-untyped-def]
        index = self.table.currentIndex()
        return self.model.data(index, EventRole) if index.isValid() else None

    def preset_failed_sign_ins(self) -> None:
        self.filter_bar.set_search(
            Search(terms=(Term("category", Category.FAILED_SIGN_INS.value),), last="24h")
        )
        self._run()

    def preset_log_access(self) -> None:
        self.filter_bar.set_search(Search(terms=(Term("category", Category.LOG_ACCESS.value),)))
        self._run()

    def preset_user(self) -> None:
        event = self._selected_event()
        if event is None:
            self.show_message("Select an event of the team member first.")
            return
        self._user_search(event.actor_email, event.actor_name)

    def preset_patient(self) -> None:
        event = self._selected_event()
        if event is None or not event.patient_id:
            self.show_message("Select an event about the patient first.")
            return
        self._patient_search(event.patient_id)

    def _user_search(self, email: str | None, name: str) -> None:
        term = Term("user", email) if email else Term("name", name)
        self.filter_bar.set_search(Search(terms=(term,)))
        self._run()

    def _patient_search(self, patient: str) -> None:
        self.filter_bar.set_search(Search(terms=(Term("patient", patient),)))
        self._run()

    # -- saved searches --------------------------------------------------------------------------

    def _fill_saved_menu(self) -> None:
        menu = self.saved_menu
        menu.clear()
        menu.addAction("Save current search…").triggered.connect(self.ask_save_search)
        searches = self.saved_searches.all()
        if searches:
            menu.addSeparator()
        for saved in searches:
            menu.addAction(saved.name).triggered.connect(
                lambda _checked=False, s=saved: self.open_saved_search(s)
            )
        if searches:
            menu.addSeparator()
            delete = menu.addMenu("Delete")
            for saved in searches:
                delete.addAction(saved.name).triggered.connect(
                    lambda _checked=False, s=saved: self._delete_saved(s)
                )

    def ask_save_search(self) -> None:
        name, ok = QInputDialog.getText(self, "Save search", "Name of this search:")
        if ok and name.strip():
            self.save_search(name.strip())

    def save_search(self, name: str) -> SavedSearch:
        current = self.picker.current()
        sort = self.model.sort_order
        saved = SavedSearch(
            name=name,
            text=format_search(self.filter_bar.search(), self.display_zone()),
            workspace_id=None if current is None else current.id,
            sort_key=sort.key,
            descending=sort.descending,
        )
        self.saved_searches.save(saved)
        self.statusBar().showMessage(f"Saved search “{name}”.", 4000)
        return saved

    def open_saved_search(self, saved: SavedSearch) -> bool:
        if saved.workspace_id is None:
            if not self.identity.can(Permission.ALL_WORKSPACES):
                self.show_message(
                    f"The saved search “{saved.name}” covers all workspaces, which only admins "
                    "may browse.",
                    error=True,
                )
                return False
            workspace = None
        else:
            workspace = self.picker.workspace_by_id(saved.workspace_id)
            if workspace is None:
                self.show_message(
                    f"The saved search “{saved.name}” is for workspace {saved.workspace_id}, "
                    "which does not exist in this database.",
                    error=True,
                )
                return False
        self.picker.select(workspace)
        self._extra_workspaces = ()
        self._apply_zone()
        try:
            search = parse(saved.text, self.display_zone())
        except SearchError as error:
            self.show_message(
                f"The saved search “{saved.name}” cannot be read: {error}", error=True
            )
            return False
        try:
            sort = Sort(saved.sort_key, saved.descending)
        except ValueError:
            sort = Sort()
        self.model._sort = sort
        column = next(c for c, k in SORT_KEY_OF.items() if k == sort.key)
        header = self.table.horizontalHeader()
        header.blockSignals(True)
        header.setSortIndicator(
            column, Qt.SortOrder.DescendingOrder if sort.descending else Qt.SortOrder.AscendingOrder
        )
        header.blockSignals(False)
        self.filter_bar.set_search(search)
        self._run()
        return True

    def _delete_saved(self, saved: SavedSearch) -> None:
        answer = QMessageBox.question(self, "Delete saved search", f"Delete “{saved.name}”?")
        if answer == QMessageBox.StandardButton.Yes:
            self.saved_searches.delete(saved.name)

    # -- columns -------------------------------------------------------------------------------

    def _column_menu_at(self, position) -> None:  # type: ignore[no-untyped-def]
        menu = QMenu(self)
        self._fill_column_menu(menu)
        menu.exec(self.table.horizontalHeader().mapToGlobal(position))

    def _fill_column_menu(self, menu: QMenu) -> None:
        menu.clear()
        for column in range(len(COLUMNS)):
            title = str(self.model.headerData(column, Qt.Orientation.Horizontal))
            act = menu.addAction(title or COLUMN_TITLES[column])
            act.setCheckable(True)
            act.setChecked(not self.table.isColumnHidden(column))
            act.toggled.connect(
                lambda checked, c=column: self.table.setColumnHidden(c, not checked)
            )

    # -- misc ------------------------------------------------------------------------------------

    def set_theme(self, theme: Theme) -> None:
        """View → Theme: switch now and remember it for the next start."""
        apply_theme(theme)
        self.theme_actions[theme].setChecked(True)
        self.settings.set_desktop_text(keys.THEME, theme.value)
        try:
            self.settings.sync()
        except OSError as error:
            log.warning("could not save the theme: %s", error)

    def focus_search(self) -> None:
        self.filter_bar.search_edit.setFocus()
        self.filter_bar.search_edit.selectAll()

    def _about(self) -> None:
        QMessageBox.information(
            self,
            "Activity browser",
            "Search qualifiers: user: name: role: action: category: outcome: patient: ip: "
            "resource: type: session: request: status: weekday: hour: after: before: on: "
            "last:\n"
            "Prefix with - to exclude (e.g. -category:api). Dates, weekdays and hours are in "
            "the zone shown in the table; an end date includes the whole day; status:none is "
            "an API request with no status recorded.\n\n"
            "Ctrl+F search · Enter run · Esc clear · F5 refresh · Ctrl+G go to time · "
            "Ctrl+End jump to the end · Ctrl+C copy rows",
        )


class GoToTimeDialog(QDialog):
    """Go to time: a text field that takes exactly what is typed or pasted
    (``2026-11-05 10:06:00``, ``2026-11-05 10:06``, ISO with ``T``, ``10:06`` for the day shown),
    read in the zone the table shows. A date-time spin box would put typed minutes into the
    seconds section; a wrong entry keeps the dialog open with the reason under the field."""

    chosen = Signal(object)  # a UTC datetime

    def __init__(self, shown: datetime, zone: ZoneInfo, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("goToTimeDialog")
        self.setWindowTitle("Go to time")
        self.zone = zone
        self.day = shown.date()
        self.edit = QLineEdit(shown.strftime("%Y-%m-%d %H:%M:%S"), self)
        self.edit.setObjectName("goToTimeEdit")
        self.edit.setPlaceholderText("2026-11-05 10:06:00, or 10:06 for this day")
        self.edit.setAccessibleName(f"Date and time in {zone.key}")
        self.edit.setMinimumWidth(
            self.edit.fontMetrics().horizontalAdvance("2026-11-05T10:06:00.000000+00:00") + 16
        )
        self.edit.selectAll()
        hint = QLabel(
            f"Also 2026-11-05 10:06, ISO 8601 (2026-11-05T10:06:00Z), or a time alone such as "
            f"10:06 for {self.day:%Y-%m-%d}. Times are {zone.key} unless they carry an offset.",
            self,
        )
        hint.setWordWrap(True)
        hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.hint = hint.text()
        self.edit.setAccessibleDescription(self.hint)
        self.error = QLabel(self)
        self.error.setObjectName("goToTimeError")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #b00020;")
        self.error.hide()
        self.edit.textEdited.connect(lambda _text: self._clear_error())
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow(f"First event at or after ({zone.key}):", self.edit)
        form.addRow(hint)
        form.addRow(self.error)
        form.addRow(buttons)
        self.edit.setFocus()

    def moment(self) -> datetime:
        return parse_moment(self.edit.text(), self.zone, self.day)

    def accept(self) -> None:
        try:
            instant = self.moment()
        except ValueError as error:
            self.error.setText(str(error))
            self.error.show()
            self.edit.setAccessibleDescription(f"{error} {self.hint}")  # read out, not only red
            self.edit.setFocus()
            return
        super().accept()
        self.chosen.emit(instant)

    def _clear_error(self) -> None:
        self.error.hide()
        self.edit.setAccessibleDescription(self.hint)
