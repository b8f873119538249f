"""Jumps to the end or start of a long log move the highlight, the detail pane and the copy
together, whatever the user did before (scrolling, paging, rows loaded around)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from nvadmin.context import Context
from nvadmin.paths import Paths
from nvadmin.ui.main_window import MainWindow
from tests.factories import add_workspace, draft, write
from tests.gui.windows import open_main_window

CTRL = Qt.KeyboardModifier.ControlModifier
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def context(sqlite_db_url: str) -> Iterator[Context]:
    ctx = Context(Paths.from_environment(), sqlite_db_url, is_default_database=False)
    workspace = add_workspace(ctx.engine)
    events = [
        draft(occurred_at=START + timedelta(minutes=m), patient_id=f"P{m:04d}") for m in range(700)
    ]
    write(ctx.engine, workspace, events)
    yield ctx
    ctx.dispose()


def shown_rows(window: MainWindow) -> set[int]:
    """The rows a user can see in the table's viewport."""
    table = window.table
    column = table.horizontalHeader().logicalIndex(0)
    return {
        row
        for row in range(window.model.rowCount())
        if table.viewport().rect().intersects(table.visualRect(window.model.index(row, column)))
    }


def test_ctrl_end_after_paging_selects_the_real_last_row(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    """The audit's steps: click a row, Down, Down, Page Down, Ctrl+End. The last page
    arrives, the rows before it are loaded above it; the highlight, the detail pane and Ctrl+C
    are all the oldest event, at the bottom of the scrolled view."""
    window = open_main_window(qtbot, context)
    window.resize(1280, 720)
    table = window.table
    first = table.visualRect(table.indexAt(table.viewport().rect().topLeft())).center()
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=first)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is table)
    for key in (Qt.Key.Key_Down, Qt.Key.Key_Down, Qt.Key.Key_PageDown):
        qtbot.keyClick(table, key)
    assert window.model.at_start and not window.model.at_end

    qtbot.keyClick(table, Qt.Key.Key_End, CTRL)
    qtbot.waitUntil(lambda: window.model.at_end and window.model.rowCount() > 200)
    qtbot.waitUntil(lambda: not window.model.loading)

    last = window.model.rowCount() - 1
    assert table.currentIndex().row() == last
    assert window.browser_table.selected_rows() == [last]
    assert last in shown_rows(window)
    bar = table.verticalScrollBar()
    assert bar.value() == bar.maximum()
    oldest = window.detail.shown
    assert oldest is not None and oldest.patient_id == "P0000"
    qtbot.keyClick(table, Qt.Key.Key_C, CTRL)
    copied = QApplication.clipboard().text().splitlines()
    assert len(copied) == 2 and "P0000" in copied[1]
    # Up moves from there, as from any row.
    qtbot.keyClick(table, Qt.Key.Key_Up)
    assert window.browser_table.selected_rows() == [last - 1]
    assert window.detail.shown is not None and window.detail.shown.patient_id == "P0001"


def test_ctrl_home_after_ctrl_end_selects_the_newest_row(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    window = open_main_window(qtbot, context)
    table = window.table
    table.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is table)
    qtbot.keyClick(table, Qt.Key.Key_End, CTRL)
    qtbot.waitUntil(lambda: window.model.at_end and not window.model.loading)
    qtbot.keyClick(table, Qt.Key.Key_PageUp)
    qtbot.keyClick(table, Qt.Key.Key_Home, CTRL)
    qtbot.waitUntil(lambda: window.model.at_start and not window.model.loading)
    assert window.browser_table.selected_rows() == [0] == [table.currentIndex().row()]
    assert table.verticalScrollBar().value() == 0
    newest = window.model.row_at(0)
    assert newest is not None and window.detail.shown == newest
    assert all(newest.occurred_at >= row.occurred_at for row in window.model.rows())
