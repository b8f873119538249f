"""The report window, opened from the Tools menu as a reviewer does: it fits the screen with
its buttons on it, and e-mail addresses are read whole, never broken across lines."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QTextDocument
from PySide6.QtPrintSupport import QPrinter
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox, QPushButton, QWidget
from sqlalchemy import select

from nvadmin.context import Context
from nvadmin.db.engine import make_engine, sqlite_url
from nvadmin.db.models import ActivityEvent
from nvadmin.identity import Role, StaffIdentity
from nvadmin.paths import Paths
from nvadmin.ui.main_window import MainWindow
from nvadmin.ui.report_view import ReportRequestDialog, ReportView
from tests.factories import add_workspace, draft, write
from tests.gui.test_first_hour import Modals
from tests.gui.windows import open_main_window

ALT = Qt.KeyboardModifier.AltModifier
REVIEWER = StaffIdentity(1, "casey@nvadmin.example", "Casey Review", Role.COMPLIANCE)
PATIENT = "P0300404"
EMAIL = re.compile(r"\S+@\S+")
PEOPLE = [
    ("valentina.murphy-oconnell@alpine-dermatology.example", "Valentina Murphy"),
    ("ximena.ruiz@alpine-dermatology.example", "Ximena Ruiz"),
    ("esther.obrien@alpine-dermatology.example", "Esther O'Brien"),
]


@pytest.fixture
def context(sqlite_db_url: str) -> Iterator[Context]:
    ctx = Context(Paths.from_environment(), sqlite_db_url, is_default_database=False)
    workspace = add_workspace(ctx.engine)
    now = datetime.now(UTC)
    events = [
        draft(
            occurred_at=now - timedelta(days=3, hours=i),
            email=email,
            name=name,
            patient_id=PATIENT,
            resource_type="chart",
            resource_id=f"chart-{PATIENT}",
        )
        for i, (email, name) in enumerate(PEOPLE * 4)
    ]
    write(ctx.engine, workspace, sorted(events, key=lambda e: e.occurred_at))
    yield ctx
    ctx.dispose()


def press(
    qtbot, key: Qt.Key, modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier
) -> None:  # type: ignore[no-untyped-def]
    """One key, into the open menu or else the widget that has focus, as the keyboard does."""
    widget = QApplication.activePopupWidget() or QApplication.focusWidget()
    assert widget is not None
    qtbot.keyClick(widget, key, modifiers)


def open_request(qtbot, window: MainWindow, item: Qt.Key) -> ReportRequestDialog:  # type: ignore[no-untyped-def]
    """Tools → the report ``item`` names (P: patient access, U: user activity), its dialog
    open with the subject's field focused."""
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    window.table.setFocus()
    press(qtbot, Qt.Key.Key_T, ALT)
    qtbot.waitUntil(lambda: QApplication.activePopupWidget() is not None)
    press(qtbot, item)
    qtbot.waitUntil(lambda: bool(window.findChildren(ReportRequestDialog)))
    request = window.findChildren(ReportRequestDialog)[0]
    request.activateWindow()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is request.subject)
    return request


def open_patient_report(qtbot, window: MainWindow) -> ReportView:  # type: ignore[no-untyped-def]
    """Tools → Patient access report…, the patient typed, Return."""
    request = open_request(qtbot, window, Qt.Key.Key_P)
    qtbot.keyClick(request.subject, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(request.subject, PATIENT)
    qtbot.keyClick(request.subject, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: bool(window.findChildren(ReportView)))
    view = window.findChildren(ReportView)[0]
    qtbot.waitUntil(view.isVisible)
    return view


def broken_addresses(document: QTextDocument) -> list[str]:
    """The e-mail addresses the layout split across two lines."""
    broken = []
    block = document.begin()
    while block.isValid():
        layout = block.layout()
        ends = {
            layout.lineAt(i).textStart() + layout.lineAt(i).textLength()
            for i in range(layout.lineCount() - 1)
        }
        for match in EMAIL.finditer(block.text()):
            if any(match.start() < end < match.end() for end in ends):
                broken.append(match.group())
        block = block.next()
    return broken


def test_patient_report_fits_the_screen_with_its_buttons(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    window = open_main_window(qtbot, context, REVIEWER)
    view = open_patient_report(qtbot, window)
    assert view.report.row_count == len(PEOPLE) * 4
    area = view.screen().availableGeometry()
    assert area.contains(view.frameGeometry()), (view.frameGeometry(), area)
    buttons = [b for b in view.findChildren(QPushButton) if b.isVisible()]
    assert {b.text() for b in buttons} >= {"&Print…", "Save as P&DF…", "Save as &CSV…", "Close"}
    for button in buttons:
        where = QRect(button.mapTo(view, button.rect().topLeft()), button.size())
        assert view.rect().contains(where), (button.text(), where, view.rect())
    # Every address whole (the text browser's default broke them to narrow their column).
    document = view.browser.document()
    document.setTextWidth(view.browser.viewport().width())
    shown = view.browser.toPlainText().replace("\u2011", "-")  # non-breaking hyphens
    assert all(email in shown for email, _name in PEOPLE)
    assert broken_addresses(document) == []
    press(qtbot, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not view.isVisible())


def exports_on_record(context: Context) -> list[dict]:
    """The details of every ``activity_log.export`` event a report left behind."""
    with context.engine.connect() as connection:
        details = connection.execute(
            select(ActivityEvent.details).where(ActivityEvent.action == "activity_log.export")
        ).scalars()
        return [d for d in (json.loads(text) for text in details) if d.get("kind") == "report"]


def save_with_keys(qtbot, view: ReportView, key: Qt.Key, target: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Alt+<key> in the report window; the file chooser answers ``target``."""
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *_a, **_k: (str(target), ""))
    view.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is view)
    qtbot.keyClick(view.focusWidget() or view, key, ALT)


def test_a_saved_report_is_an_export_on_record(  # type: ignore[no-untyped-def]
    qtbot, context: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Exporting the log is itself logged: a report saved as CSV or PDF is an export of the
    # events it shows, recorded with the file's name, size and SHA-256.
    window = open_main_window(qtbot, context, REVIEWER)
    view = open_patient_report(qtbot, window)
    for key, name in ((Qt.Key.Key_C, "p.csv"), (Qt.Key.Key_D, "p.pdf")):
        target = tmp_path / name
        save_with_keys(qtbot, view, key, target, monkeypatch)
        # Saved, and its buttons back (they are off while a save runs)
        qtbot.waitUntil(lambda _t=target: view.status.text() == f"Saved {_t}")
        qtbot.waitUntil(view.pdf_button.isEnabled)
    recorded = exports_on_record(context)
    assert [(r["file"], r["format"]) for r in recorded] == [("p.csv", "csv"), ("p.pdf", "pdf")]
    for facts in recorded:
        data = (tmp_path / facts["file"]).read_bytes()
        assert facts["sha256"] == hashlib.sha256(data).hexdigest()
        assert facts["bytes"] == len(data) and facts["rows"] == len(PEOPLE) * 4
        assert facts["report"] == "Patient access report"
        assert facts["filter"]["terms"] == [{"field": "patient", "value": PATIENT, "negate": False}]
    view.close()


def test_a_report_that_cannot_be_put_on_record_is_not_saved(  # type: ignore[no-untyped-def]
    qtbot, context: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = open_main_window(qtbot, context, REVIEWER)
    view = open_patient_report(qtbot, window)
    # The log's database is gone by the time the reviewer saves (a removed file's folder).
    (tmp_path / "gone").mkdir()
    gone = make_engine(sqlite_url(tmp_path / "gone" / "audit.sqlite3"))
    (tmp_path / "gone").rmdir()
    assert view.report.recorder is not None
    view.report.recorder = replace(view.report.recorder, engine=gone)
    target = tmp_path / "p.csv"
    save_with_keys(qtbot, view, Qt.Key.Key_C, target, monkeypatch)
    qtbot.waitUntil(lambda: view.status.text().startswith("Not saved"))
    assert "Activity Log" in view.status.text() and "\n" not in view.status.text()
    # Nothing left behind, not even the temporary file.
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith("audit.sqlite3")] == []
    gone.dispose()
    view.close()


def test_a_user_report_asks_for_a_whole_address(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    # "valentina" is the start of a name: the search would match every Valentina, and the
    # report would put their activity under one person's name.
    window = open_main_window(qtbot, context, REVIEWER)
    request = open_request(qtbot, window, Qt.Key.Key_U)
    # over what it starts from (the selected row's address)
    qtbot.keyClick(request.subject, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(request.subject, "valentina")
    qtbot.keyClick(request.subject, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "whole e-mail address" in request.error.text())
    assert request.isVisible() and not window.findChildren(ReportView)
    qtbot.keyClicks(request.subject, ".murphy-oconnell@alpine-dermatology.example")
    qtbot.keyClick(request.subject, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: bool(window.findChildren(ReportView)))
    view = window.findChildren(ReportView)[0]
    qtbot.waitUntil(view.isVisible)
    assert view.report.row_count == 4
    view.close()


@pytest.mark.parametrize(
    ("answer", "kept"),
    [(Qt.Key.Key_Escape, True), (Qt.Key.Key_Space, False)],
    ids=["kept", "replaced"],
)
def test_a_name_typed_without_its_extension_does_not_replace_a_file_unasked(  # type: ignore[no-untyped-def]
    qtbot,
    context: Context,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    answer: Qt.Key,
    kept: bool,
) -> None:
    # "findings" typed in the file chooser is saved as findings.csv, which the chooser never
    # asked about: an older findings.csv was replaced without a word.
    older = tmp_path / "findings.csv"
    older.write_text("the reviewer's own notes\n")
    window = open_main_window(qtbot, context, REVIEWER)
    view = open_patient_report(qtbot, window)

    def reply(box: QWidget) -> None:
        assert "findings.csv already exists" in box.text()  # type: ignore[attr-defined]
        if answer == Qt.Key.Key_Escape:
            qtbot.keyClick(box, answer)
            return
        # From "No" (the default) back to "Yes", and press it.
        qtbot.keyClick(box.focusWidget(), Qt.Key.Key_Backtab, Qt.KeyboardModifier.ShiftModifier)
        assert box.focusWidget().text() == "&Yes"  # type: ignore[attr-defined]
        qtbot.keyClick(box.focusWidget(), answer)

    modals = Modals(qtbot, (QMessageBox, reply))
    save_with_keys(qtbot, view, Qt.Key.Key_C, tmp_path / "findings", monkeypatch)
    qtbot.waitUntil(lambda: view.status.text().startswith(("Saved", "Not saved")))
    modals.timer.stop()
    assert modals.answered == ["QMessageBox"]
    assert (older.read_text() == "the reviewer's own notes\n") is kept
    assert view.status.text().startswith("Not saved" if kept else "Saved")
    assert len(exports_on_record(context)) == (0 if kept else 1)
    view.close()


def test_a_printed_report_is_an_export_on_record(qtbot, context: Context, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    window = open_main_window(qtbot, context, REVIEWER)
    view = open_patient_report(qtbot, window)
    # The print dialog's answer: a printer writing to a file.
    printer = QPrinter()
    printer.setOutputFormat(QPrinter.OutputFormat.PdfFormat)
    printer.setOutputFileName(str(tmp_path / "printed.pdf"))
    printing = view.print_report(printer)
    assert printing is not None
    qtbot.waitUntil(lambda: not printing.running)
    assert view.status.text() == "Sent to the printer"
    assert (tmp_path / "printed.pdf").read_bytes().startswith(b"%PDF")
    recorded = exports_on_record(context)
    assert [(r["format"], r["rows"]) for r in recorded] == [("print", len(PEOPLE) * 4)]
    view.close()


def test_a_save_waiting_for_the_log_leaves_the_window_working(  # type: ignore[no-untyped-def]
    qtbot, context: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Putting the save on record waits for the log's database (here another writer holds it;
    # a busy or far server does the same). It waited on the window's own thread: the window
    # froze until the database answered, up to its 30 s busy timeout.
    window = open_main_window(qtbot, context, REVIEWER)
    view = open_patient_report(qtbot, window)
    database = context.engine.url.database
    assert database is not None
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        target = tmp_path / "p.csv"
        save_with_keys(qtbot, view, Qt.Key.Key_C, target, monkeypatch)
        qtbot.waitUntil(lambda: view.status.text() == "Saving p.csv…")
        assert not view.csv_button.isEnabled() and not target.exists()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    qtbot.waitUntil(lambda: view.status.text() == f"Saved {target}")
    assert view.csv_button.isEnabled() and len(exports_on_record(context)) == 1
    view.close()


def test_return_in_a_report_prints_nothing(  # type: ignore[no-untyped-def]
    qtbot, context: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Print was the window's default button: Return while reading opened the print dialog.
    asked: list[str] = []
    monkeypatch.setattr(ReportView, "print_report", lambda *_a: asked.append("print"))
    window = open_main_window(qtbot, context, REVIEWER)
    view = open_patient_report(qtbot, window)
    view.browser.setFocus()
    press(qtbot, Qt.Key.Key_Return)
    save_with_keys(qtbot, view, Qt.Key.Key_C, tmp_path / "after.csv", monkeypatch)
    qtbot.waitUntil(lambda: view.status.text().startswith("Saved"))  # Return came first
    assert asked == []
    view.close()


def reached(field: QWidget) -> bool:
    focus = QApplication.focusWidget()
    return focus is field or field.isAncestorOf(focus)


@pytest.mark.parametrize("letter", ["P", "F", "O"])
def test_every_field_of_the_report_request_has_its_alt_letter(  # type: ignore[no-untyped-def]
    qtbot, context: Context, letter: str
) -> None:
    request = open_request(qtbot, open_main_window(qtbot, context, REVIEWER), Qt.Key.Key_P)
    field = {"P": request.subject, "F": request.first, "O": request.last}[letter]
    if letter == "P":  # from another field back to the patient's
        press(qtbot, Qt.Key.Key_Tab)
        qtbot.waitUntil(lambda: QApplication.focusWidget() is not request.subject)
    press(qtbot, getattr(Qt.Key, f"Key_{letter}"), ALT)
    qtbot.waitUntil(lambda: reached(field))
    press(qtbot, Qt.Key.Key_Escape)
