"""Reports laid out on pages with Qt's text engine (QtGui only, no windows): the PDF the
Reports window saves and the command line writes, and the pages the app prints."""

from __future__ import annotations

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QMarginsF, QSizeF
from PySide6.QtGui import (
    QFont,
    QPagedPaintDevice,
    QPageLayout,
    QPageSize,
    QPdfWriter,
    QTextDocument,
    QTextFrame,
    QTextOption,
    QTextTable,
)

from nvadmin.analysis.reports import Report


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
    document.setDefaultFont(_unjoined(document.defaultFont()))
    document.setHtml(report.html(breaks, widths))
    return document


def _unjoined(font: QFont) -> QFont:
    """``font`` with its letters never joined into one glyph: with ligatures, "Griffin" and
    "Springfield" were printed (and read back, searched and copied) as "Gri\ufb03n" and
    "Spring\ufb01eld", so a search of the PDF for a name or a word missed them."""
    for tag in ("liga", "clig", "dlig"):
        font.setFeature(QFont.Tag(tag), 0)
    return font


def paged_document(report: Report, device: QPagedPaintDevice) -> QTextDocument:
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


def page_layout() -> QPageLayout:
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
    writer.setPageLayout(page_layout())
    writer.setResolution(300)
    writer.setTitle(report.title)
    writer.setCreator("nvadmin")
    document = paged_document(report, writer)
    document.print_(writer)
    del writer  # finishes the PDF
    buffer.close()
    return bytes(data.data())
