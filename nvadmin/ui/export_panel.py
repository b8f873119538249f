"""The Exports dock: every export of this session, running, queued, finished or failed.

Exports run on their own small thread pool (:data:`MAX_RUNNING` at once; more wait in the
queue), so the browser's own background work is never starved. Each row shows rows done /
total, rate and ETA, with Cancel while it runs and "Open folder" / "Copy path" once done.
:func:`install` adds File → Export… (Ctrl+E) and the dock to the main window.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QSize, Qt, QThreadPool, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication, QKeySequence, QResizeEvent
from PySide6.QtWidgets import (
    QDialog,
    QDockWidget,
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)
from sqlalchemy import Engine

from nvadmin.export.service import ExportRequest, ExportResult, export_csv
from nvadmin.files.sizes import byte_size
from nvadmin.identity import StaffIdentity
from nvadmin.ui.browser.work import RunningWork
from nvadmin.ui.export_dialog import ExportDialog
from nvadmin.ui.features import FeatureHost
from nvadmin.ui.palette import set_tone
from nvadmin.workers.cancel import ProgressUpdate
from nvadmin.workers.jobs import Job

log = logging.getLogger(__name__)

MAX_RUNNING = 2
# The dock grows with its rows up to this many; more scroll.
MAX_ROWS_SHOWN = 4


class State(Enum):
    QUEUED = "Queued"
    RUNNING = "Running"
    DONE = "Done"
    FAILED = "Failed"
    CANCELLING = "Cancelling…"
    CANCELLED = "Cancelled"


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ExportRow(QFrame):
    """One export in the panel."""

    state_changed = Signal(object)  # State
    dismissed = Signal()

    def __init__(self, request: ExportRequest, job: Job, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.request = request
        self.job = job
        self.state = State.QUEUED
        self.result: ExportResult | None = None
        self.error: str | None = None
        self.done_rows = 0
        self.total_rows: int | None = None
        self._started: float | None = None
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setObjectName("exportRow")

        self.title = QLabel(f"<b>{request.output.name}</b>", self)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        ticket = f" · ticket {request.ticket}" if request.ticket else ""
        self.subtitle = QLabel(f"{request.output.parent}{ticket}", self)
        self.subtitle.setEnabled(False)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 0)
        self.progress.setTextVisible(True)
        self.status = QLabel(State.QUEUED.value, self)
        self.status.setObjectName("exportStatus")
        self.status.setWordWrap(True)
        self.status.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.cancel_button = QPushButton("Cancel", self)
        self.open_button = QPushButton("Open folder", self)
        self.copy_button = QPushButton("Copy path", self)
        self.dismiss_button = QPushButton("Remove", self)
        self.dismiss_button.setToolTip("Remove from this list (the file stays)")
        for button in (self.open_button, self.copy_button, self.dismiss_button):
            button.hide()

        self.progress.setFixedWidth(240)
        top = QHBoxLayout()
        top.addWidget(self.title)
        top.addWidget(self.subtitle, 1)
        top.addWidget(self.cancel_button)
        top.addWidget(self.open_button)
        top.addWidget(self.copy_button)
        top.addWidget(self.dismiss_button)
        bottom = QHBoxLayout()
        bottom.addWidget(self.progress)
        bottom.addWidget(self.status, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.setSpacing(2)
        layout.addLayout(top)
        layout.addLayout(bottom)

        self.cancel_button.clicked.connect(self.cancel)
        self.open_button.clicked.connect(self.open_folder)
        self.copy_button.clicked.connect(self.copy_path)
        self.dismiss_button.clicked.connect(self.dismissed.emit)
        job.progressed.connect(self._on_progress)
        job.succeeded.connect(self._on_done)
        job.failed.connect(self._on_failed)
        job.cancelled.connect(self._on_cancelled)

    # -- actions -------------------------------------------------------------------------------

    def cancel(self) -> None:
        if self.state in (State.QUEUED, State.RUNNING):
            self.job.cancel()
            # A queued export never starts; a running one stops at its next check (and its
            # query on the server is cancelled at once).
            self._set_state(State.CANCELLING)
            self.status.setText("Cancelling…")
            self.cancel_button.setEnabled(False)

    def open_folder(self) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.request.output.parent)))

    def copy_path(self) -> None:
        QGuiApplication.clipboard().setText(str(self.request.output))

    # -- job signals ---------------------------------------------------------------------------

    def _set_state(self, state: State) -> None:
        self.state = state
        self.state_changed.emit(state)

    def _on_progress(self, update: ProgressUpdate) -> None:
        if self.state is State.CANCELLING:
            return
        if self.state is State.QUEUED:
            self._set_state(State.RUNNING)
        if update.total is None:
            self.status.setText("Counting matching events…")
            return
        if self._started is None:
            self._started = time.monotonic()
        self.done_rows, self.total_rows = update.done, update.total
        if update.total == 0:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * update.done / update.total))
            self.progress.setFormat(f"{update.done / update.total:.0%}")
        elapsed = time.monotonic() - self._started
        text = f"{update.done:,} of {update.total:,} rows"
        if update.done and elapsed > 0.2:
            rate = update.done / elapsed
            eta = (update.total - update.done) / rate
            text += f" · {rate:,.0f} rows/s · {_duration(eta)} left"
        self.status.setText(text)

    def _finish_buttons(self, succeeded: bool) -> None:
        self.cancel_button.hide()
        self.open_button.setVisible(succeeded)
        self.copy_button.setVisible(succeeded)
        self.dismiss_button.show()

    def _on_done(self, result: ExportResult) -> None:
        self.result = result
        self.done_rows = self.total_rows = result.rows
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.progress.setFormat("100%")
        rate = result.rows / result.seconds if result.seconds > 0 else 0
        self.status.setText(
            f"✔ {result.rows:,} rows, {byte_size(result.size)} in {_duration(result.seconds)}"
            f" ({rate:,.0f} rows/s) · SHA-256 {result.sha256[:16]}… · manifest "
            f"{result.manifest_path.name}"
        )
        self.status.setToolTip(f"SHA-256 {result.sha256}")
        self._finish_buttons(True)
        self._set_state(State.DONE)

    def _on_failed(self, message: str) -> None:
        self.error = message
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("failed")
        self.status.setText(f"✘ {message}")
        set_tone(self.status, "error")
        self._finish_buttons(False)
        self._set_state(State.FAILED)

    def _on_cancelled(self) -> None:
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("cancelled")
        self.status.setText("Cancelled: no file was written.")
        self._finish_buttons(False)
        self._set_state(State.CANCELLED)


class ExportPanel(QWidget):
    """The list of exports; :meth:`start` queues a new one."""

    export_finished = Signal(object)  # ExportRow, in any final state
    message = Signal(str, bool)  # text, is_error: for the main window's status line
    height_wanted = Signal(int)  # the height the rows need changed

    def __init__(self, engine: Any, identity: StaffIdentity, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("exportPanel")
        self._engine = engine
        self._identity = identity
        # Records the export (the primary) when ``engine`` reads from a standby.
        self.write_engine: Callable[[], Engine] | None = None
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(MAX_RUNNING)
        self.rows: list[ExportRow] = []

        self.empty_label = QLabel("No exports yet. File → Export… (Ctrl+E) starts one.", self)
        self.empty_label.setEnabled(False)
        self._list = QWidget(self)
        self._list_layout = QVBoxLayout(self._list)
        self._list_layout.setContentsMargins(0, 0, 0, 0)
        self._list_layout.addWidget(self.empty_label)
        self._list_layout.addStretch(1)
        self._scroll = QScrollArea(self)
        self._scroll.setWidgetResizable(True)
        self._scroll.setWidget(self._list)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self._scroll)
        self._margins = layout.contentsMargins()
        self._wanted = 0
        # Rows change height when they finish (buttons, a wrapped status): refit once the
        # layout has settled.
        self._fit_timer = QTimer(self)
        self._fit_timer.setSingleShot(True)
        self._fit_timer.setInterval(0)
        self._fit_timer.timeout.connect(self._fit)
        self._fit()

    # -- size: only what the rows need -------------------------------------------------------

    def wanted_height(self) -> int:
        """The panel's height that shows its rows whole (up to :data:`MAX_ROWS_SHOWN`)."""
        width = self._scroll.viewport().width()
        shown: list[QWidget] = list(self.rows[:MAX_ROWS_SHOWN]) or [self.empty_label]
        content = 0
        for widget in shown:
            height = widget.heightForWidth(width) if widget.hasHeightForWidth() else -1
            content += max(height, widget.sizeHint().height())
        content += self._list_layout.spacing() * (len(shown) - 1)
        margins = self._margins
        return content + 2 * self._scroll.frameWidth() + margins.top() + margins.bottom()

    def sizeHint(self) -> QSize:
        return QSize(super().sizeHint().width(), self.wanted_height())

    def _fit(self) -> None:
        wanted = self.wanted_height()
        self.setMaximumHeight(wanted)
        self.setMinimumHeight(min(wanted, self._one_row_height()))
        if wanted != self._wanted:
            self._wanted = wanted
            self.updateGeometry()
            self.height_wanted.emit(wanted)

    def _one_row_height(self) -> int:
        first: QWidget = self.rows[0] if self.rows else self.empty_label
        margins = self._margins
        return (
            first.sizeHint().height()
            + 2 * self._scroll.frameWidth()
            + margins.top()
            + margins.bottom()
        )

    def refit(self) -> None:
        self._fit_timer.start()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if event.oldSize().width() != event.size().width():
            self.refit()  # wrapped status lines take another height at another width

    def engine(self) -> Engine:
        return self._engine() if callable(self._engine) else self._engine  # type: ignore[no-any-return]

    def start(self, request: ExportRequest) -> ExportRow:
        engine, identity = self.engine(), self._identity
        # The export event through the primary when the rows come from a standby.
        primary = self.write_engine() if self.write_engine is not None else engine
        writer = {"write_engine": primary} if primary is not engine else {}
        job = Job(
            lambda control: export_csv(
                engine, identity, request, progress=control.progress, token=control.token, **writer
            ),
            name=f"export {request.output.name}",
            pool=self.pool,
        )
        row = ExportRow(request, job, self._list)
        row.state_changed.connect(lambda state: self._on_state(row, state))
        row.dismissed.connect(lambda: self.remove(row))
        self.rows.insert(0, row)
        self._list_layout.insertWidget(0, row)
        self.empty_label.hide()
        self._fit()
        job.start()
        return row

    def remove(self, row: ExportRow) -> None:
        if row.state not in (State.DONE, State.FAILED, State.CANCELLED):
            return
        self.rows.remove(row)
        row.setParent(None)
        row.deleteLater()
        self.empty_label.setVisible(not self.rows)
        self._fit()

    def running(self) -> list[ExportRow]:
        return [r for r in self.rows if r.state in (State.QUEUED, State.RUNNING, State.CANCELLING)]

    def cancel_all(self) -> None:
        for row in self.running():
            row.cancel()

    def _on_state(self, row: ExportRow, state: State) -> None:
        self.refit()
        if state is State.DONE and row.result is not None:
            self.message.emit(f"Exported {row.result.rows:,} rows to {row.result.path}", False)
        elif state is State.FAILED:
            self.message.emit(f"Export of {row.request.output.name} failed: {row.error}", True)
        if state in (State.DONE, State.FAILED, State.CANCELLED):
            self.export_finished.emit(row)


class ExportFeature(QObject):
    """File → Export… (Ctrl+E) and the Exports dock of one window."""

    def __init__(self, host: FeatureHost) -> None:
        window = host.widget()
        super().__init__(window)
        self.host = host
        # The rows from a standby when there is one; the export event on the primary.
        self.panel = ExportPanel(lambda: host.context.read_engine, host.identity)
        self.panel.write_engine = lambda: host.context.write_engine
        self.dock = QDockWidget("Exports", window)
        self.dock.setObjectName("exportsDock")
        self.dock.setWidget(self.panel)
        self.last_folder: Path | None = None
        self.panel.message.connect(lambda text, error: host.show_message(text, error=error))
        self.panel.height_wanted.connect(self._fit_dock)

        self.action = QAction("&Export…", window)
        self.action.setShortcut(QKeySequence("Ctrl+E"))
        self.action.setStatusTip("Export activity to CSV or JSON Lines with an evidence manifest")
        self.action.triggered.connect(self.open_dialog)
        if host.context.read_only:
            # Every export is recorded in the workspace's log; a case file has no log to
            # write to, so evidence-grade exports come from the audit database only.
            self.action.setEnabled(False)
            self.action.setStatusTip("Exports are made from the audit database, not a case file")
        menu = host.menus.file
        first = menu.actions()[0] if menu.actions() else None
        if first is None:
            menu.addAction(self.action)
        else:
            menu.insertAction(first, self.action)
            menu.insertSeparator(first)
        host.add_dock(self.dock)
        host.add_work_source(self.running_work)

    def running_work(self) -> list[RunningWork]:
        return [RunningWork("export", row.job) for row in self.panel.running()]

    def open_dialog(self) -> ExportDialog:
        host = self.host
        try:
            initial = host.current_filter()
        except Exception:
            # A half-typed search must not stop the form from opening; it starts blank.
            log.info("no usable browser filter for the export form", exc_info=True)
            initial = None
        context = host.context
        dialog = ExportDialog(
            context.read_engine,
            host.identity,
            write_engine=context.write_engine,
            initial_filter=initial,
            workspace=host.current_workspace(),
            display_zone=host.display_zone().key,
            folder=self.last_folder,
            parent=host.widget(),
            read_position=context.read_position if context.has_replicas else None,
        )
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.finished.connect(lambda result: self._on_dialog_done(dialog, result))
        dialog.open()
        return dialog

    def _on_dialog_done(self, dialog: ExportDialog, result: int) -> None:
        request = dialog.request()
        if result != QDialog.DialogCode.Accepted or request is None:
            return
        self.last_folder = request.output.parent
        self.panel.start(request)
        if not self.dock.isVisible():
            self.dock.show()
            self._fit_dock()
        self.dock.raise_()

    def _fit_dock(self, *_args: object) -> None:
        """The dock as tall as its rows (and its title), the table keeps the rest."""
        if not self.dock.isVisible() or self.dock.isFloating():
            return
        title = max(0, self.dock.height() - self.panel.height())
        if title == 0:
            title = self.dock.titleBarWidget().height() if self.dock.titleBarWidget() else 0
        height = self.panel.wanted_height() + title
        self.host.widget().resizeDocks([self.dock], [height], Qt.Orientation.Vertical)


def install(host: FeatureHost) -> ExportFeature:
    """File → Export… (Ctrl+E) and the Exports dock."""
    return ExportFeature(host)
