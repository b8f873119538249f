"""A search or a sort whose page cannot be read: the table showed the rows of the search
before under the error, rows that do not answer the search in the bar."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from nvadmin.errors import DatabaseUnavailable
from nvadmin.query.paging import EventPager
from nvadmin.ui.main_window import MainWindow
from tests.gui.test_keyboard_flows import CTRL, type_search
from tests.gui.test_superseded_requests import context, window

__all__ = ["context", "window"]  # the fixtures: three pages of events, the window on them

LOST = "the connection to the database was lost; try again"


def lose_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every page read from now on fails as a lost connection does (the view is recorded)."""

    def lost(*_args: object) -> None:
        raise DatabaseUnavailable(LOST)

    for read in ("first", "last"):
        monkeypatch.setattr(EventPager, read, lost)


def test_a_failed_search_shows_no_rows_of_the_search_before(  # type: ignore[no-untyped-def]
    qtbot, window: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert window.model.rowCount() > 0
    lose_the_connection(monkeypatch)
    with qtbot.waitSignal(window.model.failed):
        type_search(qtbot, window, "after:2026-11-02")
    assert window.model.rowCount() == 0
    assert window.model.error == LOST


def test_a_failed_jump_keeps_the_rows_that_answer_the_search(  # type: ignore[no-untyped-def]
    qtbot, window: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown = window.model.rowCount()
    lose_the_connection(monkeypatch)
    with qtbot.waitSignal(window.model.failed):
        qtbot.keyClick(window.table, Qt.Key.Key_End, CTRL)
    assert window.model.rowCount() == shown
