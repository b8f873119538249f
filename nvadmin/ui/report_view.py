"""Reports in the app: asking for one, showing it, printing it, saving it as PDF and CSV."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from PySide6.QtCore import QDate, QSize, Qt, Slot
from PySide6.QtGui import QTextOption
from PySide6.QtPrintSupport import QPrintDialog, QPrinter
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from nvadmin.analysis.reports import PATIENT_ACCESS, Report
from nvadmin.export.requests import DISCLOSURES
from nvadmin.files.atomic import AtomicFile
from nvadmin.pdf import page_layout, paged_document, pdf_bytes
from nvadmin.query.localtime import day_range
from nvadmin.ui.date_field import DateField
from nvadmin.ui.filter_bar import PATIENT_EXAMPLE
from nvadmin.ui.form_dialog import FormDialog
from nvadmin.ui.placement import fit_on_screen
from nvadmin.workers.jobs import Job

log = logging.getLogger(__name__)
# The start of a saved report's suggested file name, per kind of report.
_FILE_KINDS = {PATIENT_ACCESS: "patient-access", DISCLOSURES: "disclosures"}
# A report window's size where the screen has room for it.
WANTED_SIZE = QSize(1200, 800)


class ReportRequestDialog(FormDialog):
    """Who or what to report on, and over which days (inclusive, in the workspace's zone)."""

    def __init__(
        self,
        kind: str,
        *,
        workspace_label: str,
        zone: str,
        subject: str = "",
        first_day: date | None = None,
        last_day: date | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent, title=kind, name="reportRequestDialog", error_name="reportError")
        self.kind = kind
        self.zone = zone
        form = QFormLayout()
        form.addRow("Workspace:", QLabel(workspace_label, self))
        self.subject = QLineEdit(subject, self)
        self.subject.setObjectName("reportSubject")
        if kind == PATIENT_ACCESS:
            self.subject.setPlaceholderText(f"patient id, e.g. {PATIENT_EXAMPLE}")
            form.addRow("&Patient:", self.subject)
        else:
            self.subject.setPlaceholderText("team member e-mail")
            form.addRow("&Team member:", self.subject)
        today = date.today()
        # Typed days are the days used (a QDateEdit turned a typed 2025-01-01 into 2026-01-01).
        self.first = DateField(self)
        self.last = DateField(self)
        for edit, value in (
            (self.first, first_day or today - timedelta(days=30)),
            (self.last, last_day or today),
        ):
            edit.setDate(QDate(value.year, value.month, value.day))
        form.addRow("&From (day included):", self.first)
        form.addRow("T&o (day included):", self.last)
        self.subject.setAccessibleName("Patient id" if kind == PATIENT_ACCESS else "Team member")
        self.first.setAccessibleName("From day, included")
        self.last.setAccessibleName("To day, included")
        form.addRow("Time zone:", QLabel(zone, self))
        self.add(form)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("P&roduce report")

    def submit(self) -> None:
        subject = self.subject.text().strip()
        if not subject:
            self.show_error("Say who or what the report is about.", self.subject)
            return
        if self.kind != PATIENT_ACCESS and "@" not in subject:
            # A name or the start of an address matches several people in the search.
            self.show_error("Give the team member's whole e-mail address.", self.subject)
            return
        for edit, which in ((self.first, "first"), (self.last, "last")):
            if not edit.is_day():
                self.show_error(f"The {which} day is not a day: give it as YYYY-MM-DD.", edit)
                return
        if self.last.date() < self.first.date():
            self.show_error("The last day is before the first day.", self.last)
            return
        self.accept()

    def days(self) -> tuple[date, date]:
        return self.first.date().toPython(), self.last.date().toPython()  # type: ignore[return-value]

    def bounds(self) -> tuple[datetime, datetime]:
        """The days as a [start, end) range of instants in the dialog's zone."""
        first, last = self.days()
        return day_range(first, last, self.zone)


class ReportView(QDialog):
    """A produced report: read it, print it, save it as PDF or CSV."""

    def __init__(self, report: Report, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.report = report
        self.setObjectName("reportView")
        self.setWindowTitle(report.title)
        self.setWindowFlag(Qt.WindowType.WindowMaximizeButtonHint, True)
        self.browser = QTextBrowser(self)
        self.browser.setObjectName("reportBrowser")
        self.browser.setAccessibleName(report.title)
        # Break lines between words only: an e-mail address is read whole, its column as
        # wide as the address (Qt's default breaks a word anywhere to make columns narrow).
        self.browser.setWordWrapMode(QTextOption.WrapMode.WordWrap)
        self.browser.setHtml(report.html())
        self.print_button = QPushButton("&Print…", self)
        self.pdf_button = QPushButton("Save as P&DF…", self)
        self.csv_button = QPushButton("Save as &CSV…", self)
        close = QPushButton("Close", self)
        self.print_button.clicked.connect(self.print_report)
        self.pdf_button.clicked.connect(lambda: self.save("pdf"))
        self.csv_button.clicked.connect(lambda: self.save("csv"))
        close.clicked.connect(self.close)
        self.status = QLabel(f"{report.row_count:,} {report.counted}", self)
        buttons = QHBoxLayout()
        buttons.addWidget(self.status, 1)
        for button in (self.print_button, self.pdf_button, self.csv_button, close):
            # No default button: Return (reading, or after a search of the text) printed.
            button.setAutoDefault(False)
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser, 1)
        layout.addLayout(buttons)
        self.last_folder: Path | None = None
        self._actions = (self.print_button, self.pdf_button, self.csv_button)
        self.job: Job | None = None  # the last save or printout
        self._printer: Any = None
        # What the report would like, cut to the screen: the buttons below it stay on it.
        fit_on_screen(self, WANTED_SIZE)

    def suggested_name(self, suffix: str) -> str:
        kind = _FILE_KINDS.get(self.report.kind, "user-activity")
        subject = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.report.subject)
        return f"{kind}-{subject[:60]}.{suffix}"

    def save(self, fmt: str, path: Path | None = None) -> Job | None:
        """Save the report as ``fmt`` (asking where unless ``path`` is given). The file is
        written and put on record by a background job (the record waits on the database);
        None when nothing is to be saved."""
        if path is None:
            folder = self.last_folder or Path.home()
            chosen, _ = QFileDialog.getSaveFileName(
                self,
                "Save report as PDF" if fmt == "pdf" else "Save report as CSV",
                str(folder / self.suggested_name(fmt)),
                "PDF (*.pdf)" if fmt == "pdf" else "CSV (*.csv)",
            )
            if not chosen:
                return None
            path = Path(chosen)
        if path.suffix.lower() != f".{fmt}":
            path = path.with_name(path.name + f".{fmt}")
            # The file chooser asked about the name as typed, not about this one.
            if path.exists() and not self._may_replace(path):
                self.status.setText(f"Not saved: {path.name} was kept.")
                return None
        data = pdf_bytes(self.report) if fmt == "pdf" else self.report.csv_bytes()
        report, target = self.report, path

        def work(_control: object) -> Path:
            with AtomicFile(target) as out:
                out.write(data)
                out.finish()
                # On record before the file gets its name: a saved report is an export of
                # the log, and none leaves unrecorded.
                report.record_export(
                    {"file": target.name, "format": fmt, "bytes": out.size, "sha256": out.sha256}
                )
                out.publish()
            return target

        return self._start(Job(work, name="report-save"), f"Saving {path.name}…", self._saved)

    @Slot(object)
    def _saved(self, path: Path) -> None:
        self.last_folder = path.parent
        self.status.setText(f"Saved {path}")
        log.info("report %s saved to %s", self.report.title, path)

    def _may_replace(self, path: Path) -> bool:
        answer = QMessageBox.question(
            self,
            "Replace file",
            f"{path} already exists. Replace it?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def print_report(self, printer: Any = None) -> Job | None:
        """Print the report (asking for the printer unless ``printer`` is given), once a
        background job has put the printout on record; None when nothing is to be printed."""
        if printer is None:
            printer = QPrinter(QPrinter.PrinterMode.HighResolution)
            printer.setPageLayout(page_layout())
            dialog = QPrintDialog(printer, self)
            if dialog.exec() != QDialog.DialogCode.Accepted:
                return None
        report, name = self.report, printer.printerName()

        def work(_control: object) -> None:
            # A printout is an export of the log too: on record before any page is sent.
            report.record_export({"format": "print", "printer": name})

        self._printer = printer
        return self._start(Job(work, name="report-print"), "Putting the printout on record…",
                           self._print)  # fmt: skip

    @Slot(object)
    def _print(self, _result: object) -> None:
        paged_document(self.report, self._printer).print_(self._printer)
        self.status.setText("Sent to the printer")

    def _start(self, job: Job, doing: str, done: Callable[[Any], None]) -> Job:
        """Run ``job`` with the buttons that would start another one off: ``done`` on success,
        its reason in the status line otherwise. Slots of this window: a window closed
        meanwhile is no longer told (the job still finishes what it started)."""
        for button in self._actions:
            button.setEnabled(False)
        self.status.setText(doing)
        job.succeeded.connect(done)
        job.failed.connect(self._failed)
        job.finished.connect(self._idle)
        self.job = job
        job.start()
        return job

    @Slot(str)
    def _failed(self, message: str) -> None:
        doing = "saved" if self.job is not None and self.job.name == "report-save" else "printed"
        log.warning("report %s not %s: %s", self.report.title, doing, message)
        self.status.setText(f"Not {doing}: {message}.")

    @Slot()
    def _idle(self) -> None:
        for button in self._actions:
            button.setEnabled(True)
