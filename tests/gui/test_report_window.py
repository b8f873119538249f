"""The report window, opened from the Tools menu as a reviewer does: it fits the screen with
its buttons on it, and e-mail addresses are read whole, never broken across lines."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import QApplication, QPushButton

from nvadmin.context import Context
from nvadmin.identity import Role, StaffIdentity
from nvadmin.paths import Paths
from nvadmin.ui.main_window import MainWindow
from nvadmin.ui.report_view import ReportRequestDialog, ReportView
from tests.factories import add_workspace, draft, write
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


def open_patient_report(qtbot, window: MainWindow) -> ReportView:  # type: ignore[no-untyped-def]
    """Tools → Patient access report…, the patient typed, Return."""
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    window.table.setFocus()
    press(qtbot, Qt.Key.Key_T, ALT)
    qtbot.waitUntil(lambda: QApplication.activePopupWidget() is not None)
    press(qtbot, Qt.Key.Key_P)
    qtbot.waitUntil(lambda: bool(window.findChildren(ReportRequestDialog)))
    request = window.findChildren(ReportRequestDialog)[0]
    request.activateWindow()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is request.subject)
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
