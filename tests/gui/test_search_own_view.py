"""A free-text search that matches nothing says so: the view recorded for the search (its
details are the search itself) is not a match for its own text."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from nvadmin.context import Context
from nvadmin.identity import Role, StaffIdentity
from nvadmin.ui.main_window import MainWindow
from tests.factories import add_workspace, draft, sign_in_as, write

SUPPORT = StaffIdentity(8, "sam@nvadmin.example", "Sam Support", Role.SUPPORT)
CTRL = Qt.KeyboardModifier.ControlModifier


@pytest.fixture
def context(db_url: str) -> Iterator[Context]:
    ctx = Context.create(db_url)
    ws = add_workspace(ctx.engine)
    write(ctx.engine, ws, [draft(i, details={"note": "insurance card scanned"}) for i in range(8)])
    yield ctx
    ctx.dispose()


def open_window(qtbot, context: Context) -> MainWindow:  # type: ignore[no-untyped-def]
    window = MainWindow(context, sign_in_as(context, SUPPORT))
    qtbot.addWidget(window)
    window.show()
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    qtbot.waitUntil(lambda: window.state.loaded and not window.model.loading)
    return window


def search(qtbot, window: MainWindow, text: str) -> None:  # type: ignore[no-untyped-def]
    """Ctrl+F, the text typed over what was there, Return; then the rows and their count."""
    qtbot.keyClick(QApplication.focusWidget() or window, Qt.Key.Key_F, CTRL)
    edit = window.filter_bar.search_edit
    qtbot.waitUntil(lambda: QApplication.focusWidget() is edit)
    qtbot.keyClick(edit, Qt.Key.Key_A, CTRL)
    qtbot.keyClicks(edit, text)
    generation = window.model.generation
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.model.generation > generation)
    qtbot.waitUntil(lambda: not window.model.loading and window.model.count is not None)


def test_search_that_matches_nothing_says_no_events(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    window = open_window(qtbot, context)
    search(qtbot, window, "zzznomatch")
    assert window.model.rowCount() == 0
    assert window.model.count == 0
    overlay = window.browser_table.overlay
    assert overlay.isVisible() and overlay.text() == "No events match these filters."
    # Again: the view recorded for the first search is no match either.
    search(qtbot, window, "zzznomatch")
    assert window.model.rowCount() == 0 and overlay.text() == "No events match these filters."


def test_free_text_still_finds_details_and_who_viewed(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    window = open_window(qtbot, context)
    search(qtbot, window, "insurance card")
    assert window.model.count == 8
    assert {row.action for row in window.model.rows()} == {"chart.view"}
    # The searcher's own views are found by who made them.
    search(qtbot, window, "Sam Support")
    assert window.model.count is not None and window.model.count >= 1
    assert {row.action for row in window.model.rows()} == {"activity_log.view"}
