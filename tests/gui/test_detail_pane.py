"""The detail pane at 1280 pixels: every value readable without scrolling sideways."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from nvadmin.context import Context
from nvadmin.paths import Paths
from tests.factories import add_workspace, draft, write
from tests.gui.windows import open_main_window

WORKSPACE = "Alpine Dermatology and Skin Surgery of the Northern Front Range"
AGENT = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Safari/605.1.15"
)
TOKEN = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


@pytest.fixture
def context(sqlite_db_url: str) -> Iterator[Context]:
    ctx = Context(Paths.from_environment(), sqlite_db_url, is_default_database=False)
    workspace = add_workspace(ctx.engine, "alpine-derm", WORKSPACE, "America/Denver")
    event = draft(
        occurred_at=datetime(2026, 11, 2, 16, 18, 44, tzinfo=UTC),
        email="valentina.murphy-oconnell@alpine-dermatology.example",
        name="Valentina Murphy-O'Connell",
        user_agent=AGENT,
        details={"token": TOKEN},
    )
    write(ctx.engine, workspace, [event])
    yield ctx
    ctx.dispose()


def test_detail_pane_wraps_values_inside_the_pane(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    window = open_main_window(qtbot, context)
    window.resize(1280, 720)
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    window.table.setFocus()
    qtbot.waitUntil(lambda: window.table.currentIndex().row() == 0)  # the view's own event
    qtbot.keyClick(window.table, Qt.Key.Key_Down)  # the clinic's event, below it
    qtbot.waitUntil(lambda: window.detail.shown is not None)
    assert window.detail.shown.actor_name == "Valentina Murphy-O'Connell"
    pane = window.detail.text
    assert pane.width() < 420  # the pane beside the table, as it opens at 1280
    text = pane.toPlainText()
    for value in (WORKSPACE, AGENT, TOKEN, "2026-11-02 09:18:44"):
        assert value in text
    # Nothing past the right edge: no sideways scrolling, every line inside the viewport.
    assert pane.horizontalScrollBar().maximum() == 0
    room = pane.viewport().width()
    block = pane.document().begin()
    value_x = None
    while block.isValid():
        layout = block.layout()
        for i in range(layout.lineCount()):
            line = layout.lineAt(i)
            assert line.x() + line.naturalTextWidth() <= room, block.text()
        if block.text().startswith("Workspace:"):
            # The workspace's name wraps under its own start, clear of the field names.
            assert layout.lineCount() > 1
            starts_at, _position = layout.lineAt(0).cursorToX(block.text().index(WORKSPACE))
            value_x = layout.lineAt(1).x()
            assert value_x == pytest.approx(starts_at, abs=1)
        block = block.next()
    assert value_x is not None and value_x > 0
