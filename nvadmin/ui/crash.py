"""Unexpected exceptions: logged, then shown in a friendly dialog instead of vanishing.

Without this, an exception in a Qt slot prints a traceback nobody sees and the click simply
does nothing; one in a worker thread is lost. :func:`install` hooks ``sys.excepthook`` and
``threading.excepthook``: the full traceback goes to the log, and the GUI thread shows a
:class:`CrashDialog` with the log file's location and a "Copy details" button for the ticket.
Exceptions from other threads are handed to the GUI thread through a queued signal.
"""

from __future__ import annotations

import logging
import platform
import re
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QObject, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QStyle,
    QVBoxLayout,
    QWidget,
)

log = logging.getLogger(__name__)

# After this many dialogs in one run, further errors are only logged: a fault that fires on
# every repaint must not bury the user in windows.
MAX_DIALOGS = 3

_PASSWORD_IN_URL = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


def redact(text: str) -> str:
    """Hide passwords in database URLs that may appear in an exception message."""
    return _PASSWORD_IN_URL.sub(r"\1***@", text)


@dataclass(frozen=True)
class CrashReport:
    summary: str  # one line: the exception type and message
    details: str  # what "Copy details" copies: versions, time, thread, traceback
    log_file: Path


def build_report(
    kind: type[BaseException],
    error: BaseException,
    trace: TracebackType | None,
    log_file: Path,
    thread_name: str,
) -> CrashReport:
    from PySide6 import __version__ as pyside_version
    from PySide6.QtCore import qVersion

    from nvadmin import __version__

    message = redact(str(error)) or "(no message)"
    summary = f"{kind.__name__}: {message}".splitlines()[0][:300]
    stack = redact("".join(traceback.format_exception(kind, error, trace)))
    details = "\n".join(
        [
            f"nvadmin {__version__}",
            f"time: {datetime.now(UTC).isoformat(timespec='seconds')}",
            f"thread: {thread_name}",
            f"Python {platform.python_version()}, PySide6 {pyside_version}, Qt {qVersion()}",
            f"system: {platform.platform()}",
            f"frozen bundle: {'yes' if getattr(sys, 'frozen', False) else 'no'}",
            f"log file: {log_file}",
            "",
            stack.rstrip(),
            "",
        ]
    )
    return CrashReport(summary, details, log_file)


class CrashDialog(QDialog):
    """What the user sees: what happened in one line, where the log is, copyable details."""

    def __init__(self, report: CrashReport, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.report = report
        self.setObjectName("crashDialog")
        self.setWindowTitle("nvadmin — unexpected problem")
        self.setMinimumWidth(560)

        icon = QLabel(self)
        style = self.style()
        icon.setPixmap(
            style.standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning).pixmap(48, 48)
        )
        icon.setAlignment(Qt.AlignmentFlag.AlignTop)
        headline = QLabel("<b>Something went wrong inside nvadmin.</b>", self)
        explanation = QLabel(
            "The action you were doing may not have finished. The Activity Log itself is "
            "append-only, so recorded events cannot have been damaged. You can keep working; "
            "if this happens again, send the details to your nvadmin administrator.",
            self,
        )
        explanation.setWordWrap(True)
        self.summary_label = QLabel(report.summary, self)
        self.summary_label.setObjectName("crashSummary")
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.log_label = QLabel(f"Details were written to the log: {report.log_file}", self)
        self.log_label.setObjectName("crashLogFile")
        self.log_label.setWordWrap(True)
        self.log_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        notice = QLabel(
            "The details can include names or identifiers from the data you were viewing: "
            "share them only through your organisation's support channel.",
            self,
        )
        notice.setWordWrap(True)
        font = notice.font()
        font.setItalic(True)
        notice.setFont(font)

        self.details_view = QPlainTextEdit(report.details, self)
        self.details_view.setObjectName("crashDetails")
        self.details_view.setReadOnly(True)
        self.details_view.setAccessibleName("Problem details")
        self.details_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.details_view.setMinimumHeight(180)
        self.details_view.hide()

        buttons = QDialogButtonBox(self)
        self.details_button = buttons.addButton(
            "Show details", QDialogButtonBox.ButtonRole.ActionRole
        )
        self.copy_button = buttons.addButton("Copy details", QDialogButtonBox.ButtonRole.ActionRole)
        self.folder_button = buttons.addButton(
            "Show log folder", QDialogButtonBox.ButtonRole.ActionRole
        )
        self.quit_button = buttons.addButton("Quit nvadmin", QDialogButtonBox.ButtonRole.RejectRole)
        self.continue_button: QPushButton = buttons.addButton(
            "Continue", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.continue_button.setDefault(True)
        self.details_button.clicked.connect(self.toggle_details)
        self.copy_button.clicked.connect(self.copy_details)
        self.folder_button.clicked.connect(self.show_log_folder)
        self.quit_button.clicked.connect(self.quit_application)
        self.continue_button.clicked.connect(self.accept)

        text = QVBoxLayout()
        for widget in (headline, explanation, self.summary_label, self.log_label, notice):
            text.addWidget(widget)
        top = QHBoxLayout()
        top.addWidget(icon)
        top.addLayout(text, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.details_view, 1)
        layout.addWidget(buttons)

    def toggle_details(self) -> None:
        visible = not self.details_view.isVisible()
        self.details_view.setVisible(visible)
        self.details_button.setText("Hide details" if visible else "Show details")
        self.adjustSize()

    def copy_details(self) -> None:
        QGuiApplication.clipboard().setText(self.report.details)
        self.copy_button.setText("Copied")

    def show_log_folder(self) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.report.log_file.parent)))

    def quit_application(self) -> None:
        self.reject()
        app = QApplication.instance()
        if app is not None:
            app.exit(1)


class CrashReporter(QObject):
    """Owns the hooks; lives in the GUI thread so its slot always runs there."""

    reported = Signal(object)  # CrashReport, queued to the GUI thread

    def __init__(self, log_file: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.log_file = log_file
        self.dialogs_shown = 0
        self.errors_reported = 0
        # False where nobody can answer a dialog (``nvadmin --smoke``): errors are only
        # logged and counted, and ``reported`` still fires.
        self.show_dialogs = True
        self.last_dialog: CrashDialog | None = None
        self._showing = False
        self._previous_excepthook: Callable[..., object] | None = None
        self._previous_threading_hook: Callable[..., object] | None = None
        self.reported.connect(self._show, Qt.ConnectionType.QueuedConnection)

    def install(self) -> None:
        self._previous_excepthook = sys.excepthook
        self._previous_threading_hook = threading.excepthook
        sys.excepthook = self.excepthook
        threading.excepthook = self.threading_excepthook

    def uninstall(self) -> None:
        if self._previous_excepthook is not None:
            sys.excepthook = self._previous_excepthook  # type: ignore[assignment]
        if self._previous_threading_hook is not None:
            threading.excepthook = self._previous_threading_hook  # type: ignore[assignment]

    def excepthook(
        self,
        kind: type[BaseException],
        error: BaseException,
        trace: TracebackType | None,
    ) -> None:
        self.handle(kind, error, trace, threading.current_thread().name)

    def threading_excepthook(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_value is None or args.exc_type is SystemExit:
            return
        name = args.thread.name if args.thread is not None else "unknown thread"
        self.handle(args.exc_type, args.exc_value, args.exc_traceback, name)

    def handle(
        self,
        kind: type[BaseException],
        error: BaseException,
        trace: TracebackType | None,
        thread_name: str,
    ) -> None:
        if issubclass(kind, KeyboardInterrupt) and self._previous_excepthook is not None:
            self._previous_excepthook(kind, error, trace)
            return
        log.error("unexpected error in %s", thread_name, exc_info=(kind, error, trace))
        try:
            report = build_report(kind, error, trace, self.log_file, thread_name)
        except Exception:  # the report must never raise from inside the hook
            log.exception("could not build the crash report")
            return
        self.reported.emit(report)

    @Slot(object)
    def _show(self, report: CrashReport) -> None:
        self.errors_reported += 1
        if not self.show_dialogs:
            return
        if self._showing or self.dialogs_shown >= MAX_DIALOGS:
            log.info("not showing another problem dialog: %s", report.summary)
            return
        if QApplication.instance() is None or QApplication.closingDown():
            return
        self._showing = True
        self.dialogs_shown += 1
        try:
            # No parent: the window that failed may be the one being torn down.
            dialog = CrashDialog(report)
            dialog.setWindowModality(Qt.WindowModality.ApplicationModal)
            self.last_dialog = dialog
            dialog.exec()
        finally:
            self._showing = False


_reporter: CrashReporter | None = None


def install(log_file: Path) -> CrashReporter:
    """Show unexpected exceptions from now on (call once the QApplication exists)."""
    global _reporter
    if _reporter is not None:
        _reporter.uninstall()
    _reporter = CrashReporter(log_file)
    _reporter.install()
    return _reporter
