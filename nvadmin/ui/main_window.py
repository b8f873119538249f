"""The main window: the activity browser over every event of a workspace (or all of them).

The window composes its parts, as Anki's browser does: the Qt-free state
(:mod:`nvadmin.ui.browser.state`), the table and its scrolling (:mod:`.browser.table`), the
menus (:mod:`.browser.menus`) and the guard over long work (:mod:`.browser.work`). Other
features (exports, reports, case files, staff management...) attach through
:class:`nvadmin.ui.features.FeatureHost`, which this window provides.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from PySide6.QtCore import QChildEvent, QEvent, QModelIndex, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QResizeEvent
from PySide6.QtWidgets import (
    QDialog,
    QDockWidget,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QWidget,
)
from sqlalchemy import Engine

from nvadmin.auth import accounts
from nvadmin.auth.accounts import StaffAccount
from nvadmin.context import Context
from nvadmin.errors import AccessDenied
from nvadmin.identity import Permission, StaffIdentity
from nvadmin.query.filters import EventFilter
from nvadmin.query.paging import EventRow
from nvadmin.query.search import Search, SearchError, format_search, parse
from nvadmin.query.workspaces import MemberInfo, WorkspaceInfo, list_workspaces, member_suggestions
from nvadmin.ui import features
from nvadmin.ui import settings as keys
from nvadmin.ui.activity_model import COLUMNS, ActivityModel
from nvadmin.ui.browser import state as browsing
from nvadmin.ui.browser.go_to_time import GoToTimeDialog
from nvadmin.ui.browser.layout import lay_out
from nvadmin.ui.browser.menus import BrowserMenus
from nvadmin.ui.browser.shortcuts import WindowShortcuts
from nvadmin.ui.browser.state import BrowserState, Refused, SavedSearch
from nvadmin.ui.browser.status import BrowserStatus, ReplicaStatus
from nvadmin.ui.browser.table import FIRST_COLUMN_COUNT, BrowserTable
from nvadmin.ui.browser.work import RunningWork, WorkGuard, WorkSource
from nvadmin.ui.detail_pane import DetailPane
from nvadmin.ui.features import Features, Menus, WindowActions
from nvadmin.ui.filter_bar import FilterBar
from nvadmin.ui.placement import fit_on_screen
from nvadmin.ui.saved_searches import SavedSearchStore
from nvadmin.ui.settings import UiSettings
from nvadmin.ui.staff_dialog import StaffDialog
from nvadmin.ui.workspace_picker import WorkspacePicker
from nvadmin.workers.jobs import Job

__all__ = ["SEARCH_NOT_RUN", "GoToTimeDialog", "MainWindow", "RunningWork"]

log = logging.getLogger(__name__)

SEARCH_NOT_RUN = "Search not run: "
_FOCUS_BACK = "nvadminFocusBack"  # set on a dialog once its closing gives focus to the table


class MainWindow(QMainWindow):
    signed_out = Signal()
    lock_requested = Signal()

    def __init__(self, context: Context, identity: StaffIdentity, parent: QWidget | None = None):
        super().__init__(parent)
        self.context = context
        self.identity = identity
        self.settings = UiSettings(context.paths.settings_file, account=identity.email)
        self.saved_searches = SavedSearchStore(self.settings)
        self.state = BrowserState(identity, read_only=context.read_only)
        self.state.times_in_utc = self.settings.flag(keys.TIMES_IN_UTC)
        self._member_job: Job | None = None
        self._lock_followers: list[Callable[[bool], None]] = []
        self._docks_before_lock: list[QDockWidget] = []
        self.go_to_time_dialog: GoToTimeDialog | None = None
        self.identity_changed = False  # demoted or disabled since sign-in (said once)
        self.staff_action: QAction | None = None  # Account → Staff…, the session's, for an admin
        self.setWindowTitle(f"nvadmin — {context.display_url}")
        self.setObjectName("mainWindow")

        self.model = ActivityModel(self)
        self.model.set_source(context.write_engine, identity, context.read_engine)
        self.picker = WorkspacePicker(self)
        self.filter_bar = FilterBar(self)
        self.browser_table = BrowserTable(self.model, self.state, self)
        self.table = self.browser_table.view
        self.detail = DetailPane(self)
        self.banner = QLabel(self)
        self.banner_retry = QPushButton("Retry", self)
        self.presets_button = QPushButton("Presets", self)
        self.saved_button = QPushButton("Saved searches", self)
        self.work = WorkGuard(self, self.show_message)
        self.banner_retry.clicked.connect(self.refresh)
        self.splitter = lay_out(self)
        self.browser_menus = BrowserMenus(self, self.presets_button, self.saved_button)
        self.menus: Menus = self.browser_menus.menus
        self.window_actions: WindowActions = self.browser_menus.window_actions
        self.theme_actions = self.browser_menus.theme_actions
        self.status = BrowserStatus(
            self,
            self.model,
            identity,
            failed=lambda text: self.show_message(text, error=True),
            note=self.show_message,
        )
        self.replica_status = (
            ReplicaStatus(self, context, self.model) if context.has_replicas else None
        )
        self._connect()
        self._restore_layout()
        self.features: Features = features.install_all(self)
        self.shortcuts = WindowShortcuts(self)
        # Keyboard work starts in the table (not in the first field of the tab order).
        self.table.setFocus(Qt.FocusReason.OtherFocusReason)
        QTimer.singleShot(0, self._load_workspaces)

    # -- what features use (nvadmin.ui.features.FeatureHost) -------------------------------------

    def widget(self) -> QMainWindow:
        return self

    def current_filter(self) -> EventFilter:
        """The filter the table shows (workspace ids included)."""
        if self.model.event_filter is not None:
            return self.model.event_filter
        return self.filter_bar.search().to_filter(self.state.workspace_ids())

    def apply_filter(self, event_filter: EventFilter) -> None:
        """Set the picker, widgets and search bar from ``event_filter`` and run it."""
        if not self.state.loaded:
            self.state.pending_filter = event_filter
            return
        try:
            workspace = self.state.target_of(event_filter)
        except Refused as refused:
            self.show_message(str(refused), error=True)
            return
        self._choose(workspace, keep=tuple(event_filter.workspace_ids))
        self.show_search(Search.from_filter(event_filter))

    def current_workspace(self) -> WorkspaceInfo | None:
        return self.state.workspace

    def current_event(self) -> EventRow | None:
        return self.browser_table.current_event()

    def workspace_names(self) -> dict[int, str]:
        return self.state.workspace_names()

    def display_zone(self) -> ZoneInfo:
        return self.state.display_zone()

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

    def add_dock(self, dock: QDockWidget) -> None:
        # Stacked, not side by side: each bottom dock keeps the height its own rows need.
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock, Qt.Orientation.Vertical)
        dock.hide()
        self.menus.view.addAction(dock.toggleViewAction())

    def add_status_widget(self, widget: QWidget) -> None:
        self.statusBar().insertPermanentWidget(0, widget)

    def add_work_source(self, source: WorkSource) -> None:
        """``source()`` lists a feature's running work; closing or signing out asks first."""
        self.work.add_source(source)

    def on_lock_changed(self, follower: Callable[[bool], None]) -> None:
        self._lock_followers.append(follower)

    def on_lock_requested(self, follower: Callable[[], None]) -> None:
        self.lock_requested.connect(follower)

    def changed_since_sign_in(self, reason: str) -> None:
        """Another admin demoted or disabled the signed-in account after sign-in (a service
        refused with :class:`accounts.ChangedSinceSignIn`, or the account read again says so):
        the status bar stops claiming the old role and Account → Staff… is no longer offered.
        The session goes on; signing in again gives the account's present role."""
        if self.identity_changed:
            return
        self.identity_changed = True
        sentence = reason[:1].upper() + reason[1:].rstrip(".") + "."
        label = self.status.identity_label
        label.setText(f"{self.identity.display_name} (no longer {self.identity.role})")
        label.setToolTip(f"{sentence} Sign in again to work with your present role.")
        if self.staff_action is not None:
            self.staff_action.setEnabled(False)
            self.staff_action.setVisible(False)
        self.show_message(f"{sentence} Sign in again to work with your present role.")

    def check_own_account(self, *_args: object) -> None:
        """Read the signed-in admin's account as it is now, off the GUI thread."""
        if self.identity_changed or not self.identity.can(Permission.MANAGE_STAFF):
            return
        engine, identity = self.context.engine, self.identity
        job = Job(lambda control: _own_account(engine, identity), name="own account", parent=self)
        job.succeeded.connect(self._on_own_account)
        job.failed.connect(lambda message: log.info("own account not read: %s", message))
        job.start()

    def _on_own_account(self, account: StaffAccount | None) -> None:
        if account is None:
            self.changed_since_sign_in("your account may no longer manage staff")
        elif account.disabled:
            self.changed_since_sign_in("your account is disabled")
        elif not account.identity().can(Permission.MANAGE_STAFF):
            self.changed_since_sign_in("your account is no longer an admin")

    # -- the session's hold on the window ------------------------------------------------------

    def set_locked(self, locked: bool) -> None:
        self.state.locked = locked
        if locked:
            self.model.clear()
            self.detail.clear()
            self.filter_bar.hide()
            self.picker.hide()
            self._hide_banner()
            self.status.clear()
            # Docks (the exports list names files and tickets) leave the screen too.
            if not self._docks_before_lock:
                docks = self.findChildren(QDockWidget)
                self._docks_before_lock = [d for d in docks if d.isVisible()]
            for dock in self._docks_before_lock:
                dock.hide()
            self.browser_table.update_overlay()
        else:
            self.filter_bar.show()
            self.picker.show()
            for dock in self._docks_before_lock:
                dock.show()
            self._docks_before_lock = []
            self.focus_table()
            if self.state.loaded:
                self._run(log_view=True)
        for follower in self._lock_followers:
            follower(locked)

    @property
    def stop_work_box(self) -> QMessageBox | None:
        """The "work still running" question, while it is asked."""
        return self.work.box

    def running_work(self) -> list[RunningWork]:
        return self.work.running()

    def stop_work_first(self, verb: str, then: Callable[[], object]) -> bool:
        """True when nothing runs; otherwise asks first (see :meth:`WorkGuard.stop_first`)."""
        return self.work.stop_first(verb, then)

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.stop_work_first("quit", self.close):
            event.ignore()
            return
        self.save_layout()
        self.model.clear()
        super().closeEvent(event)

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
            if isinstance(child, StaffDialog):
                # It may have been refused because another admin demoted or disabled this
                # account meanwhile: the window then stops claiming the role.
                child.finished.connect(self.check_own_account)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.browser_table.fit_overlay()

    # -- building ----------------------------------------------------------------------------

    def _connect(self) -> None:
        table = self.browser_table
        table.status.connect(lambda text: self.statusBar().showMessage(text, 5000))
        table.filter_by_value.connect(
            lambda field, value, negate: self.filter_by_value(field, value, negate=negate)
        )
        table.user_search.connect(
            lambda email, name: self.show_search(browsing.user_search(email, name))
        )
        table.patient_search.connect(
            lambda patient: self.show_search(browsing.patient_search(patient))
        )
        self.browser_menus.utc_action.toggled.connect(self._on_utc_toggled)
        self.picker.workspace_changed.connect(self._on_workspace_changed)
        self.filter_bar.search_requested.connect(lambda _search: self._run())
        self.filter_bar.search_failed.connect(
            lambda message: self.statusBar().showMessage(f"{SEARCH_NOT_RUN}{message}", 8000)
        )
        self.filter_bar.members_edit.textEdited.connect(self._suggest_members)
        self.table.selectionModel().currentRowChanged.connect(self._on_current_row)

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
            sort = self.browser_table.restore_header(header, self._saved_column_count())
            if sort is not None:
                self.state.sort = sort
        text = self.settings.text(keys.SEARCH_TEXT, "") or ""
        try:
            self.filter_bar.set_search(parse(text, self.filter_bar.zone()))
        except SearchError:
            log.info("ignoring the saved search text %r", text)

    def _saved_column_count(self) -> int:
        try:
            return int(self.settings.text(keys.HEADER_COLUMNS) or FIRST_COLUMN_COUNT)
        except ValueError:
            return FIRST_COLUMN_COUNT

    def save_layout(self) -> None:
        self.settings.set_bytes(keys.GEOMETRY, self.saveGeometry())
        self.settings.set_bytes(keys.WINDOW_STATE, self.saveState())
        self.settings.set_bytes(keys.SPLITTER, self.splitter.saveState())
        self.settings.set_bytes(keys.HEADER, self.table.horizontalHeader().saveState())
        self.settings.set_text(keys.HEADER_COLUMNS, str(len(COLUMNS)))
        self.settings.set_text(
            keys.SEARCH_TEXT, format_search(self.filter_bar.search(), self.display_zone())
        )
        if self.state.chosen:
            current = self.state.workspace
            self.settings.set_text(keys.WORKSPACE_ID, "" if current is None else str(current.id))
        self.settings.set_flag(keys.TIMES_IN_UTC, self.state.times_in_utc)
        try:
            self.settings.sync()
        except OSError as error:
            log.warning("could not save the window layout: %s", error)

    # -- workspaces ------------------------------------------------------------------------------

    def _load_workspaces(self) -> None:
        engine, identity = self.context.engine, self.identity
        job = Job(
            lambda control: list_workspaces(engine, identity), name="list workspaces", parent=self
        )
        job.succeeded.connect(self._on_workspaces)
        job.failed.connect(self._on_workspaces_failed)
        self.browser_table.overlay_text("Loading workspaces…")
        job.start()

    def _on_workspaces_failed(self, message: str) -> None:
        self.show_message(f"Cannot list the workspaces: {message}", error=True)
        self.banner_retry.clicked.disconnect()
        self.banner_retry.clicked.connect(self._retry_workspaces)
        self.browser_table.overlay_text("The workspaces could not be loaded.")

    def _retry_workspaces(self) -> None:
        self.banner_retry.clicked.disconnect()
        self.banner_retry.clicked.connect(self.refresh)
        self._hide_banner()
        self._load_workspaces()

    def _on_workspaces(self, workspaces: list[WorkspaceInfo]) -> None:
        self.state.set_workspaces(workspaces)
        self.picker.set_workspaces(workspaces, allow_all=self.state.may_browse_all)
        if self.state.pending_filter is not None:
            pending, self.state.pending_filter = self.state.pending_filter, None
            self.apply_filter(pending)
            return
        chosen, choice = self.state.first_choice(self.settings.text(keys.WORKSPACE_ID))
        if not chosen:
            self.browser_table.overlay_text("There is no workspace you may browse.")
            return
        self._choose(choice)
        self._run()

    def _on_workspace_changed(self, workspace: WorkspaceInfo | None) -> None:
        self.state.choose(workspace)
        self._apply_zone()
        self._run()

    def _choose(self, workspace: WorkspaceInfo | None, *, keep: tuple[int, ...] = ()) -> None:
        self.state.choose(workspace, keep=keep)
        self.picker.select(workspace)
        self._apply_zone()

    def _apply_zone(self) -> None:
        zone = self.display_zone()
        self.model.set_display(zone, self.state.workspace_names())
        self.filter_bar.set_zone(zone)
        self.browser_table.set_workspace_column()
        self._show_detail()

    def _on_utc_toggled(self, checked: bool) -> None:
        self.state.times_in_utc = checked
        self._apply_zone()

    def _suggest_members(self, text: str) -> None:
        part = text.split(",")[-1].strip()
        if len(part) < 1:
            return
        engine, ids = self.context.engine, self.state.workspace_ids()
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

    # -- running searches ---------------------------------------------------------------------

    def show_search(self, search: Search) -> None:
        """Put ``search`` in the filter bar and run it."""
        self.filter_bar.set_search(search)
        self._run()

    def refresh(self) -> None:
        if self.state.locked:
            return
        if self.model.event_filter is None:
            self._run()
        else:
            self._hide_banner()
            self.model.refresh()

    def _run(self, *, log_view: bool | None = None) -> None:
        """Run what the picker and filter bar say. The view is logged once per new filter."""
        if not self.state.may_run():
            return
        try:
            request = self.state.request(self.filter_bar.search(), log_view=log_view)
        except (AccessDenied, ValueError) as error:
            self.show_message(str(error), error=True)
            return
        self._hide_banner()
        if self.statusBar().currentMessage().startswith(SEARCH_NOT_RUN):
            self.statusBar().clearMessage()  # this search did run
        self.detail.clear()
        self.model.run(request.event_filter, log_view=request.log_view, sort=self.state.sort)

    def _hide_banner(self) -> None:
        self.banner.hide()
        self.banner_retry.hide()

    # -- the table's keyboard, the detail pane, searches from a row ------------------------------

    def focus_table(self, *_args: object) -> None:
        """Keyboard focus on the table, at its current row (the first row if none)."""
        self.browser_table.focus()

    def focus_search(self) -> None:
        self.filter_bar.search_edit.setFocus()
        self.filter_bar.search_edit.selectAll()

    def go_to_time(self, instant: datetime) -> None:
        self.browser_table.go_to_time(instant)

    def ask_go_to_time(self) -> GoToTimeDialog:
        """Ctrl+G: type or paste a moment; the table goes to the first event at or after it
        (outside the view, to the nearest one: :class:`BrowserStatus` says why)."""
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

    def _on_current_row(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        event = self.browser_table.current_event()
        if event is None:
            self.detail.clear()
            return
        workspace = self.state.workspace_by_id(event.workspace_id)
        self.detail.show_event(event, self.display_zone(), workspace.name if workspace else None)

    def filter_by_value(self, field: str, value: str, *, negate: bool = False) -> None:
        self.show_search(browsing.with_value(self.filter_bar.search(), field, value, negate=negate))

    def preset_user(self) -> None:
        event = self.browser_table.current_event()
        if event is None:
            self.show_message("Select an event of the team member first.")
            return
        self.show_search(browsing.user_search(event.actor_email, event.actor_name))

    def preset_patient(self) -> None:
        event = self.browser_table.current_event()
        if event is None or not event.patient_id:
            self.show_message("Select an event about the patient first.")
            return
        self.show_search(browsing.patient_search(event.patient_id))

    # -- saved searches --------------------------------------------------------------------------

    def save_search(self, name: str) -> SavedSearch:
        saved = self.state.saved(name, self.filter_bar.search())
        self.saved_searches.save(saved)
        self.statusBar().showMessage(f"Saved search “{name}”.", 4000)
        return saved

    def open_saved_search(self, saved: SavedSearch) -> bool:
        try:
            search = self.state.open_saved(saved)
        except Refused as refused:
            if self.state.workspace is not self.picker.current():
                self.picker.select(self.state.workspace)
                self._apply_zone()
            self.show_message(str(refused), error=True)
            return False
        self.picker.select(self.state.workspace)
        self._apply_zone()
        self.browser_table.show_sort(self.state.sort)
        self.show_search(search)
        return True


def _own_account(engine: Engine, identity: StaffIdentity) -> StaffAccount | None:
    """The signed-in admin's account as it is now; None when the server no longer shows it
    to this login or lets it read the staff list (PostgreSQL with staff logins: only
    signed-in admins may)."""
    try:
        listed = accounts.list_staff(engine, identity)
    except accounts.ChangedSinceSignIn:
        return None
    return next((account for account in listed if account.email == identity.email), None)
