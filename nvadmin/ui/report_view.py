"""Reports in the app: asking for one, showing it, printing it, saving it as PDF and CSV."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from PySide6.QtCore import QBuffer, QByteArray, QDate, QIODevice, QMarginsF, QSizeF, Qt
from PySide6.QtGui import (
    QPagedPaintDevice,
    QPageLayout,
    QPageSize,
    QPdfWriter,
    QTextDocument,
    QTextFrame,
    QTextOption,
    QTextTable,
)
from PySide6.QtPrintSupport import QPrintDialog, QPrinter
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from nvadmin.audit.localtime import day_range
from nvadmin.audit.reports import PATIENT_ACCESS, Report
from nvadmin.errors import UserError
from nvadmin.export.atomic import write_file
from nvadmin.ui.date_field import DateField
from nvadmin.ui.form_dialog import FormDialog

log = logging.getLogger(__name__)


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
            self.subject.setPlaceholderText("patient id, e.g. P-10234")
            form.addRow("Patient:", self.subject)
        else:
            self.subject.setPlaceholderText("team member e-mail")
            form.addRow("Team member:", self.subject)
        today = date.today()
        # Typed days are the days used (a QDateEdit turned a typed 2025-01-01 into 2026-01-01).
        self.first = DateField(self)
        self.last = DateField(self)
        for edit, value in (
            (self.first, first_day or today - timedelta(days=30)),
            (self.last, last_day or today),
        ):
            edit.setDate(QDate(value.year, value.month, value.day))
        form.addRow("From (day included):", self.first)
        form.addRow("To (day included):", self.last)
        self.subject.setAccessibleName("Patient id" if kind == PATIENT_ACCESS else "Team member")
        self.first.setAccessibleName("From day, included")
        self.last.setAccessibleName("To day, included")
        form.addRow("Time zone:", QLabel(zone, self))
        self.add(form)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Produce report")

    def submit(self) -> None:
        if not self.subject.text().strip():
            self.show_error("Say who or what the report is about.", self.subject)
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


def _document(
    report: Report,
    breaks: dict[int, set[int]] | None = None,
    widths: dict[int, list[float]] | None = None,
) -> QTextDocument:
    document = QTextDocument()
    document.setDocumentMargin(0)
    # Wrap at spaces only: an IP address, an e-mail or an id is never broken inside.
    option = QTextOption()
    option.setWrapMode(QTextOption.WrapMode.WordWrap)
    document.setDefaultTextOption(option)
    document.setHtml(report.html(breaks, widths))
    return document


def _paged_document(report: Report, device: QPagedPaintDevice) -> QTextDocument:
    """The report laid out for ``device`` (a PDF or a printer) and its pages, not for the
    screen (else the page is filled to a third of its width and every column wraps).

    Qt lays out each table cell on its own, so a page break can cut a two-line row (its first
    line on one page, its second on the next; ``page-break-inside`` on a row is not honoured).
    So the document is laid out, measured, and laid out again with each row that a page
    boundary would cut starting the next page (the table continues there under its header,
    with the column widths measured in the first layout), until no row is cut."""
    breaks: dict[int, set[int]] = {}
    widths: dict[int, list[float]] | None = None
    for _attempt in range(8):
        document = _document(report, breaks, widths)
        document.documentLayout().setPaintDevice(device)
        document.setPageSize(QSizeF(device.width(), device.height()))
        tables = _row_tables(document, breaks)
        if widths is None:
            widths = {n: _column_shares(document, parts[0][0]) for n, parts in tables.items()}
        cut = _cut_rows(document, tables)
        if not cut:
            break
        for n, row in cut:
            breaks.setdefault(n, set()).add(row)
    return document


_Parts = dict[int, list[tuple[QTextTable, int]]]


def _row_tables(document: QTextDocument, breaks: dict[int, set[int]]) -> _Parts:
    """The tables with a header row, numbered as in ``Report.html``: for each, its parts (one
    more after each break) with the index of each part's first row in the whole table."""
    found: list[QTextTable] = []

    def walk(frame: QTextFrame) -> None:
        for child in frame.childFrames():
            if isinstance(child, QTextTable) and child.format().headerRowCount() > 0:
                found.append(child)
            walk(child)

    walk(document.rootFrame())
    tables: _Parts = {}
    index = 0
    while index < len(found):
        starts = sorted({0, *(b for b in breaks.get(len(tables), ()) if b > 0)})
        tables[len(tables)] = list(zip(found[index : index + len(starts)], starts, strict=False))
        index += len(starts)
    return tables


def _cell_left(document: QTextDocument, table: QTextTable, column: int) -> float:
    block = table.cellAt(0, column).firstCursorPosition().block()
    return float(document.documentLayout().blockBoundingRect(block).left())


def _column_shares(document: QTextDocument, table: QTextTable) -> list[float]:
    """Each column's share of the table's width in percent, as laid out."""
    lefts = [_cell_left(document, table, c) for c in range(table.columns())]
    right = document.documentLayout().frameBoundingRect(table).right()
    edges = [*lefts[1:], right]
    total = right - lefts[0]
    if total <= 0:
        return []
    return [100 * (b - a) / total for a, b in zip(lefts, edges, strict=True)]


def _row_span(document: QTextDocument, table: QTextTable, row: int) -> tuple[float, float]:
    """The top of the row's first line and the bottom of its last, in document coordinates."""
    layout = document.documentLayout()
    top, bottom = float("inf"), 0.0
    for column in range(table.columns()):
        cell = table.cellAt(row, column)
        first = layout.blockBoundingRect(cell.firstCursorPosition().block())
        last = layout.blockBoundingRect(cell.lastCursorPosition().block())
        top = min(top, first.top())
        bottom = max(bottom, last.bottom())
    return top, bottom


def _cut_rows(document: QTextDocument, tables: _Parts) -> list[tuple[int, int]]:
    """The rows (table number, row in the whole table) that cross a page boundary and fit on a
    page. After the first, later rows are placed where they will be once it moves (moved down
    by as much as it is), so one pass finds most; the next layout checks."""
    page = document.pageSize().height()
    cut: list[tuple[int, int]] = []
    shift = 0.0
    for n, parts in tables.items():
        for table, first in parts:
            header_top, _header_bottom = _row_span(document, table, 0)
            for row in range(1, table.rows()):
                top, bottom = _row_span(document, table, row)
                if row == 1:
                    header = top - header_top
                top, bottom = top + shift, bottom + shift
                if bottom - top >= page or int(top // page) == int((bottom - 0.5) // page):
                    continue
                cut.append((n, first + row - 1))
                moved = (top // page + 1) * page + header
                shift += moved - top
    return cut


def _layout() -> QPageLayout:
    return QPageLayout(
        QPageSize(QPageSize.PageSizeId.A4),
        QPageLayout.Orientation.Landscape,
        QMarginsF(12, 12, 12, 12),
        QPageLayout.Unit.Millimeter,
    )


def pdf_bytes(report: Report) -> bytes:
    """The report as a PDF, rendered in memory (it holds PHI: it is written only once, 0600)."""
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    writer = QPdfWriter(buffer)
    writer.setPageLayout(_layout())
    writer.setResolution(300)
    writer.setTitle(report.title)
    writer.setCreator("nvadmin")
    document = _paged_document(report, writer)
    document.print_(writer)
    del writer  # finishes the PDF
    buffer.close()
    return bytes(data.data())


class ReportView(QDialog):
    """A produced report: read it, print it, save it as PDF or CSV."""

    def __init__(self, report: Report, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.report = report
        self.setObjectName("reportView")
        self.setWindowTitle(report.title)
        self.setWindowFlag(Qt.WindowType.WindowMaximizeButtonHint, True)
        self.resize(1200, 800)
        self.browser = QTextBrowser(self)
        self.browser.setObjectName("reportBrowser")
        self.browser.setAccessibleName(report.title)
        self.browser.setHtml(report.html())
        self.print_button = QPushButton("&Print…", self)
        self.pdf_button = QPushButton("Save as P&DF…", self)
        self.csv_button = QPushButton("Save as &CSV…", self)
        close = QPushButton("Close", self)
        self.print_button.clicked.connect(self.print_report)
        self.pdf_button.clicked.connect(lambda: self.save("pdf"))
        self.csv_button.clicked.connect(lambda: self.save("csv"))
        close.clicked.connect(self.close)
        self.status = QLabel(f"{report.row_count:,} events", self)
        buttons = QHBoxLayout()
        buttons.addWidget(self.status, 1)
        for button in (self.print_button, self.pdf_button, self.csv_button, close):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser, 1)
        layout.addLayout(buttons)
        self.last_folder: Path | None = None

    def suggested_name(self, suffix: str) -> str:
        kind = "patient-access" if self.report.kind == PATIENT_ACCESS else "user-activity"
        subject = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.report.subject)
        return f"{kind}-{subject[:60]}.{suffix}"

    def save(self, fmt: str, path: Path | None = None) -> Path | None:
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
        try:
            data = pdf_bytes(self.report) if fmt == "pdf" else self.report.csv_bytes()
            write_file(path, data)
        except UserError as error:
            self.status.setText(str(error))
            return None
        self.last_folder = path.parent
        self.status.setText(f"Saved {path}")
        log.info("report %s saved to %s", self.report.title, path)
        return path

    def print_report(self, printer: Any = None) -> bool:
        if printer is None:
            printer = QPrinter(QPrinter.PrinterMode.HighResolution)
            printer.setPageLayout(_layout())
            dialog = QPrintDialog(printer, self)
            if dialog.exec() != QDialog.DialogCode.Accepted:
                return False
        _paged_document(self.report, printer).print_(printer)
        self.status.setText("Sent to the printer")
        return True
