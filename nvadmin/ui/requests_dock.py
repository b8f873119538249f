"""The Requests dock: support's home screen, the queue of export requests.

Overdue requests first, each with a due-in countdown; filters by status and assignee. Enter
opens the selected request in the export form pre-filled with its workspace, days, filters
and ticket (those are fixed: the export must be what was asked); starting it runs the export
in the background, attaches the evidence and moves the request to exported. Alt+D marks it
delivered; Alt+P packages the export into an encrypted ZIP in the background, shows its
passphrase once (to be sent by another channel) and marks it delivered with the package's
SHA-256; Reject… and Override… (admins) ask for the reason. The queue is read and changed
only through :mod:`nvadmin.export.requests`; each change is chained in the workspace's log.
:func:`install` adds the dock and View → Requests queue (Ctrl+Shift+R).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QAction, QFont, QGuiApplication, QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QTableView,
    QVBoxLayout,
    QWidget,
)
from sqlalchemy import Engine

from nvadmin.export import requests
from nvadmin.export.evidence import Package
from nvadmin.export.requests import OPEN, Operation, RequestView, Status
from nvadmin.identity import Role, StaffIdentity
from nvadmin.ui.browser.work import RunningWork
from nvadmin.ui.disclosures import DisclosuresDialog
from nvadmin.ui.export_dialog import ExportDialog
from nvadmin.ui.features import FeatureHost
from nvadmin.ui.palette import set_tone
from nvadmin.ui.report_view import ReportView
from nvadmin.workers.cancel import ProgressUpdate
from nvadmin.workers.jobs import Job

log = logging.getLogger(__name__)

COLUMNS = ("Due", "Ticket", "Workspace", "Status", "Requester", "Requester check", "Assigned to")
DUE, TICKET, WORKSPACE, STATUS, REQUESTER, CHECK, ASSIGNED = range(len(COLUMNS))
COUNTDOWN_MS = 60_000  # the countdown is in minutes
ViewRole = Qt.ItemDataRole.UserRole + 1

# (label, statuses, overdue only)
STATUS_FILTERS: tuple[tuple[str, tuple[Status, ...], bool], ...] = (
    ("Open", OPEN, False),
    ("Overdue", OPEN, True),
    *((s.value.capitalize(), (s,), False) for s in Status),
    ("All", (), False),
)
ASSIGNEE_FILTERS = ("Anyone", "Mine", "Unassigned")


def _check_text(view: RequestView) -> str:
    if view.override_reason:
        return "overridden by an admin"
    return "admin ✔" if view.verification.passed else view.verification.value.replace("_", " ")


class RequestsModel(QAbstractTableModel):
    """The queue's rows; every cell is computed when the rows arrive, so data() is O(1)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.views: list[RequestView] = []
        self._cells: list[tuple[str, ...]] = []
        self._late: list[bool] = []

    def set_requests(self, views: list[RequestView], now: datetime | None = None) -> None:
        self.beginResetModel()
        self.views = list(views)
        self._compute(now)
        self.endResetModel()

    def tick(self, now: datetime | None = None) -> None:
        """Refresh the countdown (and lateness) without reloading."""
        if not self.views:
            return
        self._compute(now)
        self.dataChanged.emit(self.index(0, 0), self.index(len(self.views) - 1, DUE))

    def _compute(self, now: datetime | None) -> None:
        moment = now or datetime.now(UTC)
        self._late = [v.overdue(moment) for v in self.views]
        self._cells = [
            (
                requests.due_in_words(v, moment),
                v.ticket,
                v.workspace_name,
                v.status.value,
                f"{v.requester_name} <{v.requester_email}>",
                _check_text(v),
                v.assigned_to or "",
            )
            for v in self.views
        ]

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._cells)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = 0) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._cells):
            return None
        row, column = index.row(), index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return self._cells[row][column]
        if role == Qt.ItemDataRole.FontRole and column == DUE and self._late[row]:
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole and column == CHECK:
            return self.views[row].verification_note
        if role == ViewRole:
            return self.views[row]
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def row_of(self, request_id: int) -> int | None:
        for row, view in enumerate(self.views):
            if view.id == request_id:
                return row
        return None


class PassphraseDialog(QDialog):
    """The package's passphrase, shown once: selectable, with a Copy button and the warning
    to send it by another channel than the package."""

    def __init__(self, view: RequestView, package: Package, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Request {view.id} packaged: passphrase")
        warning = QLabel(
            "<b>This passphrase is shown only now and is not stored.</b><br>"
            "Send it by <b>another channel</b> than the package (a phone call or a text "
            f"message to {escape(view.recipient or view.requester_name)}), never in the same "
            "e-mail.",
            self,
        )
        warning.setWordWrap(True)
        set_tone(warning, "error")
        self.passphrase = QLineEdit(package.passphrase, self)
        self.passphrase.setReadOnly(True)
        self.passphrase.setAccessibleName("Passphrase")
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        mono.setPointSizeF(mono.pointSizeF() * 1.3)
        self.passphrase.setFont(mono)
        # The whole passphrase in view: none of it scrolled out of sight.
        width = self.passphrase.fontMetrics().horizontalAdvance(package.passphrase + "MM")
        self.passphrase.setMinimumWidth(width)
        facts = QLabel(f"Package: {escape(str(package.path))}<br>SHA-256: {package.sha256}", self)
        facts.setWordWrap(True)
        facts.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.copy_button = QPushButton("&Copy passphrase", self)
        self.copy_button.clicked.connect(self.copy)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        row = QHBoxLayout()
        row.addWidget(self.passphrase, 1)
        row.addWidget(self.copy_button)
        layout = QVBoxLayout(self)
        layout.addWidget(warning)
        layout.addLayout(row)
        layout.addWidget(facts)
        layout.addWidget(buttons)
        self.passphrase.selectAll()
        self.passphrase.setFocus()

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self.passphrase.text())
        self.copy_button.setText("Copied")


Keys = Callable[[], Mapping[str, Any]]


class RequestsPanel(QWidget):
    """The queue with its filters, the selected request in words, and its actions."""

    opened = Signal(object)  # RequestView: Enter on a row
    loaded = Signal()
    changed = Signal(object)  # RequestView after a change made here
    message = Signal(str, bool)  # text, is_error

    def __init__(
        self,
        engine: Callable[[], Engine],
        identity: StaffIdentity,
        parent: QWidget | None = None,
        keys: Keys = dict,
        read_engine: Callable[[], Engine] | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("requestsPanel")
        self._engine = engine  # the primary: the queue, its moves and every log event
        self._read_engine = read_engine or engine  # a hot standby, if any: export rows
        self._identity = identity
        self._keys = keys  # the public keys a package may carry (read in the background)
        self.passphrase_dialog: PassphraseDialog | None = None
        self._generation = 0
        self.jobs: list[Job] = []
        self.exports: dict[int, Job] = {}  # request id -> its running fulfilment
        self.reason_dialog: QInputDialog | None = None

        self.status_box = QComboBox(self)
        for label, _, _ in STATUS_FILTERS:
            self.status_box.addItem(label)
        self.status_box.setAccessibleName("Show requests")
        self.assignee_box = QComboBox(self)
        self.assignee_box.addItems(ASSIGNEE_FILTERS)
        self.assignee_box.setAccessibleName("Assigned to")
        self.refresh_button = QPushButton("Re&load", self)
        self.model = RequestsModel(self)
        self.table = QTableView(self)
        self.table.setObjectName("requestsTable")
        self.table.setAccessibleName("Export requests")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setTabKeyNavigation(False)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setWordWrap(False)
        # Widths as sample text, so they follow the font: "overdue by 12 d 23 h" reads whole.
        metrics = self.table.fontMetrics()
        for column, sample in ((DUE, "overdue by 12 d 23 h"), (TICKET, "SUP-123456"),
                               (WORKSPACE, "Riverside Family Clinic"), (STATUS, "delivered"),
                               (REQUESTER, "Hana O'Brien <hana.obrien@"),
                               (CHECK, "not a member ✗")):  # fmt: skip
            self.table.setColumnWidth(column, metrics.horizontalAdvance(sample) + metrics.height())
        self.table.installEventFilter(self)
        self.detail = QLabel(self)
        self.detail.setObjectName("requestDetail")
        self.detail.setWordWrap(True)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.detail.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.detail.setMinimumWidth(300)
        self.detail.setAccessibleName("Selected request")
        self.status_label = QLabel(self)
        self.status_label.setObjectName("requestsStatus")
        self.status_label.setWordWrap(True)
        # A ticket id is whatever the helpdesk sent: shown as typed, never as markup.
        self.status_label.setTextFormat(Qt.TextFormat.PlainText)
        self.cancel_export_button = QPushButton("Cancel e&xport", self)
        self.cancel_export_button.setToolTip("Stop the running export: no file is kept")
        self.cancel_export_button.hide()
        # Alt+F and Alt+A belong to the window's File and Account menus.
        self.fulfil_button = QPushButton("F&ulfil… (Enter)", self)
        self.deliver_button = QPushButton("Mark &delivered", self)
        self.package_button = QPushButton("&Package and mark delivered…", self)
        self.package_button.setToolTip(
            "Encrypted ZIP beside the export (CSV, manifest, public key, README); the "
            "passphrase is shown once"
        )
        self.reject_button = QPushButton("&Reject…", self)
        self.override_button = QPushButton("&Override check…", self)
        self.override_button.setToolTip("Admins: accept a requester the check refused")
        self.disclosures_button = QPushButton("D&isclosures…", self)
        self.disclosures_button.setToolTip(
            "Accounting of disclosures of a workspace or of one patient: shown, printed, "
            "saved as PDF or CSV"
        )
        self.disclosures_dialog: DisclosuresDialog | None = None
        self.report_view: ReportView | None = None

        filters = QHBoxLayout()
        for caption, box in (("&Show:", self.status_box), ("Assi&gned:", self.assignee_box)):
            buddy_label = QLabel(caption, self)
            buddy_label.setBuddy(box)
            filters.addWidget(buddy_label)
            filters.addWidget(box)
        filters.addWidget(self.refresh_button)
        filters.addWidget(self.disclosures_button)
        filters.addStretch(1)
        filters.addWidget(self.status_label, 2)
        filters.addWidget(self.cancel_export_button)
        buttons = QHBoxLayout()
        for button in (self.fulfil_button, self.deliver_button, self.package_button,
                       self.reject_button, self.override_button):  # fmt: skip
            buttons.addWidget(button)
        buttons.addStretch(1)
        detail_scroll = QScrollArea(self)
        detail_scroll.setWidgetResizable(True)
        detail_scroll.setFrameShape(QFrame.Shape.NoFrame)
        detail_scroll.setWidget(self.detail)
        side = QVBoxLayout()
        side.addWidget(detail_scroll, 1)
        side.addLayout(buttons)
        body = QHBoxLayout()
        body.addWidget(self.table, 3)
        body.addLayout(side, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(filters)
        layout.addLayout(body, 1)

        self._countdown = QTimer(self)
        self._countdown.setInterval(COUNTDOWN_MS)
        self._countdown.timeout.connect(self.model.tick)
        self._countdown.start()
        self.status_box.currentIndexChanged.connect(self.reload)
        self.assignee_box.currentIndexChanged.connect(self.reload)
        self.refresh_button.clicked.connect(self.reload)
        self.table.selectionModel().currentRowChanged.connect(self._show_current)
        self.fulfil_button.clicked.connect(self.open_current)
        self.deliver_button.clicked.connect(lambda: self.change(Operation.DELIVER))
        self.package_button.clicked.connect(self.package_and_deliver)
        self.reject_button.clicked.connect(lambda: self.ask_reason(Operation.REJECT))
        self.override_button.clicked.connect(lambda: self.ask_reason(Operation.OVERRIDE))
        self.disclosures_button.clicked.connect(self.ask_disclosures)
        self.cancel_export_button.clicked.connect(self.cancel_exports)
        self._show_current()

    # -- loading -------------------------------------------------------------------------------

    def engine(self) -> Engine:
        return self._engine()

    def reload(self, *_args: object) -> None:
        """Load the queue in the background; the newest load wins."""
        self._generation += 1
        generation = self._generation
        _label, statuses, overdue = STATUS_FILTERS[self.status_box.currentIndex()]
        assignee = {0: None, 1: self._identity.email, 2: ""}[self.assignee_box.currentIndex()]
        engine = self.engine()
        job = Job(
            lambda _control: requests.list_requests(
                engine, statuses=statuses, overdue=overdue, assignee=assignee
            ),
            name="requests queue",
        )
        job.succeeded.connect(lambda views: self._on_loaded(generation, views))
        job.failed.connect(lambda text: self._on_failed(generation, text))
        self._keep(job)
        job.start()

    def _keep(self, job: Job) -> None:
        self.jobs.append(job)
        job.finished.connect(lambda: self.jobs.remove(job) if job in self.jobs else None)

    def _on_loaded(self, generation: int, views: list[RequestView]) -> None:
        if generation != self._generation:
            return  # an older load: a newer one is on its way
        selected = self.current()
        self.model.set_requests(views)
        row = self.model.row_of(selected.id) if selected else None
        if row is None and views:
            row = 0
        if row is not None:
            self.table.selectRow(row)
            self.table.setCurrentIndex(self.model.index(row, 0))
        self._show_current()
        late = sum(1 for v in views if v.overdue())
        self.status_label.setText(
            f"{len(views)} request{'s' if len(views) != 1 else ''}"
            + (f", {late} overdue" if late else "")
        )
        set_tone(self.status_label, "error" if late else "")
        self.loaded.emit()

    def _on_failed(self, generation: int, text: str) -> None:
        if generation == self._generation:
            self.status_label.setText(f"Could not load the queue: {text}")
            set_tone(self.status_label, "error")

    # -- the selected request --------------------------------------------------------------

    def current(self) -> RequestView | None:
        index = self.table.currentIndex()
        view = self.model.data(index, ViewRole) if index.isValid() else None
        return view if isinstance(view, RequestView) else None

    def select(self, request_id: int) -> bool:
        row = self.model.row_of(request_id)
        if row is None:
            return False
        self.table.selectRow(row)
        self.table.setCurrentIndex(self.model.index(row, 0))
        return True

    def _show_current(self, *_args: object) -> None:
        view = self.current()
        if view is None:
            self.detail.setText("No request selected. Requests arrive with `nvadmin requests add`.")
            for button in (self.fulfil_button, self.deliver_button, self.package_button,
                           self.reject_button, self.override_button):  # fmt: skip
                button.setEnabled(False)
            return
        rows = "".join(
            f"<tr><td><b>{escape(label)}</b></td><td>{escape(value)}</td></tr>"
            for label, value in requests.view_lines(view)
        )
        self.detail.setText(f"<table cellspacing='2'>{rows}</table>")
        admin = self._identity.role is Role.ADMIN
        self.fulfil_button.setEnabled(
            view.status is Status.VERIFIED and view.id not in self.exports
        )
        self.deliver_button.setEnabled(view.status is Status.EXPORTED)
        self.package_button.setEnabled(view.status is Status.EXPORTED)
        self.reject_button.setEnabled(view.status in OPEN)
        self.override_button.setEnabled(admin and view.status is Status.NEW)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            watched is self.table
            and event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
            and not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        ):
            self.open_current()
            return True
        return super().eventFilter(watched, event)

    def open_current(self) -> None:
        view = self.current()
        if view is None:
            return
        if view.status is Status.NEW:
            self.message.emit(
                f"Request {view.id}: {view.verification_note}. It is exported only after an "
                "admin overrides the check (Override check…) with a reason.",
                True,
            )
            return
        if view.status is not Status.VERIFIED:
            self.message.emit(f"Request {view.id} is {view.status.value}: nothing to export.", True)
            return
        if view.id in self.exports:
            self.message.emit(f"Request {view.id} is being exported already.", True)
            return
        self.opened.emit(view)

    # -- the accounting of disclosures -------------------------------------------------------

    def ask_disclosures(self) -> DisclosuresDialog:
        """Which workspace (the selected request's, to start with) and, optionally, patient;
        the report is produced in the background and opened in the report view."""
        current = self.current()
        dialog = DisclosuresDialog(
            self._engine,
            self._identity,
            workspace_slug=current.workspace_slug if current else None,
            parent=self.window(),
        )
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.destroyed.connect(lambda: setattr(self, "disclosures_dialog", None))
        dialog.produced.connect(self._on_disclosures)
        self.disclosures_dialog = dialog
        dialog.open()
        return dialog

    def _on_disclosures(self, view: ReportView) -> None:
        view.destroyed.connect(lambda: setattr(self, "report_view", None))
        self.report_view = view

    # -- changes ---------------------------------------------------------------------------

    def ask_reason(self, operation: Operation) -> None:
        view = self.current()
        if view is None:
            return
        title = "Reject request" if operation is Operation.REJECT else "Override requester check"
        prompt = (
            f"Why is request {view.id} ({view.ticket}) rejected?"
            if operation is Operation.REJECT
            else f"{view.verification_note}.\nWhy may {view.requester_email} receive this log?"
        )
        dialog = QInputDialog(self)
        dialog.setWindowTitle(title)
        dialog.setLabelText(prompt.replace("&", "&&"))  # its label marks a mnemonic with &
        for label in dialog.findChildren(QLabel):  # the ticket and e-mail as typed, not markup
            label.setTextFormat(Qt.TextFormat.PlainText)
        dialog.setOkButtonText("Reject" if operation is Operation.REJECT else "Override")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.textValueSelected.connect(lambda reason: self.change(operation, reason))
        self.reason_dialog = dialog
        dialog.open()  # window-modal, without a nested event loop

    def change(self, operation: Operation, reason: str | None = None) -> None:
        view = self.current()
        if view is None:
            return
        engine, identity = self.engine(), self._identity
        job = Job(
            lambda _control: requests.move(engine, identity, view.id, operation, reason),
            name=f"request {view.id} {operation.value}",
        )
        job.succeeded.connect(self._on_changed)
        job.failed.connect(lambda text: self._on_change_failed(view, text))
        self._keep(job)
        job.start()

    def _on_change_failed(self, view: RequestView, text: str) -> None:
        self.message.emit(f"Request {view.id}: {text}", True)
        self.reload()  # someone else may have moved it meanwhile: show where it is now

    def package_and_deliver(self) -> Job | None:
        """Package the export in the background, then show the passphrase once."""
        view = self.current()
        if view is None:
            return None
        if view.status is not Status.EXPORTED:
            self.message.emit(f"Request {view.id} is {view.status.value}: not packaged.", True)
            return None
        engine, identity, keys = self.engine(), self._identity, self._keys
        job = Job(
            lambda _control: requests.deliver_package(engine, identity, view.id, keys()),
            name=f"request {view.id} package",
        )
        self.status_label.setText(f"Packaging request {view.id} ({view.ticket})…")
        set_tone(self.status_label, "")
        self.package_button.setEnabled(False)
        job.succeeded.connect(self._on_packaged)
        job.failed.connect(lambda text: self._on_package_failed(view, text))
        self._keep(job)
        job.start()
        return job

    def _on_package_failed(self, view: RequestView, text: str) -> None:
        self.message.emit(f"Request {view.id}: {text}", True)
        self._show_current()
        self.reload()

    def _on_packaged(self, outcome: tuple[RequestView, Package]) -> None:
        view, package = outcome
        dialog = PassphraseDialog(view, package, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.destroyed.connect(lambda: setattr(self, "passphrase_dialog", None))
        self.passphrase_dialog = dialog
        dialog.open()
        self._on_changed(view)

    def _on_changed(self, view: RequestView) -> None:
        self.message.emit(f"Request {view.id} ({view.ticket}) is now {view.status.value}.", False)
        self.changed.emit(view)
        self.reload()

    def run_export(self, view: RequestView, request: Any) -> Job:
        """Export for the request in the background; evidence attached and status moved."""
        engine, reader, identity = self.engine(), self._read_engine(), self._identity
        job = Job(
            lambda control: requests.fulfil_with(
                engine, identity, view.id, request,
                progress=control.progress, token=control.token, read_engine=reader,
            ),
            name=f"request {view.id} export",
        )  # fmt: skip
        self.status_label.setText(f"Exporting request {view.id} ({view.ticket})…")
        set_tone(self.status_label, "")
        job.progressed.connect(lambda update: self._on_progress(view, update))
        job.succeeded.connect(self._on_exported)
        job.failed.connect(lambda text: self.message.emit(f"Request {view.id}: {text}", True))
        job.cancelled.connect(
            lambda: self.message.emit(f"Request {view.id}: export cancelled.", False)
        )
        job.finished.connect(lambda: self._on_export_ended(view.id, job))
        self._keep(job)
        self.exports[view.id] = job
        self.cancel_export_button.show()
        self._show_current()
        job.start()
        return job

    def cancel_exports(self) -> None:
        for job in self.exports.values():
            job.cancel()
        self.status_label.setText("Cancelling the export…")

    def _on_export_ended(self, request_id: int, job: Job) -> None:
        if self.exports.get(request_id) is job:
            del self.exports[request_id]
        self.cancel_export_button.setVisible(bool(self.exports))
        # Whatever the outcome, the "Exporting…" line gives way to the queue as it now is.
        self.reload()

    def _on_progress(self, view: RequestView, update: ProgressUpdate) -> None:
        if update.total:
            self.status_label.setText(
                f"Exporting request {view.id}: {update.done:,} of {update.total:,} rows"
            )

    def _on_exported(self, view: RequestView) -> None:
        self.message.emit(
            f"Request {view.id} exported: {view.export_rows:,} rows to {view.export_path} "
            "(evidence attached). Mark it delivered once sent (Alt+D).",
            False,
        )
        self.changed.emit(view)

    def running(self) -> list[Job]:
        return [job for job in self.jobs if job.running]


class RequestsFeature(QObject):
    """The dock and its action on the main window."""

    def __init__(self, host: FeatureHost) -> None:
        window = host.widget()
        super().__init__(window)
        self.host = host
        self.last_folder: Path | None = None
        self.panel = RequestsPanel(
            lambda: host.context.engine,
            host.identity,
            keys=self._trusted_keys,
            read_engine=lambda: host.context.read_engine,
        )
        self.dock = QDockWidget("Requests", window)
        self.dock.setObjectName("requestsDock")
        self.dock.setWidget(self.panel)
        self.action = QAction("&Requests queue", window)
        self.action.setShortcut(QKeySequence("Ctrl+Shift+R"))
        self.action.setStatusTip("Export requests: overdue first; Enter opens one in the form")
        self.action.triggered.connect(self.show_queue)
        host.menus.view.addAction(self.action)
        host.add_dock(self.dock)
        host.add_work_source(self.running_work)
        self.panel.opened.connect(self.open_form)
        self.panel.message.connect(lambda text, error: host.show_message(text, error=error))
        self.dock.visibilityChanged.connect(self._on_visible)
        # Support answers tickets: the queue is their home screen. Others open it from View.
        if host.context.read_only:
            self.action.setEnabled(False)
            self.dock.hide()
        elif host.identity.role is Role.SUPPORT:
            self.dock.show()
        else:
            self.dock.hide()

    def _trusted_keys(self) -> Mapping[str, Any]:
        """This computer's signing key and trusted keys (as `nvadmin package-export`)."""
        from nvadmin.audit.checkpoints import KeyStore

        return KeyStore(self.host.context.paths.config_dir).trusted_keys()

    def _on_visible(self, visible: bool) -> None:
        if visible:
            self.panel.reload()

    def show_queue(self) -> None:
        self.dock.show()
        self.dock.raise_()
        self.panel.reload()
        # A dock shown just now takes focus once the window has laid it out.
        QTimer.singleShot(0, lambda: self.panel.table.setFocus(Qt.FocusReason.ShortcutFocusReason))

    def running_work(self) -> list[RunningWork]:
        return [RunningWork("export request", job) for job in self.panel.running()]

    def open_form(self, view: RequestView) -> ExportDialog:
        host = self.host
        dialog = ExportDialog(
            host.context.engine,
            host.identity,
            initial_filter=view.event_filter(),
            display_zone=view.zone,
            folder=self.last_folder,
            parent=host.widget(),
        )
        dialog.setWindowTitle(f"Fulfil request {view.id}: ticket {view.ticket}")
        dialog.ticket_edit.setText(view.ticket)
        # What is exported is what was asked: columns, zone and file are the staff's choice.
        for widget in (dialog.workspace_box, dialog.range_preset_box, dialog.from_edit,
                       dialog.to_edit, dialog.range_zone_box, dialog.members_edit,
                       dialog.ticket_edit, dialog.keep_other_box,
                       *dialog.category_boxes.values()):  # fmt: skip
            widget.setEnabled(False)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.finished.connect(lambda result: self._on_form_done(view, dialog, result))
        dialog.open()
        self.dialog = dialog
        return dialog

    def _on_form_done(self, view: RequestView, dialog: ExportDialog, result: int) -> None:
        # The keyboard goes back to the queue the form was opened from, not the window's table.
        self.panel.table.setFocus(Qt.FocusReason.OtherFocusReason)
        request = dialog.request()
        if result != QDialog.DialogCode.Accepted or request is None:
            return
        self.last_folder = request.output.parent
        self.panel.run_export(view, request)


def install(host: FeatureHost) -> RequestsFeature:
    """View → Requests queue (Ctrl+Shift+R) and the Requests dock."""
    return RequestsFeature(host)
